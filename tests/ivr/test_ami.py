"""The AMI call-log listener: events replayed as Asterisk 22 sends them, a silent drop, and the CDR
reconciliation that keeps a call made during the drop."""

from __future__ import annotations

import asyncio
import contextlib

from sqlalchemy import select

from backend.models import CallLog
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


def test_a_report_names_the_call_recording_relative_to_the_recordings_folder(settings_env):
    from ivr.ami.listener import AmiListener

    book = CallLogBook()
    record = next(r for r in map(book.feed, events(CALL_EVENTS)) if r)
    listener = AmiListener()
    try:
        body = listener.report(record)
    finally:
        listener.outbox.close()
    assert body["unique_id"] == "ci-pbx-1795409271.8" and body["caller_number"] == "09121234567"
    assert body["call_recording"] == "calls/20261123/ci-pbx-1795409271.8-call.wav"
    assert body["message_recording"] == "1482/20261123/ci-pbx-1795409271.8-message.wav"
    assert body["tracking_code"] == "1072656206" and body["started_at"].endswith("+00:00")


def test_the_book_forgets_a_call_whose_hangup_never_came():
    now = [1000.0]
    book = CallLogBook(max_age=3600, max_calls=100, clock=lambda: now[0])
    for i in range(5):
        book.feed({"Event": "Newchannel", "Uniqueid": f"lost.{i}", "Exten": "1482", "CallerIDNum": "0912"})
    assert len(book.calls) == 5
    now[0] += 1800
    book.feed({"Event": "Newchannel", "Uniqueid": "live.1", "Exten": "111", "CallerIDNum": "0912"})
    now[0] += 1900  # the five are silent for 3700 s; live.1 for 1900 s
    book.feed({"Event": "VarSet", "Uniqueid": "live.1", "Variable": "DIDEHBAN_PATH", "Value": "menu:2"})
    assert set(book.calls) == {"live.1"} and book.expired == 5
    assert book.feed({"Event": "Hangup", "Uniqueid": "live.1"}).path == "menu:2"


def test_the_book_never_holds_more_than_its_bound():
    book = CallLogBook(max_calls=50)
    for i in range(500):
        book.feed({"Event": "Newchannel", "Uniqueid": f"c.{i}", "Exten": "1482", "CallerIDNum": "0912"})
    assert len(book.calls) <= 50 and "c.499" in book.calls and "c.0" not in book.calls


def cdr_line(uid: str) -> str:
    return MISSED_CALL_CSV.replace("ci-pbx-1795409999.9", uid)


def test_the_cdr_is_read_from_where_the_last_reading_stopped(tmp_path):
    from ivr.ami.cdr import CdrReader

    csv = tmp_path / "Master.csv"
    reader = CdrReader(csv, tmp_path / "state" / "cdr-position.json")
    assert reader.read_new()[0] == []  # no file yet
    csv.write_text(cdr_line("a.1") + cdr_line("a.2"))
    records, position = reader.read_new()
    assert [r.unique_id for r in records] == ["a.1", "a.2"]
    reader.save(position)
    assert (tmp_path / "state" / "cdr-position.json").stat().st_mode & 0o777 == 0o600
    # Asterisk appends one row and is half-way through the next: only the whole row is read.
    with csv.open("a") as f:
        f.write(cdr_line("a.3") + cdr_line("a.4")[:40])
    records, position = reader.read_new()
    assert [r.unique_id for r in records] == ["a.3"]
    reader.save(position)
    with csv.open("a") as f:
        f.write(cdr_line("a.4")[40:])
    records, position = reader.read_new()
    assert [r.unique_id for r in records] == ["a.4"]
    reader.save(position)
    assert reader.read_new()[0] == []


def test_a_rotated_or_truncated_cdr_is_read_from_its_start(tmp_path):
    from ivr.ami.cdr import CdrReader

    csv = tmp_path / "Master.csv"
    reader = CdrReader(csv, tmp_path / "cdr-position.json")
    csv.write_text(cdr_line("r.1"))
    reader.save(reader.read_new()[1])
    # A row lands in the old file just before logrotate moves it aside; the new file gets another.
    with csv.open("a") as f:
        f.write(cdr_line("r.2"))
    csv.rename(tmp_path / "Master.csv.1")
    csv.write_text(cdr_line("r.3"))
    records, position = reader.read_new()
    assert [r.unique_id for r in records] == ["r.2", "r.3"]
    reader.save(position)
    # Emptied in place (same inode) and grown again past the old offset before the next reading.
    with csv.open("w") as f:
        f.write(cdr_line("t.1") + cdr_line("t.2"))
    records, _ = reader.read_new()
    assert [r.unique_id for r in records] == ["t.1", "t.2"]


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


async def test_silent_drop_reconnects_and_the_cdr_fills_the_gap(backend, db, settings_env, monkeypatch):
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


async def test_a_call_log_that_fails_to_save_is_retried_not_dropped(ivr_env, db, settings_env, monkeypatch):
    """Issue 8 fault 15: the backend is down when the call ends; the log waits on disk, sealed, and
    reaches the backend when it is back, without another AMI login."""
    from tests.conftest import clear_caches
    from tests.ivr.conftest import BackendThread

    fake = FakeAsterisk()
    server = await asyncio.start_server(fake.handle, "127.0.0.1", 0)
    monkeypatch.setenv("DIDEHBAN_AMI_PORT", str(server.sockets[0].getsockname()[1]))
    monkeypatch.setenv("DIDEHBAN_PBX_RUNTIME", str(settings_env / "pbx-srv"))
    clear_caches()
    from ivr.ami.listener import AmiListener

    listener = AmiListener(ping_every=30, retry_every=0.2)
    listener.client.attempts = 1
    await listener.start()
    try:
        for _ in range(50):
            if listener.logins:
                break
            await asyncio.sleep(0.1)
        for event in CALL_EVENTS.strip().split("\n\n"):
            await fake.emit(event)
        for _ in range(50):
            if listener.outbox.counts().get("pending"):
                break
            await asyncio.sleep(0.1)
        assert listener.outbox.counts() == {"pending": 1} and listener.saved == 0
        # Kept sealed: the caller's number is not on this node's disk in the clear.
        raw = b"".join(p.read_bytes() for p in (settings_env / "spool").glob("call-logs.sqlite3*"))
        assert b"09121234567" not in raw
        assert (settings_env / "spool" / "call-logs.sqlite3").stat().st_mode & 0o777 == 0o600
        with BackendThread(ivr_env):
            for _ in range(150):  # back-off after failures reaches a few seconds at most here
                if listener.saved:
                    break
                await asyncio.sleep(0.1)
        assert listener.saved == 1 and listener.outbox.counts() == {}
        assert fake.logins == 1  # no reconnect was needed
        log = db.scalar(select(CallLog))
        assert log.unique_id == "ci-pbx-1795409271.8" and log.tracking_code == "1072656206"
    finally:
        await listener.stop()
        server.close()
