"""Type-ahead (issue 9, fault 1): a key that stops any prompt is the first key of the next entry.

The AGI simulator keeps keys typed beyond what a command took, as Asterisk does, and lets them stop
the next prompt that listens: so a caller who types the right code over "the code is not correct"
is simulated by one entry holding both codes."""

from __future__ import annotations

from sqlalchemy import select

from backend.models import Case
from ivr.agi import Reply
from ivr.channel import CallInfo, Channel
from tests.ivr.test_calls import NID, WORDS, the_case
from tests.ivr.test_status_calls import file_case


def _wrong_check_digit(code: str) -> str:
    return code[:-1] + str((int(code[-1]) + 1) % 10)


async def test_the_right_code_typed_over_the_error_prompt_is_taken_whole(backend, place_call, db, vault):
    code = file_case(db, vault)
    t = await place_call(["2", f"{_wrong_check_digit(code)}#{code}#", ""])
    assert t.played.count("tracking-code-invalid") == 1
    assert t.variables["DIDEHBAN_TRACKING_CODE"] == code
    assert t.variables["DIDEHBAN_OUTCOME"] == "status"
    # The caller was typing: the question was not asked again over the keys.
    assert t.played.count("enter-tracking-code") == 1


async def test_the_right_national_id_typed_over_the_error_prompt_is_taken_whole(
    backend, place_call, db, vault
):
    wrong = _wrong_check_digit(NID)
    t = await place_call(["1", "1", "2", f"{wrong}#{NID}#", "1", WORDS, "3"])
    assert t.played.count("national-id-invalid") == 1
    assert vault.decrypt(the_case(db).caller.national_id_enc) == NID
    assert t.variables["DIDEHBAN_OUTCOME"] == "registered"


async def test_a_menu_key_typed_over_invalid_key_answers_the_menu(backend, place_call, db):
    t = await place_call(["71", "1", "2", f"{NID}#", "1", WORDS, "3"])
    assert t.played.count("invalid-key") == 1 and t.played.count("main-menu") == 1
    assert db.scalar(select(Case)).kind == "complaint"
    assert t.variables["DIDEHBAN_PATH"].startswith("menu:1>kind:1>urgent:2")


class ScriptedChannel(Channel):
    """Asterisk's replies by command verb: a prompt named in `stops` is stopped by that key (a
    STREAM FILE, or Read at that file), and GET DATA (or Read after its last file) answers from
    `entries` in order. Every command is kept."""

    def __init__(self, stops: dict[str, str], entries: list[str]) -> None:
        super().__init__(CallInfo("u1", "0912", "1482", "hotline"))
        self.stops, self.entries, self.sent = stops, list(entries), []
        self.read = ""

    async def _send(self, command: str) -> Reply:
        self.sent.append(command)
        if command.startswith("EXEC Read"):  # Read(var,a&b&c,maxdigits,...)
            files = command.split(",")[1].split("&")
            stopped = [self.stops[f.rsplit("/", 1)[-1]] for f in files if f.rsplit("/", 1)[-1] in self.stops]
            self.read = stopped[0] if stopped else (self.entries.pop(0) if self.entries else "")
            return Reply(200, "0")
        if command.startswith("GET FULL VARIABLE"):
            return Reply(200, "1", f"OK:{self.read.split('#', 1)[0]}")
        if command.startswith("STREAM FILE"):
            for prompt, key in self.stops.items():
                if f'/{prompt}"' in command:
                    return Reply(200, str(ord(key)))
            return Reply(200, "0")
        if command.startswith("GET DATA"):
            return Reply(200, self.entries.pop(0) if self.entries else "", "timeout")
        return Reply(200, "0")


async def test_a_key_over_no_input_is_the_first_digit_of_the_entry():
    channel = ScriptedChannel({"no-input": "0"}, ["", "013542419"])
    assert await channel.collect(["enter-national-id"], max_digits=11) == ""
    assert await channel.play(["no-input"]) == "0"
    assert await channel.collect(["enter-national-id"], max_digits=11) == "0013542419"
    # The question was not played over the typing: the second GET DATA only listens, for the rest.
    assert channel.sent[-1] == 'GET DATA "" 6000 10'


async def test_a_key_over_a_menu_prompt_answers_the_menu_at_once():
    # One Read plays the prompts and stops at the key (Asterisk plays no more of them), then the key
    # is read back: no GET DATA after it.
    channel = ScriptedChannel({"you-entered": "2"}, [])
    assert await channel.collect(["you-entered", "digit-1", "confirm-menu"], max_digits=1) == "2"
    assert [c.split(" ", 2)[:2] for c in channel.sent] == [["EXEC", "Read"], ["GET", "FULL"]]
    # Prompts in a folder Read would misread go one STREAM FILE each: still nothing after the key.
    channel = ScriptedChannel({"you-entered": "2"}, [])
    channel._prompts = "/srv/sounds (fa)/"
    assert await channel.collect(["you-entered", "digit-1", "confirm-menu"], max_digits=1) == "2"
    assert len(channel.sent) == 1  # nothing after the key: not the rest of the prompts, no GET DATA


async def test_a_key_that_skips_the_instructions_is_not_a_menu_answer():
    channel = ScriptedChannel({"record-instructions": "5"}, ["3"])
    assert await channel.play(["record-instructions"]) == "5"
    assert channel.take_typed_ahead() == "5"
    assert await channel.collect(["recording-menu"], max_digits=1) == "3"


async def test_a_pound_over_a_prompt_is_an_empty_entry():
    channel = ScriptedChannel({"no-input": "#"}, [])
    await channel.play(["no-input"])
    assert await channel.collect(["enter-tracking-code"], max_digits=11) == ""
