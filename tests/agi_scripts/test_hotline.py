"""The per-call script's own channel over stdin/stdout (agi_scripts.hotline): Asterisk's replies read
as the FastAGI server reads them, a usage error's text read to its end, and a hang-up (SIGHUP, a
closed stdin) that ends the call without ending the process before it files what was said."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time

import pytest

from agi_scripts.hotline import StdioChannel, read_environment
from agi_scripts.without_loop import run_without_loop
from ivr.agi import AgiCommandError, CallerHungUp
from ivr.channel import CallInfo
from ivr.phone import HANGUP, AsteriskSide, Script, environment
from tests.ivr.conftest import NODE_ENV
from tests.ivr.test_calls import NID

INFO = CallInfo("1700000000.1", "09121234567", "1482", "hotline", "PJSIP/caller-1")


def channel(replies: str) -> tuple[StdioChannel, io.StringIO]:
    stdout = io.StringIO()
    return StdioChannel(INFO, io.StringIO(replies), stdout), stdout


def test_the_environment_block_ends_at_its_blank_line():
    stdin = io.StringIO("agi_uniqueid: 1700000000.1\nagi_callerid:  0912 \nagi_arg_1: 1482\n\n200 result=0\n")
    env = read_environment(stdin)
    assert env == {"agi_uniqueid": "1700000000.1", "agi_callerid": "0912", "agi_arg_1": "1482"}
    assert stdin.readline() == "200 result=0\n"  # the first reply is left for the first command


def test_each_command_is_one_line_and_its_reply_is_parsed():
    ch, stdout = channel("200 result=49 endpos=800\n200 result=1234 (timeout)\n")
    assert run_without_loop(ch.play_file("/p/welcome")) == "1"
    reply = run_without_loop(ch.send('GET DATA "/p/x" 6000 4'))
    assert (reply.result, reply.timed_out) == ("1234", True)
    assert stdout.getvalue() == 'STREAM FILE "/p/welcome" "0123456789*#"\nGET DATA "/p/x" 6000 4\n'


def test_a_usage_error_is_read_to_its_end():
    usage = (
        "520-Invalid command syntax.  Proper usage follows:\n"
        " Usage: GET DATA <file> [timeout] [maxdigits]\n"
        "520 End of proper usage.\n"
    )
    ch, _ = channel(usage + "200 result=0\n")
    with pytest.raises(AgiCommandError):
        run_without_loop(ch.send("GET DATA"))
    assert run_without_loop(ch.send("ANSWER")).result == "0"  # the next reply is the next command's


@pytest.mark.parametrize("replies", ["", "HANGUP\n", "511 Command Not Permitted on a dead channel\n"])
def test_a_gone_channel_is_a_hang_up(replies):
    ch, _ = channel(replies)
    with pytest.raises(CallerHungUp):
        run_without_loop(ch.send("ANSWER"))
    assert not ch.alive


def test_sighup_at_the_hang_up_still_files_what_was_said(settings_env, monkeypatch):
    """Asterisk signals SIGHUP when the caller hangs up mid-recording: the script must live on to
    file the case (incomplete) with the recording, as the FastAGI server does."""
    for key, value in NODE_ENV.items():
        monkeypatch.setenv(key, value)
    side = AsteriskSide(Script(["1", "1", "2", f"{NID}#", "1", HANGUP]))
    proc = subprocess.Popen(
        [sys.executable, "-m", "agi_scripts.hotline", "1482"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
        bufsize=1,
    )
    block = environment(route="hotline", service="1482", caller="09121234567", unique_id="sighup.1", port=0)
    block = {k: v for k, v in block.items() if k not in ("agi_network", "agi_network_script")}
    proc.stdin.write("".join(f"{k}: {v}\n" for k, v in block.items()) + "\n")
    proc.stdin.flush()
    signalled = False
    while line := proc.stdout.readline():
        if line.startswith("RECORD FILE"):
            proc.send_signal(signal.SIGHUP)  # while the script waits for the recording's reply
            time.sleep(0.2)
            signalled = True
        reply, _ = side.reply_to(line.rstrip("\n"))
        try:
            proc.stdin.write(reply + "\n")
            proc.stdin.flush()
        except BrokenPipeError:
            break
    proc.stdin.close()
    assert proc.wait(timeout=30) == 0, proc.stderr.read()
    assert signalled
    from ivr.settings import get_settings
    from ivr.spool import Spool

    settings = get_settings()
    spool = Spool(settings.spool_dir, settings.node_prefix, settings.spool_key)
    try:
        (case,) = spool.pending()
    finally:
        spool.close()
    assert case.call_id == "sighup.1" and case.payload["incomplete"] and case.payload["recording_path"]
