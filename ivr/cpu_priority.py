"""Which part of the hotline gets a CPU first when they share one machine (issue 13).

At a burst (500 calls on 2 cores) Asterisk's per-call threads keep both cores busy. The FastAGI
server needs a fraction of a millisecond per AGI command, but at once: Asterisk hears a key only
while an AGI command runs, so a command sent a second late is a key the caller pressed meanwhile
lost. So the FastAGI server runs above everything else (DIDEHBAN_FASTAGI_NICE, -5); Asterisk is
real-time audio and stays at the normal priority (DIDEHBAN_PBX_NICE, 0), never below whatever else
the machine runs (PostgreSQL, a backup); the batch parts (transcriber, scheduler) run below it.

A part's priority is its session's: with the kernel's autogroups (sched_autogroup_enabled, on in
Debian's kernels) each session is scheduled as one group against the others, so a thread's nice
value only ranks it among its own session's threads. Each part runs in its own session (`didehban
up`, systemd), and this sets both the session's nice and the threads' (the latter is what counts
without autogroups). Under systemd, Nice= and CPUWeight= in the units do the same (README).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

# The transcriber and the scheduler: work that can wait for a burst of calls to pass.
BATCH_NICE = 10


def set_priority(pid: int, nice: int) -> bool:
    """Give process `pid` and each of its threads the nice value `nice`, and its session's autogroup
    too when `pid` leads its session. False if not allowed (a priority above 0 needs root or
    CAP_SYS_NICE). Threads started later inherit the value from the thread that starts them."""
    try:
        leads_session = os.getsid(pid) == pid
        tasks = [int(task.name) for task in Path(f"/proc/{pid}/task").iterdir()]
    except OSError:
        return False
    try:
        for task in tasks:
            with contextlib.suppress(ProcessLookupError):  # that thread has ended
                os.setpriority(os.PRIO_PROCESS, task, nice)
        autogroup = Path(f"/proc/{pid}/autogroup")
        if leads_session and autogroup.exists():  # absent on kernels built without autogroups
            autogroup.write_text(str(nice))
    except OSError:  # EPERM (raising needs the privilege), EAGAIN (the kernel rate-limits changes)
        return False
    return True


def session_nice(pid: int) -> str:
    """The nice value of `pid`'s session group, as the kernel has it ("-" without autogroups, and for
    a process in the system's first session, which the kernel schedules with no group: its file is
    empty, as for a service started by a CI runner that never called setsid)."""
    try:
        words = Path(f"/proc/{pid}/autogroup").read_text().split()  # "/autogroup-12 nice 0"
    except OSError:
        return "-"
    return words[-1] if words else "-"
