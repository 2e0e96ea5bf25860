"""The AMI call-log listener: events replayed as Asterisk 22 sends them, a silent drop, and the CDR
reconciliation that keeps a call made during the drop."""

from __future__ import annotations

import asyncio
import contextlib

from sqlalchemy import select

from backend.models import CallLog, Recording
from ivr.ami.book import CallLogBook, from_cdr, parse_master_csv

CALL_EVENTS = """Event: Newchannel
Privilege: call,all
Timestamp: 1795409271.100000
Channel: PJSIP/tester-00000008
ChannelState: 0
ChannelStateDesc: Down
CallerIDNum: 09121234567
CallerIDName: CI caller
Context: from-carrier
Exten: 1482
Priority: 1
Uniqueid: ci-pbx-1795409271.8
Linkedid: ci-pbx-1795409271.8

Event: VarSet
Timestamp: 1795409271.200000
Channel: PJSIP/tester-00000008
Variable: SERVICE
Value: 1482
Uniqueid: ci-pbx-1795409271.8

Event: Newstate
Timestamp: 1795409271.300000
Channel: PJSIP/tester-00000008
ChannelState: 6
ChannelStateDesc: Up
Uniqueid: ci-pbx-1795409271.8

Event: VarSet
Timestamp: 1795409271.400000
Variable: MIXMONITOR_FILENAME
Value: /srv/ivr/recordings/calls/20261123/ci-pbx-1795409271.8-call.wav
Uniqueid: ci-pbx-1795409271.8

Event: VarSet
Timestamp: 1795409290.000000
Variable: DIDEHBAN_MESSAGE_FILE
Value: 1482/20261123/ci-pbx-1795409271.8-message.wav
Uniqueid: ci-pbx-1795409271.8

Event: VarSet
Timestamp: 1795409301.000000
Variable: DIDEHBAN_TRACKING_CODE
Value: 1072656206
Uniqueid: ci-pbx-1795409271.8

Event: VarSet
Timestamp: 1795409301.000000
Variable: DIDEHBAN_OUTCOME
Value: registered
Uniqueid: ci-pbx-1795409271.8

Event: VarSet
Timestamp: 1795409301.100000
Variable: DIDEHBAN_PATH
Value: menu:1>kind:1>urgent:2>nid-confirm:1>nid>record>rec-menu:3
Uniqueid: ci-pbx-1795409271.8

Event: Hangup
Timestamp: 1795409348.000000
Channel: PJSIP/tester-00000008
Uniqueid: ci-pbx-1795409271.8
Cause: 16
Cause-txt: Normal Clearing
"""

MISSED_CALL_CSV = (
    '"","09127654321","111","from-carrier","""CI caller"" <09127654321>","PJSIP/tester-info-00000009","",'
    '"Hangup","","2026-11-23 05:00:00","2026-11-23 05:00:01","2026-11-23 05:01:10","70","69","ANSWERED",'
    '"DOCUMENTATION","ci-pbx-1795409999.9","111|status|1012345674|menu:2>code"\n'
)


def events(text: str) -> list[dict[str, str]]:
    out = []
    for block in text.strip().split("\n\n"):
        out.append(dict(line.split(": ", 1) for line in block.splitlines()))
    return out


def test_a_call_from_newchannel_to_hangup():
    book = CallLogBook()
    results = [book.feed(e) for e in events(CALL_EVENTS)]
    assert results[:-1] == [None] * (len(results) - 1)
    record = results[-1]
    assert record.service == "1482" and record.caller == "09121234567"
    assert record.outcome == "registered" and record.tracking_code == "1072656206"
    assert record.duration_seconds == 76.9
    assert record.answered_at.timestamp() == 1795409271.3
    assert book.calls == {}


def test_channels_that_are_not_hotline_calls_are_ignored():
    book = CallLogBook()
    assert book.feed({"Event": "Newchannel", "Uniqueid": "x", "Exten": "s", "CallerIDNum": "100"}) is None
    assert book.feed({"Event": "Hangup", "Uniqueid": "x"}) is None
    assert book.feed({"Event": "Hangup", "Uniqueid": "never-seen"}) is None


def test_cdr_rows_from_master_csv():
    [row] = parse_master_csv(MISSED_CALL_CSV)
    record = from_cdr(row)
    assert (record.unique_id, record.service, record.outcome, record.tracking_code) == (
        "ci-pbx-1795409999.9",
        "111",
        "status",
        "1012345674",
    )
    assert record.caller == "09127654321" and record.duration_seconds == 70.0  # the CDR says 70


def test_saving_encrypts_the_number_and_links_the_recording(db, vault, settings_env):
    from backend.core.config import get_settings
    from ivr.ami.store import save

    book = CallLogBook()
    record = next(r for r in map(book.feed, events(CALL_EVENTS)) if r)
    log = save(db, vault, get_settings(), record)
    db.commit()
    assert log.call_recording == "calls/20261123/ci-pbx-1795409271.8-call.wav"
    assert vault.decrypt(log.caller_enc) == "09121234567" and "0912" not in (log.caller_hash or "")
    assert db.scalar(select(Recording).where(Recording.call_log_id == log.id)).kind == "call"
    # The same call again (its Cdr event) fills nothing twice.
    save(db, vault, get_settings(), record)
    db.commit()
    assert len(db.scalars(select(CallLog)).all()) == 1
    assert len(db.scalars(select(Recording)).all()) == 1


class FakeAsterisk:
    """Speaks AMI: banner, Login, Ping, events. `silent` makes a connection stop answering without
    closing (the drop nobody announces)."""

    def __init__(self) -> None:
        self.writers: list[asyncio.StreamWriter] = []
        self.silent: set[asyncio.StreamWriter] = set()
        self.logins = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"Asterisk Call Manager/11.0.0\r\n")
        self.writers.append(writer)
        block: dict[str, str] = {}
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while True:
                raw = await reader.readline()
                if not raw:
                    break
                line = raw.decode().strip()
                if line:
                    key, _, value = line.partition(": ")
                    block[key.lower()] = value
                    continue
                if writer in self.silent:
                    block = {}
                    continue
                action, action_id = block.get("action", "").lower(), block.get("actionid", "")
                if action == "login":
                    self.logins += 1
                    writer.write(
                        f"Response: Success\r\nActionID: {action_id}\r\n"
                        "Message: Authentication accepted\r\n\r\n".encode()
                    )
                    writer.write(
                        b"Event: FullyBooted\r\nPrivilege: system,all\r\nStatus: Fully Booted\r\n\r\n"
                    )
                elif action == "ping":
                    writer.write(f"Response: Success\r\nActionID: {action_id}\r\nPing: Pong\r\n\r\n".encode())
                await writer.drain()
                block = {}

    async def emit(self, text: str) -> None:
        writer = self.writers[-1]
        writer.write(text.strip().replace("\n", "\r\n").encode() + b"\r\n\r\n")
        await writer.drain()


async def test_silent_drop_reconnects_and_the_cdr_fills_the_gap(db, settings_env, monkeypatch):
    from tests.conftest import clear_caches

    fake = FakeAsterisk()
    server = await asyncio.start_server(fake.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    runtime = settings_env / "pbx-srv"
    (runtime / "log" / "cdr-csv").mkdir(parents=True)
    monkeypatch.setenv("DIDEHBAN_AMI_PORT", str(port))
    monkeypatch.setenv("DIDEHBAN_PBX_RUNTIME", str(runtime))
    clear_caches()
    from ivr.ami.listener import AmiListener

    listener = AmiListener(ping_every=0.3, ping_timeout=0.5)
    await listener.start()
    try:
        for _ in range(50):
            if listener.logins:
                break
            await asyncio.sleep(0.1)
        assert listener.logins == 1
        for event in CALL_EVENTS.strip().split("\n\n"):
            await fake.emit(event)
        for _ in range(50):
            if listener.saved:
                break
            await asyncio.sleep(0.1)
        assert listener.saved == 1
        # The connection goes quiet; meanwhile Asterisk logs a call only in its CDR file.
        fake.silent.add(fake.writers[-1])
        (runtime / "log" / "cdr-csv" / "Master.csv").write_text(MISSED_CALL_CSV)
        for _ in range(100):
            if listener.logins >= 2:
                break
            await asyncio.sleep(0.1)
        assert listener.logins == 2, "the watchdog did not notice the silent drop"
        for _ in range(50):
            db.expire_all()
            if db.scalar(select(CallLog).where(CallLog.unique_id == "ci-pbx-1795409999.9")):
                break
            await asyncio.sleep(0.1)
        missed = db.scalar(select(CallLog).where(CallLog.unique_id == "ci-pbx-1795409999.9"))
        assert missed is not None and missed.outcome == "status" and missed.service == "111"
        assert len(db.scalars(select(CallLog)).all()) == 2
    finally:
        await listener.stop()
        server.close()
