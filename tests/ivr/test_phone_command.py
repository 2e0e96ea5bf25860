"""`didehban call 1482`: the phone in the terminal, as a user runs it (a real process)."""

from __future__ import annotations

import asyncio
import os
import sys

from sqlalchemy import select

from backend.models import Case
from tests.ivr.test_calls import NID


async def run_phone(fastagi, *args: str, stdin: str | None = None) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "backend.cli",
        "call",
        "1482",
        "--port",
        str(fastagi.port),
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=dict(os.environ),
    )
    out, _ = await asyncio.wait_for(proc.communicate(stdin.encode() if stdin else None), 90)
    return proc.returncode, out.decode()


async def test_scripted_call_shows_the_prompts_and_the_code(backend, fastagi, db):
    rc, out = await run_phone(fastagi, "--script", f"1,1,2,{NID}#,1,say:سلام این پیام آزمایشی است,3,")
    assert rc == 0, out
    await fastagi.deliver_now()  # the case reaches the backend behind the call
    case = db.scalar(select(Case))
    assert f"call ended: registered, tracking code {case.tracking_code}" in out
    from prompts.catalog import load_catalog

    assert load_catalog()["welcome-1482"] in out
    spoken = " ".join(
        {
            "0": "صفر",
            "1": "یک",
            "2": "دو",
            "3": "سه",
            "4": "چهار",
            "5": "پنج",
            "6": "شش",
            "7": "هفت",
            "8": "هشت",
            "9": "نُه",
        }[d]
        for d in case.tracking_code
    )
    assert spoken in out  # the code's digits on one line, as they are heard


async def test_interactive_call_reads_keys_from_the_keyboard(backend, fastagi, db):
    typed = "\n".join(["2", "1234567890#", "", "", "h"]) + "\n"
    rc, out = await run_phone(fastagi, stdin=typed)
    assert rc == 0, out
    from prompts.catalog import load_catalog

    assert "keys, then Enter" in out and load_catalog()["tracking-code-invalid"] in out


async def test_no_server_is_a_clear_error(ivr_env):
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "backend.cli",
        "call",
        "111",
        "--port",
        "9",
        "--script",
        "1",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=dict(os.environ),
    )
    _, err = await proc.communicate()
    assert proc.returncode == 2 and "cannot reach the FastAGI server" in err.decode()
