"""Real SIP calls to 1482 and 111 through Asterisk, the FastAGI flows and the backend."""

from __future__ import annotations

import array
import contextlib
import itertools
import subprocess
import time
import wave
from pathlib import Path

import pytest
from sqlalchemy import select

from backend.models import CallLog, Case, Recording
from domain.national_id import with_check_digit
from ivr.pbx.sipcall import Keys, Speak, Wait, run_sipp, scenario, sipp_command, speech_pcap, write_call_files
from ivr.pbx.timing import total
from tests.pbx.conftest import PORT_SHIFT

pytestmark = pytest.mark.pbx

NID = with_check_digit("001354241")
OTHER_NID = with_check_digit("234567891")
WORDS = "سلام. در مرکز نگهداری کودکان به بچه ها غذای کافی نمی دهند. لطفا پیگیری کنید."
PORTS = itertools.count(8810 + PORT_SHIFT)


def audio_stats(path: Path) -> tuple[int, int, float, float]:
    with wave.open(str(path)) as w:
        samples = array.array("h", w.readframes(w.getnframes()))
        rms = (sum(s * s for s in samples) / max(1, len(samples))) ** 0.5
        return w.getframerate(), w.getnchannels(), w.getnframes() / w.getframerate(), rms


def call(stack, sipp_dir, actions, *, service="1482", user="tester", dtmf="rfc4733", caller_hangs_up=False):
    port = next(PORTS)
    result = run_sipp(
        scenario(actions, dtmf=dtmf, caller_hangs_up=caller_hangs_up),
        service=service,
        user=user,
        sip_port=stack.sip_port,
        workdir=sipp_dir,
        control_port=port,
        media_port=media_port(port),
    )
    assert result.returncode == 0, result.stderr[-3000:]


def media_port(control_port: int) -> int:
    return 17000 + 10 * ((control_port - 8810) % 100) + 10 * PORT_SHIFT


def wait_for(fn, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(0.3)
    return fn()


def call_log(stack, **where) -> CallLog | None:
    with stack.session() as s:
        query = select(CallLog)
        for key, value in where.items():
            query = query.where(getattr(CallLog, key) == value)
        return s.scalar(query.order_by(CallLog.id.desc()))


def new_case_actions(sipp_dir: Path, nid_keys: list[str], kind="1", urgent="2", hang_up_after_code=True):
    speech = sipp_dir / "speech.pcap"
    seconds = speech_pcap(WORDS, speech)
    actions = [Wait(1.5), Keys("1"), Wait(1.0), Keys(kind), Wait(1.0), Keys(urgent), Wait(1.5)]
    for keys in nid_keys:
        actions += [Keys(keys), Wait(1.2)]
    actions += [
        Keys("1"),
        Wait(total("record-instructions", "beep") + 0.8),
        Speak(speech, seconds),
        Keys("#"),
        Wait(1.0),
        Keys("3"),
    ]
    if hang_up_after_code:  # hear the code once, then put the phone down
        actions.append(Wait(total("case-registered", "your-tracking-code-is") + 10 * 0.8 + 1.0))
    return actions, seconds


def assert_case_and_logs(stack, *, service, kind, urgent, nid, speech_seconds, incomplete=False) -> Case:
    with stack.session() as s:
        case = wait_for(
            lambda: s.scalar(select(Case).where(Case.service == service).order_by(Case.id.desc()))
        )
        assert case is not None
        assert (case.service, case.kind, case.urgent, case.incomplete) == (service, kind, urgent, incomplete)
        if nid:
            assert stack.vault.decrypt(case.caller.national_id_enc) == nid
        message = s.scalar(select(Recording).where(Recording.case_id == case.id, Recording.kind == "message"))
        rate, channels, seconds, rms = audio_stats(stack.recordings / message.path)
        # Real audio at 8 kHz, as long as what was said (ended by # or the hang-up), with speech energy.
        assert (rate, channels) == (8000, 1)
        assert speech_seconds * 0.6 < seconds < speech_seconds + 3.0
        assert rms > 300
        code = case.tracking_code

    def complete_log():
        # AMI's Hangup and Cdr events each fill part of the row; wait until both have.
        found = call_log(stack, tracking_code=code)
        return found if found is not None and found.message_recording and found.call_recording else None

    log = wait_for(complete_log)
    assert log is not None, "no complete call log names the tracking code the IVR spoke"
    assert log.service == service and log.duration_seconds and log.duration_seconds > 5
    assert log.message_recording == message.path
    assert (stack.recordings / log.call_recording).exists()
    assert audio_stats(stack.recordings / log.call_recording)[2] > 5  # the whole call, for supervisors
    return case


def test_register_a_case_on_1482_with_rfc4733_and_voice(stack, sipp_dir):
    actions, seconds = new_case_actions(sipp_dir, [f"{NID}#"])
    call(stack, sipp_dir, actions, caller_hangs_up=True)
    case = assert_case_and_logs(
        stack, service="1482", kind="complaint", urgent=False, nid=NID, speech_seconds=seconds
    )
    log = call_log(stack, tracking_code=case.tracking_code)
    assert log.outcome == "registered" and log.path.startswith(
        "menu:1>kind:1>urgent:2>nid-confirm:1>nid>record"
    )
    with stack.session() as s:
        # The number is the case's own (a later call with the same ID from another phone never moves it).
        assert stack.vault.decrypt(s.get(Case, case.id).phone_enc) == "09121234567"


def test_register_on_111_with_sip_info_and_a_corrected_national_id(stack, sipp_dir):
    wrong = OTHER_NID[:9] + str((int(OTHER_NID[9]) + 1) % 10)
    actions, seconds = new_case_actions(sipp_dir, [f"{wrong}#", f"{OTHER_NID}#"], kind="3", urgent="1")
    # The invalid ID is refused and asked again: wait for the refusal and the question.
    actions.insert(8, Wait(total("national-id-invalid") + 0.5))
    call(stack, sipp_dir, actions, service="111", user="tester-info", dtmf="info", caller_hangs_up=True)
    case = assert_case_and_logs(
        stack, service="111", kind="request", urgent=True, nid=OTHER_NID, speech_seconds=seconds
    )
    assert "nid:invalid" in call_log(stack, tracking_code=case.tracking_code).path


def test_hear_a_status_by_tracking_code(stack, sipp_dir):
    with stack.session() as s:
        case = s.scalar(select(Case).where(Case.service == "1482").order_by(Case.id))
        assert case is not None, "runs after a case was registered"
        code = case.tracking_code
    # Through the command a user runs: `didehban pbx call 1482 --script ...`
    result = stack.cli("pbx", "call", "1482", "--script", f"2,{code}#", "--hold", "10")
    assert result.returncode == 0 and "call completed" in result.stdout, result.stdout
    log = wait_for(lambda: call_log(stack, outcome="status"))
    assert log is not None and log.tracking_code == code and log.path.endswith("code")


def test_hang_up_in_the_middle_of_the_message(stack, sipp_dir):
    speech = sipp_dir / "long.pcap"
    seconds = speech_pcap(WORDS + " " + WORDS, speech)
    actions = [
        Wait(1.5),
        Keys("1"),
        Wait(1.0),
        Keys("4"),
        Wait(1.0),
        Keys("1"),
        Wait(1.5),
        Keys(f"{NID}#"),
        Wait(1.2),
        Keys("1"),
        Wait(total("record-instructions", "beep") + 0.8),
        Speak(speech, seconds / 2),
    ]  # half-way through, the caller hangs up
    call(stack, sipp_dir, actions, caller_hangs_up=True)
    with stack.session() as s:
        case = wait_for(lambda: s.scalar(select(Case).where(Case.kind == "violation")))
        assert case is not None and case.incomplete and case.urgent
        message = s.scalar(select(Recording).where(Recording.case_id == case.id))
        rate, _, recorded, rms = audio_stats(stack.recordings / message.path)
        assert rate == 8000 and seconds * 0.25 < recorded < seconds * 0.8 and rms > 300


def test_fastagi_stopped_during_a_call_still_leaves_a_case(stack, sipp_dir):
    speech = sipp_dir / "speech.pcap"
    seconds = speech_pcap(WORDS, speech)
    fallback_wait = total("system-unavailable-leave-message", "beep") + 1.0
    port = next(PORTS)
    xml = scenario([Wait(4.0), Wait(fallback_wait), Speak(speech, seconds), Wait(1.0)], caller_hangs_up=True)
    files = write_call_files(xml, sipp_dir, user="tester", name="fallback")
    argv = sipp_command(
        *files,
        service="1482",
        sip_port=stack.sip_port,
        control_port=port,
        media_port=18500 + 10 * PORT_SHIFT,
        timeout_s=120,
    )
    sipp = subprocess.Popen(argv, cwd=sipp_dir, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(2.5)  # the greeting is playing: the FastAGI server dies
        stack.stop("fastagi", kill=True)
        _out, err = sipp.communicate(timeout=150)
        assert sipp.returncode == 0, err[-3000:]
    finally:
        stack.start("fastagi", "fastagi")
    time.sleep(5.5)  # the recording settles
    result = stack.cli("pbx", "ingest-fallback")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 filed" in result.stdout
    with stack.session() as s:
        case = s.scalar(select(Case).where(Case.call_id.like("fallback-%")))
        assert case is not None and case.incomplete and case.service == "1482"
        assert stack.vault.decrypt(case.phone_enc) == "09121234567"
        message = s.scalar(select(Recording).where(Recording.case_id == case.id))
        rate, _, recorded, rms = audio_stats(stack.recordings / message.path)
        assert rate == 8000 and recorded > seconds * 0.6 and rms > 300
    assert not list((Path(stack.env["DIDEHBAN_PBX_RUNTIME"]) / "spool" / "fallback").glob("*.wav"))


def test_the_fastagi_server_goes_ahead_of_asterisk_for_the_cpu(stack):
    """Issue 13: at 500 calls the FastAGI server queued behind Asterisk's threads and answered AGI
    commands seconds late (keys lost). It raises itself; Asterisk stays at the normal priority, each
    in a session (scheduling group) of its own."""
    from ivr.cpu_priority import session_nice

    def nices(pid: int) -> set[int]:
        """The nice value of each of the process's threads."""
        found = set()
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(FileNotFoundError):  # a thread that ended meanwhile
                found.add(int((task / "stat").read_text().rsplit(")", 1)[1].split()[16]))
        return found

    asterisk = int((Path(stack.env["DIDEHBAN_PBX_RUNTIME"]) / "run" / "asterisk.pid").read_text())
    fastagi = stack.processes["fastagi"].pid
    assert len(list(Path(f"/proc/{asterisk}/task").iterdir())) > 10  # every one of Asterisk's threads
    assert nices(asterisk) == {0}
    assert nices(fastagi) == {-5}
    if Path(f"/proc/{fastagi}/autogroup").exists():
        assert (session_nice(fastagi), session_nice(asterisk)) == ("-5", "0")
