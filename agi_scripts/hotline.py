#!/usr/bin/env python3
"""Process-per-call AGI for small installs: the same flows as the FastAGI server.

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
recording mute (tests/ivr/test_agi_script_imports.py). The AGI protocol on stdin/stdout is read with
ivr.agi, as the FastAGI server reads it (pyst2 and what it imports were a twentieth of the call).
"""

from __future__ import annotations

import sys
from typing import TextIO

from agi_scripts.without_loop import run_without_loop
from ivr.agi import Reply, parse_reply
from ivr.channel import CallInfo, Channel


def read_environment(stdin: TextIO) -> dict[str, str]:
    """The `agi_name: value` block Asterisk writes first, up to its blank line (or the end of stdin)."""
    env: dict[str, str] = {}
    while line := stdin.readline().strip():
        key, _, value = line.partition(":")
        if key.strip():
            env[key.strip()] = value.strip()
    return env


def keep_running_on_sighup() -> None:
    """Asterisk sends SIGHUP when the caller hangs up, which would end the process before it files
    what the caller said: the hang-up is noticed from the replies instead (511, result=-1, HANGUP).
    A handler, not SIG_IGN, so the programs this process starts (espeak) keep the default."""
    import _signal  # the C module: `signal` builds its enums when imported

    _signal.signal(_signal.SIGHUP, lambda signum, frame: None)


class StdioChannel(Channel):
    """The channel over this process's stdin/stdout: each command blocks the process until Asterisk
    replies, so its async methods never suspend (the flows run without an event loop)."""

    blocking = True

    def __init__(self, info: CallInfo, stdin: TextIO, stdout: TextIO) -> None:
        super().__init__(info)
        self.stdin, self.stdout = stdin, stdout

    async def _send(self, command: str) -> Reply:
        try:
            self.stdout.write(command + "\n")
            self.stdout.flush()
        except BrokenPipeError:
            line = ""  # Asterisk is gone: a hang-up, as a closed stdin is
        else:
            line = self.stdin.readline()
            if line.startswith("520-"):
                # A usage error, then its usage text up to "520 End of proper usage.": read it all,
                # so the next command's reply is not a line of it.
                while (more := self.stdin.readline()) and not more.startswith("520 "):
                    pass
        return parse_reply(line)  # CallerHungUp for every way Asterisk says the channel is gone


async def run(env: dict[str, str], argv: list[str], stdin: TextIO, stdout: TextIO) -> int:
    from agi_scripts.call_profiles import call_profiles
    from ivr.backend_client import BlockingBackendClient
    from ivr.flows.hotline import handle_call
    from ivr.settings import agi_settings
    from ivr.spool import BlockingSpool

    env = dict(env)
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
            StdioChannel(CallInfo.from_environment(env), stdin, stdout),
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
    from ivr.settings import NodeNotConfigured
    from ivr.spool import SpoolKeyError

    keep_running_on_sighup()
    env = read_environment(sys.stdin)
    try:
        return run_without_loop(run(env, sys.argv[1:] if argv is None else argv, sys.stdin, sys.stdout))
    except (NodeNotConfigured, SpoolKeyError) as exc:
        print(f"didehban AGI: not answering: {exc}", file=sys.stderr)  # Asterisk logs it
        return 2


if __name__ == "__main__":
    sys.exit(main())
