"""`didehban fastagi` as production runs it: its own process, on uvloop, answering a whole call."""

from __future__ import annotations

import asyncio
import os
import queue
import signal
import subprocess
import sys
import threading
import time

from sqlalchemy import select

from backend.models import Case
from tests.ivr.test_calls import NEW_CASE
from tests.live_backend import free_port


def _lines(stream, into: queue.Queue) -> None:
    for line in iter(stream.readline, ""):
        into.put(line)
    into.put(None)


def _wait_for(lines: queue.Queue, text: str, seen: list[str], seconds: float = 30) -> str:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.2)
        except queue.Empty:
            continue
        if line is None:
            break
        seen.append(line)
        if text in line:
            return line
    raise AssertionError(f"no {text!r} from the server; it said: {''.join(seen)}")


async def test_the_fastagi_command_runs_on_uvloop_and_files_a_call(ivr_env, backend, db):
    from ivr.phone import AsteriskSide, Script, environment

    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "backend.cli", "fastagi", "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=_lines, args=(server.stderr, lines), daemon=True).start()
    seen: list[str] = []
    try:
        listening = _wait_for(lines, "FastAGI server listening", seen)
        assert "event loop: uvloop" in listening

        side = AsteriskSide(Script(NEW_CASE))
        env = environment(route="hotline", service="1482", caller="09121234567", unique_id="uv.1", port=port)
        t = await asyncio.wait_for(side.call("127.0.0.1", port, env), 60)
        code = t.variables["DIDEHBAN_TRACKING_CODE"]
        assert t.variables["DIDEHBAN_OUTCOME"] == "registered" and code.startswith("21")

        # SIGTERM: the server delivers what it spooled before it exits.
        server.send_signal(signal.SIGTERM)
        assert server.wait(30) == 0, "".join(seen)
        db.expire_all()
        assert db.scalar(select(Case.tracking_code).where(Case.call_id == "uv.1")) == code
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(10)
