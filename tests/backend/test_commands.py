"""The console commands as a user runs them: real processes, a real SQLite file."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx

from tests.conftest import TEST_SECRETS
from tests.live_backend import free_port


def _env(tmp_path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIDEHBAN_")}
    env.update(TEST_SECRETS)
    env["DIDEHBAN_DATABASE_URL"] = f"sqlite:///{tmp_path / 'cli.sqlite3'}"
    env["DIDEHBAN_SMS_FILE"] = str(tmp_path / "sms.log")
    return env


def test_demo_is_idempotent_and_serve_answers(tmp_path):
    env = _env(tmp_path)
    run = [sys.executable, "-m", "backend.cli"]

    def demo() -> subprocess.CompletedProcess:
        return subprocess.run(
            [*run, "demo"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
        )

    first = demo()
    assert first.returncode == 0, first.stderr
    assert "demo tracking codes" in first.stdout
    second = demo()
    assert second.returncode == 0, second.stderr
    codes = first.stdout.split("demo tracking codes:")[1].split()
    assert len(codes) == 5
    assert second.stdout.split("demo tracking codes:")[1].split() == codes  # nothing added twice

    listing = subprocess.run(
        [*run, "cases"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert listing.returncode == 0 and all(code.rstrip(",") in listing.stdout for code in codes)
    assert "0915" not in listing.stdout  # no identity in the operator's listing
    calls = subprocess.run([*run, "calls"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert calls.returncode == 0 and "no calls logged yet" in calls.stdout

    port = free_port()
    server = subprocess.Popen(
        [*run, "serve", "--port", str(port)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        headers = {"Authorization": f"Bearer {TEST_SECRETS['DIDEHBAN_IVR_TOKEN']}"}
        code = codes[0].rstrip(",")
        r = httpx.get(
            f"{base}/api/v1/cases/{code}", params={"caller_number": "09151234567"}, headers=headers, timeout=5
        )
        assert r.status_code == 200 and r.json()["owner_verified"]
    finally:
        server.terminate()
        out, _ = server.communicate(timeout=10)
    assert "09151234567" not in out  # the ownership proof did not reach the access log
    assert "GET /api/v1/cases/" in out


def test_missing_secrets_are_a_clear_error(tmp_path):
    env = _env(tmp_path)
    env.pop("DIDEHBAN_SECRET_KEY")
    r = subprocess.run(
        [sys.executable, "-m", "backend.cli", "demo"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode != 0
    assert "DIDEHBAN_SECRET_KEY" in r.stderr
