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
import json
import multiprocessing
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.fastagi_load import cpu_seconds, free_port  # noqa: E402
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


# --- the load generator: light keep-alive HTTP/1.1 over raw sockets, in processes of its own ----------
# A full HTTP client (httpx) in the benchmark's own process spends about as much CPU a request as the
# server's /healthz does, on the same 2 cores: it capped every phase near the same rate and squeezed
# the ratios towards 1. Each client process here sends prepared bytes and reads the answer by its
# Content-Length, a few tens of microseconds a request, and the same client serves every phase.


def http_request(method: str, url: str, *, body: bytes | None = None, token: str | None = None) -> bytes:
    head = [f"{method} {url} HTTP/1.1", "Host: 127.0.0.1"]
    if token:
        head.append(f"Authorization: Bearer {token}")
    if body is not None:
        head += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + (body or b"")


async def exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> tuple[int, bytes, bool]:
    """(status, body, the server keeps the connection open)."""
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length, keep = 0, True
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"connection" and value.strip().lower() == b"close":
            keep = False
    body = await reader.readexactly(length) if length else b""
    return status, body, keep


def _client_process(
    port: int, start_at: float, seconds: float, connections: int, make_request, first: int, out
) -> None:
    async def run() -> tuple[int, list[float], list[str]]:
        latencies: list[float] = []
        problems: list[str] = []
        ok = 0
        while time.time() < start_at:
            await asyncio.sleep(min(0.01, max(0.0, start_at - time.time())))
        stop_at = time.perf_counter() + seconds

        async def worker(w: int) -> None:
            nonlocal ok
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            k = 0
            while time.perf_counter() < stop_at:
                request = make_request(first + w, k)  # clients numbered 0..clients-1 across processes
                k += 1
                started = time.perf_counter()
                status, body, keep = await exchange(reader, writer, request)
                done = time.perf_counter()
                if done > stop_at:
                    break  # answered after the phase ended: not counted
                latencies.append(done - started)
                if status < 300:
                    ok += 1
                elif len(problems) < 3:
                    problems.append(f"{status} {body[:200]!r}")
                if not keep:
                    writer.close()
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()

        await asyncio.gather(*(worker(w) for w in range(connections)))
        return ok, latencies, problems

    ok, latencies, problems = asyncio.run(run())
    cpu = os.times()
    out.put((ok, latencies, problems, cpu.user + cpu.system))


def phase(
    port: int, seconds: float, clients: int, procs: int, make_request
) -> tuple[int, list[float], float]:
    """(requests answered 2xx, latencies, the client processes' CPU seconds) over `seconds` with
    `clients` keep-alive connections spread over `procs` client processes."""
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    start_at = time.time() + 0.3
    per_proc = [clients // procs + (1 if p < clients % procs else 0) for p in range(procs)]
    workers = [
        ctx.Process(
            target=_client_process, args=(port, start_at, seconds, n, make_request, sum(per_proc[:p]), out)
        )
        for p, n in enumerate(per_proc)
        if n
    ]
    for w in workers:
        w.start()
    ok, latencies, cpu = 0, [], 0.0
    for _ in workers:
        n, lat, problems, used = out.get()
        ok += n
        latencies += lat
        cpu += used
        for problem in problems:
            print(f"  answer: {problem}", file=sys.stderr)
    for w in workers:
        w.join()
    return ok, latencies, cpu


def start_backend(database_url: str, tmp: Path, **extra: str) -> tuple[subprocess.Popen, int, dict[str, str]]:
    """`didehban serve` on a free port with fresh secrets and the rate limits out of the way (the
    benchmark is one client address and a few numbers), once it answers /healthz: (process, port,
    its environment)."""
    from backend.core.security import new_secrets

    env = {k: v for k, v in os.environ.items() if not k.startswith("DIDEHBAN_")}
    env.update(new_secrets())
    port = free_port()
    env.update(
        {
            "DIDEHBAN_DATABASE_URL": database_url,
            "DIDEHBAN_IVR_TOKEN": TOKEN,
            "DIDEHBAN_RECORDINGS_DIR": str(tmp / "recordings"),
            "DIDEHBAN_SMS_FILE": str(tmp / "sms.log"),
            "DIDEHBAN_RATE_LIMIT_PER_ADDRESS": "100000000/minute",
            "DIDEHBAN_RATE_LIMIT_PER_CALLER": "100000000/minute",
            **extra,
        }
    )
    backend = subprocess.Popen(
        [sys.executable, "-m", "backend.cli", "serve", "--port", str(port)],
        env=env,
        cwd=tmp,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    ready_by = time.monotonic() + 180  # migrations and imports are slow on a loaded machine
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as answer:
                if answer.status == 200:
                    return backend, port, env
        except OSError:
            if time.monotonic() > ready_by or backend.poll() is not None:
                backend.terminate()
                raise SystemExit("the backend did not start") from None
            time.sleep(0.1)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--fill", type=int, default=100_000, help="cases written before the status phase")
    parser.add_argument(
        "--client-procs", type=int, default=2, help="load-generator processes the clients are spread over"
    )
    parser.add_argument("--phases", nargs="+", default=["healthz", "single", "batch", "status"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        database_url = os.environ.get("DIDEHBAN_DATABASE_URL") or f"sqlite:///{tmp_path / 'intake.sqlite3'}"
        backend, port, env = start_backend(database_url, tmp_path, DIDEHBAN_NODE_PREFIXES="21")
        os.environ.update(env)  # the status phase fills the same database with the same keys
        try:
            db_kind = database_url.split(":", 1)[0]
            print(
                f"database: {db_kind}; {args.clients} clients, {args.seconds:.0f} s a phase; "
                f"{os.cpu_count()} cores"
            )
            print(
                f"{'phase':<8} {'req/s':>8} {'cases/s':>8} {'p50 ms':>7} {'p99 ms':>7} "
                f"{'CPU ms/req':>10} {'client ms':>10} {'vs healthz':>10}"
            )
            run = f"r{int(time.time())}"
            codes: list[str] = []
            rates: dict[str, float] = {}

            def requests_for(name: str):
                if name == "healthz":
                    healthz = http_request("GET", "/healthz")
                    return lambda w, k: healthz
                if name == "single":
                    return lambda w, k: http_request(
                        "POST",
                        "/api/v1/cases",
                        body=json.dumps(case_body(w * 1_000_000 + k, run + "s")).encode(),
                        token=TOKEN,
                    )
                if name == "batch":
                    return lambda w, k: http_request(
                        "POST",
                        "/api/v1/cases:batch",
                        body=json.dumps(
                            {
                                "cases": [
                                    case_body((w * 10_000 + k) * args.batch + j, run + "b")
                                    for j in range(args.batch)
                                ]
                            }
                        ).encode(),
                        token=TOKEN,
                    )
                return lambda w, k: http_request(
                    "GET",
                    f"/api/v1/cases/{random.choice(codes)}?caller_number=09121234567",
                    token=TOKEN,
                )

            for name in args.phases:
                if name == "status":
                    started = time.perf_counter()
                    first, _unit = fill_cases(database_url, args.fill)
                    print(f"  fill: {args.fill} cases in {time.perf_counter() - started:.1f} s")
                    codes = [filled_code(first + random.randrange(args.fill)) for _ in range(10_000)]
                cpu_before = cpu_seconds(backend.pid)
                ok, lat, client_cpu = phase(
                    port, args.seconds, args.clients, args.client_procs, requests_for(name)
                )
                cpu = cpu_seconds(backend.pid) - cpu_before
                per_request = args.batch if name == "batch" else 1
                rate = ok / args.seconds
                rates[name] = rate
                q = statistics.quantiles(lat, n=100) if len(lat) > 2 else [0] * 99
                cases = rate * per_request if name in ("single", "batch") else 0
                ratio = f"{rate / rates['healthz']:.2f}" if "healthz" in rates and name != "healthz" else ""
                print(
                    f"{name:<8} {rate:>8.0f} {cases:>8.0f} "
                    f"{q[49] * 1000:>7.1f} {q[98] * 1000:>7.1f} {cpu * 1000 / max(ok, 1):>10.2f} "
                    f"{client_cpu * 1000 / max(len(lat), 1):>10.2f} {ratio:>10}"
                )
            print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        finally:
            backend.terminate()
            backend.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
