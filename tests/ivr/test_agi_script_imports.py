"""The process-per-call script's CPU budget (issue 13: at most 150 ms per whole call, interpreter
start included), guarded by behaviour rather than by timing: a new-case call through the script
must not import the frameworks it once pulled in, and no call imports asyncio (the flows run without
an event loop: agi_scripts.without_loop). Asterisk starts a Python for every call; each of these
packages cost tens of milliseconds to import, and a later change that brings one back fails here."""

from __future__ import annotations

import json
import sys

import pytest

from ivr.phone import environment
from tests.ivr.test_agi_script import drive
from tests.ivr.test_ami_mute_blocking import ThreadedAmi
from tests.ivr.test_calls import NEW_CASE, NID
from tests.ivr.test_status_calls import ANSWER, file_case
from tests.live_backend import free_port

# Runs the script as Asterisk does (`python -m agi_scripts.hotline 1482`), then writes down every
# module the call imported.
SCRIPT_AND_MODULES = """
import json, runpy, sys
out = sys.argv.pop(1)
try:
    runpy.run_module("agi_scripts.hotline", run_name="__main__", alter_sys=True)
finally:
    with open(out, "w") as f:
        json.dump(sorted(sys.modules), f)
"""

NEVER = (
    "pydantic",  # ivr.settings and the service profiles were pydantic models
    "pydantic_core",
    "pydantic_settings",
    "cryptography",  # the spool seals with ivr.fernet_token; opening (Fernet) is the deliverer's
    "httpx",  # the backend client connects on first use: a new case never reaches the backend
    "sqlalchemy",
    "fastapi",
    "starlette",
    "backend",
    "jdatetime",  # holidays: the backend's deadlines, not a call's
    "hijridate",
    "persiantools",  # prompts.render: only a status answer renders speech
    "domain.profiles",
    "domain.holidays",
    "prompts.render",
    # No event loop in a per-call process: asyncio alone was more than half its CPU (with ssl,
    # which it imports, and concurrent.futures, which the spool's writer thread used).
    "asyncio",
    "ssl",
    "_ssl",
    "concurrent.futures",
    # The dataclasses module imports inspect (with ast, dis, tokenize): a tenth of the call's CPU. The
    # per-call path defines named tuples or plain classes (ivr.agi, ivr.channel, ivr.flows, ...).
    "dataclasses",
    "inspect",
)
# Not even for a status call, which asks the backend (httpx, and with it ssl, are expected there).
NEVER_IN_ANY_CALL = ("asyncio", "concurrent.futures", "pydantic", "sqlalchemy", "backend")


@pytest.fixture(autouse=True)
def no_ami(monkeypatch):
    """Nobody at the AMI port unless a test starts one: the mute fails, the recording stops."""
    monkeypatch.setenv("DIDEHBAN_AMI_PORT", str(free_port()))


def call_through_the_script(
    tmp_path, unique_id: str, items=NEW_CASE, *, args=("1482",), caller="09121234567"
) -> tuple[object, set[str]]:
    """(transcript, every module the call imported)."""
    out = tmp_path / f"{unique_id}.json"
    route = args[1] if len(args) > 1 else "hotline"
    block = environment(route=route, service="1482", caller=caller, unique_id=unique_id, port=0)
    t, rc, stderr = drive(
        list(args), items, block, command=[sys.executable, "-c", SCRIPT_AND_MODULES, str(out)]
    )
    assert rc == 0, stderr
    return t, set(json.loads(out.read_text()))


def imported_by_a_call(tmp_path, unique_id: str) -> set[str]:
    t, modules = call_through_the_script(tmp_path, unique_id)
    assert t.variables["DIDEHBAN_OUTCOME"] == "registered" and t.variables["DIDEHBAN_TRACKING_CODE"]
    return modules


def heavy(modules: set[str], never=NEVER) -> set[str]:
    return {m for m in modules if any(m == name or m.startswith(name + ".") for name in never)}


def test_a_new_case_call_imports_no_framework(settings_env, tmp_path):
    # The first call after the profiles change reads their YAML (and keeps a copy in the spool folder).
    first = imported_by_a_call(tmp_path, "imports.1")
    assert heavy(first) == set()
    # Every later call reads that copy: not even the YAML library.
    later = imported_by_a_call(tmp_path, "imports.2")
    assert heavy(later) == set()
    assert not {m for m in later if m == "yaml" or m.startswith("yaml.")}
    assert {"ivr.flows.new_case", "ivr.spool", "agi_scripts.call_profiles"} <= later  # the call ran here


def test_without_a_mute_the_script_stops_the_recording_before_the_national_id(settings_env, tmp_path):
    t, modules = call_through_the_script(tmp_path, "imports.nomute")
    stop = t.commands.index('EXEC StopMixMonitor ""')
    assert stop < next(i for i, c in enumerate(t.commands) if "enter-national-id" in c)
    assert t.variables["DIDEHBAN_OUTCOME"] == "registered"
    assert heavy(modules) == set()


def test_the_script_mutes_the_recording_through_one_ami_login(settings_env, tmp_path, monkeypatch):
    ami = ThreadedAmi()
    monkeypatch.setenv("DIDEHBAN_AMI_PORT", str(ami.port))
    monkeypatch.setenv("DIDEHBAN_AMI_USERNAME", "pbx1")
    try:
        t, modules = call_through_the_script(tmp_path, "imports.mute")
    finally:
        ami.close()
    assert t.variables["DIDEHBAN_OUTCOME"] == "registered"
    assert not any("StopMixMonitor" in c for c in t.commands)
    (login,) = ami.kinds("Login")
    assert login["Username"] == "pbx1-ivr"
    # Muted for the national ID, unmuted after it, on this call's channel.
    channel = "PJSIP/caller-imports.mute"  # ivr.phone.environment's agi_channel
    mutes = [(m["State"], m["Channel"]) for m in ami.kinds("MixMonitorMute")]
    assert mutes == [("1", channel), ("0", channel)]
    assert heavy(modules) == set()


def test_a_status_call_runs_without_asyncio(backend, db, vault, settings_env, tmp_path, monkeypatch):
    # Asked from another number with an answer waiting: the backend twice (the look-up, then the
    # national ID's proof), the spool, the answer spoken, the mute twice (the proof, the answer).
    ami = ThreadedAmi()
    monkeypatch.setenv("DIDEHBAN_AMI_PORT", str(ami.port))
    code = file_case(db, vault, answer=ANSWER)
    try:
        t, modules = call_through_the_script(
            tmp_path,
            "imports.status",
            [f"{code}#", f"{NID}#", "1", ""],
            args=("1482", "status"),
            caller="09350000000",
        )
    finally:
        ami.close()
    assert t.variables["DIDEHBAN_OUTCOME"] == "status"
    assert t.variables["DIDEHBAN_PATH"].endswith("owner:nid")
    assert "answer-only-for-owner" in t.played and "answer-is" in t.played
    assert [m["State"] for m in ami.kinds("MixMonitorMute")] == ["1", "0", "1", "0"]
    assert heavy(modules, NEVER_IN_ANY_CALL) == set()
    assert "httpx" in modules  # the call did ask the backend, in this process
