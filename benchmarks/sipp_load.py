"""Concurrent real SIP calls through the whole stack: sipp -> Asterisk -> FastAGI -> backend.

    .venv/bin/python benchmarks/sipp_load.py [--calls 50 100]     (as root: it starts the PBX)

Each call is a whole registration: menus by RFC 4733 DTMF, a national ID, a spoken message streamed
as RTP, the tracking code read back. Prints completed and failed calls, cases created, Asterisk's
CPU seconds and peak memory, and the AGI turnaround read on the wire (benchmarks/agi_wire.py: the
packets between Asterisk and the FastAGI server on loopback, timed by the kernel, so neither does any
extra work): the FastAGI server's (from each AGI reply to the next command, on the same call: the
agi p50/p95/p99 columns) and Asterisk's own (from a command to its reply, for commands that return
at once).

sipp's "successful call" only means the caller's script ran to its BYE: it sends keys on a fixed
clock and does not listen. So after each run the script also says where every call went: the
FastAGI server's outcome for each call (and, for calls that filed no case, the step they ended
at), the node's spool (pending, dead, delivered), the PBX fallback folder, and the errors in
Asterisk's and the FastAGI server's logs. `--keep` keeps the work folder (logs, spool, database).

The parts start as in production (tests/pbx/conftest.py: each in its own session, at the CPU
priority ivr.cpu_priority gives it: the FastAGI server at -5, Asterisk and the backend at 0); sipp,
which plays the callers' phones, runs at -5 too, so its own lag is not counted as the hotline's.
After each run the script prints each part's priority and how long the FastAGI server's and the
backend's threads were runnable but waiting for a CPU (/proc/PID/task/*/schedstat). `--setting
DIDEHBAN_FASTAGI_NICE=0` (any DIDEHBAN_ setting) runs a variant to compare.

`--agi-debug` also measures it the old way, from Asterisk's AGI debug lines (they cost Asterisk CPU
and overflow its log queue at 500 calls). Those lines carry keys, national IDs and tracking codes:
they go to a log channel of their own (`logger add channel`), only for the run, in the temporary
folder, never into messages.log (logger.conf keeps no verbose lines there, R9).
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# "[2026-11-23 14:40:01.123] VERBOSE[4242][C-00000001] res_agi.c: <PJSIP/tester-00000001>AGI Tx >> ..."
LINE = re.compile(r"^\[(?P<ts>[\d-]+ [\d:.]+)\].*<(?P<chan>[^>]+)>AGI (?P<dir>Tx|Rx) ")
AGI_LOG = "agi-latency.log"  # a channel of its own, for the run only (see the module's text)
ENDED = re.compile(r"\] ended: (?P<outcome>\S+) via (?P<path>\S*)")


def agi_latencies(log_text: str) -> list[float]:
    import datetime as dt

    last_tx: dict[str, dt.datetime] = {}
    out = []
    for line in log_text.splitlines():
        m = LINE.match(line)
        if not m:
            continue
        at = dt.datetime.strptime(m["ts"], "%Y-%m-%d %H:%M:%S.%f")
        if m["dir"] == "Tx":
            last_tx[m["chan"]] = at
        elif m["chan"] in last_tx:
            out.append((at - last_tx.pop(m["chan"])).total_seconds())
    return out


def quantiles(samples: list[float]) -> list[float]:
    return statistics.quantiles(samples, n=100) if len(samples) > 2 else [0.0] * 99


def percentiles(samples: list[float], what: str = "turns") -> str:
    q = quantiles(samples)
    p50, p95, p99 = (q[i] * 1000 for i in (49, 94, 98))
    return f"p50 {p50:.2f} ms, p95 {p95:.2f}, p99 {p99:.2f} ({len(samples)} {what})"


def where_calls_went(stack, fastagi_offset: int, messages_offset: int, cdr_offset: int) -> list[str]:
    """Lines saying what became of this run's calls: Asterisk's own word on each (the outcome the
    dial plan wrote into the CDR, "fallback" for a call the FastAGI server never took), the FastAGI
    server's log (each call's outcome and path), the spool, the fallback folder and both logs'
    errors."""
    import csv
    from collections import Counter

    from ivr.spool import Spool

    fastagi = (stack.work / "fastagi.log").read_text(errors="replace")[fastagi_offset:]
    outcomes: Counter[str] = Counter()
    ended_at: Counter[str] = Counter()
    for m in ENDED.finditer(fastagi):
        outcomes[m["outcome"]] += 1
        if m["outcome"] not in ("registered", "message"):
            ended_at[m["path"].rsplit(">", 1)[-1] or "the greeting"] += 1
    errors = Counter(
        line.split(": ", 1)[-1][:90]
        for line in fastagi.splitlines()
        if " ERROR " in line or " WARNING " in line or " CRITICAL " in line
    )
    mute_failures = fastagi.count("could not mute the call recording")
    runtime = Path(stack.env["DIDEHBAN_PBX_RUNTIME"])
    pbx_outcomes: Counter[str] = Counter()
    master = runtime / "log" / "cdr-csv" / "Master.csv"
    if master.exists():
        with master.open(newline="") as f:
            f.seek(cdr_offset)
            for row in csv.reader(f):
                # userfield: service|outcome|tracking code|path (the h extension writes it)
                pbx_outcomes[[*row[-1].split("|"), "", ""][1] or "(none)"] += 1
    messages = runtime / "log" / "messages.log"
    ast_errors: Counter[str] = Counter()
    if messages.exists():
        with messages.open(errors="replace") as f:
            f.seek(messages_offset)
            for line in f:
                if "WARNING" in line or "ERROR" in line:
                    # "[ts] WARNING[lwp][callid] file.c: text": the source and the text, not the ids
                    text = re.sub(r"^\[[^\]]*\] (\w+)\[[^\]]*\](\[[^\]]*\])? ", r"\1 ", line.strip())
                    ast_errors[re.sub(r"\d+", "N", text)[:110]] += 1
    spool = Spool(Path(stack.env["DIDEHBAN_SPOOL_DIR"]), "31", stack.env["DIDEHBAN_SPOOL_KEY"])
    try:
        counts = spool.counts()
        last_errors = Counter(e.last_error for e in spool.entries() if e.last_error)
    finally:
        spool.close()
    fallback = runtime / "spool" / "fallback"
    fallback_files = len(list(fallback.glob("*.wav"))) if fallback.is_dir() else 0
    lines = []
    if not pbx_outcomes:
        lines.append(no_calls_reached_asterisk(stack))
    lines += [
        f"  PBX outcomes (CDR): {dict(pbx_outcomes.most_common())} ({sum(pbx_outcomes.values())} calls)",
        f"  FastAGI outcomes: {dict(outcomes.most_common())} ({sum(outcomes.values())} calls ended)",
        f"  no case filed, ended at: {dict(ended_at.most_common(8))}",
        f"  spool: pending {counts.get('pending', 0)}, dead {counts.get('dead', 0)}, "
        f"delivered (all runs) {counts.get('delivered', 0)}; fallback messages waiting: {fallback_files}",
        f"  recording mute failures: {mute_failures}",
    ]
    lines += [f"  FastAGI log x{n}: {text}" for text, n in errors.most_common(6)]
    lines += [f"  spool last error x{n}: {text}" for text, n in last_errors.most_common(3)]
    lines += [f"  Asterisk log x{n}: {text}" for text, n in ast_errors.most_common(8)]
    return lines


def no_calls_reached_asterisk(stack) -> str:
    """Why a run's calls may have left no CDR at all: seen once, a first 500-call run in which every
    sipp scenario failed. Names every process that holds the SIP port (another PBX, e.g. a second
    tests/pbx run with the same DIDEHBAN_TEST_PBX_PORT_SHIFT, takes the calls or the port) and
    Asterisk's view of its transports."""
    import subprocess

    holders = subprocess.run(
        ["ss", "-Hulpn", f"sport = :{stack.sip_port}"], capture_output=True, text=True, check=False
    ).stdout.split()
    users = sorted({word for word in holders if word.startswith("users:")})
    transports = stack.cli("pbx", "cli", "pjsip show transports", timeout=30).stdout.strip().splitlines()
    return (
        f"  NO CDR for this run: Asterisk logged no call. UDP {stack.sip_port} held by {users or 'nobody'}; "
        f"Asterisk's transports: {[line.strip() for line in transports if 'udp' in line.lower()]}"
    )


def waiting_for_delivery(stack) -> int:
    """Cases the node still holds: pending in its spool, or messages in the PBX fallback folder."""
    from ivr.spool import Spool

    spool = Spool(Path(stack.env["DIDEHBAN_SPOOL_DIR"]), "31", stack.env["DIDEHBAN_SPOOL_KEY"])
    try:
        pending = spool.counts().get("pending", 0)
    finally:
        spool.close()
    fallback = Path(stack.env["DIDEHBAN_PBX_RUNTIME"]) / "spool" / "fallback"
    return pending + (len(list(fallback.glob("*.wav"))) if fallback.is_dir() else 0)


def proc_cpu_rss(pid: int) -> tuple[float, int]:
    import os

    ticks = os.sysconf("SC_CLK_TCK")
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    peak = next(
        int(line.split()[1]) * 1024
        for line in Path(f"/proc/{pid}/status").read_text().splitlines()
        if line.startswith("VmHWM:")
    )
    return (int(fields[11]) + int(fields[12])) / ticks, peak


def cpu_wait(pid: int) -> tuple[float, int]:
    """Seconds the process's threads spent runnable but waiting for a CPU, and how many times they
    ran (/proc/PID/task/*/schedstat: on-CPU ns, run-queue wait ns, timeslices)."""
    waited, slices = 0, 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            _, delay, runs = (task / "schedstat").read_text().split()
        except (OSError, ValueError):
            continue  # the thread ended meanwhile
        waited, slices = waited + int(delay), slices + int(runs)
    return waited / 1e9, slices


def priorities(pids: dict[str, int]) -> str:
    """Each part's nice value and its session's (autogroup) nice, as the kernel has them."""
    from ivr.cpu_priority import session_nice

    out = []
    for name, pid in pids.items():
        nice = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])
        out.append(f"{name} {nice} (session {session_nice(pid)})")
    return ", ".join(out)


# sipp plays 500 callers' phones, which are not on this machine: it goes ahead of the hotline's
# parts for the CPU, so the figures are the hotline's lag, not sipp's own behind its scripted clock.
SIPP_NICE = -5


def outside_world_first(nice: int) -> None:
    """This process's main thread (sipp, started from it, inherits the value) and its session's
    group (ivr.cpu_priority) at `nice`; the hotline's parts run in sessions of their own."""
    os.setpriority(os.PRIO_PROCESS, 0, nice)
    autogroup = Path("/proc/self/autogroup")
    if autogroup.exists():
        autogroup.write_text(str(nice))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, nargs="+", default=[50, 100])
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs, spool, database)")
    parser.add_argument(
        "--agi-debug",
        action="store_true",
        help="also time AGI from Asterisk's debug lines (at 500 calls they cost Asterisk CPU and overflow "
        "its log queue; the wire measurement costs it nothing)",
    )
    parser.add_argument(
        "--setting",
        action="append",
        default=[],
        metavar="DIDEHBAN_NAME=VALUE",
        help="a setting for every part, to compare with the defaults (e.g. DIDEHBAN_FASTAGI_NICE=0)",
    )
    # Kept for old command lines: Asterisk's AGI debug is now off unless --agi-debug.
    parser.add_argument("--no-agi-latency", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    from sqlalchemy import func, select

    from backend.models import Case
    from benchmarks.agi_wire import AgiWire, MuteWire
    from domain.national_id import with_check_digit
    from ivr.pbx.sipcall import Keys, Speak, Wait, run_sipp, scenario, speech_pcap
    from ivr.pbx.timing import total
    from tests.pbx.conftest import PORT_SHIFT, launch, shutdown

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tempfile.mkdtemp(prefix="sipp-load-")) if args.keep else Path(tmp)
        variant = dict(setting.split("=", 1) for setting in args.setting)
        if variant:
            print(f"settings: {variant}")
        stack = launch(work, settings=variant)
        try:
            runtime = Path(stack.env["DIDEHBAN_PBX_RUNTIME"])
            pid = int((runtime / "run" / "asterisk.pid").read_text())
            if args.agi_debug:
                stack.cli("pbx", "cli", f"logger add channel {AGI_LOG} verbose")
                stack.cli("pbx", "cli", "agi set debug on")
            speech = work / "speech.pcap"
            seconds = speech_pcap("سلام. در مرکز نگهداری کودکان به بچه ها غذای کافی نمی دهند.", speech)
            nid = with_check_digit("001354241")
            actions = [
                Wait(1.5),
                Keys("1"),
                Wait(1.0),
                Keys("1"),
                Wait(1.0),
                Keys("2"),
                Wait(1.5),
                Keys(nid + "#"),
                Wait(1.2),
                Keys("1"),
                Wait(total("record-instructions", "beep") + 0.8),
                Speak(speech, seconds),
                Keys("#"),
                Wait(1.0),
                Keys("3"),
                Wait(total("case-registered", "your-tracking-code-is") + 9.0),
            ]
            xml = scenario(actions, caller_hangs_up=True)
            log = runtime / "log" / AGI_LOG
            messages = runtime / "log" / "messages.log"
            print(
                f"{'calls':>6} {'done':>6} {'failed':>6} {'cases':>6} {'wall s':>7} {'ast CPU s':>9} "
                f"{'ast RSS MB':>10} {'agi p50 ms':>10} {'p95 ms':>7} {'p99 ms':>7} {'cases in s':>10} "
                f"{'load avg':>8}"
            )
            for n in args.calls:
                with stack.session() as s:
                    before = s.scalar(select(func.count(Case.id)))
                offset = log.stat().st_size if log.exists() else 0
                messages_offset = messages.stat().st_size if messages.exists() else 0
                fastagi_offset = len((work / "fastagi.log").read_text(errors="replace"))
                cdr = runtime / "log" / "cdr-csv" / "Master.csv"
                cdr_offset = cdr.stat().st_size if cdr.exists() else 0
                cpu0, _ = proc_cpu_rss(pid)
                servers = {name: stack.processes[name].pid for name in ("fastagi", "backend")}
                others0 = {name: proc_cpu_rss(server)[0] for name, server in servers.items()}
                waits0 = {name: cpu_wait(server) for name, server in servers.items()}
                sipp0 = resource.getrusage(resource.RUSAGE_CHILDREN)
                self0 = resource.getrusage(resource.RUSAGE_SELF)
                wire = AgiWire(int(stack.env["DIDEHBAN_FASTAGI_PORT"])).start()
                mutes = MuteWire(int(stack.env["DIDEHBAN_AMI_PORT"])).start()
                started = time.perf_counter()
                outside_world_first(SIPP_NICE)
                try:
                    result = run_sipp(
                        xml,
                        service="1482",
                        user="tester",
                        sip_port=stack.sip_port,
                        workdir=work,
                        control_port=8900 + n + PORT_SHIFT,
                        media_port=17000 + 10 * PORT_SHIFT,
                        calls=n,
                        rate=n,
                        timeout_s=300,
                    )
                finally:
                    outside_world_first(0)
                wall = time.perf_counter() - started
                wire.stop()
                self1 = resource.getrusage(resource.RUSAGE_SELF)
                load = os.getloadavg()
                cpu1, rss = proc_cpu_rss(pid)
                sipp1 = resource.getrusage(resource.RUSAGE_CHILDREN)
                others = {name: proc_cpu_rss(server)[0] - others0[name] for name, server in servers.items()}
                waits = {
                    name: tuple(a - b for a, b in zip(cpu_wait(server), waits0[name], strict=True))
                    for name, server in servers.items()
                }
                sipp_cpu = sipp1.ru_utime + sipp1.ru_stime - sipp0.ru_utime - sipp0.ru_stime
                done = int(re.search(r"Successful call\s+\|\s+\d+\s+\|\s+(\d+)", result.stdout).group(1))
                failed = int(re.search(r"Failed call\s+\|\s+\d+\s+\|\s+(\d+)", result.stdout).group(1))
                # The node spools each case and delivers it behind the call (issue 13): wait for
                # the deliverer, up to two minutes, before counting: until every call has a case, or
                # the spool has nothing pending and the fallback folder is empty (a call that never
                # reached the recording has no case to wait for).
                for _ in range(240):
                    with stack.session() as s:
                        cases = s.scalar(select(func.count(Case.id))) - before
                    if cases >= done or not waiting_for_delivery(stack):
                        break
                    time.sleep(0.5)
                delivered_after = time.perf_counter() - started - wall
                mutes.stop()  # after the wait: an answer that came after its call ended still counts
                q = quantiles(wire.fastagi)
                print(
                    f"{n:>6} {done:>6} {failed:>6} {cases:>6} {wall:>7.1f} {cpu1 - cpu0:>9.2f} "
                    f"{rss / 2**20:>10.1f} {q[49] * 1000:>10.2f} {q[94] * 1000:>7.2f} {q[98] * 1000:>7.2f} "
                    f"{delivered_after:>10.1f} {load[0]:>8.2f}",
                    flush=True,
                )
                went = [
                    f"  AGI on the wire: FastAGI turnaround {percentiles(wire.fastagi)}; Asterisk's reply to "
                    f"commands that return at once {percentiles(wire.asterisk)}",
                ]
                went.append(
                    f"  AMI MixMonitorMute (the recording muted for the national ID) answered in "
                    f"{percentiles(mutes.answered, 'actions')}, {len(mutes.sent)} never answered"
                )
                slowest = sorted(wire.fastagi_by_verb.items(), key=lambda kv: -sum(kv[1]))[:5]
                went += [f"    before {verb}: {percentiles(turns)}" for verb, turns in slowest]
                if log.exists():
                    with log.open() as f:
                        f.seek(offset)
                        debug = agi_latencies(f.read())
                    went.append(f"  AGI from Asterisk's debug lines: {percentiles(debug)}")
                went += where_calls_went(stack, fastagi_offset, messages_offset, cdr_offset)
                went.append(
                    f"  CPU s during the calls: Asterisk {cpu1 - cpu0:.1f}, FastAGI {others['fastagi']:.1f}, "
                    f"backend {others['backend']:.1f}, sipp {sipp_cpu:.1f}, this script (the wire capture) "
                    f"{self1.ru_utime + self1.ru_stime - self0.ru_utime - self0.ru_stime:.1f} "
                    f"(2 cores x {wall:.0f} s = {2 * wall:.0f}); load average {load[0]:.2f} {load[1]:.2f} "
                    f"{load[2]:.2f}; Asterisk {1000 * (cpu1 - cpu0) / (n * wall):.2f} ms CPU a call-second"
                )
                parts = {"Asterisk": pid, **servers, "this script": os.getpid()}
                went.append(
                    "  waited for a CPU (runnable, not running): "
                    + ", ".join(
                        f"{name} {waited:.2f} s, {1000 * waited / max(slices, 1):.2f} ms a run"
                        for name, (waited, slices) in waits.items()
                    )
                    + f"; nice: {priorities(parts)}, sipp {SIPP_NICE} (and its session: the callers first)"
                )
                print("\n".join(went), flush=True)
        finally:
            if args.agi_debug:
                stack.cli("pbx", "cli", "agi set debug off")
                stack.cli("pbx", "cli", f"logger remove channel {AGI_LOG}")
            shutdown(stack)
            (runtime / "log" / AGI_LOG).unlink(missing_ok=True)  # keys and national IDs
            if args.keep:
                print(f"work folder kept: {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
