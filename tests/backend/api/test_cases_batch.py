"""POST /api/v1/cases:batch (issue 13): IVR nodes deliver their spools many cases at a time.
Idempotent per call_id; each item answered on its own; one bad item never fails the batch."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from backend.models import Caller, Case, CaseCode, CaseEvent, OutboundMessage, Recording
from domain.national_id import with_check_digit
from domain.tracking_code import new_tracking_code
from tests.backend.api.test_cases import NID, PHONE, new_case
from tests.backend.api.test_staff import START

URL = "/api/v1/cases:batch"


def spooled(n: int, **overrides) -> dict:
    """A case as an IVR node spools it: its own code, its call id, the call's time."""
    body = new_case(call_id=f"call.{n}", tracking_code=new_tracking_code("21"), received_at=START.isoformat())
    body.update(overrides)
    return body


def post(client, ivr_headers, cases):
    r = client.post(URL, json={"cases": cases}, headers=ivr_headers)
    assert r.status_code == 200, r.text
    return r.json()["results"]


def count(db, model) -> int:
    db.expire_all()
    return db.scalar(select(func.count()).select_from(model))


def test_a_batch_files_each_case_under_the_nodes_code(client, ivr_headers, db, clock):
    cases = [spooled(n, recording_path=f"1482/20261122/call.{n}-message.wav") for n in range(5)]
    results = post(client, ivr_headers, cases)
    assert [r["result"] for r in results] == ["created"] * 5
    # The node's code is the case's own code, and answered in the order sent.
    assert [r["tracking_code"] for r in results] == [c["tracking_code"] for c in cases]
    assert [r["call_id"] for r in results] == [c["call_id"] for c in cases]
    assert count(db, Case) == 5 and count(db, CaseEvent) == 5 and count(db, Recording) == 5
    assert count(db, OutboundMessage) == 5
    # One national ID across the batch is one caller.
    assert count(db, Caller) == 1
    case = db.scalar(select(Case).where(Case.tracking_code == cases[0]["tracking_code"]))
    assert case.status == "received" and case.current_unit is not None and case.due_at is not None
    status = client.get(
        f"/api/v1/cases/{cases[0]['tracking_code']}", params={"caller_number": PHONE}, headers=ivr_headers
    )
    assert status.status_code == 200 and status.json()["owner_verified"] is True


def test_a_batch_delivered_again_is_answered_replay_and_files_nothing(client, ivr_headers, db, clock):
    cases = [spooled(n) for n in range(3)]
    first = post(client, ivr_headers, cases)
    again = post(client, ivr_headers, cases)
    assert [r["result"] for r in again] == ["replay"] * 3
    assert [r["tracking_code"] for r in again] == [r["tracking_code"] for r in first]
    assert count(db, Case) == 3 and count(db, OutboundMessage) == 3


def test_each_item_has_its_own_result(client, ivr_headers, db, clock):
    filed = post(client, ivr_headers, [spooled(1)])[0]
    taken = filed["tracking_code"]
    items = [
        spooled(2),  # new
        spooled(1),  # the same call again: a replay
        spooled(1, kind="suggestion"),  # the same call id saying something else
        spooled(3, tracking_code=taken),  # another call claiming a code already given
        spooled(4, national_id="1234567890"),  # a bad national ID
        spooled(5, service="999"),  # no such service
        {"service": "1482", "kind": 7},  # not a case at all
        spooled(6, call_id=None),  # no idempotency key
        spooled(7, tracking_code=new_tracking_code("10")),  # the backend's prefix, not a node's
        spooled(8),  # new, after all of the above
    ]
    results = post(client, ivr_headers, items)
    assert [r["result"] for r in results] == [
        "created",
        "replay",
        "conflict",
        "conflict",
        "invalid",
        "invalid",
        "invalid",
        "invalid",
        "invalid",
        "created",
    ]
    assert results[1]["tracking_code"] == taken
    assert results[2]["error"]["code"] == "call_id_conflict"
    assert results[3]["error"]["code"] == "tracking_code_taken"
    assert results[4]["error"]["code"] == "invalid_national_id"
    assert results[5]["error"]["code"] == "unknown_service"
    assert results[6]["error"]["code"] == "invalid_request" and results[6]["call_id"] is None
    assert results[8]["error"]["code"] == "invalid_tracking_code"
    assert count(db, Case) == 3
    # No identity in what is answered.
    assert "1234567890" not in str(results) and NID not in str(results)


def test_a_control_character_in_one_item_refuses_that_item_alone(client, ivr_headers, db, clock):
    """The merged control-character check (issue 8) applies to each case, not to the whole batch."""
    items = [spooled(1), spooled(2, description="bad\x00note"), spooled(3)]
    results = post(client, ivr_headers, items)
    assert [r["result"] for r in results] == ["created", "invalid", "created"]
    assert results[1]["error"]["code"] == "invalid_request" and results[1]["call_id"] == "call.2"
    assert count(db, Case) == 2


def test_one_call_twice_in_one_batch_is_one_case(client, ivr_headers, db, clock):
    one = spooled(1)
    results = post(client, ivr_headers, [one, one, spooled(1, tracking_code=new_tracking_code("21"))])
    assert [r["result"] for r in results] == ["created", "replay", "replay"]
    assert count(db, Case) == 1
    # The second code the caller heard is kept as an alias of the one case.
    assert count(db, CaseCode) == 1


def test_two_calls_claiming_one_code_in_one_batch(client, ivr_headers, db, clock):
    code = new_tracking_code("21")
    results = post(client, ivr_headers, [spooled(1, tracking_code=code), spooled(2, tracking_code=code)])
    assert [r["result"] for r in results] == ["created", "conflict"]
    assert results[1]["error"]["code"] == "tracking_code_taken"


def test_a_replay_of_a_case_filed_by_the_single_route_aliases_the_heard_code(client, ivr_headers, db, clock):
    body = new_case(call_id="call.1", received_at=START.isoformat())
    kept = client.post("/api/v1/cases", json=body, headers=ivr_headers).json()["tracking_code"]
    heard = new_tracking_code("21")
    [result] = post(client, ivr_headers, [{**body, "tracking_code": heard}])
    assert result["result"] == "replay" and result["tracking_code"] == kept
    assert db.scalar(select(CaseCode.code)) == heard


@pytest.mark.parametrize("body", [{"cases": []}, {"cases": [spooled(n) for n in range(201)]}, {}])
def test_the_batch_itself_is_bounded(client, ivr_headers, db, clock, body):
    r = client.post(URL, json=body, headers=ivr_headers)
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_request"
    assert count(db, Case) == 0


def test_the_batch_route_needs_the_ivr_token(client, db, clock):
    r = client.post(URL, json={"cases": [spooled(1)]})
    assert r.status_code == 401
    assert count(db, Case) == 0


def test_a_lost_race_files_the_batch_case_by_case(client, ivr_headers, db, clock, monkeypatch):
    """The bulk insert meets a unique key another request just took: each case is filed on its own."""
    from sqlalchemy.exc import IntegrityError

    from backend.api.routes import cases as route

    real = route.register_new_cases

    def lose_the_race(*args, **kwargs):
        real(*args, **kwargs)
        raise IntegrityError("INSERT", {}, Exception("duplicate key"))

    monkeypatch.setattr(route, "register_new_cases", lose_the_race)
    items = [spooled(1), spooled(2, national_id=with_check_digit("123456789")), spooled(3, kind="nope")]
    results = post(client, ivr_headers, items)
    assert [r["result"] for r in results] == ["created", "created", "invalid"]
    assert count(db, Case) == 2


def test_a_batch_that_loses_one_race_is_written_again_as_a_batch(
    client, ivr_headers, db, clock, monkeypatch, vault
):
    """Another request files one of the batch's calls meanwhile: the second pass sees it (a replay)
    and files the rest together; only the replay takes the one-by-one path."""
    from sqlalchemy.exc import IntegrityError

    from backend.api.routes import cases as route
    from backend.services.intake import register_case

    real, real_one = route.register_new_cases, route._file_one
    passes, one_by_one = [], []

    def lose_once(session, vault_, items, **kwargs):
        passes.append(len(items))
        if len(passes) > 1:
            return real(session, vault_, items, **kwargs)
        # The winner: the same call filed in its own transaction, before this batch's rows went in.
        first = items[0]
        register_case(db, vault, first.profile, first.data, **kwargs)
        db.commit()
        raise IntegrityError("INSERT", {}, Exception("duplicate key"))

    def file_one(*args, **kwargs):
        one_by_one.append(args[4].call_id)
        return real_one(*args, **kwargs)

    monkeypatch.setattr(route, "register_new_cases", lose_once)
    monkeypatch.setattr(route, "_file_one", file_one)
    items = [
        spooled(1),
        spooled(2, national_id=with_check_digit("123456789")),
        spooled(3),
        spooled(4, kind="x"),
    ]
    results = post(client, ivr_headers, items)
    assert [r["result"] for r in results] == ["replay", "created", "created", "invalid"]
    assert results[0]["tracking_code"] == items[0]["tracking_code"]
    assert passes == [4, 4] and one_by_one == ["call.1"]
    assert count(db, Case) == 3 and count(db, CaseEvent) == 3


def test_callers_in_a_batch_as_one_by_one(client, ivr_headers, db, clock, vault):
    """A known caller without a number is given the first one; a message with a number alone is its
    own caller; each case keeps the number it was filed from."""
    body = new_case(call_id="first", caller_number=None, received_at=START.isoformat())
    assert client.post("/api/v1/cases", json=body, headers=ivr_headers).status_code == 201
    other = "09351112233"
    items = [
        spooled(1),  # the known national ID, now with a number
        spooled(2, caller_number=other),  # the same person from another number
        spooled(3, national_id=None, incomplete=True, caller_number=other),  # a number alone
    ]
    assert [r["result"] for r in post(client, ivr_headers, items)] == ["created"] * 3
    db.expire_all()
    known = db.scalar(select(Caller).where(Caller.national_id_hash == vault.lookup_hash(NID)))
    assert vault.decrypt(known.phone_enc) == PHONE  # the first number, not the later one
    assert count(db, Caller) == 2
    by_call = {c.call_id: c for c in db.scalars(select(Case))}
    assert vault.decrypt(by_call["call.2"].phone_enc) == other and by_call["call.2"].caller_id == known.id
    assert by_call["call.3"].caller_id not in (None, known.id) and by_call["call.3"].incomplete


def test_each_case_of_a_batch_gets_its_own_working_evidence_link(client, ivr_headers, db, clock):
    """The batch draws its tokens together: each registration SMS still names a token of its own case."""
    import re

    from backend.services.evidence import usable_token

    items = [spooled(n, caller_number=f"0912000000{n}") for n in range(1, 4)]
    assert [r["result"] for r in post(client, ivr_headers, items)] == ["created"] * 3
    db.expire_all()
    tokens = set()
    for message in db.scalars(select(OutboundMessage).where(OutboundMessage.dedupe_key.like("%:registered"))):
        token = re.search(r"/e/([A-Za-z0-9_-]+)", message.body).group(1)
        row = usable_token(db, token, now=START)
        assert row is not None and row.case_id == message.case_id
        tokens.add(token)
    assert len(tokens) == 3
