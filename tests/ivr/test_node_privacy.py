"""Nothing private on the IVR node's disk, and every code a caller hears is delivered (issue 9,
faults 7 and 10)."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import wave

import pytest
from sqlalchemy import func, select

from backend.models import Case
from tests.ivr.conftest import NODE_ENV, BackendThread
from tests.ivr.test_calls import NEW_CASE, NID

PHONE = "09121234567"


def spool_bytes(folder) -> bytes:
    return b"".join(p.read_bytes() for p in folder.glob("spool.sqlite3*"))


def mode(path) -> int:
    return path.stat().st_mode & 0o777


async def test_the_spool_is_sealed_private_and_forgets_what_was_delivered(ivr_env, fastagi, place_call, db):
    from ivr.backend_client import BackendClient
    from ivr.settings import get_settings
    from ivr.spool import deliver_pending

    folder = get_settings().spool_dir
    t = await place_call(NEW_CASE, unique_id="sealed.1")  # no backend: the case is spooled
    code = t.variables["DIDEHBAN_TRACKING_CODE"]
    assert fastagi.spool.counts() == {"pending": 1}
    raw = spool_bytes(folder)
    assert NID.encode() not in raw and PHONE.encode() not in raw
    assert mode(folder) == 0o700
    assert {p.name: mode(p) for p in folder.glob("spool.sqlite3*")} == dict.fromkeys(
        [p.name for p in folder.glob("spool.sqlite3*")], 0o600
    )
    with BackendThread(ivr_env):
        client = BackendClient(get_settings())
        try:
            assert await deliver_pending(fastagi.spool, client) == (1, 0)
        finally:
            await client.close()
    assert db.scalar(select(Case.tracking_code)) == code
    assert fastagi.spool.counts() == {"delivered": 1}
    assert fastagi.spool._db.execute("SELECT count(*) FROM pending_case").fetchone() == (0,)


def test_a_spool_under_another_key_says_so(settings_env):
    from cryptography.fernet import Fernet

    from ivr.spool import Spool, SpoolKeyError

    spool = Spool(settings_env / "s", "21", NODE_ENV["DIDEHBAN_SPOOL_KEY"])
    spool.add("c.1", {"national_id": NID}, "2100000000")
    spool.close()
    other = Spool(settings_env / "s", "21", Fernet.generate_key().decode())
    with pytest.raises(SpoolKeyError, match="another DIDEHBAN_SPOOL_KEY"):
        other.pending()
    with pytest.raises(SpoolKeyError, match="DIDEHBAN_SPOOL_KEY is not set"):
        Spool(settings_env / "s", "21", "")


async def test_a_wrong_token_keeps_the_case_and_alerts_until_it_is_fixed(
    ivr_env, fastagi, place_call, db, caplog
):
    """Fault 10: a 401 used to mark the spooled case dead for ever."""
    from ivr.backend_client import BackendClient
    from ivr.settings import get_settings
    from ivr.spool import deliver_pending

    with BackendThread(ivr_env):
        fastagi.client._http.headers["Authorization"] = "Bearer rotated-token"
        t = await place_call(NEW_CASE, unique_id="token.1")
        code = t.variables["DIDEHBAN_TRACKING_CODE"]
        assert code.startswith("21") and fastagi.spool.counts() == {"pending": 1}
        wrong = BackendClient(get_settings().model_copy(update={"ivr_token": "rotated-token"}))
        try:
            with caplog.at_level(logging.CRITICAL, logger="ivr.spool"):
                assert await deliver_pending(fastagi.spool, wrong) == (0, 1)
                assert await deliver_pending(fastagi.spool, wrong) == (0, 1)
        finally:
            await wrong.close()
        assert fastagi.spool.counts() == {"pending": 1}  # never dead
        assert any("ALERT" in r.message for r in caplog.records)
        fixed = BackendClient(get_settings())
        try:
            assert await deliver_pending(fastagi.spool, fixed) == (1, 0)
        finally:
            await fixed.close()
    assert db.scalar(select(Case.tracking_code)) == code  # the code the caller heard


def run_cli(*args: str, env: dict[str, str] | None = None, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "backend.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ) if env is None else env,
        cwd=cwd,
    )


async def test_spool_list_and_requeue(ivr_env, settings_env, db):
    """A refused case is listed without identities and can be retried after the cause is fixed."""
    from ivr.settings import get_settings
    from ivr.spool import Spool

    settings = get_settings()
    spool = Spool(settings.spool_dir, settings.node_prefix, settings.spool_key)
    code = spool.issue_code()
    spool.add("refused.1", {"national_id": NID, "caller_number": PHONE, "service": "1482"}, code)
    spool.mark_failed("refused.1", f"422 invalid_national_id: {NID} from {PHONE}", dead=True)
    spool.close()
    listed = await asyncio.to_thread(run_cli, "spool", "list")
    assert listed.returncode == 0, listed.stderr
    assert code in listed.stdout and "dead" in listed.stdout
    assert NID not in listed.stdout and PHONE not in listed.stdout
    requeued = await asyncio.to_thread(run_cli, "spool", "requeue")
    assert requeued.returncode == 0 and requeued.stdout.startswith("1 ")
    status = await asyncio.to_thread(run_cli, "spool", "status")
    assert "pending 1" in status.stdout and "dead 0" in status.stdout


def test_a_node_without_its_own_prefix_refuses_to_start(settings_env, monkeypatch):
    from ivr.fastagi import HotlineServer
    from ivr.settings import NodeNotConfigured
    from tests.conftest import clear_caches

    monkeypatch.delenv("DIDEHBAN_NODE_PREFIX")
    clear_caches()
    with pytest.raises(NodeNotConfigured, match="DIDEHBAN_NODE_PREFIX"):
        HotlineServer()
    result = run_cli("fastagi", "--port", "0")
    assert result.returncode == 2 and "DIDEHBAN_NODE_PREFIX is not set" in result.stderr


def test_the_agi_script_reads_its_fixed_settings_file_not_the_working_directory(backend, db, tmp_path):
    """Fault 10: started by Asterisk, the script used to read `.env` from Asterisk's directory."""
    from ivr.phone import environment
    from tests.ivr.test_agi_script import drive

    moved = {k: os.environ[k] for k in ("DIDEHBAN_IVR_TOKEN", "DIDEHBAN_NODE_PREFIX", "DIDEHBAN_BACKEND_URL")}
    env = {k: v for k, v in os.environ.items() if k not in moved}
    settings_file = tmp_path / "ivr.env"
    settings_file.write_text("".join(f"{k}={v}\n" for k, v in moved.items()))
    asterisk_dir = tmp_path / "asterisk"
    asterisk_dir.mkdir()
    # What Asterisk's directory holds is not ours: it must not be read.
    (asterisk_dir / ".env").write_text("DIDEHBAN_BACKEND_URL=http://127.0.0.1:9\nDIDEHBAN_NODE_PREFIX=99\n")
    block = environment(route="hotline", service="1482", caller=PHONE, unique_id="agi.env.1", port=0)

    env["DIDEHBAN_ENV_FILE"] = str(settings_file)
    t, rc, stderr = drive(["1482"], NEW_CASE, block, env=env, cwd=asterisk_dir)
    assert rc == 0, stderr
    code = t.variables["DIDEHBAN_TRACKING_CODE"]
    assert code.startswith(moved["DIDEHBAN_NODE_PREFIX"])  # the file's prefix, not the stray 99
    # The script spools the case; `didehban spool deliver` (same settings file) sends it to the
    # file's backend, not the stray .env's.
    delivered = run_cli("spool", "deliver", env=env, cwd=asterisk_dir)
    assert delivered.returncode == 0 and "delivered 1," in delivered.stdout, delivered.stderr
    db.expire_all()
    assert db.scalar(select(Case.tracking_code)) == code

    # No settings file at all (and a .env in the working directory): no prefix, so no call answered.
    env["DIDEHBAN_ENV_FILE"] = str(tmp_path / "missing.env")
    block["agi_uniqueid"] = "agi.env.2"
    t, rc, stderr = drive(["1482"], NEW_CASE, block, env=env, cwd=asterisk_dir)
    assert rc == 2 and "DIDEHBAN_NODE_PREFIX is not set" in stderr and t.commands == []
    assert db.scalar(select(func.count(Case.id))) == 1


def test_fallback_messages_keep_the_number_out_of_the_file_name(backend, db, vault, settings_env):
    import time

    from ivr.pbx.config import render
    from ivr.pbx.fallback import FallbackMessage, ingest_all
    from ivr.settings import get_settings

    dialplan = render(get_settings(), srv="/srv/ivr", moddir="/m")["extensions.conf"]
    [name_line] = [line for line in dialplan.splitlines() if "Set(FALLBACK_FILE=" in line]
    assert "CALLERID" not in name_line and "${SERVICE}-${UNIQUEID})" in name_line
    assert "Set(FILE(${FALLBACK_FILE}.caller)=" in dialplan

    folder = settings_env / "fallback"
    folder.mkdir()
    path = folder / "1482-ci-pbx-1795409271.10.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(8000)
        w.writeframes(b"\x10\x20" * 8000 * 2)
    path.with_suffix(".caller").write_text(PHONE)
    old = time.time() - 60
    os.utime(path, (old, old))
    message = FallbackMessage.parse(path)
    assert (message.unique_id, message.caller) == ("ci-pbx-1795409271.10", PHONE)
    assert ingest_all(get_settings(), folder) == (1, 0)
    assert list(folder.iterdir()) == []  # the message and its sidecar are gone once filed
    case = db.scalar(select(Case))
    assert case.call_id == "fallback-ci-pbx-1795409271.10" and vault.decrypt(case.caller.phone_enc) == PHONE
    assert PHONE not in case.recordings[0].path
