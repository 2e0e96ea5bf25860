"""The backend killed with SIGKILL while IVR-like clients file cases: nothing may be lost or doubled.

    .venv/bin/python benchmarks/kill_drill.py [--calls 1200] [--kills 4] [--clients 8]

Starts `didehban serve` on a fresh database (SQLite, or DIDEHBAN_DATABASE_URL), and has several clients
file cases the way an IVR node does: each call has its own call_id; a POST that times out or fails is
retried with the same call_id; after the retries the client gives the caller an offline code of its
node's prefix and keeps delivering the case under that code until the backend takes it. Meanwhile the
backend is killed with SIGKILL at random moments and started again.

Afterwards it checks, and prints: every call is exactly one case (no duplicate, none lost); every code a
caller was told (the backend's, or the offline one) resolves to that call's case; every answered 201
has its case. Exits 1 if any check fails.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from domain.national_id import with_check_digit  # noqa: E402
from domain.tracking_code import new_tracking_code  # noqa: E402

NODE_PREFIX = "21"
IVR_TOKEN = "drill-ivr-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Call:
    call_id: str
    national_id: str
    number: str
    told: str | None = None  # the code the caller heard
    answered_201: str | None = None  # a code the backend answered with, if any answer arrived
    offline: bool = False


@dataclass
class Tally:
    posts: int = 0
    errors: int = 0
    server_errors: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, *, error: bool = False, server_error: bool = False) -> None:
        with self.lock:
            self.posts += 1
            self.errors += error
            self.server_errors += server_error


class Backend:
    def __init__(self, env: dict[str, str], work: Path) -> None:
        self.env, self.work = env, work
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.kills = 0

    def start(self) -> None:
        log = (self.work / "serve.log").open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "backend.cli", "serve", "--port", str(self.port)],
            env=self.env,
            cwd=self.work,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise SystemExit("the backend did not start: see " + str(self.work / "serve.log"))

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.kills += 1

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(15)


def body(call: Call, code: str | None) -> dict:
    data = {
        "service": "1482",
        "kind": "complaint",
        "urgent": False,
        "national_id": call.national_id,
        "caller_number": call.number,
        "channel": "phone",
        "call_id": call.call_id,
    }
    if code:
        data["tracking_code"] = code
    return data


def file_case(client: httpx.Client, url: str, call: Call, tally: Tally) -> None:
    headers = {"Authorization": f"Bearer {IVR_TOKEN}"}
    for attempt in range(3):
        try:
            reply = client.post(f"{url}/api/v1/cases", json=body(call, None), headers=headers, timeout=3)
        except httpx.HTTPError:
            tally.add(error=True)
            time.sleep(0.2 * (attempt + 1))
            continue
        tally.add(server_error=reply.status_code >= 500)
        if reply.status_code in (200, 201):
            call.told = call.answered_201 = reply.json()["tracking_code"]
            return
        time.sleep(0.2 * (attempt + 1))
    # The node gives up waiting: the caller hears the node's own code, and the case is kept to deliver.
    call.told, call.offline = new_tracking_code(NODE_PREFIX), True
    while True:
        try:
            reply = client.post(f"{url}/api/v1/cases", json=body(call, call.told), headers=headers, timeout=3)
        except httpx.HTTPError:
            tally.add(error=True)
            time.sleep(0.5)
            continue
        tally.add(server_error=reply.status_code >= 500)
        if reply.status_code in (200, 201):
            call.answered_201 = reply.json()["tracking_code"]
            return
        if reply.status_code == 409:  # offline code taken by another case: a new one, as the spool does
            call.told = new_tracking_code(NODE_PREFIX)
        time.sleep(0.5)


def run(calls: int, kills: int, clients: int, database_url: str | None) -> int:
    work = Path(tempfile.mkdtemp(prefix="didehban-drill-"))
    env = dict(os.environ)
    env.update(
        {
            "DIDEHBAN_DATABASE_URL": database_url or f"sqlite:///{work / 'drill.sqlite3'}",
            "DIDEHBAN_SECRET_KEY": "dGVzdC1zZWNyZXQta2V5LWZvci10aGUtZHJpbGwtMDA=",
            "DIDEHBAN_LOOKUP_KEY": "drill-lookup-key",
            "DIDEHBAN_SESSION_KEY": "drill-session-key",
            "DIDEHBAN_IVR_TOKEN": IVR_TOKEN,
            "DIDEHBAN_DATA_DIR": str(work / "var"),
            # The drill is about crashes, not throttling: the whole run is one client address.
            "DIDEHBAN_RATE_LIMIT_PER_ADDRESS": "1000000/minute",
            "DIDEHBAN_RATE_LIMIT_PER_CALLER": "1000/minute",
        }
    )
    backend = Backend(env, work)
    backend.start()
    rng = random.Random(1482)
    pending = [
        Call(
            call_id=f"drill-{uuid.uuid4().hex}",
            national_id=with_check_digit(f"{rng.randrange(10**8, 10**9):09d}"),
            number=f"0912{rng.randrange(10**7):07d}",
        )
        for _ in range(calls)
    ]
    tally = Tally()
    queue = list(pending)
    queue_lock = threading.Lock()

    def worker() -> None:
        with httpx.Client() as client:
            while True:
                with queue_lock:
                    if not queue:
                        return
                    call = queue.pop()
                file_case(client, backend.url, call, tally)

    started = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    # Kills spread over the run: wait until a share of the calls is placed, then kill and restart.
    for k in range(kills):
        target = calls * (k + 1) // (kills + 1)
        while calls - len(queue) < target and any(t.is_alive() for t in threads):
            time.sleep(0.02)
        time.sleep(rng.random() * 0.2)
        backend.kill()
        time.sleep(0.5)
        backend.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started

    # The checks, over HTTP as a caller would (status by the code they heard) and over the database.
    from sqlalchemy import create_engine, func, select

    from backend.models import Case

    engine = create_engine(env["DIDEHBAN_DATABASE_URL"])
    with engine.connect() as conn:
        rows = conn.execute(select(Case.call_id, func.count()).group_by(Case.call_id)).all()
    engine.dispose()
    per_call = dict(rows)
    lost = [c for c in pending if per_call.get(c.call_id, 0) == 0]
    doubled = [c for c in pending if per_call.get(c.call_id, 0) > 1]
    unresolved = []
    with httpx.Client() as client:
        headers = {"Authorization": f"Bearer {IVR_TOKEN}"}
        for call in pending:
            for code in {call.told, call.answered_201} - {None}:
                reply = client.get(
                    f"{backend.url}/api/v1/cases/{code}",
                    params={"caller_number": call.number},
                    headers=headers,
                    timeout=10,
                )
                while reply.status_code == 429:  # a polite client waits as told
                    time.sleep(float(reply.headers.get("Retry-After", "1")))
                    reply = client.get(
                        f"{backend.url}/api/v1/cases/{code}",
                        params={"caller_number": call.number},
                        headers=headers,
                        timeout=10,
                    )
                if reply.status_code != 200:
                    unresolved.append((call.call_id, code, reply.status_code))
    backend.stop()
    offline = sum(c.offline for c in pending)
    print(f"calls {calls}, clients {clients}, SIGKILLs {backend.kills}, {elapsed:.1f} s")
    print(f"POSTs {tally.posts}, transport errors {tally.errors}, 5xx answers {tally.server_errors}")
    print(f"callers told an offline code {offline}; cases {sum(per_call.values())}")
    print(f"lost {len(lost)}, duplicated {len(doubled)}, codes told that do not resolve {len(unresolved)}")
    for item in unresolved[:10]:
        print("  unresolved:", item)
    return 1 if lost or doubled or unresolved or tally.server_errors else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=1200)
    parser.add_argument("--kills", type=int, default=4)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    return run(args.calls, args.kills, args.clients, os.environ.get("DIDEHBAN_DATABASE_URL"))


if __name__ == "__main__":
    sys.exit(main())
