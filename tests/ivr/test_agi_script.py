"""The process-per-call AGI script, driven over its stdin/stdout as Asterisk drives it."""

from __future__ import annotations

import os
import subprocess
import sys

from sqlalchemy import select

from backend.models import Case
from ivr.phone import AsteriskSide, Script, environment
from tests.ivr.test_calls import NEW_CASE, digits_after
from tests.ivr.test_node_privacy import run_cli


def drive(args: list[str], items: list[str], env_block: dict[str, str], *, env=None, cwd=None, command=None):
    side = AsteriskSide(Script(items))
    proc = subprocess.Popen(
        [*(command or [sys.executable, "-m", "agi_scripts.hotline"]), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ) if env is None else env,
        cwd=cwd,
        bufsize=1,
    )
    env_block = {k: v for k, v in env_block.items() if k not in ("agi_network", "agi_network_script")}
    env_block["agi_request"] = "/usr/share/asterisk/agi-bin/hotline.py"
    proc.stdin.write("".join(f"{k}: {v}\n" for k, v in env_block.items()) + "\n")
    proc.stdin.flush()
    while True:
        line = proc.stdout.readline()
        if not line:
            break
        side.transcript.commands.append(line.rstrip("\n"))
        reply, close = side.reply_to(line.rstrip("\n"))
        proc.stdin.write(reply + "\n")
        proc.stdin.flush()
        if close:
            break
    proc.stdin.close()
    proc.wait(timeout=30)
    stderr = proc.stderr.read()
    return side.transcript, proc.returncode, stderr


def test_register_a_case_through_the_agi_script(backend, db, vault):
    from tests.ivr.test_calls import NID

    env_block = environment(
        route="hotline", service="1482", caller="09121234567", unique_id="pyst2.1", port=0
    )
    t, rc, stderr = drive(["1482"], NEW_CASE, env_block)
    assert rc == 0, stderr
    # The script never waits for the backend: the case is in the node's spool, with the code the
    # caller heard, until the node's deliverer (here `didehban spool deliver`) sends it on.
    db.expire_all()
    assert db.scalar(select(Case)) is None
    delivered = run_cli("spool", "deliver")
    assert delivered.returncode == 0 and "delivered 1," in delivered.stdout, delivered.stderr
    db.expire_all()
    case = db.scalar(select(Case))
    assert case is not None and case.kind == "complaint" and not case.incomplete
    assert case.tracking_code == t.variables["DIDEHBAN_TRACKING_CODE"]
    assert vault.decrypt(case.caller.national_id_enc) == NID
    assert digits_after(t.played, "your-tracking-code-is") == [case.tracking_code] * 2
    # What the script writes to stderr, Asterisk logs: the national ID must not be there.
    assert NID not in stderr


def test_status_route_and_hang_up_through_the_agi_script(backend, db, vault):
    from tests.ivr.test_status_calls import file_case

    code = file_case(db, vault)
    env_block = environment(route="status", service="1482", caller="09121234567", unique_id="pyst2.2", port=0)
    t, rc, _ = drive(["1482", "status"], [f"{code}#", "HANGUP"], env_block)
    assert rc == 0
    assert "status-intro" in t.played and t.variables["DIDEHBAN_OUTCOME"] == "status"
