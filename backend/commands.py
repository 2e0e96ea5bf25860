"""Backend subcommands: serve, db, keys, demo, cases, calls, holidays."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="run the backend HTTP server (API and web consoles)")
    p.add_argument("--host", default=None)
    p.add_argument("--port", type=int, default=None)
    p.add_argument("--workers", type=int, default=1)
    p.set_defaults(func=_serve)

    p = sub.add_parser("db", help="database schema")
    p.add_argument("action", choices=["upgrade"], help="upgrade: migrate to the newest schema, load units")
    p.set_defaults(func=_db)

    p = sub.add_parser("keys", help="print new secrets as lines for a .env file")
    p.set_defaults(func=_keys)

    p = sub.add_parser("demo", help="load demo users and cases (idempotent)")
    p.set_defaults(func=_demo)

    p = sub.add_parser("cases", help="the latest cases: code, kind, status, recordings (no identities)")
    p.add_argument("--limit", type=int, default=20)
    p.set_defaults(func=_cases)

    p = sub.add_parser("calls", help="the latest call logs: caller (masked), path, outcome, recordings")
    p.add_argument("--limit", type=int, default=20)
    p.set_defaults(func=_calls)

    p = sub.add_parser("holidays", help="public holidays deadlines skip: list them, or override a date")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="the holidays of a Jalali year (default: this year)")
    listing.add_argument("--year", type=int, default=None, help="Jalali year, e.g. 1405")
    setting = actions.add_parser(
        "set", help="add a holiday (DATE --name NAME) or remove one (--remove DATE) in the overrides file"
    )
    setting.add_argument("date", nargs="?", help="YYYY-MM-DD, Gregorian or Jalali (1405-04-15)")
    setting.add_argument("--name", help="what the holiday is")
    setting.add_argument("--remove", metavar="DATE", help="a computed date that is not a holiday after all")
    for action in (listing, setting):
        action.add_argument("--file", type=Path, default=None, help="holidays file (default: the profiles')")
    p.set_defaults(func=_holidays)


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from backend.core.config import get_settings
    from backend.core.logging import uvicorn_log_config
    from backend.core.migrate import upgrade_and_sync

    settings = get_settings()
    upgrade_and_sync(settings.database_url)
    uvicorn.run(
        "backend.api.main:create_app",
        factory=True,
        host=args.host or settings.host,
        port=args.port or settings.port,
        workers=args.workers,
        log_level="info",
        log_config=uvicorn_log_config(),
    )
    return 0


def _db(args: argparse.Namespace) -> int:
    from backend.core.config import get_settings
    from backend.core.migrate import upgrade_and_sync

    upgrade_and_sync(get_settings().database_url)
    print("database is at the newest schema; units loaded from the service profiles")
    return 0


def _keys(_: argparse.Namespace) -> int:
    from backend.core.security import new_secrets

    for key, value in new_secrets().items():
        print(f"{key}={value}")
    return 0


def _demo(_: argparse.Namespace) -> int:
    from backend.demo import load_demo

    load_demo()
    return 0


def _cases(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from backend.core.config import get_settings
    from backend.core.db import session_scope
    from backend.models import Case
    from domain.jalali import jalali_text

    settings = get_settings()
    with session_scope() as session:
        cases = session.scalars(select(Case).order_by(Case.id.desc()).limit(args.limit)).all()
        for case in cases:
            flags = "".join(["U" if case.urgent else "-", "I" if case.incomplete else "-"])
            print(
                f"{case.tracking_code}  {case.service:>4}  {case.kind:<10} {case.status:<9} {flags}  "
                f"{jalali_text(case.created_at)}  {case.channel}"
            )
            for rec in case.recordings:
                where = settings.recordings_dir / rec.path
                print(f"    {rec.kind} recording: {where} ({rec.duration_seconds} s)")
        if not cases:
            print("no cases yet")
    return 0


def _calls(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from backend.core.config import get_settings
    from backend.core.db import session_scope
    from backend.core.security import IdentityVault, mask_phone
    from backend.models import CallLog
    from domain.jalali import jalali_text

    settings = get_settings()
    vault = IdentityVault.from_settings(settings)
    with session_scope() as session:
        logs = session.scalars(select(CallLog).order_by(CallLog.id.desc()).limit(args.limit)).all()
        for log in logs:
            caller = mask_phone(vault.decrypt(log.caller_enc)) if log.caller_enc else "unknown"
            started = jalali_text(log.started_at) if log.started_at else "?"
            print(
                f"{started}  {log.service or '?':>4}  {caller:<13} {log.duration_seconds or 0:>6.1f} s  "
                f"{log.outcome or '-':<10} {log.tracking_code or '-':<10}  {log.path or ''}"
            )
            for label, path in (("message", log.message_recording), ("whole call", log.call_recording)):
                if path:
                    print(f"    {label}: {settings.recordings_dir / path}")
        if not logs:
            print("no calls logged yet (the AMI listener writes them: didehban ami)")
    return 0


def _profiles_holidays_file() -> Path:
    import yaml

    from backend.core.config import get_settings
    from domain.profiles import holidays_file

    for path in sorted(get_settings().services_dir.glob("*.yaml")):
        found = holidays_file(yaml.safe_load(path.read_text(encoding="utf-8")) or {}, path.parent)
        if found is not None:
            return found
    raise SystemExit("no service profile names a holidays file")


def parse_holiday_date(text: str) -> dt.date:
    """2026-07-06, or a Jalali date (1405-04-15, 1405/04/15): years before 1700 are Jalali."""
    import jdatetime

    parts = text.strip().replace("/", "-").split("-")
    try:
        year, month, day = (int(p) for p in parts)
        if year < 1700:
            return jdatetime.date(year, month, day).togregorian()
        return dt.date(year, month, day)
    except ValueError:
        raise SystemExit(f"not a date: {text!r} (YYYY-MM-DD, Gregorian or Jalali)") from None


def _holidays(args: argparse.Namespace) -> int:
    import jdatetime

    from domain.holidays import (
        holidays_from_file,
        holidays_in_year,
        load_overrides,
        overrides_path,
        save_overrides,
    )

    spec = args.file or _profiles_holidays_file()
    if args.action == "list":
        year = args.year or jdatetime.date.today().year
        days = holidays_in_year(holidays_from_file(spec), year)
        for h in days:
            jalali = jdatetime.date.fromgregorian(date=h.date)
            weekday = h.date.strftime("%a")
            print(f"{h.date}  {jalali.strftime('%Y/%m/%d')}  {weekday}  {h.source:<8}  {h.name}")
        if not days:
            print(f"no holidays computed for {year}: widen jalali_years in {spec}")
        return 0
    target = overrides_path(spec)
    if target is None:
        print(f"{spec} is a plain list of dates: edit it by hand", file=sys.stderr)
        return 2
    if bool(args.date) == bool(args.remove) or (args.date and not args.name):
        print("give DATE --name NAME, or --remove DATE", file=sys.stderr)
        return 2
    overrides = load_overrides(target)
    if args.remove:
        day = parse_holiday_date(args.remove)
        overrides.revoke(day)
        print(f"{day} is not a holiday ({target})")
    else:
        day = parse_holiday_date(args.date)
        overrides.declare(day, args.name)
        print(f"{day} is a holiday: {args.name} ({target})")
    save_overrides(target, overrides)
    return 0
