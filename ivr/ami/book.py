"""Turning AMI events (or CDR rows) into one call-log record per call. Pure: no I/O."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar

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
    """Follows channels from Newchannel to Hangup; returns the finished record of a hotline call."""

    VARIABLES: ClassVar[dict[str, str]] = {
        "SERVICE": "service",
        "DIDEHBAN_SERVICE": "service",
        "DIDEHBAN_OUTCOME": "outcome",
        "DIDEHBAN_TRACKING_CODE": "tracking_code",
        "DIDEHBAN_PATH": "path",
        "DIDEHBAN_MESSAGE_FILE": "message_file",
        "MIXMONITOR_FILENAME": "call_file",
    }

    def __init__(self) -> None:
        self.calls: dict[str, CallRecord] = {}

    def feed(self, event: Mapping[str, str]) -> CallRecord | None:
        name = event.get("Event", "")
        uid = event.get("Uniqueid") or event.get("UniqueID") or ""
        if not uid:
            return None
        if name == "Newchannel":
            record = self.calls.setdefault(uid, CallRecord(uid))
            record.caller = digits(event.get("CallerIDNum"))
            record.started_at = event_time(event)
            exten = event.get("Exten", "")
            if exten in SERVICES:
                record.service = exten
            return None
        record = self.calls.get(uid)
        if record is None:
            return None
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
