"""`didehban ami`"""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ami", help="listen to Asterisk (AMI) and write the call logs")
    p.add_argument(
        "--reconcile-only", action="store_true", help="add missed calls from the CDR file and exit"
    )
    p.set_defaults(func=_ami)


def _ami(args: argparse.Namespace) -> int:
    import asyncio
    import contextlib
    import logging

    from ivr.ami.listener import AmiListener, run

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.reconcile_only:
        print(f"added {AmiListener().reconcile()} call(s) from the CDR")
        return 0
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())
    return 0
