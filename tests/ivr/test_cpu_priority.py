"""The parts' CPU priorities on one machine (issue 13: at 500 calls the FastAGI server queued behind
Asterisk's thousand threads and answered seconds late, so callers' keys were lost)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ivr.cpu_priority import BATCH_NICE, session_nice, set_priority
from ivr.settings import IvrSettings

# A child that starts a second thread, then waits: set_priority must reach both.
TWO_THREADS = "import threading, time; threading.Thread(target=time.sleep, args=(30,)).start(); time.sleep(9)"


def _nice(pid: int, tid: int | None = None) -> int:
    stat = Path(f"/proc/{pid}/task/{tid or pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[16])


def _child(*, own_session: bool) -> subprocess.Popen:
    child = subprocess.Popen([sys.executable, "-c", TWO_THREADS], start_new_session=own_session)
    for _ in range(200):  # until its second thread runs
        if len(list(Path(f"/proc/{child.pid}/task").iterdir())) == 2:
            return child
        time.sleep(0.01)
    child.kill()
    raise AssertionError("the child never started its thread")


def test_every_thread_and_the_session_group_get_the_priority():
    child = _child(own_session=True)
    try:
        assert set_priority(child.pid, 7)
        tids = [int(t.name) for t in Path(f"/proc/{child.pid}/task").iterdir()]
        assert [_nice(child.pid, tid) for tid in tids] == [7, 7]
        # With autogroups a session is one group to the scheduler: its nice is what counts.
        if Path(f"/proc/{child.pid}/autogroup").exists():
            assert session_nice(child.pid) == "7"
    finally:
        child.kill()
        child.wait()


def test_a_process_that_does_not_lead_its_session_leaves_the_session_alone():
    before = session_nice(os.getpid())
    child = _child(own_session=False)
    try:
        assert set_priority(child.pid, 3)
        assert _nice(child.pid) == 3
        assert session_nice(os.getpid()) == before  # the session it shares with us is not changed
    finally:
        child.kill()
        child.wait()


def test_a_process_outside_any_session_group_has_no_session_nice():
    """Process 1's session is the system's first: the kernel shows an empty autogroup file for it
    (and for all a CI runner starts without setsid), which is no group, not an error."""
    if not Path("/proc/1/autogroup").exists():
        pytest.skip("this kernel has no autogroups")
    shown = Path("/proc/1/autogroup").read_text().split()
    assert session_nice(1) == (shown[-1] if shown else "-")


def test_not_allowed_says_so(monkeypatch):
    def refuse(*_args):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "setpriority", refuse)
    assert set_priority(os.getpid(), -5) is False


def test_a_process_that_is_gone():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert set_priority(child.pid, 5) is False


def test_defaults_put_the_fastagi_server_first_and_batch_work_last():
    settings = IvrSettings()
    assert settings.fastagi_nice < settings.pbx_nice == 0 < BATCH_NICE
    assert IvrSettings(pbx_nice="4", fastagi_nice="-2").pbx_nice == 4


@pytest.mark.skipif(os.geteuid() != 0, reason="raising a priority needs root")
def test_the_fastagi_command_raises_itself(tmp_path):
    """`didehban fastagi` sets its own priority before it starts any thread."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("DIDEHBAN_")},
        "DIDEHBAN_NODE_PREFIX": "31",
        "DIDEHBAN_SPOOL_DIR": str(tmp_path / "spool"),
        "DIDEHBAN_FASTAGI_NICE": "-3",
        "DIDEHBAN_ENV_FILE": str(tmp_path / "none.env"),
    }
    from backend.core.security import new_secrets

    env.update(new_secrets())
    server = subprocess.Popen(
        [sys.executable, "-m", "backend.cli", "fastagi", "--port", "0"],
        env=env,
        cwd=tmp_path,
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        for _ in range(300):
            if server.poll() is not None:
                break
            if _nice(server.pid) == -3:
                break
            time.sleep(0.02)
        assert server.poll() is None, server.stdout.read()
        assert _nice(server.pid) == -3
        if Path(f"/proc/{server.pid}/autogroup").exists():
            assert session_nice(server.pid) == "-3"
    finally:
        server.kill()
        server.wait()


def test_didehban_up_starts_the_batch_parts_below_the_calls():
    from backend import supervise

    part = supervise.Part("transcriber", ["sleep", "30"], nice=BATCH_NICE)
    supervise._start(part)
    try:
        assert _nice(part.process.pid) == BATCH_NICE
        if Path(f"/proc/{part.process.pid}/autogroup").exists():
            assert session_nice(part.process.pid) == str(BATCH_NICE)
    finally:
        supervise._stop(part)
