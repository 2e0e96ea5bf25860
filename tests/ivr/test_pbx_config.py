"""The Asterisk configuration as installed, and the fallback spool's file names (no PBX needed)."""

from __future__ import annotations

import wave

import pytest

from tests.conftest import clear_caches


def test_config_renders_every_placeholder_and_keeps_the_secret_out_of_the_repo(settings_env):
    from ivr.pbx.config import CONF_DIR, render
    from ivr.settings import get_settings

    files = render(get_settings(), srv="/srv/ivr", moddir="/usr/lib/x86_64-linux-gnu/asterisk/modules")
    assert {
        "asterisk.conf",
        "extensions.conf",
        "pjsip.conf",
        "manager.conf",
        "queues.conf",
        "modules.conf",
        "cdr.conf",
        "rtp.conf",
        "logger.conf",
    } <= set(files)
    assert all("@@" not in text for text in files.values())
    assert "secret = test-ami-secret" in files["manager.conf"]
    assert "test-ami-secret" not in (CONF_DIR / "manager.conf").read_text()
    assert "bindaddr = 127.0.0.1" in files["manager.conf"]
    dialplan = files["extensions.conf"]
    assert "exten => 1482,1,Goto(hotline,${EXTEN},1)" in dialplan and "exten => 111,1," in dialplan
    assert "AGI(${FASTAGI}/hotline,${SERVICE})" in dialplan and "FASTAGI = agi://127.0.0.1:4573" in dialplan
    assert "MixMonitor(" in dialplan and "Record(${FALLBACK_FILE}.wav" in dialplan
    assert "Queue(operators-${SERVICE}" in dialplan


def test_missing_ami_secret_is_a_clear_error(settings_env, monkeypatch):
    from ivr.pbx.config import render
    from ivr.settings import get_settings

    monkeypatch.setenv("DIDEHBAN_AMI_SECRET", "")
    clear_caches()
    with pytest.raises(ValueError, match="DIDEHBAN_AMI_SECRET"):
        render(get_settings(), srv="/srv/ivr", moddir="/m")


@pytest.mark.parametrize(
    ("name", "service", "unique_id", "caller"),
    [
        ("1482-ci-pbx-1795409271.8-09121234567.wav", "1482", "ci-pbx-1795409271.8", "09121234567"),
        ("111-1795409271.12-.wav", "111", "1795409271.12", ""),
    ],
)
def test_fallback_names(tmp_path, name, service, unique_id, caller):
    from ivr.pbx.fallback import FallbackMessage

    message = FallbackMessage.parse(tmp_path / name)
    assert (message.service, message.unique_id, message.caller) == (service, unique_id, caller)
    assert FallbackMessage.parse(tmp_path / "garbage.wav") is None


def test_fallback_ingest_files_a_case_once_and_keeps_it_while_the_backend_is_down(
    backend, db, vault, settings_env
):
    import os
    import time

    from sqlalchemy import select

    from backend.models import Case
    from ivr.pbx.fallback import ingest_all
    from ivr.settings import get_settings

    folder = settings_env / "fallback"
    folder.mkdir()
    path = folder / "1482-ci-pbx-1795409271.9-09121234567.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(8000)
        w.writeframes(b"\x10\x20" * 8000 * 3)
    old = time.time() - 60
    os.utime(path, (old, old))
    assert ingest_all(get_settings(), folder) == (1, 0)
    assert not path.exists()
    case = db.scalar(select(Case))
    assert case.incomplete and case.call_id == "fallback-ci-pbx-1795409271.9"
    assert vault.decrypt(case.caller.phone_enc) == "09121234567"
    assert case.recordings[0].duration_seconds == 3.0


def test_fallback_ingest_keeps_the_file_when_the_backend_is_down(ivr_env, db, settings_env):
    import os
    import time

    from ivr.pbx.fallback import ingest_all
    from ivr.settings import get_settings

    folder = settings_env / "fallback"
    folder.mkdir()
    path = folder / "111-x.1-0912.wav"
    path.write_bytes(b"RIFF")
    os.utime(path, (time.time() - 60,) * 2)
    assert ingest_all(get_settings(), folder) == (0, 1)
    assert path.exists()
