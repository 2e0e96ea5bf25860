"""Backend subcommands: serve, db, keys, demo."""

from __future__ import annotations

import argparse


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
