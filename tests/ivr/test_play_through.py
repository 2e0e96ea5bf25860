"""Prompts no key stops (a tracking code read back, a status) go to Asterisk as one Playback of
several files, in order; prompts a key stops stay one STREAM FILE each, so a key still stops them."""

from __future__ import annotations

import shlex

from ivr.agi import Reply
from ivr.channel import PLAYBACK_MAX_BYTES, CallInfo, Channel
from ivr.flows.new_case import read_tracking_code
from prompts.say import say_digits


class RecordingChannel(Channel):
    def __init__(self, prompts: str = "/srv/ivr/sounds/fa/") -> None:
        super().__init__(CallInfo("u1", "09121234567", "1482", "hotline"))
        self._prompts = prompts
        self.sent: list[str] = []

    async def _send(self, command: str) -> Reply:
        self.sent.append(command)
        return Reply(200, "0")


def played(commands: list[str]) -> list[str]:
    """The files the commands play, in order, as Asterisk would play them."""
    files = []
    for command in commands:
        args = shlex.split(command)
        if args[:2] == ["EXEC", "Playback"]:
            files += args[2].split("&")
        elif args[:2] == ["STREAM", "FILE"]:
            files.append(args[2])
    return [f.rsplit("/", 1)[-1] for f in files]


async def test_prompts_no_key_stops_are_one_playback():
    channel = RecordingChannel()
    ids = ["your-tracking-code-is", *say_digits("2112345678")]
    assert await channel.play(ids, keys="") is None
    assert channel.sent == ["EXEC Playback " + '"' + "&".join(f"/srv/ivr/sounds/fa/{i}" for i in ids) + '"']
    assert played(channel.sent) == ids


async def test_prompts_a_key_stops_stay_one_command_a_prompt():
    channel = RecordingChannel()
    ids = ["you-entered", *say_digits("0013542419")]
    await channel.play(ids)
    assert len(channel.sent) == len(ids)
    assert all(c.startswith("STREAM FILE") and c.endswith('"0123456789*#"') for c in channel.sent)


async def test_a_path_playback_would_misread_is_played_file_by_file():
    for odd in ("/srv/a&b/", "/srv/a,b/", '/srv/a"b/', "/srv/a\\b/", "/srv/$x/"):
        channel = RecordingChannel(odd)
        await channel.play(["case-registered", "goodbye"], keys="")
        assert [c.split(" ", 2)[:2] for c in channel.sent] == [["STREAM", "FILE"]] * 2, odd
        assert all(c.endswith(' ""') for c in channel.sent)


async def test_a_list_too_long_for_one_agi_line_is_split_in_order():
    channel = RecordingChannel("/" + "long-folder-name/" * 10)
    ids = [f"digit-{i % 10}" for i in range(60)]
    await channel.play(ids, keys="")
    assert len(channel.sent) > 1
    assert all(len(c.encode()) < 2048 - 1 for c in channel.sent)
    assert all(len(shlex.split(c)[2].encode()) <= PLAYBACK_MAX_BYTES for c in channel.sent)
    assert played(channel.sent) == ids


async def test_the_code_is_read_twice_in_one_command_and_the_goodbye_with_the_sms_notice():
    class Call:
        channel = RecordingChannel()

    call = Call()
    await read_tracking_code(call, "2112345678", then=("goodbye",))  # type: ignore[arg-type]
    sent = call.channel.sent
    spoken = ["your-tracking-code-is", *say_digits("2112345678")]
    assert played(sent[:1]) == ["case-registered", *spoken, *spoken]
    assert sent[1].startswith("GET DATA") and "tracking-code-repeat-menu" in sent[1]
    assert played(sent[2:]) == ["sms-will-follow", "goodbye"] and len(sent) == 3
