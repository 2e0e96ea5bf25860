"""Concurrent calls through the FastAGI server against a real backend on SQLite.

    .venv/bin/python benchmarks/fastagi_load.py [--calls 50 100]

Starts the backend and the FastAGI server as separate processes (as in production), places N calls
at once (each a whole new-case call: menus, national ID, a recording, the code read back), and prints
completed calls, failures, per-command latency (time from Asterisk's reply to the server's next
command) and the FastAGI server's CPU seconds and peak RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_stats(pid: int) -> tuple[float, int]:
    """(CPU seconds, peak RSS bytes) of a running process."""
    ticks = os.sysconf("SC_CLK_TCK")
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    peak = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            peak = int(line.split()[1]) * 1024
    return cpu, peak


async def place(n: int, port: int, canned: Path, nid: str) -> tuple[int, int, list[float]]:
    from ivr.phone import AsteriskSide, Script, environment

    async def one(i: int):
        items = ["1", "1", "2", f"{nid}#", "1", "words", "3", ""]
        side = AsteriskSide(Script(items), canned_recording=canned)
        env = environment(
            route="hotline", service="1482", caller=f"0912{i:07d}", unique_id=f"load-{n}-{i}", port=port
        )
        t = await asyncio.wait_for(side.call("127.0.0.1", port, env), 120)
        return t

    results = await asyncio.gather(*(one(i) for i in range(n)), return_exceptions=True)
    errors = [r for r in results if isinstance(r, BaseException)]
    if errors:
        print(f"  first failure: {errors[0]!r}", file=sys.stderr)
    ok = [
        r
        for r in results
        if not isinstance(r, BaseException) and r.variables.get("DIDEHBAN_OUTCOME") == "registered"
    ]
    latencies = [lat for r in ok for lat in r.latencies[1:]]
    return len(ok), n - len(ok), latencies


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, nargs="+", default=[50, 100])
    args = parser.parse_args()
    from backend.core.security import new_secrets
    from domain.national_id import with_check_digit

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        env = {k: v for k, v in os.environ.items() if not k.startswith("DIDEHBAN_")}
        env.update(new_secrets())
        backend_port, agi_port = free_port(), free_port()
        env.update(
            {
                "DIDEHBAN_DATABASE_URL": f"sqlite:///{tmp_path / 'load.sqlite3'}",
                "DIDEHBAN_BACKEND_URL": f"http://127.0.0.1:{backend_port}",
                "DIDEHBAN_RECORDINGS_DIR": str(tmp_path / "recordings"),
                "DIDEHBAN_SPOOL_DIR": str(tmp_path / "spool"),
                "DIDEHBAN_SMS_FILE": str(tmp_path / "sms.log"),
                "DIDEHBAN_BACKEND_TIMEOUT_SECONDS": "10",
                "DIDEHBAN_NODE_PREFIX": "21",  # every IVR node needs its own
            }
        )
        os.environ.update(env)
        cli = [sys.executable, "-m", "backend.cli"]
        backend = subprocess.Popen(
            [*cli, "serve", "--port", str(backend_port)],
            env=env,
            cwd=tmp,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        fastagi = subprocess.Popen(
            [*cli, "fastagi", "--port", str(agi_port)],
            env=env,
            cwd=tmp,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            for _ in range(200):
                try:
                    if httpx.get(f"http://127.0.0.1:{backend_port}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            time.sleep(1.0)
            canned = tmp_path / "message.wav"
            subprocess.run(
                [
                    "sox",
                    "-n",
                    "-r",
                    "8000",
                    "-c",
                    "1",
                    "-b",
                    "16",
                    str(canned),
                    "synth",
                    "5",
                    "pinknoise",
                    "vol",
                    "0.3",
                ],
                check=True,
            )
            nid = with_check_digit("001354241")
            print(
                f"{'calls':>6} {'done':>6} {'failed':>6} {'wall s':>7} {'cmd p50 ms':>10} {'p95 ms':>7} "
                f"{'p99 ms':>7} {'agi CPU s':>9} {'agi RSS MB':>10}"
            )
            for n in args.calls:
                cpu_before, _ = proc_stats(fastagi.pid)
                started = time.perf_counter()
                done, failed, lat = asyncio.run(place(n, agi_port, canned, nid))
                wall = time.perf_counter() - started
                cpu_after, rss = proc_stats(fastagi.pid)
                q = statistics.quantiles(lat, n=100) if len(lat) > 2 else [0] * 99
                print(
                    f"{n:>6} {done:>6} {failed:>6} {wall:>7.1f} {q[49] * 1000:>10.2f} {q[94] * 1000:>7.2f} "
                    f"{q[98] * 1000:>7.2f} {cpu_after - cpu_before:>9.2f} {rss / 2**20:>10.1f}"
                )
        finally:
            for p in (fastagi, backend):
                p.terminate()
                p.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
