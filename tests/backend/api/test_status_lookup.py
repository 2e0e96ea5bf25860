"""The status look-up's cheap path (issue 13, goal 3b): one statement for a code or its alias, read
outside a transaction, and a 404 answered without raising through the route's dependencies. These
say how the look-up reaches the database; test_cases.py and test_access.py say what it answers."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest
from sqlalchemy import event, select

from backend.models import Case, CaseCode
from domain.tracking_code import new_tracking_code
from tests.backend.api.test_cases import NID, PHONE, new_case

STRANGER = "09350000000"


@dataclass
class Seen:
    statements: list[str] = field(default_factory=list)
    outside: list[bool] = field(default_factory=list)  # no transaction open at each statement
    commits: int = 0
    checked_in_autocommit: int = 0  # connections handed back to the pool still in autocommit


def _driver_autocommit(dbapi_connection) -> bool:
    # sqlite3 (Python 3.11): isolation_level None is its autocommit; psycopg: .autocommit.
    if isinstance(dbapi_connection, sqlite3.Connection):
        return dbapi_connection.isolation_level is None
    return bool(dbapi_connection.autocommit)


def _outside_a_transaction(dbapi_connection) -> bool:
    # sqlite3 opens a transaction only before a write, so its reads are outside one without
    # autocommit; psycopg opens one before any statement unless in autocommit.
    if isinstance(dbapi_connection, sqlite3.Connection):
        return not dbapi_connection.in_transaction
    return bool(dbapi_connection.autocommit)


@contextmanager
def watching() -> Iterator[Seen]:
    """What the engine the app uses is asked to do meanwhile."""
    from backend.core.db import get_engine

    engine, seen = get_engine(), Seen()

    def statement(conn, cursor, text, parameters, context, executemany) -> None:
        seen.statements.append(text)
        seen.outside.append(_outside_a_transaction(cursor.connection))

    def commit(conn) -> None:
        seen.commits += 1

    def checkin(dbapi_connection, record) -> None:
        if dbapi_connection is not None and _driver_autocommit(dbapi_connection):
            seen.checked_in_autocommit += 1

    listeners = [("before_cursor_execute", statement), ("commit", commit), ("checkin", checkin)]
    for name, fn in listeners:
        event.listen(engine, name, fn)
    try:
        yield seen
    finally:
        for name, fn in listeners:
            event.remove(engine, name, fn)


@pytest.fixture
def filed(client, ivr_headers, db) -> tuple[str, str]:
    """A case filed by PHONE with NID, and an alias (a code an IVR node told the caller)."""
    r = client.post("/api/v1/cases", json=new_case(), headers=ivr_headers)
    assert r.status_code == 201, r.text
    code = r.json()["tracking_code"]
    alias = new_tracking_code("21")
    db.add(CaseCode(code=alias, case_id=db.scalar(select(Case.id).where(Case.tracking_code == code))))
    db.commit()
    return code, alias


def test_each_kind_of_look_up_is_one_statement_outside_a_transaction(client, ivr_headers, filed):
    code, alias = filed
    unknown = new_tracking_code("10")
    kinds = [
        # (code, proof, status, owner_verified, statements)
        (code, {"caller_number": PHONE}, 200, True, 1),
        (code, {"caller_number": STRANGER}, 200, False, 1),
        (alias, {"caller_number": PHONE}, 200, True, 1),
        (alias, {"caller_number": STRANGER}, 200, False, 1),
        (unknown, {"caller_number": STRANGER}, 404, None, 1),
        (code, {"caller_number": STRANGER, "national_id": NID}, 200, True, 2),  # the caller's hash too
    ]
    for asked, proof, status, owner, statements in kinds:
        with watching() as seen:
            r = client.get(f"/api/v1/cases/{asked}", params=proof, headers=ivr_headers)
        assert r.status_code == status, (asked, proof, r.text)
        if owner is None:
            assert r.json() == {
                "error": {"code": "case_not_found", "message": "no case has this tracking code"}
            }
        else:
            assert r.json()["tracking_code"] == code and r.json()["owner_verified"] is owner
        assert len(seen.statements) == statements, (asked, proof, seen.statements)
        # Read outside a transaction: PostgreSQL (in autocommit) hears no BEGIN before it and no COMMIT
        # or ROLLBACK after it; SQLite's driver begins none for a read.
        assert all(seen.outside), (asked, proof)
        assert seen.commits == 0, (asked, proof)
        # ... and the connection goes back to the pool as it came, for the next request's writes.
        assert seen.checked_in_autocommit == 0, (asked, proof)


def test_a_case_own_code_wins_over_an_alias_of_the_same_digits(client, ivr_headers, db, filed):
    code, _ = filed
    other = client.post(
        "/api/v1/cases", json=new_case(call_id="other", caller_number=STRANGER), headers=ivr_headers
    )
    other_code = other.json()["tracking_code"]
    # Intake never lets this happen; the single statement still reads the own code first, as the two
    # look-ups it replaced did.
    db.add(CaseCode(code=other_code, case_id=db.scalar(select(Case.id).where(Case.tracking_code == code))))
    db.commit()
    r = client.get(f"/api/v1/cases/{other_code}", params={"caller_number": STRANGER}, headers=ivr_headers)
    assert r.status_code == 200 and r.json()["tracking_code"] == other_code and r.json()["owner_verified"]


def test_a_refused_look_up_costs_get_db_no_thread_hop(client, ivr_headers, filed, monkeypatch):
    """An unknown code, a mistyped one, a throttled caller: answered from the route's thread, with
    the session closed there, so get_db has nothing to finish in the pool (deps._end)."""
    from backend.api import deps

    ended = []
    real_end = deps._end
    monkeypatch.setattr(deps, "_end", lambda session, ok: (ended.append(ok), real_end(session, ok)))
    code, _ = filed
    r = client.get(f"/api/v1/cases/{new_tracking_code('10')}", headers=ivr_headers)
    assert r.status_code == 404 and r.json()["error"]["code"] == "case_not_found"
    r = client.get(f"/api/v1/cases/{code[:9]}{(int(code[9]) + 1) % 10}", headers=ivr_headers)
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_tracking_code"
    assert client.get(f"/api/v1/cases/{code}", headers=ivr_headers).status_code == 200
    assert ended == []


def test_a_throttled_look_up_answers_429_with_retry_after(client, ivr_headers, filed, monkeypatch):
    from tests.backend.api.test_access import limits

    code, _ = filed
    limits(monkeypatch, rate_limit_per_caller="1/minute")
    proof = {"caller_number": STRANGER}
    r = client.get(f"/api/v1/cases/{new_tracking_code('10')}", params=proof, headers=ivr_headers)
    assert r.status_code == 404  # answered, not raised: still counted against the caller
    r = client.get(f"/api/v1/cases/{code}", params=proof, headers=ivr_headers)
    assert r.status_code == 429 and r.json()["error"]["code"] == "too_many_requests"
    assert int(r.headers["Retry-After"]) >= 1


def test_each_kind_of_look_up_answers_as_the_orm_case_reads(client, ivr_headers, db, filed):
    """The route's whole answer, for every kind of caller, is what case_status says of the ORM's case
    (the path escalations and the citizens' pages read), as the response model writes it."""
    from backend.api.routes.cases import CaseStatusOut
    from backend.models import CaseEvent, Unit
    from backend.services.status import case_status

    code, alias = filed
    case = db.scalar(select(Case).where(Case.tracking_code == code))
    other = db.scalar(select(Unit).where(Unit.id != case.current_unit_id))
    db.add(CaseEvent(case_id=case.id, action="refer", to_status="referred", actor="t", unit_id=other.id))
    db.add(CaseEvent(case_id=case.id, action="note", to_status=None, actor="t"))  # not said to callers
    case.answer = "پاسخ"
    db.commit()
    db.expire_all()
    case = db.scalar(select(Case).where(Case.tracking_code == code))

    def as_before(owner: bool) -> dict:
        return CaseStatusOut.model_validate(case_status(case, "Asia/Tehran", owner=owner)).model_dump(
            mode="json"
        )

    kinds = [
        (code, {"caller_number": PHONE}, True),
        (code, {"caller_number": STRANGER, "national_id": NID}, True),
        (code, {"national_id": NID}, True),
        (code, {"caller_number": STRANGER}, False),
        (code, {"caller_number": STRANGER, "national_id": "0000000001"}, False),
        (code, {}, False),
        (alias, {"caller_number": PHONE}, True),
        (alias, {"caller_number": STRANGER}, False),
    ]
    for asked, proof, owner in kinds:
        r = client.get(f"/api/v1/cases/{asked}", params=proof, headers=ivr_headers)
        assert r.status_code == 200, (asked, proof, r.text)
        assert r.json() == as_before(owner), (asked, proof)
        assert r.headers["content-type"] == "application/json"
    r = client.get(f"/api/v1/cases/{new_tracking_code('10')}", headers=ivr_headers)
    assert (r.status_code, r.json()) == (
        404,
        {"error": {"code": "case_not_found", "message": "no case has this tracking code"}},
    )
    r = client.get(f"/api/v1/cases/{code[:9]}{(int(code[9]) + 1) % 10}", headers=ivr_headers)
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_tracking_code"


def test_a_shared_rate_limit_store_is_asked_off_the_event_loop(client, ivr_headers, filed, monkeypatch):
    """A shared store (redis://) is a network round trip, and one that does not answer waits for its
    time-out: the look-up asks it from its own thread, never from the event loop that every other
    request waits on. Its limits still hold."""
    import threading

    from limits.storage import MemoryStorage
    from limits.strategies import MovingWindowRateLimiter

    from backend.api.throttling import Throttle
    from backend.core.config import get_settings
    from tests.backend.api.test_access import limits

    limits(monkeypatch, rate_limit_per_caller="2/minute")
    asked_from: list[str] = []

    class SharedStore(MovingWindowRateLimiter):
        def test(self, *args, **kwargs):
            asked_from.append(threading.current_thread().name)
            return super().test(*args, **kwargs)

        def hit(self, *args, **kwargs):
            asked_from.append(threading.current_thread().name)
            return super().hit(*args, **kwargs)

    shared = Throttle(get_settings().rate_limit_storage)
    shared.windows, shared.limiter = None, SharedStore(MemoryStorage())
    client.app.state.throttle = shared
    code, _ = filed
    proof = {"caller_number": STRANGER}
    assert [
        client.get(f"/api/v1/cases/{code}", params=proof, headers=ivr_headers).status_code for _ in range(3)
    ] == [
        200,
        200,
        429,
    ]
    assert asked_from and all(name.startswith("status-lookup") for name in asked_from), asked_from
