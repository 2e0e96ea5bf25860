"""The pieces of benchmarks/status_at_scale.py: its codes, its generated history, and (on PostgreSQL)
a small fill that the status route's own code reads as the benchmark expects, with every index and
constraint the load dropped built again."""

from __future__ import annotations

import datetime as dt
import itertools
import os
import random
import uuid
from collections import defaultdict

import pytest
from sqlalchemy import create_engine, text

from backend.services.intake import normalise_phone
from benchmarks import status_at_scale as bench
from domain.tracking_code import parse_tracking_code


def test_percentiles_are_nearest_rank_with_the_maximum_last():
    values = [float(v) for v in range(1, 101)]
    random.Random(1).shuffle(values)
    assert bench.percentiles(values) == [50.0, 95.0, 99.0, 100.0]
    assert bench.percentiles([3.0]) == [3.0, 3.0, 3.0, 3.0]
    assert bench.percentiles([1.0, 2.0], (50, 99)) == [1.0, 2.0]


def test_codes_are_valid_distinct_and_the_kinds_never_meet():
    n = 5_000
    cases = [bench.case_code(i) for i in range(n)]
    aliases = [bench.alias_code(i) for i in range(n)]
    unknown = [bench.unknown_code(k, n) for k in range(n)]
    for code in cases + aliases + unknown:
        assert parse_tracking_code(code) == code
    assert len(set(cases)) == n and len(set(aliases)) == n and len(set(unknown)) == n
    assert not set(cases) & set(unknown) and not set(cases) & set(aliases)
    # Spread: consecutive cases' codes are not neighbours (codes looked up are not clustered).
    assert sorted(cases) != cases


def test_numbers_are_stored_as_the_route_normalises_them():
    for i in (0, 1, 9_999_999, 12_345_678):
        assert normalise_phone(bench.phone_of(i)) == bench.phone_of(i)


def test_histories_cover_every_state_in_their_shares():
    counts: dict[str, int] = defaultdict(int)
    n = 100_000
    for i in range(n):
        counts[bench.history_of(i)[0]] += 1
    for share, status, _ in bench.HISTORIES:
        assert abs(counts[status] / n * 100 - share) < 1, status


def _history(cases: int) -> bench.History:
    first = {"caller": 1, "case_file": 1, "case_code": 1, "referral": 1, "case_event": 1}
    return bench.History(cases, bench.LOOKUP_KEY, [1, 2, 3], first, dt.datetime(2026, 1, 1, tzinfo=dt.UTC))


def test_events_come_in_time_order_and_tell_each_case_history():
    history = _history(3_000)
    lines = [line.split("\t") for line in history.event_lines()]
    ids = [int(row[0]) for row in lines]
    assert ids == list(range(1, len(lines) + 1))
    times = [dt.datetime.fromisoformat(row[2]) for row in lines]
    assert times == sorted(times)
    by_case: dict[int, list[list[str]]] = defaultdict(list)
    for row in lines:
        by_case[int(row[1])].append(row)
    assert len(by_case) == 3_000
    for case_id, rows in by_case.items():
        status, actions = bench.history_of(case_id - 1)
        assert [r[3] for r in rows] == list(actions)
        assert rows[-1][5] == status
        assert rows[0][4] == r"\N" and all(a[5] == b[4] for a, b in itertools.pairwise(rows))
    # A case's events lie among other cases' events, as real ones do, not side by side.
    first_closed = next(rows for rows in by_case.values() if len(rows) == 6)
    assert int(first_closed[1][0]) - int(first_closed[0][0]) > 1


@pytest.mark.skipif(not os.environ.get("DIDEHBAN_TEST_POSTGRES_URL"), reason="PostgreSQL only (COPY)")
def test_a_small_fill_reads_as_the_benchmark_expects(monkeypatch):
    from backend.api.errors import ApiError
    from backend.api.routes.cases import load_case_view, lookup_connection
    from backend.core.migrate import upgrade_and_sync
    from backend.core.security import IdentityVault
    from backend.services.status import is_owner
    from benchmarks.fill import secondary_schema

    admin_url = os.environ["DIDEHBAN_TEST_POSTGRES_URL"]
    name = f"didehban_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = admin_url.rsplit("/", 1)[0] + "/" + name
    try:
        upgrade_and_sync(url)
        engine = create_engine(url)
        schema_before = {t: secondary_schema(engine, t) for t in bench.FILLED}
        bench.fill(url, 500)
        assert {t: secondary_schema(engine, t) for t in bench.FILLED} == schema_before
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM case_file")).scalar() == 500
            assert conn.execute(text("SELECT count(*) FROM case_code")).scalar() == 5
            # Sequences follow the explicit ids: the application's next case gets a free id.
            assert (
                conn.execute(text("SELECT nextval(pg_get_serial_sequence('case_file', 'id'))")).scalar()
                == 501
            )
        vault = IdentityVault(None, bench.LOOKUP_KEY.encode())  # type: ignore[arg-type]
        kinds = bench.sample_codes(500, int(500 * bench.CALLERS_PER_CASE), random.Random(3))
        with lookup_connection(engine) as conn:
            for kind, make in kinds.items():
                status, owner = bench.EXPECTED[kind]
                for _ in range(20):
                    request = make()
                    params = request["params"]
                    try:
                        case = load_case_view(conn, request["code"])
                    except ApiError as exc:
                        assert (kind, exc.status) == (kind, status)
                        continue
                    assert status == 200, kind
                    assert (
                        is_owner(case, vault, params.get("caller_number"), params.get("national_id")) is owner
                    )
                    assert case.events, kind
        engine.dispose()
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
