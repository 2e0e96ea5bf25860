"""Muting the whole-call recording (MixMonitor) while something private is on the line.

Asterisk 22 mutes a running MixMonitor only through AMI (`MixMonitorMute`); the FastAGI server logs in
as its own AMI user, which may do nothing but call actions (manager.conf: <user>-ivr, write = call).

One AMI connection per event loop, logged in once and shared by every call, each action matched to
its answer by ActionID. A connection and a login per mute made a burst of calls into a burst of AMI
logins (500 calls reaching the national ID together: 1,000 logins), which Asterisk answered in
seconds or not at all (it keeps at most `authlimit`, 50, sessions waiting to log in): the mutes
timed out, and a key the caller pressed meanwhile was lost (no AGI command was running to hear it).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
import weakref

# One exception for both ways of muting (this one on an event loop, the per-call script's blocking one).
from ivr.ami.mute_blocking import MuteFailed, message_line

log = logging.getLogger("ivr.ami.mute")

__all__ = ["AmiLine", "MuteFailed", "ami_line", "mixmonitor_mute"]


async def _message(reader: asyncio.StreamReader) -> dict[str, str] | None:
    """One AMI message (lines up to a blank line); None when the connection is closed."""
    message: dict[str, str] = {}
    while raw := await reader.readline():
        if message_line(message, raw):
            return message
    return None


def _fields(raw: bytes) -> dict[str, str]:
    """One message's `Key: value` lines (the first of a repeated key wins, as in _message)."""
    message: dict[str, str] = {}
    for line in raw.decode(errors="replace").split("\n"):
        key, _, value = line.partition(":")
        if key := key.strip():
            message.setdefault(key, value.strip())
    return message


class AmiLine:
    """A logged-in AMI connection that many calls share; reconnects on the next action once lost."""

    def __init__(self, host: str, port: int, username: str, secret: str) -> None:
        self.host, self.port, self.username, self.secret = host, port, username, secret
        self._writer: asyncio.StreamWriter | None = None
        self._connecting = asyncio.Lock()
        self._waiting: dict[str, asyncio.Future[dict[str, str]]] = {}
        self._ids = itertools.count(1)
        self._heard_at = 0.0  # when the connection last delivered a message
        self._reading: asyncio.Task | None = None
        self.logins = 0

    def _send(self, fields: dict[str, str]) -> None:
        assert self._writer is not None
        self._writer.write("".join(f"{k}: {v}\r\n" for k, v in fields.items()).encode() + b"\r\n")

    async def _connect(self) -> asyncio.StreamWriter:
        if self._writer is not None:  # logged in: no lock to take (two mutes a call, issue 13)
            return self._writer
        async with self._connecting:
            if self._writer is not None:
                return self._writer
            reader, writer = await asyncio.open_connection(self.host, self.port)
            try:
                await reader.readline()  # "Asterisk Call Manager/..."
                self._writer = writer
                self._send(
                    {"Action": "Login", "Username": self.username, "Secret": self.secret, "Events": "off"}
                )
                await writer.drain()
                self.logins += 1
                login = await _message(reader)
            except BaseException:
                self._writer = None
                writer.close()
                raise
            if login is None or login.get("Response") != "Success":
                self._writer = None
                writer.close()
                why = "AMI closed the connection" if login is None else login.get("Message", "")
                raise MuteFailed(f"AMI login refused: {why}")
            self._heard_at = time.monotonic()
            self._reading = asyncio.get_running_loop().create_task(self._read(reader, writer))
            return writer

    async def _read(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # What arrives, split into messages at the blank line that ends each (a read, not a
        # readline a line: an answer is four lines).
        buffer = b""
        try:
            while chunk := await reader.read(65536):
                self._heard_at = time.monotonic()
                # Asterisk ends lines with \r\n; a \r\n split between two reads is joined here first.
                *messages, buffer = (buffer + chunk).replace(b"\r\n", b"\n").split(b"\n\n")
                for raw in messages:
                    message = _fields(raw)
                    waiter = self._waiting.pop(message.get("ActionID", ""), None)
                    if waiter is not None and not waiter.done():
                        waiter.set_result(message)
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            self._drop(writer)

    def _drop(self, writer: asyncio.StreamWriter) -> None:
        """Forget a connection that is gone: its waiting actions fail, the next action reconnects."""
        if self._writer is writer:
            self._writer = None
            for waiter in self._waiting.values():
                if not waiter.done():
                    waiter.set_exception(MuteFailed("AMI closed the connection"))
            self._waiting.clear()
        writer.close()

    async def action(self, fields: dict[str, str], *, timeout: float) -> dict[str, str]:
        """Send one action, return its response. Raises MuteFailed."""
        sent_at = time.monotonic()
        writer: asyncio.StreamWriter | None = None
        action_id = f"didehban-{next(self._ids)}"
        try:
            async with asyncio.timeout(timeout):
                writer = await self._connect()
                waiter = asyncio.get_running_loop().create_future()
                self._waiting[action_id] = waiter
                self._send({**fields, "ActionID": action_id})
                await writer.drain()
                return await waiter
        except (OSError, TimeoutError) as exc:
            if writer is not None and self._heard_at < sent_at:
                # Nothing at all came back on this connection since the action went: a line that
                # died silently. Drop it so the next action reconnects rather than wait forever.
                self._drop(writer)
            raise MuteFailed(f"AMI unreachable: {exc!r}") from exc
        finally:
            self._waiting.pop(action_id, None)


# One line per event loop (a FastAGI server has one loop; tests and scripts make their own).
_lines: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple, AmiLine]] = (
    weakref.WeakKeyDictionary()
)


def ami_line(host: str, port: int, username: str, secret: str) -> AmiLine:
    lines = _lines.setdefault(asyncio.get_running_loop(), {})
    key = (host, port, username, secret)
    if key not in lines:
        lines[key] = AmiLine(host, port, username, secret)
    return lines[key]


async def mixmonitor_mute(
    *, host: str, port: int, username: str, secret: str, channel: str, mute: bool, timeout: float = 2.0
) -> None:
    """Mute (or unmute) both directions of the MixMonitor on `channel`. Raises MuteFailed."""
    done = await ami_line(host, port, username, secret).action(
        {"Action": "MixMonitorMute", "Channel": channel, "Direction": "both", "State": "1" if mute else "0"},
        timeout=timeout,
    )
    if done.get("Response") != "Success":
        raise MuteFailed(f"MixMonitorMute refused: {done.get('Message', '')}")
