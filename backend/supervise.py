"""`didehban up`: the whole system on one machine, for the demo and small installs.

Starts the backend, the FastAGI server, the scheduler, the transcriber and, where this machine can
run it, the PBX and its AMI listener; prefixes each one's output with its name; restarts a part that
dies (with back-off); stops everything on Ctrl-C. Larger installs run the same commands under systemd.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

from ivr.cpu_priority import BATCH_NICE, set_priority


@dataclass
class Part:
    name: str
    argv: list[str]
    process: subprocess.Popen | None = None
    restarts: int = 0
    started_at: float = 0.0
    pumps: list[threading.Thread] = field(default_factory=list)
    nice: int = 0  # its CPU priority (ivr.cpu_priority); the FastAGI server sets its own


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("up", help="start the whole system on this machine (backend, IVR, scheduler, PBX)")
    p.add_argument("--no-pbx", action="store_true", help="do not start Asterisk (no root or no mmdebstrap)")
    p.add_argument(
        "--test-phones", action="store_true", help="PBX with the test phones (make run: development only)"
    )
    p.set_defaults(func=_up)


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "didehban_cli", *args]


def _pump(part: Part, stream) -> None:
    for line in iter(stream.readline, ""):
        sys.stdout.write(f"[{part.name:9}] {line}")
        sys.stdout.flush()


def _start(part: Part) -> None:
    part.process = subprocess.Popen(
        part.argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
        start_new_session=True,  # Ctrl-C goes to us; we stop the parts in order
    )
    part.started_at = time.monotonic()
    if part.nice:
        set_priority(part.process.pid, part.nice)  # before the part starts threads of its own
    pump = threading.Thread(target=_pump, args=(part, part.process.stdout), daemon=True)
    pump.start()
    part.pumps = [pump]


def _stop(part: Part, timeout: float = 10.0) -> None:
    proc = part.process
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def can_run_pbx() -> tuple[bool, str]:
    if os.geteuid() != 0:
        return False, "the PBX root needs root (mmdebstrap, chroot, mount)"
    if shutil.which("mmdebstrap") is None:
        return False, "mmdebstrap is not installed (scripts/bootstrap.sh run installs it)"
    return True, ""


def _up(args: argparse.Namespace) -> int:
    from backend.core.config import get_settings

    settings = get_settings()
    from didehban_cli import available_commands  # the command above both sides starts each part

    available = available_commands()
    pbx = False
    if not args.no_pbx and "pbx" in available:
        ok, why = can_run_pbx()
        if ok:
            print("starting the PBX (the first run builds its Debian root: about a minute)...", flush=True)
            pbx_up = ["pbx", "up", *(["--test-phones"] if args.test_phones else [])]
            pbx = subprocess.run(_cli(*pbx_up), check=False).returncode == 0
            if not pbx:
                print("the PBX did not start: the rest runs without it", flush=True)
        else:
            print(f"not starting the PBX: {why}", flush=True)
    if pbx:
        # Asterisk sees the shared folders at /srv/ivr inside its root: tell the FastAGI server so.
        os.environ.setdefault("DIDEHBAN_PBX_RECORDINGS_DIR", "/srv/ivr/recordings")
        os.environ.setdefault("DIDEHBAN_SOUNDS_DIR_ON_PBX", "/srv/ivr/sounds")

    parts = [Part("backend", _cli("serve"))]
    if "fastagi" in available:
        parts.append(Part("fastagi", _cli("fastagi")))
    if "scheduler" in available:
        parts.append(Part("scheduler", _cli("scheduler")))
    if "transcriber" in available:
        parts.append(Part("transcriber", _cli("transcriber")))
    if pbx and "ami" in available:
        parts.append(Part("ami", _cli("ami")))

    # Calls come first when the parts share the cores: the batch parts wait for a burst to pass.
    for part in parts:
        if part.name in ("scheduler", "transcriber"):
            part.nice = BATCH_NICE
    stopping = threading.Event()

    def _on_signal(signum, _frame) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    for part in parts:
        _start(part)
    _banner(settings, pbx, available)

    while not stopping.wait(1.0):
        for part in parts:
            if part.process and part.process.poll() is not None:
                # Back off if it keeps dying at start, so a broken config does not spin the CPU.
                delay = min(30.0, 2.0 ** min(part.restarts, 5))
                if time.monotonic() - part.started_at < 10:
                    part.restarts += 1
                else:
                    part.restarts = 0
                print(
                    f"[{part.name:9}] exited with {part.process.returncode}; restarting in {delay:.0f} s",
                    flush=True,
                )
                if stopping.wait(delay):
                    break
                _start(part)
    print("stopping...", flush=True)
    for part in reversed(parts):
        _stop(part)
    if pbx:
        subprocess.run(_cli("pbx", "down"), check=False)
    return 0


def _banner(settings, pbx: bool, available: set[str]) -> None:
    base = f"http://{settings.host}:{settings.port}"
    lines = [
        "",
        "Didehban is starting. Open or try:",
        f"  staff console (browser):     {base}/console/",
        f"  API and its documentation:   {base}/docs",
        f"  health:                      {base}/healthz",
    ]
    if "call" in available:
        lines.append("  a call from this terminal:   .venv/bin/didehban call 1482   (or 111)")
    if pbx:
        lines.append(f"  a SIP call:                  dial 1482 or 111 at sip:127.0.0.1:{settings.sip_port}")
    lines += [
        f"  staff users: admin, supervisor, operator1482, khorasan, mashhad, omid, operator111, abfa ... "
        f"(password {settings.demo_password})",
        "  staff API:                   POST /api/v1/auth/login, then /api/v1/staff/inbox (see /docs)",
        "  SMS to callers:              var/sms.log (the demo's phone)",
        "  IVR token for the API:       see DIDEHBAN_IVR_TOKEN in .env",
        "Press Ctrl-C to stop.",
        "",
    ]
    print("\n".join(lines), flush=True)
