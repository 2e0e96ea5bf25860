"""The FastAGI server's connection handling (ivr.fastagi.AgiConnection): the environment block and
replies however TCP splits them, Asterisk's "100 Trying" and HANGUP lines, one deadline a call
(not a timer a command) that still hangs up a silent channel, and a case on disk before its code is
read to the caller."""

from __future__ import annotations

import asyncio
import sqlite3

import ivr.fastagi
from domain.national_id import with_check_digit
from ivr.phone import AsteriskSide, Script, environment

NID = with_check_digit("001354241")
NEW_CASE = ["1", "1", "2", f"{NID}#", "1", "words", "3", ""]


def env_block(port: int, unique_id: str) -> bytes:
    env = environment(route="hotline", service="1482", caller="09121234567", unique_id=unique_id, port=port)
    return ("".join(f"{k}: {v}\n" for k, v in env.items()) + "\n").encode()


async def test_a_silent_channel_is_hung_up_at_the_call_deadline(fastagi, monkeypatch):
    monkeypatch.setattr(ivr.fastagi, "CALL_TIMEOUT", 0.5)
    reader, writer = await asyncio.open_connection("127.0.0.1", fastagi.port)
    writer.write(env_block(fastagi.port, "silent.1"))
    await writer.drain()
    assert (await asyncio.wait_for(reader.readline(), 5)).startswith(b"ANSWER")
    # Asterisk never answers: the server closes the connection at the call's deadline.
    assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()
    assert fastagi.active_calls == 0


async def test_an_incomplete_environment_is_closed_at_the_header_deadline(fastagi, monkeypatch):
    monkeypatch.setattr(ivr.fastagi, "HEADER_TIMEOUT", 0.3)
    reader, writer = await asyncio.open_connection("127.0.0.1", fastagi.port)
    writer.write(b"agi_network: yes\nagi_network_script: hotline\n")
    await writer.drain()
    assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()


async def test_lines_split_anyhow_and_trying_lines_are_read_as_asterisk_sends_them(fastagi):
    reader, writer = await asyncio.open_connection("127.0.0.1", fastagi.port)
    block = env_block(fastagi.port, "split.1")
    for i in range(0, len(block), 7):  # the environment in small pieces
        writer.write(block[i : i + 7])
        await writer.drain()
        await asyncio.sleep(0)
    assert (await asyncio.wait_for(reader.readline(), 5)).startswith(b"ANSWER")
    # "100 Trying" first, then the reply in two pieces, with \r\n.
    writer.write(b"100 result=0 Trying...\r\n200 res")
    await writer.drain()
    await asyncio.sleep(0.05)
    writer.write(b"ult=0\r\n")
    await writer.drain()
    command = await asyncio.wait_for(reader.readline(), 5)
    assert command.startswith(b"STREAM FILE") and b"welcome-1482" in command
    # The caller hangs up: Asterisk says HANGUP, then 511 to anything else but variables.
    writer.write(b"HANGUP\n")
    await writer.drain()
    rest = b""
    while line := await asyncio.wait_for(reader.readline(), 5):
        rest += line
        dead_safe = line.startswith(b"SET VARIABLE")
        writer.write(b"200 result=1\n" if dead_safe else b"511 Command Not Permitted on a dead channel\n")
        await writer.drain()
    assert b"GET DATA" not in rest  # no menu asked of a caller who is gone
    # The variable set before the hang-up still reaches the dial plan (res_agi runs it dead).
    assert rest.startswith(b'SET VARIABLE DIDEHBAN_SERVICE "1482"')
    writer.close()
    assert fastagi.active_calls == 0


async def test_the_case_is_on_disk_before_its_code_is_read(fastagi):
    """When the code starts to be read ("your tracking code is", before its digits), another
    connection to the spool (what a restarted node would read after a crash) already has the
    case, committed."""
    seen: list[int] = []

    def show(_text: str, path: str) -> None:
        if path.endswith("/your-tracking-code-is") and not seen:
            db = sqlite3.connect(fastagi.spool.path)
            try:
                seen.append(
                    db.execute("SELECT count(*) FROM pending_case WHERE call_id='disk.1'").fetchone()[0]
                )
            finally:
                db.close()

    side = AsteriskSide(Script(NEW_CASE), show=show)
    env = environment(
        route="hotline", service="1482", caller="09121234567", unique_id="disk.1", port=fastagi.port
    )
    t = await asyncio.wait_for(side.call("127.0.0.1", fastagi.port, env), 60)
    assert t.variables["DIDEHBAN_OUTCOME"] == "registered"
    assert seen == [1]


def test_a_whole_new_case_call_on_uvloop(ivr_env):
    """`didehban fastagi` runs on uvloop (ivr.fastagi.event_loop_runner), the tests' server on the
    standard loop: the same call on uvloop, spooled and its code read back."""
    import uvloop

    async def call() -> tuple[dict[str, str], list[str]]:
        server = ivr.fastagi.HotlineServer()
        await server.start("127.0.0.1", 0)
        try:
            assert isinstance(asyncio.get_running_loop(), uvloop.Loop)
            side = AsteriskSide(Script(NEW_CASE))
            env = environment(
                route="hotline", service="1482", caller="09121234567", unique_id="uv.1", port=server.port
            )
            t = await asyncio.wait_for(side.call("127.0.0.1", server.port, env), 60)
            return t.variables, t.played
        finally:
            await server.stop()

    variables, played = uvloop.run(call())
    assert variables["DIDEHBAN_OUTCOME"] == "registered"
    code = variables["DIDEHBAN_TRACKING_CODE"]
    assert played.count("your-tracking-code-is") == 2
    spoken = "".join(p[len("digit-") :] for p in played[played.index("your-tracking-code-is") + 1 :][:10])
    assert spoken == code


async def test_a_whole_new_case_call_reads_its_code_back_in_one_command(fastagi):
    side = AsteriskSide(Script(NEW_CASE))
    env = environment(
        route="hotline", service="1482", caller="09121234567", unique_id="few.1", port=fastagi.port
    )
    t = await asyncio.wait_for(side.call("127.0.0.1", fastagi.port, env), 60)
    code = t.variables["DIDEHBAN_TRACKING_CODE"]
    start = next(i for i, c in enumerate(t.commands) if "case-registered" in c)
    end = next(i for i, c in enumerate(t.commands) if "tracking-code-repeat-menu" in c)
    # One Playback, or two where the prompts' folder makes the line too long (this test's is long).
    assert end - start <= 2 and all(c.startswith("EXEC Playback") for c in t.commands[start:end])
    assert "".join(t.commands[start:end]).count("/digit-") == 2 * len(code)
