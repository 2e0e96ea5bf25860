"""Fewer AGI commands a call, the caller hearing and able to do the same (issue 13).

Prompts no key stops (a tracking code read back, a status) go to Asterisk as one Playback of
several files, in order; prompts a key stops stay one STREAM FILE each, so a key still stops them.
Channel variables set one after another go with the next command, in one MSet."""

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


async def test_variables_set_together_go_in_one_command_before_the_next():
    channel = RecordingChannel()
    await channel.set_variable("DIDEHBAN_PATH", "menu:1>record>rec-menu:3")
    await channel.set_variable("DIDEHBAN_TRACKING_CODE", "2112345678")
    await channel.set_variable("DIDEHBAN_OUTCOME", "registered")
    assert channel.sent == []  # nothing goes out until a command needs the line
    await channel.play(["goodbye"], keys="")
    assert channel.sent[0] == (
        'EXEC MSet "DIDEHBAN_PATH=menu:1>record>rec-menu:3,'
        'DIDEHBAN_TRACKING_CODE=2112345678,DIDEHBAN_OUTCOME=registered"'
    )
    assert channel.sent[1].startswith("STREAM FILE") and len(channel.sent) == 2


async def test_a_variable_set_twice_is_sent_once_with_its_last_value():
    channel = RecordingChannel()
    await channel.set_variable("DIDEHBAN_PATH", "menu:1>nid-confirm:1")
    await channel.set_variable("DIDEHBAN_PATH", "menu:1>nid-confirm:1>nid")
    await channel.flush()
    assert channel.sent == ['SET VARIABLE DIDEHBAN_PATH "menu:1>nid-confirm:1>nid"']
    await channel.flush()  # nothing left to send
    assert len(channel.sent) == 1


async def test_a_value_mset_would_misread_goes_in_its_own_set_variable():
    channel = RecordingChannel()
    await channel.set_variable("DIDEHBAN_OUTCOME", "registered")
    await channel.set_variable("DIDEHBAN_MESSAGE_FILE", "1482/a,b=c $x.wav")
    await channel.flush()
    assert channel.sent == [
        'SET VARIABLE DIDEHBAN_OUTCOME "registered"',
        'SET VARIABLE DIDEHBAN_MESSAGE_FILE "1482/a,b=c $x.wav"',
    ]


async def test_variables_go_before_a_recording_not_as_part_of_it():
    """A hang-up while the variables go out is a hang-up before the beep: the recording is not
    reported as begun (a case would be filed for a message never recorded)."""
    from ivr.agi import CallerHungUp

    class HangsUpAtFirstCommand(RecordingChannel):
        async def _send(self, command: str) -> Reply:
            self.sent.append(command)
            raise CallerHungUp("HANGUP")

    channel = HangsUpAtFirstCommand()
    await channel.set_variable("DIDEHBAN_PATH", "menu:1")
    try:
        await channel.record("/rec/x")
    except CallerHungUp:
        pass
    else:
        raise AssertionError("a hang-up before RECORD FILE must not be a recording ended by hang-up")
    assert not any(c.startswith("RECORD FILE") for c in channel.sent)
