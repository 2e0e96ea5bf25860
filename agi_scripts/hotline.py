#!/usr/bin/env python3
"""Process-per-call AGI (pyst2) for small installs: the same flows as the FastAGI server.

Dial plan: AGI(/opt/didehban/.venv/bin/python,-m,agi_scripts.hotline,1482) or, with a wrapper,
AGI(didehban-hotline.sh,1482). Optional second argument: the route (hotline, new-case, status, message).
Every new case goes to the node's spool (the caller hears its code at once); this script never waits
for the backend to take it: the FastAGI server's deliverer on the same node, or `didehban spool
deliver` run by the scheduler, sends spooled cases on.

Asterisk starts this script in its own working directory, so settings never come from a `.env` there:
they are read from DIDEHBAN_ENV_FILE, else /etc/didehban/ivr.env (ivr.settings.agi_settings), and
so are the prompts' paths. Without its own DIDEHBAN_NODE_PREFIX and DIDEHBAN_SPOOL_KEY the script
refuses the call (AGISTATUS=FAILURE, so the dial plan takes a fallback message) rather than issue
codes another node may issue too.

Asterisk starts a Python for every call: this script imports only what a call uses (issue 13: at
most 150 ms of CPU per whole call, interpreter start included). No pydantic, YAML, `cryptography`,
httpx or backend module is imported for a new case, and no call imports asyncio: the flows run
without an event loop (agi_scripts.without_loop), over a blocking channel, spool, backend client and
recording mute (tests/ivr/test_agi_script_imports.py).
"""

from __future__ import annotations

import os
import sys

from asterisk import agi as pyst2

from agi_scripts.without_loop import run_without_loop
from ivr.agi import AgiCommandError, CallerHungUp, Reply
from ivr.channel import CallInfo, Channel


class Pyst2Channel(Channel):
    """The channel over pyst2's AGI object (stdin/stdout of this process): each command blocks the
    process until Asterisk replies, so its async methods never suspend."""

    blocking = True

    def __init__(self, info: CallInfo, session: pyst2.AGI) -> None:
        super().__init__(info)
        self.session = session

    async def _send(self, command: str) -> Reply:
        try:
            self.session.send_command(command)
            result = self.session.get_result()
        except (pyst2.AGIHangup, pyst2.AGIAppError, BrokenPipeError) as exc:
            raise CallerHungUp(str(exc)) from exc
        except pyst2.AGIUnknownError as exc:
            # 511 (dead channel) and a closed stdin both land here.
            raise CallerHungUp(str(exc)) from exc
        except (pyst2.AGIInvalidCommand, pyst2.AGIUsageError) as exc:
            raise AgiCommandError(str(exc)) from exc
        value, data = result.get("result", ("", ""))
        extra = {key: pair[0] for key, pair in result.items() if key != "result"}
        return Reply(200, value, data, extra)


async def run(session: pyst2.AGI, argv: list[str]) -> int:
    from agi_scripts.call_profiles import call_profiles
    from ivr.backend_client import BlockingBackendClient
    from ivr.flows.hotline import handle_call
    from ivr.settings import agi_settings
    from ivr.spool import BlockingSpool

    env = dict(session.env)
    if argv:
        env["agi_arg_1"] = argv[0]
    # A process-per-call AGI has no network script: the route is our second argument.
    env["agi_network_script"] = argv[1] if len(argv) > 1 else "hotline"
    settings = agi_settings().require_node()
    client = BlockingBackendClient(settings)
    spool = BlockingSpool(settings.spool_dir, settings.node_prefix, settings.spool_key)
    # The profiles' call fields from a copy in the spool folder (made by the first call after a
    # change): neither pydantic nor the YAML library is imported for a call (issue 13).
    profiles = call_profiles(settings.services_dir, settings.spool_dir)
    try:
        await handle_call(
            Pyst2Channel(CallInfo.from_environment(env), session),
            settings=settings,
            client=client,
            spool=spool,
            profiles=profiles,
        )
    finally:
        await client.close()
        spool.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    # pyst2 echoes every reply to stderr, which Asterisk logs; replies carry national IDs (R9).
    quiet = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the call
    from ivr.settings import NodeNotConfigured
    from ivr.spool import SpoolKeyError

    session = pyst2.AGI(stdin=sys.stdin, stdout=sys.stdout, stderr=quiet)
    try:
        return run_without_loop(run(session, sys.argv[1:] if argv is None else argv))
    except (NodeNotConfigured, SpoolKeyError) as exc:
        print(f"didehban AGI: not answering: {exc}", file=sys.stderr)  # Asterisk logs it
        return 2


if __name__ == "__main__":
    sys.exit(main())
