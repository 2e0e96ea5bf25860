"""The per-call script's recording mute (ivr.ami.mute_blocking): the same AMI exchange as the FastAGI
server's (one login, actions matched by ActionID), in blocking socket I/O, and never longer than its
time-out whatever the PBX does."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from ivr.ami import mute_blocking
from ivr.ami.mute_blocking import MuteFailed, mixmonitor_mute_blocking
from ivr.phone import AMI_GREETING
from tests.live_backend import free_port


class ThreadedAmi:
    """Asterisk's manager interface on a thread: greets, answers Login and each action with its
    ActionID (after a stray event, as a real AMI may send), and writes down what it was asked.
    `answer=False` accepts and greets but never answers; `refuse_login` answers the login Error."""

    def __init__(self, *, answer: bool = True, refuse_login: bool = False) -> None:
        self.answer, self.refuse_login = answer, refuse_login
        self.actions: list[dict[str, str]] = []
        self.connections = 0
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self._open: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return  # closed
            self.connections += 1
            self._open.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        conn.sendall(AMI_GREETING)
        buffer, fields = b"", {}
        try:
            while chunk := conn.recv(4096):
                buffer += chunk
                while b"\r\n" in buffer:
                    line, buffer = buffer.split(b"\r\n", 1)
                    if line:
                        key, _, value = line.decode().partition(":")
                        fields[key.strip()] = value.strip()
                        continue
                    if not fields:
                        continue
                    self.actions.append(fields)
                    if self.answer:
                        self._reply(conn, fields)
                    fields = {}
        except OSError:
            pass

    def _reply(self, conn: socket.socket, fields: dict[str, str]) -> None:
        ok = not (self.refuse_login and fields.get("Action") == "Login")
        reply = "Success" if ok else "Error\r\nMessage: Authentication failed"
        event = "Event: FullyBooted\r\nStatus: Fully Booted\r\n\r\n" if fields.get("ActionID") else ""
        action_id = f"ActionID: {fields['ActionID']}\r\n" if "ActionID" in fields else ""
        conn.sendall(f"{event}Response: {reply}\r\n{action_id}\r\n".encode())

    def kinds(self, action: str) -> list[dict[str, str]]:
        return [a for a in self.actions if a.get("Action") == action]

    def close(self) -> None:
        self._server.close()
        for conn in self._open:
            conn.close()


@pytest.fixture(autouse=True)
def fresh_lines():
    mute_blocking._lines.clear()  # one line per process: each test is its own "process"
    yield
    mute_blocking._lines.clear()


def mute(port: int, state: bool, *, timeout: float = 2.0) -> None:
    mixmonitor_mute_blocking(
        host="127.0.0.1",
        port=port,
        username="didehban-ivr",
        secret="s",
        channel="PJSIP/caller-00000001",
        mute=state,
        timeout=timeout,
    )


def test_a_mute_and_its_unmute_share_one_login():
    ami = ThreadedAmi()
    try:
        mute(ami.port, True)
        mute(ami.port, False)
    finally:
        ami.close()
    assert ami.connections == 1
    (login,) = ami.kinds("Login")
    assert login["Username"] == "didehban-ivr" and login["Events"] == "off"
    mutes = ami.kinds("MixMonitorMute")
    assert [m["State"] for m in mutes] == ["1", "0"]
    assert all(m["Channel"] == "PJSIP/caller-00000001" and m["Direction"] == "both" for m in mutes)
    assert len({m["ActionID"] for m in mutes}) == 2


def test_nobody_listening_fails_at_once():
    with pytest.raises(MuteFailed, match="unreachable"):
        mute(free_port(), True)


def test_a_refused_login_fails_and_the_next_mute_logs_in_again():
    ami = ThreadedAmi(refuse_login=True)
    try:
        with pytest.raises(MuteFailed, match="login refused"):
            mute(ami.port, True)
        ami.refuse_login = False
        mute(ami.port, False)
    finally:
        ami.close()
    assert ami.connections == 2 and len(ami.kinds("Login")) == 2


def test_a_silent_pbx_fails_within_the_time_out_not_later():
    ami = ThreadedAmi(answer=False)
    started = time.monotonic()
    try:
        with pytest.raises(MuteFailed, match="unreachable"):
            mute(ami.port, True, timeout=0.3)
        took = time.monotonic() - started
        # The next action connects again (the silent connection was dropped).
        with pytest.raises(MuteFailed):
            mute(ami.port, False, timeout=0.3)
    finally:
        ami.close()
    assert took < 5.0  # never hangs: the deadline covers connecting, logging in and the action (0.3 s here)
    assert ami.connections == 2
