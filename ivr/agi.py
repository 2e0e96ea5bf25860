"""The AGI wire protocol, both directions, as pure functions: the agi_* environment block Asterisk
sends first, and the `200 result=... (data) key=value` replies to each command."""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import NamedTuple

_REPLY = re.compile(r"^(?P<code>\d{3})[ -](?P<rest>.*)$")
_PAIR = re.compile(r"(?P<key>\w+)=(?P<value>\S*)(?:\s+\((?P<data>[^)]*)\))?")


class CallerHungUp(Exception):
    """The channel is gone: HANGUP was sent, result=-1, 511 dead channel, or the socket closed."""


class AgiCommandError(RuntimeError):
    """Asterisk refused a command (510 unknown, 520 usage): a bug on our side, not the caller's."""


_NOTHING_ELSE: Mapping[str, str] = MappingProxyType({})


# Named tuples, not frozen dataclasses, for the values every call makes: cheaper to define (a
# process-per-call script defines them once a call, issue 13) and to build (once a command).
class Reply(NamedTuple):
    code: int
    result: str = ""
    data: str = ""
    extra: Mapping[str, str] = _NOTHING_ELSE  # key=value pairs after the result (endpos=...)

    @property
    def timed_out(self) -> bool:
        return self.data == "timeout"

    @property
    def result_int(self) -> int:
        try:
            return int(self.result)
        except ValueError:
            return 0


def parse_reply(line: str) -> Reply:
    """One reply line. Raises CallerHungUp for every way Asterisk says the channel is gone."""
    line = line.strip()
    if line.startswith("200 result=") and " " not in line[11:] and "(" not in line:
        # Most replies ("200 result=0", "200 result=1234"): no pattern matching for them.
        if line[11:] == "-1":
            raise CallerHungUp("hangup during the command")
        return Reply(200, line[11:])
    if line == "HANGUP" or line == "":
        raise CallerHungUp(line or "connection closed")
    match = _REPLY.match(line)
    if not match:
        raise AgiCommandError(f"unexpected AGI reply {line!r}")
    code, rest = int(match["code"]), match["rest"]
    if code == 511:
        raise CallerHungUp("dead channel")
    if code != 200:
        raise AgiCommandError(f"AGI command failed: {line}")
    result, data, extra = "", "", {}
    for pair in _PAIR.finditer(rest):
        if pair["key"] == "result":
            result, data = pair["value"], pair["data"] or ""
        else:
            extra[pair["key"]] = pair["value"]
    if result == "-1" or data == "hangup":
        raise CallerHungUp("hangup during the command")
    return Reply(code, result, data, extra)


def parse_environment(lines: list[str]) -> dict[str, str]:
    """The `agi_name: value` block (ended by an empty line) into a dict."""
    env = {}
    for line in lines:
        key, sep, value = line.partition(": ")
        if sep and key.startswith("agi_"):
            env[key] = value
    return env


def quote(value: str) -> str:
    """An AGI argument in double quotes (paths and values may hold spaces)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
