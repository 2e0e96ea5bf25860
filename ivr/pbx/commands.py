"""`didehban pbx ...`"""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pbx", help="the Asterisk PBX on this machine (Debian's, in a sid root)")
    p.add_argument("action", choices=["up", "down", "status", "cli", "ingest-fallback", "call"])
    p.add_argument(
        "command",
        nargs="?",
        help="cli: an Asterisk CLI command ('pjsip show endpoints'); call: the number (1482, 111)",
    )
    p.add_argument(
        "--script", default="", help='call: what the caller does, e.g. "1,1,2,0013542419#,1,say:words,3"'
    )
    p.add_argument("--dtmf", choices=["rfc4733", "info"], default="rfc4733", help="call: how keys are sent")
    p.add_argument(
        "--test-phones",
        action="store_true",
        help="up: add the unauthenticated test phones (development and tests only, never production)",
    )
    p.add_argument("--hold", type=float, default=25.0, help="call: seconds to listen before hanging up")
    p.set_defaults(func=_pbx)


def _pbx(args: argparse.Namespace) -> int:
    from ivr.pbx.manager import Pbx, PbxError

    pbx = Pbx.from_settings(test_phones=args.test_phones)
    try:
        if args.action == "up":
            pbx.up()
            print(f"PBX up: dial 1482 or 111 at sip:{pbx.settings.sip_host}:{pbx.settings.sip_port}")
        elif args.action == "down":
            pbx.down()
            print("PBX stopped")
        elif args.action == "status":
            print(pbx.status())
        elif args.action == "call":
            return _sip_call(pbx, args)
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


def _sip_call(pbx, args: argparse.Namespace) -> int:
    """A real SIP call into this PBX with sipp: keys as DTMF, words spoken as RTP audio."""
    import shutil
    import tempfile
    from pathlib import Path

    from ivr.pbx.sipcall import Wait, actions_from_script, run_sipp, scenario

    if shutil.which("sipp") is None:
        print("didehban pbx call: sipp is not installed (apt-get install sip-tester)")
        return 2
    if "tester" not in pbx.cli("pjsip show endpoints"):
        print("didehban pbx call: no test phones on this PBX (start it with `didehban pbx up --test-phones`)")
        return 2
    service = args.command or "1482"
    with tempfile.TemporaryDirectory() as tmp:
        actions = [*actions_from_script(args.script, Path(tmp)), Wait(args.hold)]
        xml = scenario(actions, dtmf=args.dtmf, caller_hangs_up=True)
        user = "tester" if args.dtmf == "rfc4733" else "tester-info"
        target = f"sip:{service}@{pbx.settings.sip_host}:{pbx.settings.sip_port}"
        print(f"calling {target} (keys as {args.dtmf})...")
        result = run_sipp(
            xml,
            service=service,
            user=user,
            sip_port=pbx.settings.sip_port,
            workdir=Path(tmp),
            control_port=8899,
            media_port=16600,
            timeout_s=int(args.hold) + 240,
        )
    print("call completed" if result.returncode == 0 else f"call failed:\n{result.stderr[-2000:]}")
    print("see it with: didehban calls  and  didehban cases")
    return 0 if result.returncode == 0 else 1
