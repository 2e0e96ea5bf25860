"""Issue 9 through the real PBX: what callers meet (type-ahead, numbers, the operator queue) and
nothing private on the PBX (logs, the whole-call recording). Real SIP calls placed with sipp."""

from __future__ import annotations

import array
import subprocess
import time
import wave
from pathlib import Path

import pytest
from sqlalchemy import func, select

from backend.models import CallLog, Case
from ivr.pbx.sipcall import Background, Keys, Speak, Wait, run_sipp, speech_pcap
from ivr.pbx.timing import total
from tests.pbx.conftest import PORT_SHIFT
from tests.pbx.test_sip_calls import (
    NID,
    OTHER_NID,
    PORTS,
    WORDS,
    call,
    call_log,
    media_port,
    new_case_actions,
    wait_for,
)

pytestmark = pytest.mark.pbx

USERS = {"rfc4733": "tester", "info": "tester-info"}


def wrong_check_digit(code: str) -> str:
    return code[:-1] + str((int(code[-1]) + 1) % 10)


def last_log_id(stack) -> int:
    with stack.session() as s:
        return s.scalar(select(func.max(CallLog.id))) or 0


def new_log(stack, after: int, **where) -> CallLog | None:
    """The first complete call log written after `after` (AMI's Hangup and Cdr both in)."""

    def found():
        log = call_log(stack, **where)
        return log if log is not None and log.id > after and log.call_recording is not None else None

    return wait_for(found, timeout=25)


def newest_case(stack) -> Case | None:
    """The newest case, with its caller loaded (usable after the session closes)."""
    with stack.session() as s:
        case = s.scalar(select(Case).order_by(Case.id.desc()))
        if case is not None:
            _ = case.caller
            s.expunge_all()
        return case


# --- 1. type-ahead ----------------------------------------------------------------------------------


@pytest.mark.parametrize("dtmf", ["rfc4733", "info"])
def test_the_right_national_id_typed_over_the_error_prompt(stack, sipp_dir, dtmf):
    # One run of keys: the wrong ID, #, and at once the right one while "not correct" plays.
    keys = f"{wrong_check_digit(OTHER_NID)}#{OTHER_NID}#"
    actions, _seconds = new_case_actions(sipp_dir, [keys], kind="2")
    before = newest_case(stack)
    call(stack, sipp_dir, actions, user=USERS[dtmf], dtmf=dtmf, caller_hangs_up=True)
    case = wait_for(lambda: (c := newest_case(stack)) and (before is None or c.id != before.id) and c)
    assert case and case.kind == "suggestion"
    assert stack.vault.decrypt(case.caller.national_id_enc) == OTHER_NID
    log = new_log(stack, 0, tracking_code=case.tracking_code)
    assert log is not None and "nid:invalid>nid-confirm:1>nid" in log.path


@pytest.mark.parametrize("dtmf", ["rfc4733", "info"])
def test_the_right_tracking_code_typed_over_the_error_prompt(stack, sipp_dir, dtmf):
    with stack.session() as s:
        code = s.scalar(select(Case.tracking_code).order_by(Case.id))
    assert code, "runs after a case was registered"
    after = last_log_id(stack)
    actions = [Wait(1.5), Keys("2"), Wait(1.0), Keys(f"{wrong_check_digit(code)}#{code}#"), Wait(4.0)]
    call(stack, sipp_dir, actions, user=USERS[dtmf], dtmf=dtmf, caller_hangs_up=True)
    log = new_log(stack, after, outcome="status")
    assert log is not None and log.tracking_code == code
    assert log.path.startswith("menu:2>code:invalid>code")


# --- 2. only the short codes ------------------------------------------------------------------------

WRONG_NUMBER = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="wrong number">
  <send retrans="500"><![CDATA[
      INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "CI caller" <sip:[field0]@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:[field0]@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=user1 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0
      a=rtpmap:0 PCMU/8000
  ]]></send>
  <recv response="100" optional="true"/>
  <recv response="183"/>
  <recv response="404" timeout="20000"/>
  <send><![CDATA[
      ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "CI caller" <sip:[field0]@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Content-Length: 0
  ]]></send>
</scenario>
"""


@pytest.mark.parametrize("number", ["5551234", "14820", "21482", "1111", "+15551234"])
def test_a_wrong_number_hears_not_in_service_and_is_never_answered(stack, sipp_dir, number):
    port = next(PORTS)
    result = run_sipp(
        WRONG_NUMBER,
        service=number,
        user="tester",
        sip_port=stack.sip_port,
        workdir=sipp_dir,
        control_port=port,
        media_port=media_port(port),
        timeout_s=40,
    )
    # Early media (the "not in service" prompt), then 404; never a 200, so no hotline answered.
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.mark.parametrize(
    ("number", "service"),
    [
        ("0511482", "1482"),
        ("98511482", "1482"),
        ("0098211482", "1482"),
        ("+98211482", "1482"),
        ("021111", "111"),
        ("9851111", "111"),
        ("009851111", "111"),
        ("+9821111", "111"),
    ],
)
def test_each_prefixed_form_reaches_its_hotline(stack, sipp_dir, number, service):
    after = last_log_id(stack)
    call(stack, sipp_dir, [Wait(2.0)], service=number, caller_hangs_up=True)
    log = new_log(stack, after)
    assert log is not None and log.service == service


# --- 3. the operator queue --------------------------------------------------------------------------


def test_nobody_in_the_queue_the_caller_leaves_a_message_at_once(stack, sipp_dir):
    queue = stack.cli("pbx", "cli", "queue show operators-1482")
    assert "No Members" in queue.stdout, queue.stdout
    speech = sipp_dir / "speech.pcap"
    seconds = speech_pcap(WORDS, speech)
    after = last_log_id(stack)
    actions = [
        Wait(1.5),
        Keys("0"),
        Wait(total("operator-connecting", "no-operator-free", "leave-message-after-beep", "beep") + 1.5),
        Speak(speech, seconds),
        Keys("#"),
        Wait(2.0),
    ]
    call(stack, sipp_dir, actions, caller_hangs_up=True)
    log = new_log(stack, after, outcome="message")
    assert log is not None and log.message_recording, "no message: the caller waited on hold for nobody"
    case = newest_case(stack)
    assert case.incomplete and case.tracking_code == log.tracking_code


def test_an_operator_in_the_queue_answers(stack, sipp_dir):
    added = stack.cli("pbx", "cli", "queue add member PJSIP/operator-test to operators-1482")
    assert added.returncode == 0, added.stdout + added.stderr
    operator_port = stack.sip_port + 1
    uas = subprocess.Popen(
        [
            *("sipp", "-sn", "uas", "-i", "127.0.0.1", "-p", str(operator_port), "-m", "1", "-nostdin"),
            *("-mi", "127.0.0.1", "-mp", str(18700 + 10 * PORT_SHIFT), "-cp", str(next(PORTS))),
            *("-timeout", "60s"),
        ],
        cwd=sipp_dir,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(0.5)
        after = last_log_id(stack)
        wait_in_line = total("operator-connecting", "operator-wait-or-press") + 3.0
        call(stack, sipp_dir, [Wait(1.5), Keys("0"), Wait(wait_in_line + 4.0)], caller_hangs_up=True)
        _out, err = uas.communicate(timeout=30)
        assert uas.returncode == 0, "the operator's phone did not ring and answer: " + err[-2000:]
    finally:
        if uas.poll() is None:
            uas.kill()
        stack.cli("pbx", "cli", "queue remove member PJSIP/operator-test from operators-1482")
    log = new_log(stack, after)
    assert log is not None and log.outcome == "operator" and not log.message_recording


# --- 5 and 6. nothing private in the logs or the whole-call recording --------------------------------


def _elapsed(actions) -> list[float]:
    """When each action starts, in seconds after the call was answered (keys sent as SIP INFO)."""
    starts, t = [], 0.0
    for action in actions:
        starts.append(t)
        if isinstance(action, Wait):
            t += action.seconds
        elif isinstance(action, Speak):
            t += action.seconds + 0.2
        elif isinstance(action, Keys):
            t += len(action.keys) * (action.gap + 0.01)
    return starts


def _rms(path: Path, start: float, end: float) -> float:
    with wave.open(str(path)) as w:
        rate = w.getframerate()
        w.setpos(int(start * rate))
        samples = array.array("h", w.readframes(int((end - start) * rate)))
    return (sum(s * s for s in samples) / max(1, len(samples))) ** 0.5


def test_the_whole_call_recording_is_silent_while_the_national_id_is_typed_and_read_back(stack, sipp_dir):
    # The caller's line carries sound all along (as a real line does), keys go as SIP INFO: the
    # recording runs on the wall clock, and only a mute can make a stretch of it silent.
    line = sipp_dir / "line.pcap"
    line_seconds = speech_pcap(" ".join([WORDS] * 5), line)
    actions, _seconds = new_case_actions(sipp_dir, [f"{NID}#"], kind="3")
    actions.insert(0, Background(line))
    assert line_seconds > 25
    starts = _elapsed(actions)
    nid_at = next(starts[i] for i, a in enumerate(actions) if isinstance(a, Keys) and NID in a.keys)
    confirm_at = next(
        starts[i]
        for i, a in enumerate(actions)
        if isinstance(a, Keys) and a.keys == "1" and starts[i] > nid_at
    )
    after = last_log_id(stack)
    call(stack, sipp_dir, actions, user="tester-info", dtmf="info", caller_hangs_up=True)
    log = new_log(stack, after)
    assert log is not None and log.path.startswith("menu:1>kind:3>urgent:2>nid-confirm:1>nid")
    recording = stack.recordings / log.call_recording
    # Before the question, the caller's line is heard ...
    assert _rms(recording, 0.5, 2.5) > 300
    # ... from the question to the confirmation (the prompt, the keys, the ID read back): silence.
    assert _rms(recording, nid_at - 0.8, confirm_at - 0.6) < 50
    # ... and after it, the recording hears the call again.
    assert _rms(recording, confirm_at + 1.5, confirm_at + 6.0) > 300


def test_no_keys_and_no_national_id_in_the_pbx_logs(stack):
    """Runs after the calls above: the ID, typed and read back, is in no log file."""
    logs = Path(stack.env["DIDEHBAN_PBX_RUNTIME"]) / "log"
    files = [p for p in logs.rglob("*") if p.is_file()]
    assert files
    for path in files:
        text = path.read_text(errors="replace")
        assert NID not in text and OTHER_NID not in text, path.name
        assert "DTMF" not in text, f"{path.name} logs keys"
