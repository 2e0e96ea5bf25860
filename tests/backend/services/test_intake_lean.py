"""The cheaper intake and status paths (issue 13) say exactly what the ORM paths said."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from sqlalchemy import func, select

from backend.models import Caller, Case, CaseCode, CaseEvent, Unit
from backend.services.status import _moment, case_status, case_view_by_code, is_owner
from domain.jalali import jalali_parts, jalali_text
from domain.national_id import with_check_digit
from domain.tracking_code import new_tracking_code
from tests.backend.api.test_cases import NID, PHONE, new_case


@pytest.mark.parametrize(
    "moment",
    [
        dt.datetime(2026, 11, 22, 20, 29, 59, tzinfo=dt.UTC),  # 23:59 in Tehran
        dt.datetime(2026, 11, 22, 20, 30, tzinfo=dt.UTC),  # midnight in Tehran: the next Jalali day
        dt.datetime(2026, 3, 20, 20, 30, tzinfo=dt.UTC),  # Nowruz
        dt.datetime(2022, 3, 21, 19, 30),  # naive: taken as UTC; summer time still kept then
        dt.datetime(2022, 9, 21, 19, 31, tzinfo=dt.timezone(dt.timedelta(hours=-5))),
        dt.datetime(1, 1, 1, tzinfo=dt.UTC),  # out of jdatetime's range: clamped
        dt.datetime(9999, 12, 31, 23, 59, tzinfo=dt.UTC),
    ],
)
@pytest.mark.parametrize("tz", ["Asia/Tehran", "UTC"])
def test_a_moment_reads_as_domain_jalali_says(moment, tz):
    assert _moment(moment, tz) == {
        "iso": moment.isoformat(),
        "jalali": jalali_text(moment, tz),
        "parts": jalali_parts(moment, tz),
    }
    assert _moment(None, tz) is None


def _file(client, ivr_headers, **overrides) -> str:
    r = client.post("/api/v1/cases", json=new_case(**overrides), headers=ivr_headers)
    assert r.status_code == 201, r.text
    return r.json()["tracking_code"]


def test_the_status_view_reads_as_the_orm_case(client, ivr_headers, db, vault):
    code = _file(client, ivr_headers)
    case = db.scalar(select(Case).where(Case.tracking_code == code))
    # A second event, at another unit, and an answer: every field the status carries.
    other = db.scalar(select(Unit).where(Unit.id != case.current_unit_id))
    db.add(CaseEvent(case_id=case.id, action="refer", to_status="referred", actor="t", unit_id=other.id))
    db.add(CaseEvent(case_id=case.id, action="note", to_status=None, actor="t"))  # not said to callers
    case.answer, case.satisfaction = "پاسخ", 4
    heard = new_tracking_code("21")
    db.add(CaseCode(code=heard, case_id=case.id))
    db.commit()
    db.expire_all()
    case = db.scalar(select(Case).where(Case.tracking_code == code))
    for owner in (False, True):
        view = case_view_by_code(db.connection(), code)
        assert case_status(view, "Asia/Tehran", owner=owner) == case_status(case, "Asia/Tehran", owner=owner)
        by_alias = case_view_by_code(db.connection(), heard)
        assert case_status(by_alias, "Asia/Tehran", owner=owner) == case_status(
            case, "Asia/Tehran", owner=owner
        )
    view = case_view_by_code(db.connection(), code)
    for number, national_id in [
        (PHONE, None),
        ("09350000000", None),
        (None, NID),
        (None, with_check_digit("123456789")),
        ("09350000000", "not an id"),
        (None, None),
    ]:
        assert is_owner(view, vault, number, national_id) == is_owner(case, vault, number, national_id)
    assert case_view_by_code(db.connection(), new_tracking_code("21")) is None


def test_one_case_from_a_known_caller_joins_its_identity(client, ivr_headers, db):
    """The single-case route inserts the caller without looking first (ON CONFLICT DO NOTHING): a
    national ID already stored keeps its one row, and gets the number only if it had none."""
    _file(client, ivr_headers, call_id="first", caller_number=None)
    _file(client, ivr_headers, call_id="second", caller_number=PHONE)
    _file(client, ivr_headers, call_id="third", caller_number="09350000000")
    assert db.scalar(select(func.count(Caller.id))) == 1
    caller = db.scalar(select(Caller))
    assert caller.phone_enc is not None
    cases = db.scalars(select(Case).order_by(Case.id)).all()
    assert {c.caller_id for c in cases} == {caller.id}
    assert cases[1].phone_hash == caller.phone_hash != cases[2].phone_hash


def test_a_replay_and_a_taken_code_on_the_lean_path(client, ivr_headers, db):
    """One case is inserted without probing its call id and code: the unique keys send a replay
    and a taken code to the one-by-one path, which answers them as before."""
    code = _file(client, ivr_headers, call_id="a", tracking_code=new_tracking_code("21"))
    again = client.post("/api/v1/cases", json=new_case(call_id="a", tracking_code=code), headers=ivr_headers)
    assert again.status_code == 201 and again.json() | {"due_at": None} == {
        "tracking_code": code,
        "status": "received",
        "due_at": None,
        "created": False,
    }
    taken = client.post("/api/v1/cases", json=new_case(call_id="b", tracking_code=code), headers=ivr_headers)
    assert taken.status_code == 409 and taken.json()["error"]["code"] == "tracking_code_taken"
    assert db.scalar(select(func.count(Case.id))) == 1


def test_sqlite_writers_share_one_lock_per_database(db):
    from backend.core.db import writing

    first, second = writing(db), writing(db)
    if db.get_bind().dialect.name == "sqlite":
        assert first is second and isinstance(first, type(threading.Lock()))
    else:
        with first:  # a no-op on PostgreSQL: its own locks serve
            pass


@pytest.mark.parametrize("setting, expected", [("NORMAL", 1), ("FULL", 2), ("full", 2)])
def test_sqlite_synchronous_follows_the_setting(tmp_path, setting, expected):
    from backend.core.db import make_engine

    engine = make_engine(f"sqlite:///{tmp_path / 'x.sqlite3'}", sqlite_synchronous=setting)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == expected
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    engine.dispose()


def test_sqlite_commits_are_durable_through_a_power_loss_unless_told_otherwise(tmp_path, monkeypatch):
    # The IVR node deletes its spooled copy once the backend acknowledges a case: that case must
    # survive a power loss, so the default is FULL.
    from backend.core.config import Settings
    from backend.core.db import make_engine

    assert Settings.model_fields["sqlite_synchronous"].default == "FULL"
    engine = make_engine(f"sqlite:///{tmp_path / 'x.sqlite3'}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2
    engine.dispose()


def _group_with(monkeypatch, write):
    from backend.api.routes import cases as route

    monkeypatch.setattr(route, "_file_batch", write)
    return route.FilingGroup()


def _file_at_once(group, items, first_started):
    """The first filing alone, then the others while it is being written."""
    from backend.api.routes.cases import FilingGroup

    now = dt.datetime.now(dt.UTC)
    outcomes: dict[int, object] = {}

    def run(k: int) -> None:
        try:
            outcomes[k] = group.file(None, None, None, items[k], now)
        except Exception as exc:  # the test reads what each filing got
            outcomes[k] = exc

    threads = [threading.Thread(target=run, args=(k,)) for k in range(len(items))]
    threads[0].start()
    assert first_started.wait(5)
    for thread in threads[1:]:
        thread.start()
    deadline = dt.datetime.now() + dt.timedelta(seconds=5)
    while len(group._waiting) < len(items) - 1 and dt.datetime.now() < deadline:
        threading.Event().wait(0.01)
    assert isinstance(group, FilingGroup)
    return threads, outcomes


def test_single_filings_arriving_while_one_is_written_are_written_together(monkeypatch):
    from backend.services.intake import BatchItem, BatchResult

    groups: list[int] = []
    first_started, release = threading.Event(), threading.Event()

    def write(db, vault, settings, items, now):
        groups.append(len(items))
        if len(groups) == 1:
            first_started.set()
            release.wait(5)
        return {i: BatchResult("created", f"code-{id(item)}") for i, item in enumerate(items)}

    group = _group_with(monkeypatch, write)
    items = [BatchItem() for _ in range(6)]
    threads, outcomes = _file_at_once(group, items, first_started)
    release.set()
    for thread in threads:
        thread.join(5)
    assert groups == [1, 5]  # one write for everything that waited
    assert {k: r.tracking_code for k, r in outcomes.items()} == {
        k: f"code-{id(i)}" for k, i in enumerate(items)
    }
    assert not group._writing and not group._waiting


def test_a_failed_group_answers_every_filing_and_the_next_is_written(monkeypatch):
    from backend.services.intake import BatchItem, BatchResult

    groups: list[int] = []
    first_started, release = threading.Event(), threading.Event()

    def write(db, vault, settings, items, now):
        groups.append(len(items))
        if len(groups) == 1:
            first_started.set()
            release.wait(5)
            return {0: BatchResult("created", "first")}
        if len(groups) == 2:
            raise RuntimeError("the database went away")
        return {i: BatchResult("created", "later") for i in range(len(items))}

    group = _group_with(monkeypatch, write)
    threads, outcomes = _file_at_once(group, [BatchItem() for _ in range(4)], first_started)
    release.set()
    for thread in threads:
        thread.join(5)
    assert outcomes[0].tracking_code == "first"
    assert all(isinstance(outcomes[k], RuntimeError) for k in (1, 2, 3))
    assert group.file(None, None, None, BatchItem(), dt.datetime.now(dt.UTC)).tracking_code == "later"


def test_a_batch_meeting_a_caller_stored_meanwhile_is_still_filed_together(db, vault, monkeypatch):
    """A national ID stored by a concurrent filing between the batch's look-up and its INSERT: on
    PostgreSQL the row is skipped and the case joins the stored caller (no fall-back to filing the
    batch case by case); on SQLite writers take turns, so the look-up cannot go stale."""
    from backend.api.routes import cases as route
    from backend.core.config import get_settings
    from backend.services import intake

    settings = get_settings()
    now = dt.datetime.now(dt.UTC)
    bodies = [
        new_case(
            call_id=f"c{k}", national_id=with_check_digit(f"12345{k:04d}"), caller_number=f"0912000{k:04d}"
        )
        for k in range(3)
    ]
    items = [route._batch_item(body, settings, now) for body in bodies]
    # The first caller is stored "meanwhile": after the look-up, by another connection, just before
    # the batch's callers go in.
    real = intake._drawn_ids

    def stale(conn, table, count):
        if table is intake._callers and not getattr(stale, "done", False):
            stale.done = True
            with db.get_bind().connect() as side:
                digest = vault.lookup_hash(with_check_digit("123450000"))
                side.execute(Caller.__table__.insert(), {"national_id_hash": digest, "phone_enc": None})
                side.commit()
        return real(conn, table, count)

    if db.get_bind().dialect.name != "postgresql":
        pytest.skip("SQLite's writers take turns: a look-up cannot go stale within a batch")
    monkeypatch.setattr(intake, "_drawn_ids", stale)
    monkeypatch.setattr(route, "_file_one", lambda *a, **k: pytest.fail("fell back to one by one"))
    results = route._file_batch(db, vault, settings, items, now)
    assert stale.done and [r.result for r in results.values()] == ["created"] * 3
    assert db.scalar(select(func.count(Caller.id))) == 3
    stored = db.scalar(
        select(Caller).where(Caller.national_id_hash == vault.lookup_hash(with_check_digit("123450000")))
    )
    first = db.scalar(select(Case).where(Case.call_id == "c0"))
    assert first.caller_id == stored.id and stored.phone_enc is not None  # given the number it lacked
