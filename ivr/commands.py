"""`didehban fastagi`, `didehban call`, `didehban spool`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import time


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("fastagi", help="run the FastAGI server that answers Asterisk's calls")
    p.add_argument("--host", default=None)
    p.add_argument("--port", type=int, default=None)
    p.set_defaults(func=_fastagi)

    p = sub.add_parser("call", help="a phone in this terminal: call the running FastAGI server")
    p.add_argument("service", help="the short number: 1482 or 111")
    p.add_argument("--caller-number", default="09121234567", help="the number the call comes from")
    p.add_argument("--route", default="hotline", help="hotline, new-case, status, message")
    p.add_argument("--script", help='non-interactive inputs, e.g. "1,1,2,0013542419#,1,say:words,3"')
    p.add_argument(
        "--audio", action="store_true", help="also play each prompt (needs sox's play and a sound card)"
    )
    p.add_argument("--host", default=None)
    p.add_argument("--port", type=int, default=None)
    p.set_defaults(func=_call)

    p = sub.add_parser("spool", help="cases this IVR node keeps while the backend is unreachable")
    p.add_argument(
        "action",
        choices=["deliver", "status", "list", "requeue"],
        help="deliver now; status: counts; list: each kept case (no identities); requeue: retry refused ones",
    )
    p.add_argument(
        "call_ids", nargs="*", metavar="CALL_ID", help="requeue: only these (default: every refused one)"
    )
    p.set_defaults(func=_spool)


def _fastagi(args: argparse.Namespace) -> int:
    from ivr.cpu_priority import set_priority
    from ivr.fastagi import event_loop_runner, serve
    from ivr.settings import get_settings

    settings = get_settings().require_node()  # refuse before listening: a clear line, not a traceback
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Ahead of Asterisk for the CPU, before any thread starts (ivr.cpu_priority).
    set_priority(os.getpid(), settings.fastagi_nice)
    if os.getpriority(os.PRIO_PROCESS, 0) != settings.fastagi_nice:
        logging.getLogger("ivr.fastagi").warning(
            "running at the CPU priority %d, not %d (DIDEHBAN_FASTAGI_NICE; below 0 needs root or "
            "CAP_SYS_NICE, or systemd's Nice=): calls may lose keys while Asterisk is busy",
            os.getpriority(os.PRIO_PROCESS, 0),
            settings.fastagi_nice,
        )
    # httpx logs each URL, and a status request's query carries the caller's number (R9).
    logging.getLogger("httpx").setLevel(logging.WARNING)
    event_loop_runner()(serve(args.host, args.port))
    return 0


def _asker(speaker):
    """The caller at the keyboard: keys for menus, typed words for a recording."""
    from ivr.phone import HANGUP, SILENCE

    def ask(kind: str, detail: str) -> str:
        speaker.flush()
        try:
            if kind == "record":
                words = input("  🎙  recording: type what you say (Enter = silence, 'h' = hang up): ").strip()
                return HANGUP if words == "h" else (words or SILENCE)
            keys = input("  ⌨  keys, then Enter (Enter alone = wait; 'h' = hang up): ").strip()
        except EOFError:
            return HANGUP
        return HANGUP if keys == "h" else keys

    return ask


def _call(args: argparse.Namespace) -> int:
    from ivr import dialplan_variables as var
    from ivr.phone import AsteriskSide, Script, Speaker, environment, parse_script
    from ivr.settings import get_settings

    speaker = Speaker(audio=args.audio)
    settings = get_settings()
    host, port = args.host or settings.fastagi_host, args.port or settings.fastagi_port
    next_input = Script(parse_script(args.script)) if args.script else _asker(speaker)
    side = AsteriskSide(next_input, show=speaker)
    unique_id = f"terminal-{time.time():.3f}"
    env = environment(
        route=args.route, service=args.service, caller=args.caller_number, unique_id=unique_id, port=port
    )
    print(f"calling {args.service} from {args.caller_number} (FastAGI {host}:{port})...")
    try:
        transcript = asyncio.run(side.call(host, port, env))
    except OSError as exc:
        print(
            f"didehban call: cannot reach the FastAGI server at {host}:{port} ({exc}); "
            "start it with `didehban fastagi` or `make run`",
            file=sys.stderr,
        )
        return 2
    speaker.flush()
    v = transcript.variables
    print(
        f"call ended: {v.get(var.OUTCOME, 'hangup')}"
        + (f", tracking code {v[var.TRACKING_CODE]}" if v.get(var.TRACKING_CODE) else "")
    )
    return 0


def _spool(args: argparse.Namespace) -> int:
    from ivr.backend_client import BackendClient
    from ivr.settings import get_settings
    from ivr.spool import Spool, deliver_pending

    settings = get_settings()
    spool = Spool(settings.spool_dir, settings.node_prefix, settings.spool_key)
    if args.action == "status":
        counts = spool.counts()
        print(
            f"pending {counts.get('pending', 0)}, delivered {counts.get('delivered', 0)}, "
            f"dead {counts.get('dead', 0)}"
        )
        return 0
    if args.action == "list":
        # Codes, states and errors only: the payload (national ID, phone number) stays sealed.
        entries = spool.entries()
        for e in entries:
            print(f"{e.tracking_code}  {e.state:<7} attempts {e.attempts:<3} {e.created_at}  {e.call_id}")
            if e.last_error:
                print(f"    last error: {e.last_error}")
        if not entries:
            print("the spool is empty")
        return 0
    if args.action == "requeue":
        count = spool.requeue(args.call_ids or None)
        print(f"{count} refused case(s) back in the queue; `didehban spool deliver` tries them now")
        return 0

    async def deliver() -> tuple[int, int]:
        client = BackendClient(settings)
        try:
            return await deliver_pending(spool, client)
        finally:
            await client.close()

    delivered, failed = asyncio.run(deliver())
    print(f"delivered {delivered}, not delivered {failed}")
    return 0 if not failed else 1
