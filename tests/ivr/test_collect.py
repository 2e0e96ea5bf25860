"""Digit collection over a scripted channel: whatever the caller types, the flow gets the right digits."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from ivr.agi import Reply
from ivr.channel import CallInfo, Channel


class KeypadChannel(Channel):
    """Answers GET DATA / STREAM FILE / WAIT FOR DIGIT / Read from a sequence of key presses, as
    Asterisk would: GET DATA and Read take up to max digits, stopping at #; Read leaves them for
    GET FULL VARIABLE."""

    def __init__(self, keys: str, barge_in: bool = False) -> None:
        super().__init__(CallInfo("u1", "0912", "1482", "hotline"))
        self.keys = list(keys)
        self.barge_in = barge_in
        self.sent: list[str] = []
        self.read = ""

    async def _send(self, command: str) -> Reply:
        self.sent.append(command)
        if command.startswith("STREAM FILE"):
            if self.barge_in and self.keys:
                return Reply(200, str(ord(self.keys.pop(0))))
            return Reply(200, "0")
        if command.startswith("WAIT FOR DIGIT"):
            return Reply(200, str(ord(self.keys.pop(0))) if self.keys else "0")
        if command.startswith("GET DATA"):
            got = self._entry(int(command.rsplit(" ", 1)[1]))
            return Reply(200, got, "" if len(got) == int(command.rsplit(" ", 1)[1]) else "timeout")
        if command.startswith("EXEC Read"):  # Read(var,a&b,maxdigits,...): a key stops any file
            self.read = self._entry(int(command.split(",")[2]))
            return Reply(200, "0")
        if command.startswith("GET FULL VARIABLE"):
            return Reply(200, "1", f"OK:{self.read}")
        return Reply(200, "0")

    def _entry(self, max_digits: int) -> str:
        got = ""
        while self.keys and len(got) < max_digits:
            key = self.keys.pop(0)
            if key == "#":
                return got
            got += key
        return got


async def _collect(keys: str, barge_in: bool, prompts: list[str], max_digits: int) -> str:
    return await KeypadChannel(keys, barge_in).collect(prompts, max_digits=max_digits)


@settings(max_examples=200)
@given(
    digits=st.text(alphabet="0123456789", max_size=12),
    terminated=st.booleans(),
    barge_in=st.booleans(),
    prompts=st.sampled_from([["enter-national-id"], ["you-entered", "digit-1", "confirm-menu"]]),
    max_digits=st.integers(1, 10),
)
def test_collect_returns_what_was_typed_up_to_the_limit(digits, terminated, barge_in, prompts, max_digits):
    import asyncio

    keys = digits + ("#" if terminated else "")
    got = asyncio.run(_collect(keys, barge_in, prompts, max_digits))
    assert got == digits[:max_digits]
    assert "#" not in got


def test_nothing_typed_is_an_empty_answer():
    import asyncio

    assert asyncio.run(_collect("", False, ["main-menu"], 1)) == ""
    assert asyncio.run(_collect("#", True, ["a", "b"], 10)) == ""
