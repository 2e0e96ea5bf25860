"""The whole hotline as separate processes, as in production: backend, FastAGI server, Asterisk
(Debian's, in the sid root) and the AMI listener, on their own ports and a fresh SQLite file.
Calls are placed with sipp. Needs root (chroot, mounts, sipp's RTP); CI runs as root."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from backend.core.security import IdentityVault, new_secrets

ROOT = Path(__file__).resolve().parents[2]
# Several worktrees may run these tests on one machine at once: a shift moves every port they use
# (SIP, AMI, RTP, sipp's own), e.g. DIDEHBAN_TEST_PBX_PORT_SHIFT=200.
PORT_SHIFT = int(os.environ.get("DIDEHBAN_TEST_PBX_PORT_SHIFT", "0"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Stack:
    env: dict[str, str]
    work: Path
    processes: dict[str, subprocess.Popen]
    sip_port: int

    def cli(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "backend.cli", *args],
            env=self.env,
            cwd=self.work,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def start(self, name: str, *args: str) -> None:
        log = (self.work / f"{name}.log").open("ab")
        self.processes[name] = subprocess.Popen(
            [sys.executable, "-m", "backend.cli", *args],
            env=self.env,
            cwd=self.work,
            stdout=log,
            stderr=subprocess.STDOUT,
            # Each part in its own session, as `didehban up` and systemd start them: the kernel's
            # autogroups then weigh them against Asterisk the way production does.
            start_new_session=True,
        )

    def stop(self, name: str, *, kill: bool = False) -> None:
        proc = self.processes.pop(name, None)
        if proc and proc.poll() is None:
            proc.kill() if kill else proc.terminate()
            proc.wait(15)

    def session(self) -> Session:
        return Session(create_engine(self.env["DIDEHBAN_DATABASE_URL"]))

    @property
    def vault(self) -> IdentityVault:
        from backend.core.config import Settings

        return IdentityVault.from_settings(
            Settings(
                _env_file=None,
                **{
                    "secret_key": self.env["DIDEHBAN_SECRET_KEY"],
                    "lookup_key": self.env["DIDEHBAN_LOOKUP_KEY"],
                },
            )
        )

    @property
    def recordings(self) -> Path:
        return Path(self.env["DIDEHBAN_RECORDINGS_DIR"])


def _wait_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


def launch(
    work: Path,
    *,
    sip_port: int = 5080 + PORT_SHIFT,
    ami_port: int = 5039 + PORT_SHIFT,
    settings: dict[str, str] | None = None,
) -> Stack:
    """Migrate, build prompts, start backend, FastAGI, the PBX and the AMI listener. `settings`:
    DIDEHBAN_ variables to set beside the tests' own (a benchmark's variant)."""
    backend_port, agi_port = free_port(), free_port()
    # Operators on duty round the clock, so menu 0 reaches the queue whenever the tests run.
    services = work / "services"
    services.mkdir(exist_ok=True)
    for profile in (ROOT / "config" / "services").glob("*.yaml"):
        text = "\n".join(
            "operator_hours: {days: [saturday, sunday, monday, tuesday, wednesday, thursday, friday], "
            'start: "00:00", end: "23:59"}'
            if line.startswith("operator_hours:")
            else line
            for line in profile.read_text(encoding="utf-8").splitlines()
        )
        (services / profile.name).write_text(text + "\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIDEHBAN_")}
    env.update(new_secrets())
    env.update(
        {
            "DIDEHBAN_DATABASE_URL": f"sqlite:///{work / 'hotline.sqlite3'}",
            "DIDEHBAN_BACKEND_URL": f"http://127.0.0.1:{backend_port}",
            "DIDEHBAN_FASTAGI_PORT": str(agi_port),
            "DIDEHBAN_RECORDINGS_DIR": str(work / "recordings"),
            "DIDEHBAN_SPOOL_DIR": str(work / "spool"),
            "DIDEHBAN_SMS_FILE": str(work / "sms.log"),
            "DIDEHBAN_PBX_RUNTIME": str(work / "pbx-srv"),
            "DIDEHBAN_PBX_RECORDINGS_DIR": "/srv/ivr/recordings",
            "DIDEHBAN_SOUNDS_DIR_ON_PBX": "/srv/ivr/sounds",
            "DIDEHBAN_SIP_PORT": str(sip_port),
            "DIDEHBAN_AMI_PORT": str(ami_port),
            "DIDEHBAN_RTP_START": str(21000 + 10 * PORT_SHIFT),
            "DIDEHBAN_RTP_END": str(21999 + 10 * PORT_SHIFT),
            "DIDEHBAN_PBX_SYSTEM_NAME": "ci-pbx",
            "DIDEHBAN_NODE_PREFIX": "31",
            "DIDEHBAN_SERVICES_DIR": str(services),
        }
    )
    env.update(settings or {})
    stack = Stack(env, work, {}, sip_port)
    for step in (["db", "upgrade"], ["prompts", "build"]):
        result = stack.cli(*step)
        assert result.returncode == 0, result.stdout + result.stderr
    stack.start("backend", "serve", "--port", str(backend_port))
    stack.start("fastagi", "fastagi")
    up = stack.cli("pbx", "up", "--test-phones", timeout=900)
    assert up.returncode == 0, up.stdout + up.stderr
    stack.start("ami", "ami")
    _wait_port(agi_port)
    for _ in range(100):
        try:
            if httpx.get(f"http://127.0.0.1:{backend_port}/healthz", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.1)
    time.sleep(1.0)  # the AMI listener logs in
    return stack


def shutdown(stack: Stack) -> None:
    for name in list(stack.processes):
        stack.stop(name)
    stack.cli("pbx", "down")


@pytest.fixture(scope="session")
def stack(tmp_path_factory) -> Stack:
    if os.geteuid() != 0:
        pytest.skip("real-PBX tests need root (chroot, bind mounts); CI runs them as root")
    stack = launch(tmp_path_factory.mktemp("pbx"))
    yield stack
    shutdown(stack)


@pytest.fixture
def sipp_dir(tmp_path) -> Path:
    return tmp_path
