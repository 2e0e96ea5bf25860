"""The AGI wire format, replayed from what Asterisk 22 sends."""

import pytest

from ivr.agi import AgiCommandError, CallerHungUp, parse_environment, parse_reply, quote

RAW_ENV = """agi_network: yes
agi_network_script: hotline
agi_request: agi://127.0.0.1:4573/hotline
agi_channel: PJSIP/tester-00000003
agi_language: en
agi_type: PJSIP
agi_uniqueid: ci-ivr-1700000000.7
agi_version: 22.1.1
agi_callerid: 09121234567
agi_calleridname: CI caller
agi_dnid: 1482
agi_context: hotline-1482
agi_extension: 1482
agi_priority: 4
agi_arg_1: 1482
"""


def test_environment_block():
    from ivr.channel import CallInfo

    env = parse_environment(RAW_ENV.splitlines())
    info = CallInfo.from_environment(env)
    assert (info.service, info.route, info.caller_number) == ("1482", "hotline", "09121234567")
    assert info.unique_id == "ci-ivr-1700000000.7"


def test_caller_id_unknown_and_service_from_dialled_number():
    from ivr.channel import CallInfo

    info = CallInfo.from_environment(
        {"agi_callerid": "unknown", "agi_dnid": "111", "agi_network_script": "status"}
    )
    assert info.caller_number == "" and info.service == "111" and info.route == "status"


@pytest.mark.parametrize(
    ("line", "result", "data", "extra"),
    [
        ("200 result=0", "0", "", {}),
        ("200 result=49", "49", "", {}),
        ("200 result=0013542419", "0013542419", "", {}),
        ("200 result=12 (timeout)", "12", "timeout", {}),
        ("200 result= (timeout)", "", "timeout", {}),
        ("200 result=35 (dtmf) endpos=45600", "35", "dtmf", {"endpos": "45600"}),
        ("200 result=0 (timeout) endpos=1440000", "0", "timeout", {"endpos": "1440000"}),
        ("200 result=0 endpos=16000", "0", "", {"endpos": "16000"}),
    ],
)
def test_replies(line, result, data, extra):
    reply = parse_reply(line + "\n")
    assert (reply.code, reply.result, reply.data, reply.extra) == (200, result, data, extra)


@pytest.mark.parametrize(
    "line",
    [
        "HANGUP",
        "200 result=-1",
        "200 result=-1 (hangup) endpos=12000",
        "",
        "511 Command Not Permitted on a dead channel or intercept routine",
    ],
)
def test_every_way_of_hanging_up(line):
    with pytest.raises(CallerHungUp):
        parse_reply(line)


@pytest.mark.parametrize("line", ["510 Invalid or unknown command", "520-Invalid command syntax.", "garbage"])
def test_command_errors_are_ours(line):
    with pytest.raises(AgiCommandError):
        parse_reply(line)


def test_quote():
    assert quote('a "b" c\\d') == '"a \\"b\\" c\\\\d"'


def test_every_route_is_registered_once_beside_its_flow():
    from ivr.flows import hotline, new_case, status
    from ivr.flows.routes import registered, route

    routes = registered()
    assert routes == {
        "hotline": hotline.hotline,
        "new-case": new_case.new_case,
        "status": status.case_status,
        "message": hotline.leave_message,
        "operator": hotline.operator,
    }
    with pytest.raises(ValueError, match="registered twice"):
        route("status")(hotline.hotline)


def test_every_channel_variable_the_flows_set_is_named_in_one_module():
    import re
    from pathlib import Path

    from ivr import dialplan_variables as var

    root = Path(__file__).resolve().parents[2]
    names = {v for k, v in vars(var).items() if k.isupper() and isinstance(v, str)}
    for path in (root / "ivr").rglob("*.py"):
        if path.name == "dialplan_variables.py":
            continue
        text = path.read_text(encoding="utf-8")
        # No variable name spelled out as a string: each comes from ivr.dialplan_variables.
        assert not re.findall(
            r"[\"'](DIDEHBAN_(?:OUTCOME|TRACKING_CODE|PATH|MESSAGE_FILE|SERVICE))[\"']", text
        ), path
    dialplan = (root / "asterisk_conf" / "extensions.conf").read_text()
    used = set(re.findall(r"\$\{(DIDEHBAN_[A-Z_]+|FALLBACK_FILE|SERVICE)\}", dialplan))
    assert used <= names, used - names
