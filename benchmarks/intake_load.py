"""Intake and status look-ups against a real backend process, beside the backend's own /healthz.

    .venv/bin/python benchmarks/intake_load.py [--seconds 10] [--clients 16] [--fill 1000000]

The database is DIDEHBAN_DATABASE_URL if set (an empty PostgreSQL database, say), else a new SQLite
file. Each phase runs `--clients` concurrent HTTP clients for `--seconds` against one uvicorn process:
  healthz      GET /healthz (anonymous): the framework's own rate on this machine
  single       POST /api/v1/cases, one new case a request (as the IVR once filed them)
  batch        POST /api/v1/cases:batch, --batch cases a request (as IVR nodes deliver their spools)
  status       GET /api/v1/cases/{code}?caller_number=... of random filled cases
Printed per phase: requests/s, cases/s, p50/p99 latency, and the server's CPU ms per request (from
/proc, so the figure holds even while the load generator shares the machine's cores). Before the
status phase, --fill cases are written straight into the database (COPY on PostgreSQL, executemany
on SQLite) and the fill's duration is printed. Throttling is lifted for the run (one client address).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.fastagi_load import free_port, proc_stats  # noqa: E402
from benchmarks.fill import fill_cases, filled_code  # noqa: E402

TOKEN = "bench-ivr-token"


def nid(n: int) -> str:
    from domain.national_id import with_check_digit

    return with_check_digit(f"{n % 999_999_999:09d}")


def case_body(i: int, run: str) -> dict:
    from domain.tracking_code import new_tracking_code

    return {
        "service": "1482",
        "kind": "complaint",
        "urgent": False,
        "national_id": nid(1000 + i),
        "caller_number": f"0912{i % 10_000_000:07d}",
        "channel": "phone",
        "call_id": f"{run}.{i}",
        "tracking_code": new_tracking_code("21"),
        "recording_path": f"1482/20261122/{run}.{i}-message.wav",
        "recording_seconds": 12.5,
        "received_at": dt.datetime.now(dt.UTC).isoformat(),
    }


async def phase(base: str, seconds: float, clients: int, make_request) -> tuple[int, list[float]]:
    """(requests answered 2xx, latencies) over `seconds` with `clients` concurrent clients."""
    latencies: list[float] = []
    ok = 0
    stop_at = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as http:

        async def worker(w: int) -> None:
            nonlocal ok
            k = 0
            while time.perf_counter() < stop_at:
                method, url, kwargs = make_request(w, k)
                k += 1
                started = time.perf_counter()
                r = await http.request(method, url, **kwargs)
                latencies.append(time.perf_counter() - started)
                if r.status_code < 300:
                    ok += 1
                elif k < 3:
                    print(f"  {url}: {r.status_code} {r.text[:200]}", file=sys.stderr)

        await asyncio.gather(*(worker(w) for w in range(clients)))
    return ok, latencies


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--fill", type=int, default=100_000, help="cases written before the status phase")
    parser.add_argument("--phases", nargs="+", default=["healthz", "single", "batch", "status"])
    args = parser.parse_args()
    from backend.core.security import new_secrets

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        database_url = os.environ.get("DIDEHBAN_DATABASE_URL") or f"sqlite:///{tmp_path / 'intake.sqlite3'}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("DIDEHBAN_")}
        env.update(new_secrets())
        port = free_port()
        env.update(
            {
                "DIDEHBAN_DATABASE_URL": database_url,
                "DIDEHBAN_IVR_TOKEN": TOKEN,
                "DIDEHBAN_RECORDINGS_DIR": str(tmp_path / "recordings"),
                "DIDEHBAN_SMS_FILE": str(tmp_path / "sms.log"),
                "DIDEHBAN_NODE_PREFIXES": "21",
                "DIDEHBAN_RATE_LIMIT_PER_ADDRESS": "100000000/minute",
                "DIDEHBAN_RATE_LIMIT_PER_CALLER": "100000000/minute",
            }
        )
        os.environ.update(env)
        backend = subprocess.Popen(
            [sys.executable, "-m", "backend.cli", "serve", "--port", str(port)],
            env=env,
            cwd=tmp,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        headers = {"Authorization": f"Bearer {TOKEN}"}
        try:
            for _ in range(300):
                try:
                    if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            db_kind = database_url.split(":", 1)[0]
            print(
                f"database: {db_kind}; {args.clients} clients, {args.seconds:.0f} s a phase; "
                f"{os.cpu_count()} cores"
            )
            print(
                f"{'phase':<8} {'req/s':>8} {'cases/s':>8} {'p50 ms':>7} {'p99 ms':>7} "
                f"{'CPU ms/req':>10} {'vs healthz':>10}"
            )
            run = f"r{int(time.time())}"
            codes: list[str] = []
            rates: dict[str, float] = {}

            def requests_for(name: str):
                if name == "healthz":
                    return lambda w, k: ("GET", "/healthz", {})
                if name == "single":
                    return lambda w, k: (
                        "POST",
                        "/api/v1/cases",
                        {"json": case_body(w * 1_000_000 + k, run + "s"), "headers": headers},
                    )
                if name == "batch":
                    return lambda w, k: (
                        "POST",
                        "/api/v1/cases:batch",
                        {
                            "json": {
                                "cases": [
                                    case_body((w * 10_000 + k) * args.batch + j, run + "b")
                                    for j in range(args.batch)
                                ]
                            },
                            "headers": headers,
                        },
                    )
                return lambda w, k: (
                    "GET",
                    f"/api/v1/cases/{random.choice(codes)}",
                    {"params": {"caller_number": "09121234567"}, "headers": headers},
                )

            for name in args.phases:
                if name == "status":
                    started = time.perf_counter()
                    first, _unit = fill_cases(database_url, args.fill)
                    print(f"  fill: {args.fill} cases in {time.perf_counter() - started:.1f} s")
                    codes = [filled_code(first + random.randrange(args.fill)) for _ in range(10_000)]
                cpu_before, _ = proc_stats(backend.pid)
                ok, lat = asyncio.run(phase(base, args.seconds, args.clients, requests_for(name)))
                cpu = proc_stats(backend.pid)[0] - cpu_before
                per_request = args.batch if name == "batch" else 1
                rate = ok / args.seconds
                rates[name] = rate
                q = statistics.quantiles(lat, n=100) if len(lat) > 2 else [0] * 99
                cases = rate * per_request if name in ("single", "batch") else 0
                ratio = f"{rate / rates['healthz']:.2f}" if "healthz" in rates and name != "healthz" else ""
                print(
                    f"{name:<8} {rate:>8.0f} {cases:>8.0f} "
                    f"{q[49] * 1000:>7.1f} {q[98] * 1000:>7.1f} {cpu * 1000 / max(ok, 1):>10.2f} {ratio:>10}"
                )
        finally:
            backend.terminate()
            backend.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
