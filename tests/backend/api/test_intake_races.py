"""Concurrent filings against a real uvicorn server, with real threads (issue 8, fault 6): replays
return the case, conflicts answer 409, nothing answers 500, one caller row per identity. Runs on
SQLite and on PostgreSQL. Kept small: the machine is shared."""

from __future__ import annotations

import socket
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx
from sqlalchemy import func, select

from backend.models import Caller, Case, CaseCode, OutboundMessage
from domain.national_id import with_check_digit
from domain.tracking_code import new_tracking_code
from tests.backend.api.test_cases import new_case


def post_at_once(url: str, headers: dict[str, str], bodies: list[dict]) -> list[httpx.Response]:
    """Every body POSTed from its own thread, released together."""
    barrier = threading.Barrier(len(bodies))

    def one(body: dict) -> httpx.Response:
        with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
            barrier.wait()
            return client.post("/api/v1/cases", json=body)

    with ThreadPoolExecutor(len(bodies)) as pool:
        return list(pool.map(one, bodies))


def statuses(responses: list[httpx.Response]) -> Counter:
    return Counter(r.status_code for r in responses)


def test_one_call_id_filed_at_once_is_one_case_and_no_500(live_server, ivr_headers, db):
    responses = post_at_once(live_server, ivr_headers, [new_case(call_id="race-1")] * 30)
    assert statuses(responses) == {201: 30}, [r.text for r in responses if r.status_code != 201]
    assert len({r.json()["tracking_code"] for r in responses}) == 1
    assert sum(r.json()["created"] for r in responses) == 1
    assert db.scalar(select(func.count(Case.id))) == 1
    assert db.scalar(select(func.count(Caller.id))) == 1
    assert db.scalar(select(func.count(OutboundMessage.id))) == 1


def test_one_offline_code_proposed_at_once_is_one_201_and_409s(live_server, ivr_headers, db):
    code = new_tracking_code("21")
    bodies = [new_case(call_id=f"offline-{i}", tracking_code=code) for i in range(20)]
    responses = post_at_once(live_server, ivr_headers, bodies)
    assert statuses(responses) == {201: 1, 409: 19}, [r.text for r in responses]
    assert {r.json()["error"]["code"] for r in responses if r.status_code == 409} == {"tracking_code_taken"}
    assert db.scalar(select(func.count(Case.id))) == 1


def test_one_national_id_filed_at_once_is_one_caller(live_server, ivr_headers, db):
    bodies = [new_case(call_id=f"nid-{i}") for i in range(20)]
    responses = post_at_once(live_server, ivr_headers, bodies)
    assert statuses(responses) == {201: 20}, [r.text for r in responses]
    assert db.scalar(select(func.count(Case.id))) == 20
    assert db.scalar(select(func.count(Caller.id))) == 1


def test_one_heard_code_replayed_at_once_is_one_alias_and_one_sms(live_server, ivr_headers, db):
    with httpx.Client(base_url=live_server, headers=ivr_headers) as client:
        kept = client.post("/api/v1/cases", json=new_case(call_id="lost")).json()["tracking_code"]
    heard = new_tracking_code("21")
    responses = post_at_once(live_server, ivr_headers, [new_case(call_id="lost", tracking_code=heard)] * 15)
    assert statuses(responses) == {201: 15}, [r.text for r in responses if r.status_code != 201]
    assert {r.json()["tracking_code"] for r in responses} == {kept}
    assert db.scalar(select(func.count(CaseCode.id))) == 1
    alias_sms = select(func.count(OutboundMessage.id)).where(OutboundMessage.dedupe_key.like("%alias%"))
    assert db.scalar(alias_sms) == 1


def test_a_call_id_reused_with_another_body_is_a_conflict(live_server, ivr_headers, db):
    with httpx.Client(base_url=live_server, headers=ivr_headers) as client:
        assert client.post("/api/v1/cases", json=new_case(call_id="same")).status_code == 201
        again = client.post("/api/v1/cases", json=new_case(call_id="same"))
        assert again.status_code == 201 and again.json()["created"] is False
        other = client.post(
            "/api/v1/cases", json=new_case(call_id="same", national_id=with_check_digit("123456789"))
        )
        assert other.status_code == 409 and other.json()["error"]["code"] == "call_id_conflict"
        other = client.post("/api/v1/cases", json=new_case(call_id="same", description="another message"))
        assert other.status_code == 409 and other.json()["error"]["code"] == "call_id_conflict"


def test_an_empty_call_id_is_no_key(live_server, ivr_headers, db):
    bodies = [new_case(call_id=""), new_case(call_id="  "), new_case(call_id="")]
    responses = post_at_once(live_server, ivr_headers, bodies)
    assert statuses(responses) == {201: 3}, [r.text for r in responses]
    assert all(r.json()["created"] for r in responses)
    assert db.scalar(select(func.count(Case.id)).where(Case.call_id.is_(None))) == 3


def test_the_body_limit_holds_on_a_real_server(live_server, ivr_headers, db):
    """A 50 MB login is answered before its body is sent; a chunked body is cut off as it streams."""
    with socket.create_connection(("127.0.0.1", int(live_server.rsplit(":", 1)[1])), timeout=10) as conn:
        conn.sendall(
            b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 52428800\r\n\r\n"
        )
        answer = conn.recv(4096)
    assert answer.startswith(b"HTTP/1.1 413") and b"body_too_large" in answer

    def chunks():
        yield b'{"service": "1482", "description": "'
        for _ in range(1024):
            yield b"x" * 1024
        yield b'"}'

    with httpx.Client(base_url=live_server, headers=ivr_headers, timeout=30) as client:
        r = client.post("/api/v1/cases", content=chunks(), headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and r.json()["error"]["code"] == "body_too_large"
