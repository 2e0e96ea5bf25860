"""The scheduler's tick over a large database when nothing is due (issue 13, goal: under 1 s).

    .venv/bin/python benchmarks/scheduler_tick.py [--referrals 1000000] [--sms 100000]

The database is DIDEHBAN_DATABASE_URL if set (an empty PostgreSQL database), else a new SQLite
file. Fills that many open cases with one open referral each (due in a week) and that many queued
SMS (to be tried in an hour), with one unit head, then prints the fill, the plans of the tick's two
scans, and three ticks at 10:00 Tehran: the first makes the day's digest (it counts each unit's open
cases), the others find nothing to do.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.fill import fill_cases, fill_referrals, fill_sms, timed  # noqa: E402


def plans(database_url: str, now: dt.datetime) -> list[str]:
    from sqlalchemy import create_engine, text

    engine = create_engine(database_url)
    sqlite = engine.dialect.name == "sqlite"
    explain = "EXPLAIN QUERY PLAN " if sqlite else "EXPLAIN "
    at = now.replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f") if sqlite else now.isoformat()
    queries = {
        "late referrals": "SELECT referral.id FROM referral "
        "JOIN case_file ON case_file.id = referral.case_id "
        "WHERE referral.state = 'open' AND referral.due_at <= :now ORDER BY referral.due_at, referral.id",
        "due SMS": "SELECT id FROM outbound_message WHERE (status = 'pending' OR status = 'sending') "
        "AND next_attempt_at <= :now ORDER BY next_attempt_at LIMIT 50",
    }
    out = []
    with engine.connect() as conn:
        for name, sql in queries.items():
            rows = conn.execute(text(explain + sql), {"now": at}).all()
            out.append(f"  {name}: " + " | ".join(str(r[-1]) for r in rows))
    engine.dispose()
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--referrals", type=int, default=1_000_000)
    parser.add_argument("--sms", type=int, default=100_000)
    args = parser.parse_args()
    from backend.core.security import new_secrets

    with tempfile.TemporaryDirectory() as tmp:
        database_url = os.environ.get("DIDEHBAN_DATABASE_URL") or f"sqlite:///{Path(tmp) / 'tick.sqlite3'}"
        os.environ.update(new_secrets())
        os.environ["DIDEHBAN_DATABASE_URL"] = database_url
        os.environ["DIDEHBAN_SMS_FILE"] = str(Path(tmp) / "sms.log")
        from backend.core.config import get_settings
        from backend.core.db import session_scope
        from backend.core.migrate import upgrade_and_sync
        from backend.core.security import hash_password
        from backend.models import Unit, User
        from backend.notifications.senders import sender_from_settings
        from backend.scheduler.jobs import tick

        settings = get_settings()
        upgrade_and_sync(database_url)
        now = dt.datetime(2026, 11, 22, 6, 30, tzinfo=dt.UTC)  # 10:00 in Tehran, after the digest hour
        with session_scope() as s:
            root = s.query(Unit).filter(Unit.parent_id.is_(None), Unit.service == "1482").one()
            s.add(
                User(
                    username="head",
                    full_name="مدیر",
                    role="manager",
                    unit_id=root.id,
                    password_hash=hash_password("a long password"),
                    last_inbox_at=now,
                )
            )
        print(f"database: {database_url.split(':', 1)[0]}")
        holder: dict[str, int] = {}

        def cases() -> None:
            holder["first"], holder["unit"] = fill_cases(database_url, args.referrals, now=now)

        print(f"  fill: {args.referrals} open cases in {timed(cases):.1f} s")
        seconds = timed(
            lambda: fill_referrals(
                database_url, holder["first"], args.referrals, holder["unit"], now + dt.timedelta(days=7)
            )
        )
        print(f"  fill: {args.referrals} open referrals (due in a week) in {seconds:.1f} s")
        seconds = timed(
            lambda: fill_sms(database_url, holder["first"], args.sms, now + dt.timedelta(hours=1))
        )
        print(f"  fill: {args.sms} queued SMS (next try in an hour) in {seconds:.1f} s")
        print("plans:")
        for line in plans(database_url, now):
            print(line)
        sender = sender_from_settings(settings)
        for n in range(3):
            started = time.perf_counter()
            report = tick(settings, sender, "bench", now + dt.timedelta(seconds=n))
            took = time.perf_counter() - started
            print(
                f"tick {n + 1}: {took * 1000:.0f} ms (returned {report.returned}, sms {report.sms_sent}, "
                f"digests {report.digests}, failed jobs {report.failed_jobs or 'none'})"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
