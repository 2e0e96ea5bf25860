"""`didehban scheduler`"""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("scheduler", help="enforce deadlines and send SMS (one active process, lease-guarded)")
    p.add_argument("--once", action="store_true", help="run one tick and exit")
    p.add_argument("--every", type=float, default=15.0, help="seconds between ticks")
    p.add_argument(
        "--status",
        action="store_true",
        help="print each job's last successful run, the SMS outbox and the quarantined items, and exit",
    )
    p.set_defaults(func=_scheduler)


def _status() -> int:
    from backend.core.db import get_sessionmaker
    from backend.scheduler.health import format_status, scheduler_status

    with get_sessionmaker()() as session:
        print(format_status(scheduler_status(session)))
    return 0


def _scheduler(args: argparse.Namespace) -> int:
    import datetime as dt
    import logging
    import os
    import socket

    from alembic.script import ScriptDirectory
    from apscheduler.schedulers.blocking import BlockingScheduler

    from backend.core.config import get_settings
    from backend.core.db import get_sessionmaker
    from backend.core.migrate import alembic_config, current_revision
    from backend.notifications.senders import sender_from_settings
    from backend.scheduler.jobs import tick
    from backend.scheduler.lease import release

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = get_settings()
    # Migrating is `didehban db upgrade`'s (and `serve`'s) job: two processes migrating one database
    # at once could race. The scheduler only checks the schema is there.
    revision = current_revision(settings.database_url)
    if revision is None:
        print("didehban scheduler: the database has no schema yet: run `didehban db upgrade` first")
        return 2
    head = ScriptDirectory.from_config(alembic_config(settings.database_url)).get_current_head()
    if revision != head:
        # An old schema lacks the tables the jobs keep their health in: every job would fail.
        print(
            f"didehban scheduler: the database schema is at {revision}, the code needs {head}: "
            "run `didehban db upgrade` first"
        )
        return 2
    if args.status:
        return _status()
    sender = sender_from_settings(settings)
    holder = f"{socket.gethostname()}:{os.getpid()}"

    def run() -> None:
        report = tick(settings, sender, holder, dt.datetime.now(dt.UTC))
        if not report.leader:
            logging.getLogger("scheduler").debug("another scheduler holds the lease")

    if args.once:
        run()
        return 0
    scheduler = BlockingScheduler(timezone="UTC")
    # One tick at a time (max_instances=1); a tick missed while the machine slept runs once, late.
    scheduler.add_job(
        run,
        "interval",
        seconds=args.every,
        max_instances=1,
        coalesce=True,
        next_run_time=dt.datetime.now(dt.UTC),
    )
    try:
        scheduler.start()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        with get_sessionmaker()() as session:
            release(session, holder)
    return 0
