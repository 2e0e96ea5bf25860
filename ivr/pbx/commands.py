"""`didehban pbx ...`"""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pbx", help="the Asterisk PBX on this machine (Debian's, in a sid root)")
    p.add_argument("action", choices=["up", "down", "status", "cli", "ingest-fallback"])
    p.add_argument("command", nargs="?", help="for cli: an Asterisk CLI command, e.g. 'pjsip show endpoints'")
    p.set_defaults(func=_pbx)


def _pbx(args: argparse.Namespace) -> int:
    from ivr.pbx.manager import Pbx, PbxError

    pbx = Pbx.from_settings()
    try:
        if args.action == "up":
            pbx.up()
            print(f"PBX up: dial 1482 or 111 at sip:{pbx.settings.sip_host}:{pbx.settings.sip_port}")
        elif args.action == "down":
            pbx.down()
            print("PBX stopped")
        elif args.action == "status":
            print(pbx.status())
        elif args.action == "cli":
            print(pbx.cli(args.command or "core show uptime"), end="")
        else:
            from ivr.pbx.fallback import ingest_all

            done, failed = ingest_all(pbx.settings, pbx.fallback_dir)
            print(f"fallback messages: {done} filed as cases, {failed} kept for the next run")
            return 0 if not failed else 1
    except PbxError as exc:
        print(f"didehban pbx {args.action}: {exc}")
        return 2
    return 0
