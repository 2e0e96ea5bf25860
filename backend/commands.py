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
