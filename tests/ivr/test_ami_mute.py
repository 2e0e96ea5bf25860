"""The recording mute's AMI side under a burst of calls: one logged-in connection shared by every call,
not a connection and a login per mute (issue 13: at 500 concurrent SIP calls, 311 mutes timed out
against Asterisk's AMI and the callers' national ID keys, pressed meanwhile, were lost)."""

from __future__ import annotations

import asyncio

import pytest

from ivr.ami.mute import MuteFailed, mixmonitor_mute
from ivr.phone import AMI_GREETING, ami_actions

AUTHLIMIT = 50  # Asterisk's default: sessions that may wait to log in at once; more are closed


class FakeAmi:
    """Answers Login and MixMonitorMute as Asterisk does, echoing ActionID, and closes a connection
    at once when AUTHLIMIT sessions are already waiting to log in (manager.c's authlimit)."""

    def __init__(self) -> None:
        self.connections = self.logins = self.mutes = 0
        self.unauthenticated = 0
        self.drop_after_mutes: int | None = None
        self.byte_by_byte = False  # answers written a byte at a time (TCP may split them anywhere)
        self.writers: list[asyncio.StreamWriter] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        if self.unauthenticated >= AUTHLIMIT:
            writer.close()
            return
        self.unauthenticated += 1
        authenticated = False
        self.writers.append(writer)
        writer.write(AMI_GREETING)
        try:
            async for fields in ami_actions(reader):
                await asyncio.sleep(0.002)  # Asterisk takes a moment per action
                reply = {"Response": "Success"}
                if fields.get("Action") == "Login":
                    self.logins += 1
                    authenticated = True
                    self.unauthenticated -= 1
                elif fields.get("Action") == "MixMonitorMute":
                    self.mutes += 1
                if "ActionID" in fields:
                    reply["ActionID"] = fields["ActionID"]
                answer = "".join(f"{k}: {v}\r\n" for k, v in reply.items()).encode() + b"\r\n"
                if self.byte_by_byte and fields.get("Action") != "Login":
                    for i in range(len(answer)):
                        writer.write(answer[i : i + 1])
                        await writer.drain()
                        await asyncio.sleep(0.001)
                else:
                    writer.write(answer)
                await writer.drain()
                if self.drop_after_mutes is not None and self.mutes >= self.drop_after_mutes:
                    self.drop_after_mutes = None
                    break
        finally:
            if not authenticated:
                self.unauthenticated -= 1
            writer.close()


@pytest.fixture
async def ami():
    fake = FakeAmi()
    server = await asyncio.start_server(fake.handle, "127.0.0.1", 0)
    fake.port = server.sockets[0].getsockname()[1]
    yield fake
    server.close()
    for writer in fake.writers:
        writer.close()


def mute(ami: FakeAmi, channel: str, state: bool = True, **kw):
    return mixmonitor_mute(
        host="127.0.0.1", port=ami.port, username="u-ivr", secret="s", channel=channel, mute=state, **kw
    )


async def test_a_burst_of_calls_mutes_through_one_login(ami):
    # 500 calls reach the national ID together: every mute answered, through one connection.
    results = await asyncio.gather(
        *(mute(ami, f"PJSIP/tester-{i:08x}") for i in range(500)), return_exceptions=True
    )
    assert [r for r in results if r is not None] == []
    assert ami.mutes == 500 and ami.logins == 1 and ami.connections == 1


async def test_a_lost_connection_is_made_again_for_the_next_mute(ami):
    ami.drop_after_mutes = 1
    await mute(ami, "PJSIP/tester-00000001")
    await asyncio.sleep(0.05)  # the fake closes the line after its first mute
    await mute(ami, "PJSIP/tester-00000001", state=False)
    assert ami.mutes == 2 and ami.logins == 2


async def test_an_ami_that_never_answers_fails_the_mute_in_time(ami):
    silent = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = silent.sockets[0].getsockname()[1]
    try:
        with pytest.raises(MuteFailed):
            await mixmonitor_mute(
                host="127.0.0.1", port=port, username="u", secret="s", channel="c", mute=True, timeout=0.2
            )
    finally:
        silent.close()
    await mute(ami, "PJSIP/tester-00000002")  # another AMI on the same loop is not held up
    assert ami.mutes == 1


async def test_answers_split_anywhere_are_read_whole_and_matched_to_their_mutes(ami):
    """The line is read in chunks, not a line at a time: an answer cut between \\r and \\n, or
    inside a key, is still one answer, matched to its mute by ActionID."""
    await mute(ami, "PJSIP/tester-00000000")  # logged in
    ami.byte_by_byte = True
    results = await asyncio.gather(*(mute(ami, f"PJSIP/tester-{i:08x}") for i in range(1, 4)))
    assert results == [None, None, None] and ami.mutes == 4 and ami.logins == 1
