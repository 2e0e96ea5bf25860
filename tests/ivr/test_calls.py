"""Whole calls through the real FastAGI server and a real backend, Asterisk played over TCP."""

from __future__ import annotations

import wave

import pytest
from sqlalchemy import func, select

from backend.models import Case, CaseEvent, Recording
from domain.national_id import with_check_digit
from ivr.phone import HANGUP

NID = with_check_digit("001354241")
OTHER_NID = with_check_digit("123456789")
WORDS = "سلام. در مرکز نگهداری کودکان به بچه‌ها غذای کافی داده نمی‌شود"
NEW_CASE = ["1", "1", "2", f"{NID}#", "1", WORDS, "3", ""]


def digits_after(played: list[str], marker: str) -> list[str]:
    """The digits spoken after each occurrence of `marker`."""
    runs = []
    for i, prompt in enumerate(played):
        if prompt == marker:
            run = ""
            for nxt in played[i + 1 :]:
                if not nxt.startswith("digit-"):
                    break
                run += nxt[len("digit-") :]
            runs.append(run)
    return runs


def the_case(db) -> Case:
    db.expire_all()
    return db.scalar(select(Case))


def wav_seconds(path) -> tuple[int, float]:
    with wave.open(str(path)) as w:
        return w.getframerate(), w.getnframes() / w.getframerate()


async def test_register_a_case_on_1482(backend, place_call, db, vault, settings_env):
    t = await place_call(NEW_CASE)
    case = the_case(db)
    assert case is not None
    assert (case.service, case.kind, case.urgent, case.channel, case.incomplete) == (
        "1482",
        "complaint",
        False,
        "phone",
        False,
    )
    assert vault.decrypt(case.caller.national_id_enc) == NID
    assert vault.decrypt(case.caller.phone_enc) == "09121234567"
    # What the IVR spoke is the case's code, twice, digit by digit.
    assert t.variables["DIDEHBAN_TRACKING_CODE"] == case.tracking_code
    assert digits_after(t.played, "your-tracking-code-is") == [case.tracking_code] * 2
    assert t.variables["DIDEHBAN_OUTCOME"] == "registered"
    assert t.variables["DIDEHBAN_PATH"].startswith("menu:1>kind:1>urgent:2>nid-confirm:1>nid>record")
    # The national ID was read back before it was confirmed.
    assert digits_after(t.played, "you-entered") == [NID]
    # The message is real audio, where the backend says it is.
    rec = db.scalar(select(Recording).where(Recording.case_id == case.id))
    path = settings_env / "recordings" / rec.path
    rate, seconds = wav_seconds(path)
    assert rate == 8000 and seconds > 2 and abs(rec.duration_seconds - seconds) < 0.1


async def test_register_an_urgent_request_on_111(backend, place_call, db, vault):
    t = await place_call(
        ["1", "3", "1", f"{OTHER_NID}#", "1", WORDS, "3"], service="111", caller="09161112233"
    )
    case = the_case(db)
    assert (case.service, case.kind, case.urgent) == ("111", "request", True)
    assert t.played[2] == "welcome-111" or "welcome-111" in t.played
    assert t.variables["DIDEHBAN_TRACKING_CODE"] == case.tracking_code


async def test_invalid_national_id_is_asked_again(backend, place_call, db, vault):
    wrong = NID[:9] + str((int(NID[9]) + 1) % 10)
    t = await place_call(["1", "1", "2", f"{wrong}#", "12345#", f"{NID}#", "1", WORDS, "3"])
    assert t.played.count("national-id-invalid") == 2
    assert vault.decrypt(the_case(db).caller.national_id_enc) == NID


async def test_misread_national_id_is_corrected_at_the_read_back(backend, place_call, db, vault):
    t = await place_call(["1", "1", "2", f"{OTHER_NID}#", "2", f"{NID}#", "1", WORDS, "3"])
    assert digits_after(t.played, "you-entered") == [OTHER_NID, NID]
    assert vault.decrypt(the_case(db).caller.national_id_enc) == NID


async def test_timeouts_and_wrong_keys_repeat_the_menu(backend, place_call, db):
    t = await place_call(["", "7", "1", "9", "1", "2", f"{NID}#", "1", WORDS, "3"])
    assert t.played.count("main-menu") == 3 and "no-input" in t.played and t.played.count("invalid-key") == 2
    assert the_case(db).kind == "complaint"


async def test_three_failures_outside_office_hours_say_goodbye(backend, place_call, db, monkeypatch):
    from ivr.flows.call import Call

    monkeypatch.setattr(Call, "operator_open", lambda self, now=None: False)
    t = await place_call(["", "5", "*"])
    assert t.played[-1] == "too-many-failures-goodbye"
    assert t.variables["DIDEHBAN_OUTCOME"] == "goodbye"
    assert t.variables["DIDEHBAN_PATH"].endswith("menu:failed")


async def test_three_failures_in_office_hours_go_to_an_operator(backend, place_call, db, monkeypatch):
    from ivr.flows.call import Call

    monkeypatch.setattr(Call, "operator_open", lambda self, now=None: True)
    t = await place_call(["1", "", "", ""])
    assert t.variables["DIDEHBAN_OUTCOME"] == "operator" and t.played[-1] == "transfer-to-operator"


async def test_menu_zero_in_office_hours_hands_over_to_the_queue(backend, place_call, db, monkeypatch):
    from ivr.flows.call import Call

    monkeypatch.setattr(Call, "operator_open", lambda self, now=None: True)
    t = await place_call(["0"])
    assert t.variables["DIDEHBAN_OUTCOME"] == "operator"
    assert not t.hung_up  # the AGI returns; the dial plan queues the caller


async def test_menu_zero_out_of_hours_takes_a_message_that_becomes_a_case(
    backend, place_call, db, monkeypatch
):
    from ivr.flows.call import Call

    monkeypatch.setattr(Call, "operator_open", lambda self, now=None: False)
    t = await place_call(["0", WORDS, ""])
    case = the_case(db)
    assert case.incomplete and case.kind == "request" and case.caller.national_id_enc is None
    assert t.variables["DIDEHBAN_OUTCOME"] == "message"
    assert t.variables["DIDEHBAN_TRACKING_CODE"] == case.tracking_code
    assert db.scalar(select(func.count(Recording.id))) == 1


async def test_hang_up_while_recording_keeps_what_was_said(backend, place_call, db, settings_env):
    await place_call(["1", "4", "1", f"{NID}#", "1", f"{HANGUP}: {WORDS}"])
    case = the_case(db)
    assert case is not None and case.incomplete and case.kind == "violation" and case.urgent
    rec = db.scalar(select(Recording).where(Recording.case_id == case.id))
    rate, seconds = wav_seconds(settings_env / "recordings" / rec.path)
    assert rate == 8000 and seconds > 2


async def test_hang_up_at_the_recording_menu_still_files_the_case(backend, place_call, db):
    await place_call(["1", "1", "2", f"{NID}#", "1", WORDS, HANGUP])
    case = the_case(db)
    assert case is not None and case.incomplete


FULL_CALL_COMMANDS = 75  # a whole NEW_CASE call sends fewer; test_the_range_covers_a_whole_call checks


async def test_the_range_covers_a_whole_call(backend, place_call, db):
    t = await place_call(NEW_CASE)
    assert len(t.commands) < FULL_CALL_COMMANDS and not t.hung_up


@pytest.mark.parametrize("at", range(FULL_CALL_COMMANDS))
async def test_hang_up_at_every_step_ends_cleanly(backend, place_call, db, at):
    """Asterisk says HANGUP at command `at`, then 511 to everything after. The server ends the call
    cleanly; a case exists exactly when the recording had begun, flagged incomplete unless the
    caller had already confirmed it."""
    t = await place_call(NEW_CASE, hangup_at_command=at)
    recording_began = any(c.startswith("RECORD FILE") for c in t.commands[:at])
    assert db.scalar(select(func.count(Case.id))) == (1 if recording_began else 0)
    if recording_began:
        # The code goes to the dial plan alone (SET VARIABLE) or with other variables (EXEC MSet).
        confirmed = any("DIDEHBAN_TRACKING_CODE" in c for c in t.commands[:at])
        assert the_case(db).incomplete is not confirmed


async def test_backend_down_then_up_delivers_the_spooled_case_once(ivr_env, fastagi, place_call, db, vault):
    from ivr.backend_client import BackendClient
    from ivr.settings import get_settings
    from ivr.spool import deliver_pending
    from tests.ivr.conftest import BackendThread

    # No backend is listening: the caller still gets a code, issued by this node.
    t = await place_call(NEW_CASE, unique_id="spooled-call-1")
    code = t.variables["DIDEHBAN_TRACKING_CODE"]
    assert code.startswith(get_settings().node_prefix)
    assert digits_after(t.played, "your-tracking-code-is") == [code, code]
    assert fastagi.spool.counts() == {"pending": 1}
    assert db.scalar(select(func.count(Case.id))) == 0
    [spooled] = fastagi.spool.pending()

    with BackendThread(ivr_env):
        client = BackendClient(get_settings())
        try:
            assert await deliver_pending(fastagi.spool, client) == (1, 0)
            assert await deliver_pending(fastagi.spool, client) == (0, 0)
            # Even a second delivery of the same call (a crash before it was marked) is one case.
            await client.file_case(spooled.payload)
        finally:
            await client.close()
    case = the_case(db)
    assert db.scalar(select(func.count(Case.id))) == 1
    assert case.tracking_code == code and vault.decrypt(case.caller.national_id_enc) == NID
    assert fastagi.spool.counts() == {"delivered": 1}


async def test_unknown_service_fails_cleanly(backend, place_call, db):
    t = await place_call(["1"], service="999")
    assert t.variables.get("DIDEHBAN_OUTCOME") == "failed"


async def test_a_client_that_closes_early_does_not_hang_the_server(fastagi):
    import asyncio

    reader, writer = await asyncio.open_connection("127.0.0.1", fastagi.port)
    writer.write(b"agi_network: yes\nagi_network_script: hot")
    await writer.drain()
    writer.close()
    await asyncio.sleep(0.2)
    # The server still answers a real call afterwards.
    reader, writer = await asyncio.open_connection("127.0.0.1", fastagi.port)
    writer.write(b"agi_network_script: hotline\nagi_arg_1: 999\nagi_uniqueid: x\n\n")
    await writer.drain()
    line = await asyncio.wait_for(reader.readline(), 5)
    assert line.startswith(b"SET VARIABLE DIDEHBAN_OUTCOME")
    writer.close()


async def test_events_record_the_phone_registration(backend, place_call, db):
    await place_call(NEW_CASE)
    event = db.scalar(select(CaseEvent))
    assert event.action == "register" and event.actor == "ivr"
