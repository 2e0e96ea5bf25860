"""Concurrent calls through the FastAGI server against a real backend.

    .venv/bin/python benchmarks/fastagi_load.py [--calls 50 100] [--burst] [--generators 2]
        [--agi-script 20] [--server-log FILE]

Starts the backend and the FastAGI server as separate processes (as in production), places N calls
at once (each a whole new-case call: menus, national ID, a recording, the code read back), and prints
completed calls, failures, per-command turnaround (time from Asterisk's reply to the server's next
command), the wait for the tracking code apart (from the reply to the recording menu to the command
that hands the code to the dial plan: what once waited for the backend), the FastAGI server's CPU
per call and peak RSS, and how long the backend took to have every case (the deliverer's work,
behind the calls).

Each simulated Asterisk plays every prompt for its real duration (the built prompt audio: run
`didehban prompts build` first), a second of typing per entry and a 5 s message, so N sessions are
N callers, not N bursts; `--burst` answers at once instead. The database is DIDEHBAN_DATABASE_URL if
set, else a new SQLite file. `--agi-script K` also runs K calls one after another through the
process-per-call script (agi_scripts/hotline.py) and prints its CPU per call.

What is measured, and by whom: the simulated Asterisk (this process, or `--generators K` processes
sharing the calls) is never the FastAGI server's process, so its work is not the server's CPU (read
from /proc for the server's pid alone) and cannot stall the server's loop. Turnaround is what
Asterisk sees: from its reply written to the server's next command read. The simulated Asterisk does
as little as it can between the two (prompt lengths and the prompt catalogue are read once, not per
command or per call), since any pause of its own would be counted as the server's. It also answers
the server's AMI line (MixMonitorMute, a login once), so the recording mute of the national ID
costs what it costs in production rather than a refused connection.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import functools
import gc
import multiprocessing
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

from ivr.phone import AMI_GREETING, ami_actions  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_stats(pid: int) -> tuple[float, float, int]:
    """(user CPU seconds, system CPU seconds, peak RSS bytes) of a running process, all threads."""
    ticks = os.sysconf("SC_CLK_TCK")
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    peak = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            peak = int(line.split()[1]) * 1024
    return int(fields[11]) / ticks, int(fields[12]) / ticks, peak


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a running process, all threads."""
    user, system, _ = proc_stats(pid)
    return user + system


TYPING = 1.0  # seconds a caller takes to type an entry after the prompt
MESSAGE = 5.0  # seconds of the canned message


@functools.cache
def prompt_seconds(path: str) -> float:
    import wave

    from prompts.paths import audio_dir, prompt_id_of

    if not path:
        return 0.0
    try:
        with wave.open(str(audio_dir() / f"{prompt_id_of(path)}.wav")) as w:
            return w.getnframes() / w.getframerate()
    except FileNotFoundError:
        return 0.0


@functools.lru_cache(maxsize=4096)
def heard_for(command: str) -> float:
    """How long Asterisk is busy with a command before it replies, as a caller would keep it."""
    import shlex

    args = shlex.split(command)
    verb = " ".join(args[:2]).upper()
    if verb == "STREAM FILE":
        return prompt_seconds(args[2])
    if verb == "EXEC PLAYBACK":  # several prompts in one command: "a&b&c"
        return sum(prompt_seconds(path) for path in args[2].split("&"))
    if verb == "GET DATA":
        return prompt_seconds(args[2]) + TYPING
    if verb == "EXEC READ":  # Read(var,a&b&c,...): the prompts, then the caller types
        return sum(prompt_seconds(path) for path in args[2].split(",")[1].split("&")) + TYPING
    if verb == "RECORD FILE":
        return MESSAGE
    if verb == "WAIT FOR":
        return TYPING
    return 0.0


async def fake_ami(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Asterisk's manager interface as the FastAGI server's recording mute uses it: every action
    (Login, MixMonitorMute) answered Success with its ActionID."""
    writer.write(AMI_GREETING)
    try:
        async for fields in ami_actions(reader):
            action_id = fields.get("ActionID", "")
            writer.write(f"Response: Success\r\nActionID: {action_id}\r\nMessage: done\r\n\r\n".encode())
    except (ConnectionError, asyncio.CancelledError):
        pass  # the server went, or the run is over
    finally:
        writer.close()


async def realistic_call(side, host: str, port: int, env: dict[str, str], burst: bool):
    """AsteriskSide.call, with each reply sent after the time the command really takes."""
    import time as clock

    reader, writer = await asyncio.open_connection(host, port)
    t = side.transcript
    try:
        writer.write(("".join(f"{k}: {v}\n" for k, v in env.items()) + "\n").encode())
        await writer.drain()
        replied_at = clock.perf_counter()
        while True:
            raw = await reader.readline()
            if not raw:
                break
            t.latencies.append(clock.perf_counter() - replied_at)
            line = raw.decode().rstrip("\n")
            t.commands.append(line)
            reply, close = side.reply_to(line)
            if not burst:
                await asyncio.sleep(heard_for(line))
            writer.write((reply if reply != "HANGUP" else "HANGUP").encode() + b"\n")
            await writer.drain()
            replied_at = clock.perf_counter()
            if close or reply == "HANGUP":
                break
    except ConnectionError:
        pass
    finally:
        writer.close()
    return t


def code_wait(t) -> float | None:
    """From the reply to the recording menu to the command handing the code to the dial plan."""
    menus = [i for i, c in enumerate(t.commands) if "recording-menu" in c]
    # SET VARIABLE alone, or EXEC MSet with the other variables set at the same moment.
    codes = [i for i, c in enumerate(t.commands) if "DIDEHBAN_TRACKING_CODE" in c]
    if not menus or not codes:
        return None
    return sum(t.latencies[menus[-1] + 1 : codes[0] + 1])


async def place(n: int, first: int, count: int, port: int, canned: Path, nid: str, burst: bool):
    """Calls first..first+count-1 of a run of n: (registered, failed, turnarounds, code waits)."""
    from ivr.phone import AsteriskSide, Script, environment
    from prompts.catalog import load_catalog

    spread = float(os.environ.get("FASTAGI_LOAD_SPREAD", "30"))
    load_catalog()  # once, before the clock: AsteriskSide reads it (cached) for every call
    # A collection of hundreds of calls' transcripts would pause this simulated Asterisk, and the
    # pause would count as the server's turnaround.
    gc.disable()

    async def one(i: int):
        items = ["1", "1", "2", f"{nid}#", "1", "words", "3", ""]
        side = AsteriskSide(Script(items), canned_recording=canned)
        env = environment(
            route="hotline", service="1482", caller=f"0912{i:07d}", unique_id=f"load-{n}-{i}", port=port
        )
        # Callers do not all dial in the same millisecond: spread over the first `--spread` seconds
        # (1 s: a burst of callers who then move through the menus together, prompt for prompt).
        await asyncio.sleep(0 if burst else spread * (i % n) / n)
        began = time.monotonic()  # CLOCK_MONOTONIC: comparable between the generator processes
        try:
            return await asyncio.wait_for(realistic_call(side, "127.0.0.1", port, env, burst), 600)
        finally:
            spans.append((began, time.monotonic()))

    spans: list[tuple[float, float]] = []

    try:
        results = await asyncio.gather(*(one(i) for i in range(first, first + count)), return_exceptions=True)
    finally:
        gc.enable()
    errors = [r for r in results if isinstance(r, BaseException)]
    if errors:
        print(f"  first failure: {errors[0]!r}", file=sys.stderr)
    ok = [
        r
        for r in results
        if not isinstance(r, BaseException) and r.variables.get("DIDEHBAN_OUTCOME") == "registered"
    ]
    waits = [w for r in ok if (w := code_wait(r)) is not None]
    latencies = [lat for r in ok for lat in r.latencies[1:]]
    return len(ok), count - len(ok), latencies, waits, spans


def concurrency(spans: list[tuple[float, float]]) -> tuple[int, float]:
    """(most calls in progress at once, seconds during which every call was in progress)."""
    events = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    current = peak = 0
    full_since: float | None = None
    full = 0.0
    for moment, step in events:
        current += step
        peak = max(peak, current)
        if current == len(spans) and full_since is None:
            full_since = moment
        elif current < len(spans) and full_since is not None:
            full += moment - full_since
            full_since = None
    return peak, full


def place_in_process(n: int, first: int, count: int, port: int, canned: Path, nid: str, burst: bool):
    """A generator process's share of the calls (--generators)."""
    return asyncio.run(place(n, first, count, port, canned, nid, burst))


async def place_all(
    n: int, generators: int, port: int, ami_port: int, canned: Path, nid: str, burst: bool
) -> tuple[int, int, list[float], list[float], list[tuple[float, float]]]:
    """n calls from `generators` processes (1: this one), while this process answers AMI."""
    ami = await asyncio.start_server(fake_ami, "127.0.0.1", ami_port)
    try:
        if generators <= 1:
            return await place(n, 0, n, port, canned, nid, burst)
        shares = [n // generators + (1 if g < n % generators else 0) for g in range(generators)]
        starts = [sum(shares[:g]) for g in range(generators)]
        loop = asyncio.get_running_loop()
        with concurrent.futures.ProcessPoolExecutor(
            generators, mp_context=multiprocessing.get_context("spawn")
        ) as pool:
            parts = await asyncio.gather(
                *(
                    loop.run_in_executor(pool, place_in_process, n, start, share, port, canned, nid, burst)
                    for start, share in zip(starts, shares, strict=True)
                )
            )
        return (
            sum(p[0] for p in parts),
            sum(p[1] for p in parts),
            [lat for p in parts for lat in p[2]],
            [w for p in parts for w in p[3]],
            [span for p in parts for span in p[4]],
        )
    finally:
        ami.close()


def _count_cases(database_url: str, call_prefix: str) -> int:
    from sqlalchemy import create_engine, text

    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            return conn.execute(
                text("SELECT count(*) FROM case_file WHERE call_id LIKE :p"), {"p": call_prefix + "%"}
            ).scalar()
    finally:
        engine.dispose()


def agi_script_cpu(calls: int, env: dict[str, str], canned: Path, nid: str) -> float:
    """CPU seconds per whole new-case call of the process-per-call script (the child's user+sys)."""
    import resource

    from ivr.phone import AsteriskSide, Script, environment

    # As installed (scripts/bootstrap.sh byte-compiles the project): a process that may not write
    # __pycache__ (Asterisk's user, or PYTHONDONTWRITEBYTECODE) would otherwise compile every call.
    packages = ["agi_scripts", "ivr", "domain", "prompts"]
    subprocess.run([sys.executable, "-m", "compileall", "-q", *packages], cwd=ROOT, check=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    # Call -1 is not counted: the first call after a service profile changes re-reads the YAML files
    # (agi_scripts.call_profiles); every later call reads the copy.
    for i in range(-1, calls):
        if i == 0:
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
        side = AsteriskSide(
            Script(["1", "1", "2", f"{nid}#", "1", "words", "3", ""]), canned_recording=canned
        )
        proc = subprocess.Popen(
            [sys.executable, "-m", "agi_scripts.hotline", "1482"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
            bufsize=1,
        )
        block = environment(
            route="hotline", service="1482", caller="09121234567", unique_id=f"agi-{i}", port=0
        )
        block = {k: v for k, v in block.items() if k not in ("agi_network", "agi_network_script")}
        proc.stdin.write("".join(f"{k}: {v}\n" for k, v in block.items()) + "\n")
        proc.stdin.flush()
        while line := proc.stdout.readline():
            reply, close = side.reply_to(line.rstrip("\n"))
            proc.stdin.write(reply + "\n")
            proc.stdin.flush()
            if close:
                break
        proc.stdin.close()
        proc.wait(30)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime) / calls


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, nargs="+", default=[50, 100])
    parser.add_argument("--burst", action="store_true", help="reply at once (no prompt durations)")
    parser.add_argument("--agi-script", type=int, default=0, help="calls through the per-call script")
    parser.add_argument(
        "--generators", type=int, default=1, help="processes playing Asterisk, sharing the calls"
    )
    parser.add_argument(
        "--spread",
        type=float,
        default=30.0,
        help="seconds over which the calls start (default 30: a new-case call lasts about 100 s, so "
        "every call is in progress at once for about 70 s; 1: callers who move through the menus "
        "in step, prompt for prompt)",
    )
    parser.add_argument("--server-log", type=Path, help="the FastAGI server's log (stderr) to this file")
    args = parser.parse_args()
    os.environ["FASTAGI_LOAD_SPREAD"] = str(args.spread)  # for the generator processes too
    from cryptography.fernet import Fernet

    from backend.core.security import new_secrets
    from domain.national_id import with_check_digit

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        env = {k: v for k, v in os.environ.items() if not k.startswith("DIDEHBAN_")}
        env.update(new_secrets())
        backend_port, agi_port, ami_port = free_port(), free_port(), free_port()
        env.update(
            {
                "DIDEHBAN_DATABASE_URL": os.environ.get("DIDEHBAN_DATABASE_URL")
                or f"sqlite:///{tmp_path / 'load.sqlite3'}",
                "DIDEHBAN_BACKEND_URL": f"http://127.0.0.1:{backend_port}",
                "DIDEHBAN_RECORDINGS_DIR": str(tmp_path / "recordings"),
                "DIDEHBAN_SPOOL_DIR": str(tmp_path / "spool"),
                "DIDEHBAN_SMS_FILE": str(tmp_path / "sms.log"),
                "DIDEHBAN_BACKEND_TIMEOUT_SECONDS": "10",
                "DIDEHBAN_NODE_PREFIX": "21",  # every IVR node needs its own
                "DIDEHBAN_SPOOL_KEY": Fernet.generate_key().decode(),
                # The simulated Asterisk's manager interface (fake_ami), for the recording mute.
                "DIDEHBAN_AMI_HOST": "127.0.0.1",
                "DIDEHBAN_AMI_PORT": str(ami_port),
                "DIDEHBAN_AMI_USERNAME": "didehban",
                "DIDEHBAN_AMI_SECRET": "load",
            }
        )
        env["DIDEHBAN_PROMPTS_DIR"] = os.environ.get("DIDEHBAN_PROMPTS_DIR") or str(ROOT / "prompts")
        os.environ.update(env)
        from prompts.paths import prompt_file

        if not args.burst and not prompt_seconds(prompt_file("main-menu")):
            # Without the audio every prompt would last 0 s: a burst, not the realistic callers asked.
            print("no prompt audio: run `didehban prompts build` first (or use --burst)", file=sys.stderr)
            return 2
        cli = [sys.executable, "-m", "backend.cli"]
        backend = subprocess.Popen(
            [*cli, "serve", "--port", str(backend_port)],
            env=env,
            cwd=tmp,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        server_log = open(args.server_log, "w") if args.server_log else subprocess.DEVNULL  # noqa: SIM115
        fastagi = subprocess.Popen(
            [*cli, "fastagi", "--port", str(agi_port)],
            env=env,
            cwd=tmp,
            stdout=server_log,
            stderr=server_log,
        )
        # For a profiler: `py-spy record --pid N` while the calls run.
        print(f"FastAGI server pid {fastagi.pid}", file=sys.stderr, flush=True)
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
                f"database: {env['DIDEHBAN_DATABASE_URL'].split(':', 1)[0]}; "
                + ("replies at once (--burst)" if args.burst else "prompts for their real duration")
            )
            print(
                f"{'calls':>6} {'done':>6} {'failed':>6} {'wall s':>7} {'cmd p50 ms':>10} {'p99 ms':>7} "
                f"{'code p50 ms':>11} {'p99 ms':>7} {'CPU ms/call':>11} {'user+sys':>10} {'RSS MB':>7} "
                f"{'backend has all s':>17} {'load avg':>8}"
            )
            for n in args.calls:
                user_before, sys_before, _ = proc_stats(fastagi.pid)
                started = time.perf_counter()
                done, failed, lat, waits, spans = asyncio.run(
                    place_all(n, args.generators, agi_port, ami_port, canned, nid, args.burst)
                )
                wall = time.perf_counter() - started
                # The cases reach the backend behind the calls: until it answers for the last one.
                first = f"load-{n}-"
                for _ in range(600):
                    count = _count_cases(env["DIDEHBAN_DATABASE_URL"], first)
                    if count >= done:
                        break
                    time.sleep(0.2)
                delivered_after = time.perf_counter() - started - wall
                # The server's CPU for the whole calls: their delivery to the backend included.
                user_after, sys_after, rss = proc_stats(fastagi.pid)
                user_ms = (user_after - user_before) * 1000 / n
                sys_ms = (sys_after - sys_before) * 1000 / n
                cpu_ms = user_ms + sys_ms
                q = statistics.quantiles(lat, n=100) if len(lat) > 2 else [0] * 99
                w = statistics.quantiles(waits, n=100) if len(waits) > 2 else [0] * 99
                print(
                    f"{n:>6} {done:>6} {failed:>6} {wall:>7.1f} {q[49] * 1000:>10.2f} {q[98] * 1000:>7.2f} "
                    f"{w[49] * 1000:>11.2f} {w[98] * 1000:>7.2f} {cpu_ms:>11.2f} "
                    f"{f'{user_ms:.1f}+{sys_ms:.1f}':>10} "
                    f"{rss / 2**20:>7.1f} {delivered_after:>17.1f} {os.getloadavg()[0]:>8.2f}"
                )
                peak, full = concurrency(spans)
                print(
                    f"  calls in progress at once: at most {peak} of {n}, all {n} for {full:.0f} s "
                    f"(started over {0 if args.burst else args.spread:g} s); "
                    f"{len(lat) / max(done, 1) + 1:.0f} commands a registered call"
                )
            if args.agi_script:
                per_call = agi_script_cpu(args.agi_script, env, canned, nid)
                print(f"process-per-call script: {per_call * 1000:.0f} ms CPU per whole new-case call")
        finally:
            for p in (fastagi, backend):
                p.terminate()
                p.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
