"""The process-per-call script's CPU budget (issue 13: at most 150 ms per whole call, interpreter
start included), guarded by behaviour rather than by timing: a new-case call through the script
must not import the frameworks it once pulled in. Asterisk starts a Python for every call; each of
these packages cost tens of milliseconds to import, and a later change that brings one back fails here."""

from __future__ import annotations

import json
import sys

from ivr.phone import environment
from tests.ivr.test_calls import NEW_CASE
from tests.ivr.test_pyst2_script import drive

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
)


def imported_by_a_call(tmp_path, unique_id: str) -> set[str]:
    out = tmp_path / f"{unique_id}.json"
    block = environment(route="hotline", service="1482", caller="09121234567", unique_id=unique_id, port=0)
    t, rc, stderr = drive(
        ["1482"], NEW_CASE, block, command=[sys.executable, "-c", SCRIPT_AND_MODULES, str(out)]
    )
    assert rc == 0, stderr
    assert t.variables["DIDEHBAN_OUTCOME"] == "registered" and t.variables["DIDEHBAN_TRACKING_CODE"]
    return set(json.loads(out.read_text()))


def heavy(modules: set[str]) -> set[str]:
    return {m for m in modules if any(m == name or m.startswith(name + ".") for name in NEVER)}


def test_a_new_case_call_imports_no_framework(settings_env, tmp_path):
    # The first call after the profiles change reads their YAML (and keeps a copy in the spool folder).
    first = imported_by_a_call(tmp_path, "imports.1")
    assert heavy(first) == set()
    # Every later call reads that copy: not even the YAML library.
    later = imported_by_a_call(tmp_path, "imports.2")
    assert heavy(later) == set()
    assert not {m for m in later if m == "yaml" or m.startswith("yaml.")}
    assert {"ivr.flows.new_case", "ivr.spool", "agi_scripts.call_profiles"} <= later  # the call ran here
