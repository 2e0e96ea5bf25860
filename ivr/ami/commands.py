"""`didehban ami`"""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ami", help="listen to Asterisk (AMI) and report the call logs to the backend")
    p.add_argument(
        "--reconcile-only",
        action="store_true",
        help="report the calls the CDR file got since the last reading, and exit",
    )
    p.set_defaults(func=_ami)


def _ami(args: argparse.Namespace) -> int:
    import asyncio
    import contextlib
    import logging

    from ivr.ami.listener import AmiListener, run

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    if args.reconcile_only:

        async def once() -> tuple[int, int]:
            listener = AmiListener()
            try:
                queued = await asyncio.to_thread(listener.reconcile)
                return queued, await listener.deliver_now()
            finally:
                await listener.stop()

        queued, delivered = asyncio.run(once())
        print(f"{queued} call(s) from the CDR; {delivered} report(s) delivered to the backend")
        return 0
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())
    return 0
