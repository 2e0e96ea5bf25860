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
    assert "exten => 1482,1,Goto(hotline,1482,1)" in dialplan and "exten => 111,1," in dialplan
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


def _render(**options) -> dict[str, str]:
    from backend.core.config import get_settings
    from ivr.pbx.config import render

    return render(get_settings(), srv="/srv/ivr", moddir="/m", **options)


def test_a_production_install_has_no_test_phones(settings_env, tmp_path):
    """Issue 9, fault 9: the unauthenticated test phones are development-only."""
    from backend.core.config import get_settings
    from ivr.pbx.config import install

    files = _render()
    assert not any("[tester" in text or "[operator-test]" in text for text in files.values())
    etc = tmp_path / "etc"
    install(get_settings(), etc, srv="/srv/ivr", moddir="/m", test_phones=True)
    assert "[tester]" in (etc / "pjsip_test_phones.conf").read_text()
    # The same folder installed for production loses them again.
    install(get_settings(), etc, srv="/srv/ivr", moddir="/m")
    assert not (etc / "pjsip_test_phones.conf").exists()
    assert not any("[tester" in p.read_text() for p in etc.glob("*.conf"))


def test_only_the_short_codes_and_their_real_forms_are_answered(settings_env):
    """Issue 9, fault 2: explicit patterns; no `_X.` before a number (it means "any number")."""
    import re

    dialplan = _render()["extensions.conf"]
    carrier = dialplan.split("[from-carrier]", 1)[1].split("\n[", 1)[0]
    targets = re.findall(r"^exten => ([^,]+),1,Goto\(hotline,(\d+),1\)", carrier, re.M)
    assert {pattern for pattern, _ in targets} == {
        "1482",
        "_0[1-8]X1482",
        "_98[1-8]X1482",
        "_0098[1-8]X1482",
        "_+98[1-8]X1482",
        "111",
        "_0[1-8]X111",
        "_98[1-8]X111",
        "_0098[1-8]X111",
        "_+98[1-8]X111",
    }
    assert all(pattern.endswith(service) for pattern, service in targets)
    assert not re.search(r"_X\.\d", carrier)
    assert "exten => _X.,1,Goto(not-in-service,1)" in carrier and "Hangup(1)" in carrier


def test_no_keys_in_the_logs_and_each_ami_user_has_only_what_it_uses(settings_env):
    """Issue 9, fault 5."""
    import configparser

    files = _render()
    logger = files["logger.conf"].split("[logfiles]", 1)[1]
    for line in logger.strip().splitlines():
        if "=>" in line:
            levels = {level.strip() for level in line.split("=>", 1)[1].split(",")}
            assert not levels & {"dtmf", "verbose", "debug"}, line
    manager = configparser.ConfigParser(strict=False, interpolation=None)
    manager.read_string(files["manager.conf"])
    listener, ivr = manager["didehban"], manager["didehban-ivr"]
    assert set(listener["read"].split(",")) == {"call", "dialplan", "cdr"} and listener["write"] == ""
    assert ivr["read"] == "" and ivr["write"] == "call"


def test_messages_nobody_reads_are_never_made(settings_env):
    """Issue 13: at 500 calls Asterisk built two AGIExec messages per AGI command and RTCP reports
    every 5 s per call, for AMI users that never read them; the manager's taskprocessor fell behind.
    stasis.conf declines them. What the listener reads (Newchannel, Newstate, VarSet, Hangup, Cdr)
    stays, and so do the DTMF messages: the manager does not start without them."""
    from ivr.pbx.config import render
    from ivr.settings import get_settings

    files = render(get_settings(), srv="/srv/ivr", moddir="/m")
    lines = [line.strip() for line in files["stasis.conf"].splitlines() if not line.startswith(";")]
    declined = {line.split("=", 1)[1].strip() for line in lines if line.startswith("decline")}
    assert "[declined_message_types]" in lines
    assert {
        "agi_exec_start_type",
        "agi_exec_end_type",
        "ast_rtp_rtcp_sent_type",
        "ast_rtp_rtcp_received_type",
    } <= declined
    needed = {
        "ast_channel_snapshot_type",
        "ast_channel_varset_type",
        "ast_channel_dtmf_begin_type",
        "ast_channel_dtmf_end_type",
    }
    assert not declined & needed
