"""Status look-ups with 10 M cases on PostgreSQL (issue 13, goal 3b: p99 <= 10 ms).

    DIDEHBAN_DATABASE_URL=postgresql+psycopg://.../bigstatus \\
        .venv/bin/python benchmarks/status_at_scale.py [--cases 10000000] [--requests 1000] [--rate 20]

The database must be an empty PostgreSQL database (or one this script filled before: with
`--reuse` the fill is skipped when it already holds --cases cases). SQLite is refused: 10 M cases
is a PostgreSQL figure.

1. Fill, by COPY, a history as the hotline would have it after some years: --cases cases spread
   over three years in every state (most closed), each with its caller (repeat callers share one),
   its referral once referred, its events (register, screen, refer, answer, approve, close...: 4.5 a
   case), and 1 % with a second code an IVR node issued (an alias). Tracking codes are a permutation
   of 10^8 codes, so neither the codes looked up nor their rows cluster at the end of the table.
   The tables' secondary indexes and constraints are dropped during the load and built after it.
   Printed: each table's rows and time, the index build, table and index sizes.
2. ANALYZE, then EXPLAIN (ANALYZE, BUFFERS) of every statement the status route runs, captured by
   running the route's own service code (not a copy of its queries) for each kind of look-up.
3. Over HTTP against one real uvicorn backend: a warm-up, then --requests look-ups of each kind
   (owner by calling number, owner by national ID, stranger, alias code, unknown code) sent by
   --clients clients at --rate requests/s in all (open loop: each client sends on its schedule,
   so the latency is a look-up's, not a queue's while the server keeps up). Printed per kind:
   p50/p95/p99/max, the rate reached, the backend's CPU ms per request (from /proc), uptime's load
   average. Then, for context, a saturated run (--saturate-clients clients, closed loop).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import hashlib
import heapq
import hmac
import json
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import ClassVar
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.fastagi_load import cpu_seconds  # noqa: E402
from benchmarks.fill import (  # noqa: E402
    bump_sequence,
    copy_text,
    drop_secondary,
    rebuild_secondary,
    spread_code,
)
from benchmarks.intake_load import TOKEN, exchange, http_request, nid, start_backend  # noqa: E402

# The fill stores keyed hashes of the callers' numbers and IDs; the backend must hash with the same
# key to recognise an owner, and a database filled once is reused (--reuse), so the key is fixed.
LOOKUP_KEY = "status-at-scale-benchmark-lookup-key-0000000"
FILLED = ["caller", "case_file", "case_code", "referral", "case_event"]
ALIAS_EVERY = 100  # one case in 100 also has a code an IVR node issued
CALLERS_PER_CASE = 0.7  # the rest are repeat callers
YEARS = 3
# A Fernet token's length: what phone_enc / national_id_enc hold (never decrypted by a look-up).
CIPHERTEXT = "gAAAAAB" + "x" * 93

# (share of cases in %, final status, actions in order)
HISTORIES: list[tuple[int, str, tuple[str, ...]]] = [
    (10, "received", ("register",)),
    (5, "screened", ("register", "screen")),
    (15, "referred", ("register", "screen", "refer")),
    (5, "answered", ("register", "screen", "refer", "answer")),
    (3, "approved", ("register", "screen", "refer", "answer", "approve")),
    (55, "closed", ("register", "screen", "refer", "answer", "approve", "close")),
    (5, "rejected", ("register", "reject")),
    (2, "escalated", ("register", "screen", "refer", "escalate")),
]
TO_STATUS = {
    "register": "received",
    "screen": "screened",
    "refer": "referred",
    "answer": "answered",
    "approve": "approved",
    "close": "closed",
    "reject": "rejected",
    "escalate": "escalated",
}
BUCKETS = [h for share, *rest in HISTORIES for h in [(share, *rest)] * share]
assert len(BUCKETS) == 100


def history_of(i: int) -> tuple[str, tuple[str, ...]]:
    """The i-th case's final status and actions: a fixed spread over the buckets, not in id order."""
    _, status, actions = BUCKETS[((i * 2_654_435_761) >> 12) % 100]
    return status, actions


def phone_of(i: int) -> str:
    """The number the i-th case was filed from (already in normalise_phone's form)."""
    return f"09{120_000_000 + i:09d}"


def national_id_of(caller: int) -> str:
    return nid(100_000_000 + caller)


def caller_of(i: int, callers: int) -> int:
    """The i-th case's caller: the first `callers` cases each bring a new one, the rest call again."""
    return i if i < callers else (i * 48_271) % callers


def alias_code(i: int) -> str:
    """The code an IVR node told the caller of the i-th case (issuers 4x: never a case's own code)."""
    return spread_code(i, lead="4")


def case_code(i: int) -> str:
    return spread_code(i)


def unknown_code(k: int, cases: int) -> str:
    """A valid code that no case has: past the filled part of the permutation."""
    return spread_code(cases + k)


def percentiles(values: list[float], points: tuple[float, ...] = (50, 95, 99, 100)) -> list[float]:
    """Nearest-rank percentiles (100 is the maximum) of `values`."""
    ordered = sorted(values)
    if not ordered:
        return [float("nan")] * len(points)
    out = []
    for p in points:
        rank = max(1, -(-len(ordered) * p // 100))  # ceil(n * p / 100)
        out.append(ordered[int(rank) - 1])
    return out


def tsv(*values: object) -> str:
    return "\t".join(r"\N" if v is None else str(v) for v in values)


class History:
    """The rows of a filled history, generated as COPY lines; ids start after what the tables hold."""

    def __init__(
        self, cases: int, lookup_key: str, units: list[int], first: dict[str, int], now: dt.datetime
    ):
        self.cases = cases
        self.callers = max(1, int(cases * CALLERS_PER_CASE))
        self.key = lookup_key.encode()
        self.root, self.children = units[0], units[1:] or units[:1]
        self.first = first
        self.start = now - dt.timedelta(days=365 * YEARS)
        self.step = dt.timedelta(days=365 * YEARS - 30) / cases

    def hash(self, value: str) -> str:
        return hmac.new(self.key, value.encode(), hashlib.sha256).hexdigest()

    def case_id(self, i: int) -> int:
        return self.first["case_file"] + i

    def created(self, i: int) -> dt.datetime:
        return self.start + self.step * i

    def caller_lines(self) -> Iterator[str]:
        base = self.first["caller"]
        for k in range(self.callers):
            at = self.created(k).isoformat()
            yield tsv(
                base + k, self.hash(national_id_of(k)), CIPHERTEXT, self.hash(phone_of(k)), CIPHERTEXT, at
            )

    CASE_COLUMNS: ClassVar[list[str]] = [
        "id", "tracking_code", "service", "kind", "urgent", "channel", "status", "answer", "incomplete",
        "call_id", "phone_hash", "phone_enc", "caller_id", "current_unit_id", "due_at", "escalation_level",
        "satisfaction", "created_at", "updated_at", "closed_at", "first_screened_at", "first_referred_at",
        "first_answered_at", "late_returns", "handling_unit_id",
    ]  # fmt: skip

    def case_lines(self) -> Iterator[str]:
        day = dt.timedelta(days=1)
        for i in range(self.cases):
            status, actions = history_of(i)
            created = self.created(i)
            unit = self.children[i % len(self.children)]
            referred = "refer" in actions
            current = unit if status in ("referred", "answered", "escalated") else self.root
            closed = created + day * (len(actions) - 1) if status in ("closed", "rejected") else None
            yield tsv(
                self.case_id(i),
                case_code(i),
                "1482",
                "complaint" if i % 4 else "report",
                "t" if i % 20 == 0 else "f",
                "phone",
                status,
                "پاسخ واحد به شکایت شما ثبت شد." if "answer" in actions else None,
                "t" if i % 50 == 0 else "f",
                f"{1_600_000_000 + i}.{i % 997}",
                self.hash(phone_of(i)),
                CIPHERTEXT,
                self.first["caller"] + caller_of(i, self.callers),
                current,
                (created + day * 10).isoformat(),
                1 if status == "escalated" else 0,
                (i % 5) + 1 if status == "closed" and i % 2 else None,
                created.isoformat(),
                (created + day * (len(actions) - 1)).isoformat(),
                closed.isoformat() if closed else None,
                (created + day).isoformat() if "screen" in actions else None,
                (created + day * 2).isoformat() if referred else None,
                (created + day * 3).isoformat() if "answer" in actions else None,
                0,
                unit if referred else None,
            )

    def alias_lines(self) -> Iterator[str]:
        base = self.first["case_code"]
        for n, i in enumerate(range(0, self.cases, ALIAS_EVERY)):
            yield tsv(base + n, alias_code(i), self.case_id(i), self.created(i).isoformat())

    def referral_lines(self) -> Iterator[str]:
        base, n = self.first["referral"], 0
        day = dt.timedelta(days=1)
        for i in range(self.cases):
            status, actions = history_of(i)
            if "refer" not in actions:
                continue
            referred = self.created(i) + day * 2
            state = {"referred": "open", "escalated": "escalated"}.get(status, "answered")
            yield tsv(
                base + n,
                self.case_id(i),
                self.root,
                self.children[i % len(self.children)],
                referred.isoformat(),
                (referred + day * 10).isoformat(),
                state,
                None if state == "open" else (referred + day).isoformat(),
            )
            n += 1

    def event_lines(self) -> Iterator[str]:
        """Events in the order they happen: a case's k-th event comes k days after it was filed, so
        its events lie among the other cases' events of those days (pages apart), not side by side."""
        day = dt.timedelta(days=1)
        longest = max(len(actions) for _, _, actions in HISTORIES)

        # Stream k: every case's k-th event, in filing order (so in time order within the stream).
        def stream(k: int) -> Iterator[tuple[int, int]]:
            return ((i, k) for i in range(self.cases) if len(history_of(i)[1]) > k)

        streams = [stream(k) for k in range(longest)]
        # Case i's k-th event is at start + step * i + k days: merging by that order is merging by time.
        days = day / self.step
        merged = heapq.merge(*streams, key=lambda ik: ik[0] + ik[1] * days)
        for event_id, (i, k) in enumerate(merged, self.first["case_event"]):
            actions = history_of(i)[1]
            action = actions[k]
            yield tsv(
                event_id,
                self.case_id(i),
                (self.created(i) + day * k).isoformat(),
                action,
                TO_STATUS[actions[k - 1]] if k else None,
                TO_STATUS[action],
                "ivr" if action == "register" else f"operator{i % 50}",
                self.children[i % len(self.children)] if action in ("refer", "answer") else self.root,
                "ارجاع برای پیگیری" if action == "refer" else None,
            )


COLUMNS = {
    "caller": ["id", "national_id_hash", "national_id_enc", "phone_hash", "phone_enc", "created_at"],
    "case_file": History.CASE_COLUMNS,
    "case_code": ["id", "code", "case_id", "created_at"],
    "referral": [
        "id",
        "case_id",
        "from_unit_id",
        "to_unit_id",
        "referred_at",
        "due_at",
        "state",
        "closed_at",
    ],
    "case_event": ["id", "case_id", "at", "action", "from_status", "to_status", "actor", "unit_id", "note"],
}


def units_1482(engine) -> list[int]:
    """The 1482 unit tree: the root first, then the units cases are referred to."""
    from sqlalchemy import text

    with engine.connect() as conn:
        root = conn.execute(text("SELECT id FROM unit WHERE parent_id IS NULL AND service='1482'")).scalar()
        rest = conn.execute(
            text("SELECT id FROM unit WHERE service='1482' AND id <> :r ORDER BY id"), {"r": root}
        ).scalars()
        return [root, *rest]


def fill(database_url: str, cases: int) -> History:
    from sqlalchemy import create_engine, text

    engine = create_engine(database_url)
    with engine.connect() as conn:
        first = {t: conn.execute(text(f"SELECT coalesce(max(id), 0) + 1 FROM {t}")).scalar() for t in FILLED}
    history = History(cases, LOOKUP_KEY, units_1482(engine), first, dt.datetime.now(dt.UTC))
    started = time.perf_counter()
    rebuild = drop_secondary(engine, FILLED)
    sources: dict[str, Callable[[], Iterator[str]]] = {
        "caller": history.caller_lines,
        "case_file": history.case_lines,
        "case_code": history.alias_lines,
        "referral": history.referral_lines,
        "case_event": history.event_lines,
    }
    for table, lines in sources.items():
        t0 = time.perf_counter()
        rows = copy_text(engine, table, COLUMNS[table], lines())
        bump_sequence(engine, table)
        print(f"  COPY {table:<10} {rows:>11,} rows in {time.perf_counter() - t0:7.1f} s", flush=True)
    t0 = time.perf_counter()
    rebuild_secondary(engine, rebuild)
    print(f"  indexes and constraints ({len(rebuild)}) built in {time.perf_counter() - t0:.1f} s", flush=True)
    print(
        f"  fill: {cases:,} cases in {time.perf_counter() - started:.1f} s (COPY + index build)", flush=True
    )
    engine.dispose()
    return history


def print_sizes(engine) -> None:
    from sqlalchemy import text

    print(f"{'table':<11} {'rows':>12} {'heap':>9} {'indexes':>9}  index sizes")
    with engine.connect() as conn:
        for table in FILLED:
            rows, heap, idx = conn.execute(
                text(
                    "SELECT c.reltuples::bigint, pg_size_pretty(pg_table_size(c.oid)), "
                    "pg_size_pretty(pg_indexes_size(c.oid)) FROM pg_class c "
                    "WHERE c.oid = CAST(:t AS regclass)"
                ),
                {"t": table},
            ).one()
            each = conn.execute(
                text(
                    "SELECT i.indexrelid::regclass::text, pg_size_pretty(pg_relation_size(i.indexrelid)) "
                    "FROM pg_index i WHERE i.indrelid = CAST(:t AS regclass) ORDER BY 1"
                ),
                {"t": table},
            ).all()
            print(f"{table:<11} {rows:>12,} {heap:>9} {idx:>9}  " + ", ".join(f"{n} {s}" for n, s in each))
        db = conn.execute(text("SELECT pg_size_pretty(pg_database_size(current_database()))")).scalar()
        settings = conn.execute(
            text("SELECT string_agg(name || '=' || setting || coalesce(unit, ''), ', ') FROM pg_settings "
                 "WHERE name IN ('shared_buffers', 'effective_cache_size', 'random_page_cost', 'work_mem')")
        ).scalar()  # fmt: skip
    print(f"database: {db}; {settings}")


def sample_codes(history_cases: int, callers: int, rng: random.Random) -> dict[str, Callable[[], dict]]:
    """Per kind of look-up, a function giving a random request's path and query: the codes are drawn
    over the whole table."""

    def owner_phone() -> dict:
        i = rng.randrange(history_cases)
        return {"code": case_code(i), "params": {"caller_number": phone_of(i)}}

    def owner_national_id() -> dict:
        i = rng.randrange(history_cases)
        return {
            "code": case_code(i),
            "params": {"caller_number": "02188888888", "national_id": national_id_of(caller_of(i, callers))},
        }

    def stranger() -> dict:
        i = rng.randrange(history_cases)
        return {"code": case_code(i), "params": {"caller_number": "02188888888"}}

    def alias() -> dict:
        i = rng.randrange(0, history_cases, ALIAS_EVERY)
        return {"code": alias_code(i), "params": {"caller_number": phone_of(i)}}

    def unknown() -> dict:
        return {
            "code": unknown_code(rng.randrange(1_000_000), history_cases),
            "params": {"caller_number": "02188888888"},
        }

    return {
        "owner (number)": owner_phone,
        "owner (national ID)": owner_national_id,
        "stranger": stranger,
        "alias code": alias,
        "unknown code": unknown,
    }


EXPECTED = {
    "owner (number)": (200, True),
    "owner (national ID)": (200, True),
    "stranger": (200, False),
    "alias code": (200, True),
    "unknown code": (404, None),
}


def explain_route(database_url: str, kinds: dict[str, Callable[[], dict]]) -> None:
    """Run the status route's own service code for one look-up of each kind, capture its statements,
    and print EXPLAIN (ANALYZE, BUFFERS) of each."""
    from sqlalchemy import event

    from backend.api.errors import ApiError
    from backend.api.routes.cases import load_case_view, lookup_connection
    from backend.core.db import make_engine
    from backend.core.security import IdentityVault
    from backend.services.profiles import get_profile
    from backend.services.status import case_status, is_owner

    engine = make_engine(database_url)
    vault = IdentityVault(None, LOOKUP_KEY.encode())  # type: ignore[arg-type]  # hashes only
    captured: list[tuple[str, object]] = []

    @event.listens_for(engine, "before_cursor_execute")
    def capture(conn, cursor, statement, parameters, context, executemany) -> None:
        captured.append((statement, parameters))

    for kind, make in kinds.items():
        request = make()
        captured.clear()
        with lookup_connection(engine) as conn:
            try:
                case = load_case_view(conn, request["code"])
                owner = is_owner(
                    case, vault, request["params"].get("caller_number"), request["params"].get("national_id")
                )
                case_status(case, get_profile(case.service).timezone, owner=owner)
                outcome = f"owner={owner}, {len(case.events)} events"
            except ApiError as exc:
                outcome = f"{exc.status} {exc.code}"
            statements = list(captured)
        print(f"\n--- {kind}: {len(statements)} statements ({outcome})")
        raw = engine.raw_connection()
        try:
            cur = raw.cursor()
            for n, (statement, parameters) in enumerate(statements, 1):
                print(f"[{n}] {' '.join(statement.split())}")
                cur.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters)
                for (line,) in cur.fetchall():
                    print(f"    {line}")
            raw.rollback()
        finally:
            raw.close()
    engine.dispose()


def load_average() -> str:
    return Path("/proc/loadavg").read_text().split(" ", 3)[:3].__str__()


async def paced(
    base: str,
    make: Callable[[], dict],
    total: int,
    clients: int,
    rate: float | None,
    expected: tuple[int, bool | None],
) -> tuple[list[float], float, int, int]:
    """`total` look-ups from `clients` clients, at `rate` requests/s in all (None: as fast as they are
    answered). Returns (latencies, seconds, requests sent late, wrong answers)."""
    latencies: list[float] = []
    late = wrong = 0
    status, owner = expected
    # The light keep-alive client of intake_load (prepared bytes, answers read by Content-Length):
    # a full HTTP client in this process adds its own milliseconds to every latency measured.
    port = int(base.rsplit(":", 1)[1])
    started = time.perf_counter()

    async def client(c: int) -> None:
        nonlocal late, wrong
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for k in range(c, total, clients):
                if rate:
                    due = started + k / rate
                    wait = due - time.perf_counter()
                    if wait > 0:
                        await asyncio.sleep(wait)
                    elif wait < -0.001:
                        late += 1
                request = make()
                url = f"/api/v1/cases/{request['code']}"
                if request["params"]:
                    url += "?" + urlencode(request["params"])
                t0 = time.perf_counter()
                got, body, keep = await exchange(reader, writer, http_request("GET", url, token=TOKEN))
                latencies.append(time.perf_counter() - t0)
                if got != status or (owner is not None and json.loads(body)["owner_verified"] is not owner):
                    wrong += 1
                    if wrong <= 3:
                        print(f"  unexpected: {got} {body[:200]!r}", file=sys.stderr)
                if not keep:
                    writer.close()
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
        finally:
            writer.close()

    await asyncio.gather(*(client(c) for c in range(clients)))
    seconds = time.perf_counter() - started
    return latencies, seconds, late, wrong


def measure(base: str, pid: int, kinds: dict[str, Callable[[], dict]], args: argparse.Namespace) -> None:
    print(
        f"\n{'look-up':<20} {'n':>6} {'offered/s':>9} {'got/s':>7} {'late':>5} {'wrong':>5} "
        f"{'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} {'max ms':>7} {'CPU ms/req':>10}  load average"
    )

    def row(name: str, make, n: int, clients: int, rate: float | None, expected) -> None:
        cpu0 = cpu_seconds(pid)
        lat, seconds, late, wrong = asyncio.run(paced(base, make, n, clients, rate, expected))
        cpu = cpu_seconds(pid) - cpu0
        p50, p95, p99, top = (x * 1000 for x in percentiles(lat))
        offered = f"{rate:.0f}" if rate else "max"
        print(
            f"{name:<20} {n:>6} {offered:>9} {n / seconds:>7.0f} {late:>5} {wrong:>5} "
            f"{p50:>7.2f} {p95:>7.2f} {p99:>7.2f} {top:>7.2f} {cpu * 1000 / n:>10.2f}  {load_average()}",
            flush=True,
        )

    mixed = list(kinds.values())
    rng = random.Random(7)

    def any_known() -> dict:
        return rng.choice(mixed[:4])()

    # Warm-up: connections, the backend's caches, and pages of the tables the look-ups touch.
    asyncio.run(paced(base, any_known, args.warmup, args.clients, None, (200, None)))
    for name, make in kinds.items():
        row(name, make, args.requests, args.clients, args.rate, EXPECTED[name])
    print(
        f"saturated, for context ({args.saturate_clients} clients, closed loop, known codes of every kind):"
    )
    row("saturated", any_known, args.requests, args.saturate_clients, None, (200, None))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=10_000_000)
    parser.add_argument("--requests", type=int, default=1_000, help="look-ups of each kind")
    parser.add_argument("--rate", type=float, default=20, help="offered look-ups/s in all (not saturating)")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=2_000)
    parser.add_argument("--saturate-clients", type=int, default=16)
    parser.add_argument(
        "--reuse", action="store_true", help="skip the fill if the database holds --cases cases"
    )
    parser.add_argument("--no-http", action="store_true", help="fill, sizes and plans only")
    args = parser.parse_args()
    database_url = os.environ.get("DIDEHBAN_DATABASE_URL", "")
    if not database_url.startswith("postgresql"):
        print(
            "status_at_scale: set DIDEHBAN_DATABASE_URL to an empty PostgreSQL database "
            "(postgresql+psycopg://...); SQLite is not supported (10 M cases is a PostgreSQL goal)",
            file=sys.stderr,
        )
        return 2
    from sqlalchemy import create_engine, text

    from backend.core.migrate import upgrade_and_sync

    upgrade_and_sync(database_url)
    engine = create_engine(database_url)
    with engine.connect() as conn:
        held = conn.execute(text("SELECT count(*) FROM case_file")).scalar()
    print(
        f"{os.cpu_count()} cores; load average {load_average()}; {held:,} cases in the database", flush=True
    )
    if args.reuse and held >= args.cases:
        print(f"  --reuse: the fill is skipped ({held:,} cases already)")
        cases = held
    else:
        if held:
            raise SystemExit("status_at_scale: the database already holds cases (drop it, or --reuse)")
        fill(database_url, args.cases)
        cases = args.cases
    t0 = time.perf_counter()
    # After a fill, VACUUM too (as autovacuum would have, long before a look-up in production);
    # a reused database was vacuumed when it was filled, or by autovacuum since.
    analyze = "ANALYZE" if cases == held else "VACUUM ANALYZE"
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for table in FILLED:
            conn.execute(text(f"{analyze} {table}"))
    print(f"{analyze} in {time.perf_counter() - t0:.1f} s")
    print_sizes(engine)
    engine.dispose()

    callers = max(1, int(cases * CALLERS_PER_CASE))
    kinds = sample_codes(cases, callers, random.Random(13))
    explain_route(database_url, kinds)
    if args.no_http:
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        backend, port, _ = start_backend(database_url, Path(tmp), DIDEHBAN_LOOKUP_KEY=LOOKUP_KEY)
        base = f"http://127.0.0.1:{port}"
        try:
            print(
                f"\nbackend: one uvicorn process (pid {backend.pid}); "
                f"{args.clients} clients at {args.rate:.0f}/s in all"
            )
            measure(base, backend.pid, kinds, args)
        finally:
            backend.terminate()
            backend.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
