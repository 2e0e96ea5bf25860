"""Large fills for the benchmarks, straight into the database: COPY on PostgreSQL, executemany on
SQLite. Rows are plain (no identities): the look-ups and the scheduler only read codes, states and
times."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterable

from sqlalchemy import Engine, create_engine, text

from domain.tracking_code import damm_digit

CHUNK = 50_000


def filled_code(i: int) -> str:
    """The tracking code of the i-th filled case (prefix 30: no issuer uses it)."""
    body = f"30{i:07d}"
    return body + str(damm_digit(body))


def stamp(engine: Engine, at: dt.datetime) -> str:
    """A UTC time as the column stores it (SQLAlchemy's SQLite text form; PostgreSQL timestamptz)."""
    at = at.astimezone(dt.UTC)
    if engine.dialect.name == "postgresql":
        return at.isoformat()
    return at.replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")


def write(engine: Engine, table: str, columns: list[str], rows: Iterable[tuple]) -> None:
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        if engine.dialect.name == "postgresql":
            with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
            batch: list[tuple] = []
            for row in rows:
                batch.append(row)
                if len(batch) >= CHUNK:
                    cur.executemany(sql, batch)
                    batch = []
            if batch:
                cur.executemany(sql, batch)
        raw.commit()
    finally:
        raw.close()


def timed(fn: Callable[[], None]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def next_id(engine: Engine, table: str) -> int:
    with engine.connect() as conn:
        return conn.execute(text(f"SELECT coalesce(max(id), 0) FROM {table}")).scalar() + 1


def fill_cases(database_url: str, n: int, *, now: dt.datetime | None = None) -> tuple[int, int]:
    """n open cases in the 1482 root unit; returns (first id, root unit id)."""
    engine = create_engine(database_url)
    at = stamp(engine, now or dt.datetime.now(dt.UTC))
    with engine.connect() as conn:
        unit_id = conn.execute(
            text("SELECT id FROM unit WHERE parent_id IS NULL AND service='1482'")
        ).scalar()
    start = next_id(engine, "case_file")
    columns = [
        "id", "tracking_code", "service", "kind", "urgent", "channel", "status", "incomplete",
        "phone_hash", "current_unit_id", "escalation_level", "created_at", "updated_at", "due_at",
    ]  # fmt: skip
    write(
        engine,
        "case_file",
        columns,
        (
            (
                i,
                filled_code(i),
                "1482",
                "complaint",
                False,
                "phone",
                "referred",
                False,
                f"h{i}",
                unit_id,
                0,
                at,
                at,
                at,
            )
            for i in range(start, start + n)
        ),
    )
    analyze(engine, "case_file")
    engine.dispose()
    return start, unit_id


def fill_referrals(database_url: str, first_case: int, n: int, unit_id: int, due: dt.datetime) -> None:
    """n open referrals (one per filled case) due at `due`."""
    engine = create_engine(database_url)
    start = next_id(engine, "referral")
    at, due_at = stamp(engine, dt.datetime.now(dt.UTC)), stamp(engine, due)
    write(
        engine,
        "referral",
        ["id", "case_id", "to_unit_id", "referred_at", "due_at", "state"],
        ((start + k, first_case + k, unit_id, at, due_at, "open") for k in range(n)),
    )
    analyze(engine, "referral")
    engine.dispose()


def fill_sms(database_url: str, first_case: int, n: int, next_attempt: dt.datetime) -> None:
    """n queued SMS (pending), next tried at `next_attempt`."""
    engine = create_engine(database_url)
    start = next_id(engine, "outbound_message")
    at, next_at = stamp(engine, dt.datetime.now(dt.UTC)), stamp(engine, next_attempt)
    write(
        engine,
        "outbound_message",
        [
            "id",
            "case_id",
            "dedupe_key",
            "to_enc",
            "body",
            "status",
            "attempts",
            "next_attempt_at",
            "created_at",
        ],
        (
            (start + k, first_case + k, f"bench:{start + k}", "x", "کد رهگیری", "pending", 0, next_at, at)
            for k in range(n)
        ),
    )
    analyze(engine, "outbound_message")
    engine.dispose()


def analyze(engine: Engine, table: str) -> None:
    with engine.begin() as conn:
        conn.execute(text(f"ANALYZE {table}"))


# --- a realistic history at scale (benchmarks/status_at_scale.py): cases with their callers, aliases,
# referrals and events, as COPY text built in chunks (one write a chunk, not one a row), with the
# tables' secondary indexes and constraints dropped during the load and built again after it.

CODE_SPACE = 10**8  # codes 3x xxxxxxx: ten issuer prefixes of 10^7 random codes each
CODE_STRIDE = 7_919_083  # coprime with 10^8: i -> i * stride mod 10^8 is a permutation


def spread_code(i: int, lead: str = "3") -> str:
    """The i-th code of a permutation of all 10^8 codes under `lead`: consecutive cases get codes far
    apart (as random codes are), and distinct i (< 10^8) never share one."""
    body = lead + f"{(i * CODE_STRIDE + 12_345) % CODE_SPACE:08d}"
    return body + str(damm_digit(body))


def copy_text(
    engine: Engine, table: str, columns: list[str], lines: Iterable[str], chunk: int = 20_000
) -> int:
    """COPY tab-separated lines (\\N for NULL) into `table`; returns the number of rows."""
    raw = engine.raw_connection()
    rows = 0
    try:
        cur = raw.cursor()
        with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            batch: list[str] = []
            for line in lines:
                batch.append(line)
                if len(batch) >= chunk:
                    copy.write("\n".join(batch) + "\n")
                    rows += len(batch)
                    batch = []
            if batch:
                copy.write("\n".join(batch) + "\n")
                rows += len(batch)
        raw.commit()
    finally:
        raw.close()
    return rows


def secondary_schema(engine: Engine, table: str) -> tuple[list[str], list[str]]:
    """(constraint statements, index statements) of `table` other than its primary key: what a bulk
    load drops and builds again after."""
    with engine.connect() as conn:
        constraints = [
            f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}'
            for name, definition in conn.execute(
                text(
                    "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                    "WHERE conrelid = CAST(:t AS regclass) AND contype <> 'p' ORDER BY contype DESC, conname"
                ),
                {"t": table},
            )
        ]
        indexes = list(
            conn.execute(
                text(
                    "SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i "
                    "WHERE i.indrelid = CAST(:t AS regclass) AND NOT EXISTS (SELECT 1 FROM pg_constraint c "
                    "WHERE c.conindid = i.indexrelid "
                    "AND c.conrelid = i.indrelid)"
                ),
                {"t": table},
            ).scalars()
        )
    return constraints, indexes


def drop_secondary(engine: Engine, tables: list[str]) -> list[str]:
    """Drop every constraint and index but the primary keys of `tables`; returns the statements that
    build them again (indexes first, then unique and check constraints, then foreign keys)."""
    saved = [secondary_schema(engine, t) for t in tables]
    with engine.begin() as conn:
        # Foreign keys first (they lean on the unique constraints dropped next), then the rest.
        for kinds in ("contype = 'f'", "contype <> 'p'"):
            for table in tables:
                for name in conn.execute(
                    text(
                        f"SELECT conname FROM pg_constraint WHERE conrelid = CAST(:t AS regclass) AND {kinds}"
                    ),
                    {"t": table},
                ).scalars():
                    conn.execute(text(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"'))
        for table in tables:
            for name in conn.execute(
                text(
                    "SELECT indexrelid::regclass::text FROM pg_index i WHERE indrelid = CAST(:t AS regclass) "
                    "AND NOT indisprimary"
                ),
                {"t": table},
            ).scalars():
                conn.execute(text(f"DROP INDEX {name}"))
    indexes = [stmt for _, ix in saved for stmt in ix]
    constraints = [stmt for cons, _ in saved for stmt in cons]
    foreign = [c for c in constraints if " FOREIGN KEY " in c]
    return indexes + [c for c in constraints if c not in foreign] + foreign


def rebuild_secondary(engine: Engine, statements: list[str], maintenance_work_mem: str = "512MB") -> None:
    with engine.connect() as conn:
        conn.execute(text(f"SET maintenance_work_mem = '{maintenance_work_mem}'"))
        for stmt in statements:
            conn.execute(text(stmt))
            conn.commit()


def bump_sequence(engine: Engine, table: str) -> None:
    """Rows were written with explicit ids: the next id the application takes follows them."""
    with engine.begin() as conn:
        conn.execute(
            text(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT coalesce(max(id), 0) + 1 FROM {table}), false)"
            )
        )
