"""The kill -9 drill, small: the backend SIGKILLed twice while clients file cases with retries and
offline codes; every call is one case and every code a caller heard resolves (issue 8)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_sigkill_loses_nothing_and_every_code_told_resolves():
    run = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "kill_drill.py"), "--calls", "160", "--kills", "2"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert "SIGKILLs 2" in run.stdout, run.stdout + run.stderr
    assert "lost 0, duplicated 0, codes told that do not resolve 0" in run.stdout, run.stdout
    assert run.returncode == 0, run.stdout + run.stderr
