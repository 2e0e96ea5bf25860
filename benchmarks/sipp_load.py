"""Concurrent real SIP calls through the whole stack: sipp -> Asterisk -> FastAGI -> backend.

    .venv/bin/python benchmarks/sipp_load.py [--calls 50 100]     (as root: it starts the PBX)

Each call is a whole registration: menus by RFC 4733 DTMF, a national ID, a spoken message streamed
as RTP, the tracking code read back. Prints completed and failed calls, cases created, Asterisk's
CPU seconds and peak memory, and the FastAGI per-command latency as Asterisk saw it (from each AGI
reply it sent to the next command it received, on the same channel).
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

LINE = re.compile(r"^\[(?P<ts>[\d-]+ [\d:.]+)\].*<(?P<chan>[^>]+)>AGI (?P<dir>Tx|Rx) ")


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


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, nargs="+", default=[50, 100])
    args = parser.parse_args()
    from sqlalchemy import func, select

    from backend.models import Case
    from domain.national_id import with_check_digit
    from ivr.pbx.sipcall import Keys, Speak, Wait, run_sipp, scenario, speech_pcap
    from ivr.pbx.timing import total
    from tests.pbx.conftest import launch, shutdown

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        stack = launch(work)
        try:
            pid = int((Path(stack.env["DIDEHBAN_PBX_RUNTIME"]) / "run" / "asterisk.pid").read_text())
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
            log = Path(stack.env["DIDEHBAN_PBX_RUNTIME"]) / "log" / "messages.log"
            print(
                f"{'calls':>6} {'done':>6} {'failed':>6} {'cases':>6} {'wall s':>7} {'ast CPU s':>9} "
                f"{'ast RSS MB':>10} {'agi p50 ms':>10} {'p95 ms':>7} {'p99 ms':>7} {'cases in s':>10}"
            )
            for n in args.calls:
                with stack.session() as s:
                    before = s.scalar(select(func.count(Case.id)))
                offset = log.stat().st_size if log.exists() else 0
                cpu0, _ = proc_cpu_rss(pid)
                started = time.perf_counter()
                result = run_sipp(
                    xml,
                    service="1482",
                    user="tester",
                    sip_port=stack.sip_port,
                    workdir=work,
                    control_port=8900 + n,
                    media_port=17000,
                    calls=n,
                    rate=n,
                    timeout_s=300,
                )
                wall = time.perf_counter() - started
                cpu1, rss = proc_cpu_rss(pid)
                done = int(re.search(r"Successful call\s+\|\s+\d+\s+\|\s+(\d+)", result.stdout).group(1))
                failed = int(re.search(r"Failed call\s+\|\s+\d+\s+\|\s+(\d+)", result.stdout).group(1))
                # The node spools each case and delivers it behind the call (issue 13): wait for
                # the deliverer, up to two minutes, before counting.
                for _ in range(240):
                    with stack.session() as s:
                        cases = s.scalar(select(func.count(Case.id))) - before
                    if cases >= done:
                        break
                    time.sleep(0.5)
                delivered_after = time.perf_counter() - started - wall
                with log.open() as f:
                    f.seek(offset)
                    lat = agi_latencies(f.read())
                q = statistics.quantiles(lat, n=100) if len(lat) > 2 else [0.0] * 99
                print(
                    f"{n:>6} {done:>6} {failed:>6} {cases:>6} {wall:>7.1f} {cpu1 - cpu0:>9.2f} "
                    f"{rss / 2**20:>10.1f} {q[49] * 1000:>10.2f} {q[94] * 1000:>7.2f} {q[98] * 1000:>7.2f} "
                    f"{delivered_after:>10.1f}",
                    flush=True,
                )
        finally:
            shutdown(stack)
    return 0


if __name__ == "__main__":
    sys.exit(main())
