"""Muting the whole-call recording from a process with no event loop: the process-per-call AGI
script (agi_scripts.hotline), which runs its one call without asyncio (issue 13: importing asyncio
alone cost more than the rest of the call).

The same AMI exchange as ivr.ami.mute: one connection for the process, logged in once (as the
`<user>-ivr` manager user, events off) on the first mute and reused by the unmute, each action matched
to its answer by ActionID, at most `timeout` seconds an action (connecting and logging in included).
A connection that failed or timed out is dropped and the next action connects again."""

from __future__ import annotations

import itertools
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import _socket


def message_line(message: dict[str, str], raw: bytes) -> bool:
    """Add one AMI line's `Key: value` to `message` (the first of a repeated key wins). True when
    the line is the blank one that ends a message that has fields."""
    line = raw.decode(errors="replace").strip()
    if not line:
        return bool(message)
    key, _, value = line.partition(":")
    message.setdefault(key.strip(), value.strip())
    return False


class MuteFailed(RuntimeError):
    """The PBX could not mute (or unmute) the recording: unreachable, too slow, or refused."""


def _connect(host: str, port: int, timeout: float) -> _socket.socket:
    """socket.create_connection on the C module: socket.py builds its enums when imported, a few ms
    of a per-call script's CPU (issue 13), and only a call that mutes connects at all."""
    import _socket

    last: OSError | None = None
    try:
        name: str | bytes = host.encode("ascii")  # as bytes: no IDNA codec to import for "127.0.0.1"
    except UnicodeEncodeError:
        name = host
    for family, kind, proto, _name, address in _socket.getaddrinfo(name, port, 0, _socket.SOCK_STREAM):
        sock = _socket.socket(family, kind, proto)
        try:
            sock.settimeout(timeout)
            sock.connect(address)
            return sock
        except OSError as exc:
            sock.close()
            last = exc
    raise last or OSError(f"no address for {host}:{port}")


class BlockingAmiLine:
    """A logged-in AMI connection for the calls of one process, in blocking socket I/O."""

    def __init__(self, host: str, port: int, username: str, secret: str) -> None:
        self.host, self.port, self.username, self.secret = host, port, username, secret
        self._sock: _socket.socket | None = None
        self._buffer = b""
        self._ids = itertools.count(1)
        self.logins = 0

    def _readline(self, deadline: float) -> bytes:
        """One line (b"" once the connection is closed), or TimeoutError past the deadline."""
        assert self._sock is not None
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("AMI did not answer in time")
            self._sock.settimeout(remaining)
            chunk = self._sock.recv(4096)
            if not chunk:
                line, self._buffer = self._buffer, b""
                return line
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line + b"\n"

    def _message(self, deadline: float) -> dict[str, str] | None:
        """One AMI message (lines up to a blank line); None when the connection is closed."""
        message: dict[str, str] = {}
        while raw := self._readline(deadline):
            if message_line(message, raw):
                return message
        return None

    def _send(self, fields: dict[str, str]) -> None:
        assert self._sock is not None
        self._sock.sendall("".join(f"{k}: {v}\r\n" for k, v in fields.items()).encode() + b"\r\n")

    def _connect(self, deadline: float) -> None:
        if self._sock is not None:
            return
        self._sock = _connect(self.host, self.port, max(deadline - time.monotonic(), 0.001))
        self._buffer = b""
        self._readline(deadline)  # "Asterisk Call Manager/..."
        self._send({"Action": "Login", "Username": self.username, "Secret": self.secret, "Events": "off"})
        self.logins += 1
        login = self._message(deadline)
        if login is None or login.get("Response") != "Success":
            why = "AMI closed the connection" if login is None else login.get("Message", "")
            raise MuteFailed(f"AMI login refused: {why}")

    def _drop(self) -> None:
        if self._sock is not None:
            self._sock.close()
        self._sock, self._buffer = None, b""

    def action(self, fields: dict[str, str], *, timeout: float) -> dict[str, str]:
        """Send one action, return its response. Raises MuteFailed."""
        deadline = time.monotonic() + timeout
        action_id = f"didehban-{next(self._ids)}"
        try:
            self._connect(deadline)
            self._send({**fields, "ActionID": action_id})
            while True:
                message = self._message(deadline)
                if message is None:
                    raise MuteFailed("AMI closed the connection")
                if message.get("ActionID") == action_id:
                    return message
        except MuteFailed:
            self._drop()
            raise
        except OSError as exc:  # refused, reset, timed out (TimeoutError is an OSError)
            # This process's only connection: whatever half-read message it holds goes with it.
            self._drop()
            raise MuteFailed(f"AMI unreachable: {exc!r}") from exc


_lines: dict[tuple[str, int, str, str], BlockingAmiLine] = {}


def blocking_ami_line(host: str, port: int, username: str, secret: str) -> BlockingAmiLine:
    key = (host, port, username, secret)
    if key not in _lines:
        _lines[key] = BlockingAmiLine(host, port, username, secret)
    return _lines[key]


def mixmonitor_mute_blocking(
    *, host: str, port: int, username: str, secret: str, channel: str, mute: bool, timeout: float = 2.0
) -> None:
    """Mute (or unmute) both directions of the MixMonitor on `channel`. Raises MuteFailed."""
    done = blocking_ami_line(host, port, username, secret).action(
        {"Action": "MixMonitorMute", "Channel": channel, "Direction": "both", "State": "1" if mute else "0"},
        timeout=timeout,
    )
    if done.get("Response") != "Success":
        raise MuteFailed(f"MixMonitorMute refused: {done.get('Message', '')}")
