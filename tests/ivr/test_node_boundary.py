"""The IVR node on its own side of the boundary (issue 9): it imports nothing of the backend, needs
no database driver and no identity keys, and still places a whole call against a real backend
process over HTTP, call log included."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from tests.conftest import TEST_SECRETS
from tests.ivr.conftest import NODE_ENV, free_port
from tests.ivr.test_calls import NEW_CASE, NID

ROOT = Path(__file__).resolve().parents[2]

# Run with the database driver, the web framework and the whole backend package made unimportable.
NODE_SCRIPT = r"""
import sys
for name in ("sqlalchemy", "psycopg", "psycopg2", "alembic", "fastapi", "uvicorn", "backend"):
    sys.modules[name] = None  # any import of these now fails

import asyncio, datetime as dt, json
from ivr.ami.book import CallRecord
from ivr.ami.listener import AmiListener
from ivr.fastagi import HotlineServer
from ivr.phone import AsteriskSide, Script, environment

async def main():
    server = HotlineServer()
    await server.start("127.0.0.1", 0)
    side = AsteriskSide(Script(json.loads(sys.argv[1])))
    env = environment(route="hotline", service="1482", caller="09121234567", unique_id="node.1",
                      port=server.port)
    t = await side.call("127.0.0.1", server.port, env)
    await server.deliver_now()  # whatever the deliverer has not sent yet, behind the call
    spooled = server.spool.counts()
    await server.stop()
    # The AMI listener's report of the same call, through its outbox, over HTTP.
    listener = AmiListener()
    now = dt.datetime.now(dt.UTC)
    record = CallRecord("node.1", service="1482", caller="09121234567", started_at=now, ended_at=now,
                        outcome=t.variables.get("DIDEHBAN_OUTCOME"),
                        tracking_code=t.variables.get("DIDEHBAN_TRACKING_CODE"))
    listener.outbox.add(listener.report(record))
    delivered = await listener.deliver_now()
    await listener.stop()
    loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("backend", "sqlalchemy", "fastapi")
                    and sys.modules[m] is not None)
    print(json.dumps({"variables": t.variables, "delivered": delivered, "loaded": loaded,
                      "spooled": spooled}))

asyncio.run(main())
"""


def _clean_env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIDEHBAN_")}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


@pytest.fixture
def backend_process(tmp_path):
    port = free_port()
    env = _clean_env(tmp_path) | TEST_SECRETS
    env |= {
        "DIDEHBAN_DATABASE_URL": f"sqlite:///{tmp_path / 'backend.sqlite3'}",
        "DIDEHBAN_RECORDINGS_DIR": str(tmp_path / "recordings"),
        "DIDEHBAN_SMS_FILE": str(tmp_path / "sms.log"),
    }
    work = tmp_path / "backend"
    work.mkdir()
    log = (tmp_path / "backend.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "backend.cli", "serve", "--port", str(port)],
        env=env,
        cwd=work,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        for _ in range(300):
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            raise RuntimeError((tmp_path / "backend.log").read_text())
        yield port, env["DIDEHBAN_DATABASE_URL"]
    finally:
        proc.terminate()
        proc.wait(15)


def test_the_ivr_node_places_a_whole_call_without_backend_code_or_keys(backend_process, tmp_path):
    from backend.models import CallLog, Case

    port, database_url = backend_process
    node = tmp_path / "node"
    node.mkdir()
    env = _clean_env(tmp_path) | NODE_ENV
    env |= {
        "DIDEHBAN_BACKEND_URL": f"http://127.0.0.1:{port}",
        "DIDEHBAN_IVR_TOKEN": TEST_SECRETS["DIDEHBAN_IVR_TOKEN"],
        "DIDEHBAN_SPOOL_DIR": str(node / "spool"),
        "DIDEHBAN_RECORDINGS_DIR": str(tmp_path / "recordings"),
        "DIDEHBAN_PROMPTS_DIR": str(node / "prompts"),
    }
    assert not {"DIDEHBAN_SECRET_KEY", "DIDEHBAN_LOOKUP_KEY", "DIDEHBAN_DATABASE_URL"} & set(env)
    result = subprocess.run(
        [sys.executable, "-c", NODE_SCRIPT, json.dumps(NEW_CASE)],
        env=env,
        cwd=node,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["loaded"] == []
    assert out["variables"]["DIDEHBAN_OUTCOME"] == "registered"
    code = out["variables"]["DIDEHBAN_TRACKING_CODE"]
    # The node's own code, read before the backend had the case; the deliverer sent it over HTTP.
    assert code.startswith(NODE_ENV["DIDEHBAN_NODE_PREFIX"])
    assert out["spooled"] == {"delivered": 1}
    assert out["delivered"] == 1
    with Session(create_engine(database_url)) as s:
        case = s.scalar(select(Case).where(Case.tracking_code == code))
        assert case is not None and case.kind == "complaint" and case.caller.national_id_enc
        assert NID not in case.caller.national_id_enc
        log = s.scalar(select(CallLog).where(CallLog.unique_id == "node.1"))
        assert log is not None and log.tracking_code == code and log.caller_enc


def test_the_ivr_side_imports_nothing_of_the_backend():
    """A static check beside the live one: no module of the node names the backend."""
    offenders = []
    for folder in ("ivr", "agi_scripts", "prompts"):
        for path in (ROOT / folder).rglob("*.py"):
            for line in path.read_text(encoding="utf-8").splitlines():
                stripped = line.strip()
                if stripped.startswith(("from backend", "import backend")):
                    offenders.append(f"{path.relative_to(ROOT)}: {stripped}")
    assert offenders == []
