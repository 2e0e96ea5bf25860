"""A month's report over 1 M cases (R19): fills a database with a year of cases (12 Jalali months,
bulk inserts on SQLite, COPY on PostgreSQL), then times the staff report of one month for everything
and for one manager's subtree, and the public page's figures, and prints the figures.

    PYTHONPATH=. python benchmarks/reports.py                        # SQLite, var/bench-reports.sqlite3
    DIDEHBAN_DATABASE_URL=postgresql+psycopg://.../bench PYTHONPATH=. python benchmarks/reports.py
    ... --cases 100000   (fewer cases)   --keep   (reuse a database filled before)

The database named must be one the benchmark may empty: its case_file and referral rows are replaced.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import time
from pathlib import Path

from sqlalchemy import func, select, text

from backend.core.migrate import upgrade_and_sync
from backend.models import Case, Referral, Unit
from backend.reports.figures import ReportScope, build_report, subtree_ids
from backend.reports.public import public_figures
from domain.report_periods import jalali_month

YEAR = 1404
MONTH = 7  # the month timed: Mehr 1404
KINDS = ["complaint", "suggestion", "request", "violation"]
CHANNELS = ["phone"] * 6 + ["in_person", "governor_trip", "web", "web", "media"]
CATEGORIES = ["care_centre_violation", "mistreatment", "corruption", "financial_aid", "loans", "employment"]
STATUSES = ["closed"] * 6 + ["referred", "answered", "rejected", "returned", "escalated", "received"]
CHUNK = 20000
COLUMNS = [
    "tracking_code", "service", "kind", "category", "urgent", "channel", "status", "incomplete",
    "escalation_level", "satisfaction", "created_at", "updated_at", "current_unit_id", "handling_unit_id",
    "first_screened_at", "first_referred_at", "first_answered_at", "late_returns",
]  # fmt: skip


def rows(count: int, units: list[int], hq: int):
    rng = random.Random(1482)
    first, _ = jalali_month(YEAR, 1).bounds()
    _, last = jalali_month(YEAR, 12).bounds()
    span = (last - first).total_seconds()
    for i in range(count):
        created = first + dt.timedelta(seconds=rng.random() * span)
        status = rng.choice(STATUSES)
        unit = rng.choice(units)
        screened = created + dt.timedelta(hours=rng.expovariate(1 / 6))
        referred = screened + dt.timedelta(hours=rng.expovariate(1 / 12))
        answered = (
            referred + dt.timedelta(hours=rng.expovariate(1 / 96))
            if status in ("closed", "answered")
            else None
        )
        late = 1 if status == "returned" or rng.random() < 0.05 else 0
        yield {
            "tracking_code": f"B{i:09d}",
            "service": "1482",
            "kind": rng.choice(KINDS),
            "category": rng.choice(CATEGORIES),
            "urgent": rng.random() < 0.2,
            "channel": rng.choice(CHANNELS),
            "status": status,
            "incomplete": False,
            "escalation_level": 1 if status == "escalated" else 0,
            "satisfaction": rng.randint(1, 5) if status == "closed" and rng.random() < 0.4 else None,
            "created_at": created,
            "updated_at": created,
            "current_unit_id": hq if status in ("closed", "rejected", "returned") else unit,
            "handling_unit_id": unit,
            "first_screened_at": screened,
            "first_referred_at": referred,
            "first_answered_at": answered,
            "late_returns": late,
        }


def _copy_value(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return str(value)


def fill(engine, count: int) -> float:
    started = time.monotonic()
    with engine.begin() as conn:
        conn.execute(Referral.__table__.delete())
        conn.execute(text("DELETE FROM case_event"))
        conn.execute(text("DELETE FROM outbound_message"))
        conn.execute(text("DELETE FROM notice WHERE case_id IS NOT NULL"))
        conn.execute(Case.__table__.delete())
        units = [
            u
            for (u,) in conn.execute(
                select(Unit.id).where(Unit.service == "1482", Unit.parent_id.is_not(None))
            )
        ]
        hq = conn.scalar(select(Unit.id).where(Unit.code == "1482-hq"))
    generated = rows(count, units, hq)
    if engine.dialect.name == "postgresql":
        raw = engine.raw_connection()
        try:
            cursor = raw.cursor()
            with cursor.copy(f"COPY case_file ({', '.join(COLUMNS)}) FROM STDIN") as copy:
                for row in generated:
                    copy.write_row([_copy_value(row[c]) for c in COLUMNS])
            raw.commit()
        finally:
            raw.close()
    else:
        table = Case.__table__
        batch: list[dict] = []
        with engine.begin() as conn:
            for row in generated:
                batch.append(row)
                if len(batch) == CHUNK:
                    conn.execute(table.insert(), batch)
                    batch = []
            if batch:
                conn.execute(table.insert(), batch)
    # The late returns, as referral rows (the report's "units with most late returns").
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO referral (case_id, to_unit_id, referred_at, due_at, state, closed_at) "
                "SELECT id, handling_unit_id, first_referred_at, first_referred_at, 'returned', "
                "first_referred_at "
                "FROM case_file WHERE late_returns > 0"
            )
        )
        if engine.dialect.name == "postgresql":
            conn.execute(text("ANALYZE case_file"))
            conn.execute(text("ANALYZE referral"))
        else:
            conn.execute(text("ANALYZE"))
    return time.monotonic() - started


def timed(what: str, call):
    started = time.monotonic()
    result = call()
    print(f"{what}: {time.monotonic() - started:.2f} s", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--keep", action="store_true", help="reuse the cases already in the database")
    args = parser.parse_args()
    url = os.environ.get("DIDEHBAN_DATABASE_URL")
    if not url:
        Path("var").mkdir(exist_ok=True)
        url = f"sqlite:///{Path('var/bench-reports.sqlite3').resolve()}"
        os.environ["DIDEHBAN_DATABASE_URL"] = url
    for key in ("DIDEHBAN_SECRET_KEY", "DIDEHBAN_LOOKUP_KEY", "DIDEHBAN_IVR_TOKEN", "DIDEHBAN_SESSION_KEY"):
        os.environ.setdefault(key, "benchmark-only" if key != "DIDEHBAN_SECRET_KEY" else "A" * 43 + "=")
    from backend.core.db import get_engine, get_sessionmaker

    upgrade_and_sync(url)
    engine = get_engine()
    print(f"database: {engine.dialect.name}")
    if not args.keep:
        print(f"filled {args.cases} cases in {fill(engine, args.cases):.1f} s")
    with get_sessionmaker()() as db:
        total = db.scalar(select(func.count()).select_from(Case))
        print(f"cases in the database: {total}")
        month = jalali_month(YEAR, MONTH)
        report = timed(
            f"staff report, {month.label_fa}, everything", lambda: build_report(db, month, ReportScope())
        )
        mashhad = db.scalar(select(Unit).where(Unit.code == "1482-khr-mashhad"))
        scope = ReportScope("1482", frozenset(subtree_ids(db, mashhad.id)))
        timed("staff report, one county's subtree", lambda: build_report(db, month, scope))
        timed("public figures (with the 12-month trend)", lambda: public_figures(db, "1482", month))
    period = report["period"]
    print(f"period: {period['label_fa']} ({period['first_day']}..{period['last_day']})")
    print(f"cases in the month: {report['total']}")
    print("by kind:", {r["key"]: r["count"] for r in report["by_kind"]})
    print("by channel:", {r["key"]: r["count"] for r in report["by_channel"]})
    print("handling:", {r["key"]: r["count"] for r in report["handling"]})
    print("on time:", report["on_time"])
    for name, d in report["durations"].items():
        hours = [None if v is None else round(v / 3600, 2) for v in (d["median_seconds"], d["p90_seconds"])]
        print(f"time to {name}: n={d['count']} median={hours[0]} h p90={hours[1]} h")
    print("satisfaction:", report["satisfaction"]["overall"])
    print("most late returns:", [(u["unit"], u["late_returns"]) for u in report["late_units"][:3]])
    print("change in total:", report["change"]["total"])


if __name__ == "__main__":
    main()
