"""Turning AMI events (or CDR rows) into one call-log record per call. Pure: no I/O."""

from __future__ import annotations

import datetime as dt
import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import ClassVar

from ivr import dialplan_variables as var

log = logging.getLogger(__name__)

SERVICES = ("1482", "111")


@dataclass
class CallRecord:
    unique_id: str
    service: str | None = None
    caller: str | None = None
    started_at: dt.datetime | None = None
    answered_at: dt.datetime | None = None
    ended_at: dt.datetime | None = None
    outcome: str | None = None
    tracking_code: str | None = None
    path: str | None = None
    message_file: str | None = None  # relative to the recordings folder
    call_file: str | None = None  # as Asterisk wrote it (absolute, Asterisk's view)
    hangup_cause: str | None = None
    variables: dict[str, str] = field(default_factory=dict)
    touched: float = 0.0  # the book's clock at the channel's last event (for expiry)

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at and self.ended_at:
            return round((self.ended_at - self.started_at).total_seconds(), 3)
        return None


def event_time(event: Mapping[str, str]) -> dt.datetime:
    stamp = event.get("Timestamp")
    if stamp:
        try:
            return dt.datetime.fromtimestamp(float(stamp), dt.UTC)
        except ValueError:
            pass
    return dt.datetime.now(dt.UTC)


def cdr_time(value: str | None) -> dt.datetime | None:
    """CDR times: "2026-11-23 04:50:01" in UTC (cdr.conf usegmtime); empty when never answered."""
    if not value:
        return None
    try:
        return dt.datetime.strptime(value.strip(), "%Y-%m-%d %H:%M:%S").replace(tzinfo=dt.UTC)
    except ValueError:
        return None


def digits(value: str | None) -> str | None:
    only = "".join(ch for ch in (value or "") if ch.isdigit())
    return only or None


class CallLogBook:
    """Follows channels from Newchannel to Hangup; returns the finished record of a hotline call.

    A Hangup can be missed (a reconnect, a channel Asterisk never reports as ended): an entry silent
    for `max_age` seconds is dropped, and the book never holds more than `max_calls` (the oldest go
    first). A dropped hotline call is not lost: its CDR row reaches the log at the next reconciliation.
    """

    VARIABLES: ClassVar[dict[str, str]] = var.CALL_LOG_FIELDS

    def __init__(
        self,
        *,
        max_age: float = 6 * 3600.0,
        max_calls: int = 20_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.calls: dict[str, CallRecord] = {}
        self.max_age, self.max_calls, self.clock = max_age, max_calls, clock
        self.expired = 0
        self._swept_at = clock()

    def expire(self) -> int:
        """Drop entries silent for longer than max_age, and the oldest beyond max_calls."""
        now = self.clock()
        self._swept_at = now
        stale = [uid for uid, record in self.calls.items() if now - record.touched > self.max_age]
        # Full: make room for a tenth more at once, so a flood does not sort the book on every event.
        excess = len(self.calls) - len(stale) - (self.max_calls - max(1, self.max_calls // 10))
        if len(self.calls) - len(stale) >= self.max_calls and excess > 0:
            dropped = set(stale)
            fresh = sorted((r.touched, uid) for uid, r in self.calls.items() if uid not in dropped)
            stale += [uid for _touched, uid in fresh[:excess]]
        for uid in stale:
            del self.calls[uid]
        if stale:
            self.expired += len(stale)
            log.warning("dropped %d call(s) whose Hangup never came; the CDR will log them", len(stale))
        return len(stale)

    def feed(self, event: Mapping[str, str]) -> CallRecord | None:
        name = event.get("Event", "")
        uid = event.get("Uniqueid") or event.get("UniqueID") or ""
        if not uid:
            return None
        now = self.clock()
        if len(self.calls) >= self.max_calls or now - self._swept_at > min(60.0, self.max_age):
            self.expire()
        if name == "Newchannel":
            record = self.calls.setdefault(uid, CallRecord(uid))
            record.touched = now
            record.caller = digits(event.get("CallerIDNum"))
            record.started_at = event_time(event)
            exten = event.get("Exten", "")
            if exten in SERVICES:
                record.service = exten
            return None
        record = self.calls.get(uid)
        if record is None:
            return None
        record.touched = now
        if name == "Newstate" and event.get("ChannelStateDesc") == "Up" and record.answered_at is None:
            record.answered_at = event_time(event)
        elif name == "VarSet":
            attr = self.VARIABLES.get(event.get("Variable", ""))
            value = event.get("Value", "")
            if attr and value:
                setattr(record, attr, value)
        elif name == "Hangup":
            record.ended_at = event_time(event)
            record.hangup_cause = event.get("Cause-txt") or event.get("Cause")
            del self.calls[uid]
            return record if record.service in SERVICES else None
        return None


def from_cdr(row: Mapping[str, str]) -> CallRecord | None:
    """A record from a Cdr event or a Master.csv row (keys as in the Cdr event)."""
    uid = row.get("UniqueID") or row.get("Uniqueid") or ""
    if not uid:
        return None
    parts = (row.get("UserField") or "").split("|")
    parts += [""] * (4 - len(parts))
    service = parts[0] or (row.get("Destination") if row.get("Destination") in SERVICES else None)
    if service not in SERVICES:
        return None
    return CallRecord(
        unique_id=uid,
        service=service,
        caller=digits(row.get("Source")),
        started_at=cdr_time(row.get("StartTime")),
        answered_at=cdr_time(row.get("AnswerTime")),
        ended_at=cdr_time(row.get("EndTime")),
        outcome=parts[1] or None,
        tracking_code=parts[2] or None,
        path=parts[3] or None,
        hangup_cause=row.get("Disposition"),
    )


CSV_COLUMNS = (
    "AccountCode",
    "Source",
    "Destination",
    "DestinationContext",
    "CallerID",
    "Channel",
    "DestinationChannel",
    "LastApplication",
    "LastData",
    "StartTime",
    "AnswerTime",
    "EndTime",
    "Duration",
    "BillableSeconds",
    "Disposition",
    "AMAFlags",
    "UniqueID",
    "UserField",
)


def parse_master_csv(text: str) -> list[dict[str, str]]:
    import csv
    import io

    return [dict(zip(CSV_COLUMNS, row, strict=False)) for row in csv.reader(io.StringIO(text)) if row]


def report_of(record: CallRecord, *, relative_call_file: str | None) -> dict[str, object]:
    """The body of POST /api/v1/call-logs for a record. Pure."""

    def stamp(moment: dt.datetime | None) -> str | None:
        return moment.isoformat() if moment else None

    return {
        "unique_id": record.unique_id,
        "service": record.service,
        "caller_number": record.caller,
        "started_at": stamp(record.started_at),
        "answered_at": stamp(record.answered_at),
        "ended_at": stamp(record.ended_at),
        "duration_seconds": record.duration_seconds,
        "outcome": (record.outcome or "")[:40] or None,
        "tracking_code": record.tracking_code
        if re.fullmatch(r"[0-9]{10}", record.tracking_code or "")
        else None,
        "path": (record.path or "")[:2000] or None,
        "message_recording": record.message_file,
        "call_recording": relative_call_file,
        "hangup_cause": (record.hangup_cause or "")[:40] or None,
    }
