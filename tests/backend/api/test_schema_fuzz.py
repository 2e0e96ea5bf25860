"""Schemathesis against a live `didehban serve`, as an outside client would: every operation of the
published OpenAPI description, with every check, once with the IVR token and once with each staff
role's session. The run passes only with no server error and no answer that breaks the description.

DIDEHBAN_FUZZ_SECONDS sets the time budget per run (default 25 s); the figures of each run (cases
generated, failures) are written to var/schemathesis/ for the notes."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.live_backend import free_port

ROOT = Path(__file__).resolve().parents[3]
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
REPORTS = ROOT / "var" / "schemathesis"

pytestmark = pytest.mark.skipif(not SCHEMATHESIS.exists(), reason="schemathesis is installed by make test")


@pytest.fixture
def live_backend(settings_env, database_url):
    env = dict(os.environ)
    env["DIDEHBAN_DATABASE_URL"] = database_url
    subprocess.run(
        [sys.executable, "-m", "backend.cli", "demo"],
        env=env,
        cwd=settings_env,
        check=True,
        capture_output=True,
    )
    port = free_port()
    log = (settings_env / "serve.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "backend.cli", "serve", "--port", str(port)],
        env=env,
        cwd=settings_env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    else:
        server.kill()
        pytest.fail("didehban serve did not start: " + (settings_env / "serve.log").read_text())
    yield base, settings_env
    server.terminate()
    server.wait(15)
    log.close()


def _staff_token(base: str, username: str) -> str:
    reply = httpx.post(f"{base}/api/v1/auth/login", json={"username": username, "password": "demo-1482"})
    assert reply.status_code == 200, reply.text
    return reply.json()["token"]


def _fuzz(base: str, token: str, label: str, workdir: Path, *extra: str) -> tuple[int, str]:
    seconds = os.environ.get("DIDEHBAN_FUZZ_SECONDS", "25")
    run = subprocess.run(
        [
            str(SCHEMATHESIS),
            "--config-file",
            str(ROOT / "schemathesis.toml"),
            "run",
            f"{base}/openapi.json",
            "--header",
            f"Authorization: Bearer {token}",
            "--checks",
            "all",
            "--max-time",
            seconds,
            # One worker: Python 3.11's ast module is not safe for hypothesis's source parsing from
            # two threads at once ("AST constructor recursion depth mismatch").
            "--workers",
            "1",
            "--generation-database",
            "none",
            "--no-color",
            *extra,
        ],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=int(seconds) * 4 + 120,
    )
    output = run.stdout + run.stderr
    REPORTS.mkdir(parents=True, exist_ok=True)
    (REPORTS / f"{label}.txt").write_text(output)
    return run.returncode, output


def _only_unauthorized(output: str) -> set[str]:
    """The operations schemathesis saw answer nothing but 401/403 (its "Authentication failed" warning)."""
    found: set[str] = set()
    for block in re.findall(
        r"(?:401 Unauthorized|403 Forbidden) \(\d+ operations?\):\n((?:\s+- .+\n)+)", output
    ):
        found.update(line.strip()[2:] for line in block.splitlines())
    return found


# An operation each session must really reach, or the run only fuzzed the 401 in front of it.
REACHES = {
    "ivr": "POST /api/v1/cases",
    "operator1482": "GET /api/v1/staff/inbox",
    "admin": "GET /api/v1/staff/units",
}


@pytest.mark.parametrize("who", ["ivr", "operator1482", "admin"])
def test_the_api_holds_under_fuzzing(live_backend, who, database_url):
    base, workdir = live_backend
    token = os.environ["DIDEHBAN_IVR_TOKEN"] if who == "ivr" else _staff_token(base, who)
    backend = "postgres" if database_url.startswith("postgresql") else "sqlite"
    # Logging out would end the very session the run fuzzes with; logout has its own tests.
    extra = () if who == "ivr" else ("--exclude-path", "/api/v1/auth/logout")
    code, output = _fuzz(base, token, f"{who}-{backend}", workdir, *extra)
    generated = re.search(r"(\d+) generated", output)
    assert generated and int(generated.group(1)) > 0, output[-3000:]
    assert code == 0, output[-6000:]
    assert REACHES[who] not in _only_unauthorized(output), output[-6000:]
    serve_log = (workdir / "serve.log").read_text(errors="replace")
    assert "Traceback" not in serve_log, serve_log[-4000:]
