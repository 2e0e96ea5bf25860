"""Muting the whole-call recording (MixMonitor) while something private is on the line.

Asterisk 22 mutes a running MixMonitor only through AMI (`MixMonitorMute`); the FastAGI server logs in
as its own AMI user, which may do nothing but call actions (manager.conf: <user>-ivr, write = call).
One short connection per change: a mute happens twice a call at most.
"""

from __future__ import annotations

import asyncio
import logging

log = logging.getLogger("ivr.ami.mute")


class MuteFailed(RuntimeError):
    pass


async def mixmonitor_mute(
    *, host: str, port: int, username: str, secret: str, channel: str, mute: bool, timeout: float = 2.0
) -> None:
    """Mute (or unmute) both directions of the MixMonitor on `channel`. Raises MuteFailed."""

    async def exchange() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            await reader.readline()  # "Asterisk Call Manager/..."

            async def action(fields: dict[str, str]) -> dict[str, str]:
                writer.write("".join(f"{k}: {v}\r\n" for k, v in fields.items()).encode() + b"\r\n")
                await writer.drain()
                reply: dict[str, str] = {}
                while True:
                    line = (await reader.readline()).decode(errors="replace").strip()
                    if not line:
                        if "Response" in reply:
                            return reply
                        if reader.at_eof():
                            raise MuteFailed("AMI closed the connection")
                        continue
                    key, _, value = line.partition(":")
                    reply.setdefault(key.strip(), value.strip())

            login = await action({"Action": "Login", "Username": username, "Secret": secret, "Events": "off"})
            if login.get("Response") != "Success":
                raise MuteFailed(f"AMI login refused: {login.get('Message', '')}")
            done = await action(
                {
                    "Action": "MixMonitorMute",
                    "Channel": channel,
                    "Direction": "both",
                    "State": "1" if mute else "0",
                }
            )
            if done.get("Response") != "Success":
                raise MuteFailed(f"MixMonitorMute refused: {done.get('Message', '')}")
            writer.write(b"Action: Logoff\r\n\r\n")
            await writer.drain()
        finally:
            writer.close()

    try:
        await asyncio.wait_for(exchange(), timeout)
    except (OSError, TimeoutError) as exc:
        raise MuteFailed(f"AMI unreachable: {exc}") from exc
