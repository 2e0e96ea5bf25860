"""What a phone call needs of a service profile (domain.profiles): its number, its time zone and the
operator's hours. Named tuples, read from the same YAML files.

The process-per-call AGI script reads these rather than the full ServiceProfile: that one is pydantic
and works out the holiday calendar, which cost more than the whole call may (issue 13). The FastAGI
server hands the flows full ServiceProfiles, which have the same attributes. The fields are checked
as ServiceProfile checks them; the rest of the profile is the backend's (and the FastAGI server's,
which validates every profile at start-up)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

WEEKDAYS: tuple[str, ...] = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
DEFAULT_TIMEZONE = "Asia/Tehran"


class InvalidCallProfile(ValueError):
    """A service profile whose call fields are missing or malformed."""


def _time(value: Any, where: str) -> dt.time:
    """A time of day as pydantic reads one: a time, "HH:MM[:SS]", or seconds since midnight."""
    if isinstance(value, dt.time):
        return value
    if isinstance(value, str):
        try:
            return dt.time.fromisoformat(value)
        except ValueError:
            pass
    elif isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 86400:
        return dt.time(value // 3600, value // 60 % 60, value % 60)
    raise InvalidCallProfile(f"{where}: {value!r} is not a time of day")


def _text(raw: Mapping[str, Any], name: str, where: str, default: str | None = None) -> str:
    value = raw.get(name, default)
    if not isinstance(value, str):
        raise InvalidCallProfile(f"{where}{name}: {'missing' if value is None else 'not text'} ({value!r})")
    return value


# Named tuples rather than frozen dataclasses: the per-call script defines them once a call, and a
# frozen dataclass costs 1-2 ms of CPU to define (issue 13).
class CallHours(NamedTuple):
    """When the operator queue answers (a profile's operator_hours)."""

    days: tuple[str, ...]
    start: dt.time
    end: dt.time


class CallProfile(NamedTuple):
    number: str
    timezone: str
    operator_hours: CallHours

    @classmethod
    def from_profile(cls, raw: Any, source: str = "") -> CallProfile:
        """The call fields of a profile as its YAML reads (a mapping); InvalidCallProfile names the
        field that is wrong."""
        where = f"{source}: " if source else ""
        if not isinstance(raw, Mapping):
            raise InvalidCallProfile(f"{where}a service profile is a mapping of fields")
        hours = raw.get("operator_hours")
        if not isinstance(hours, Mapping):
            raise InvalidCallProfile(f"{where}operator_hours: missing (days, start, end)")
        days = hours.get("days")
        if not isinstance(days, list) or any(day not in WEEKDAYS for day in days):
            raise InvalidCallProfile(
                f"{where}operator_hours.days: a list of {', '.join(WEEKDAYS)} ({days!r})"
            )
        return cls(
            number=_text(raw, "number", where),
            timezone=_text(raw, "timezone", where, DEFAULT_TIMEZONE),
            operator_hours=CallHours(
                days=tuple(days),
                start=_time(hours.get("start"), f"{where}operator_hours.start"),
                end=_time(hours.get("end"), f"{where}operator_hours.end"),
            ),
        )

    def to_json(self) -> dict[str, Any]:
        hours = self.operator_hours
        return {
            "number": self.number,
            "timezone": self.timezone,
            "operator_hours": {
                "days": list(hours.days),
                "start": hours.start.isoformat(),
                "end": hours.end.isoformat(),
            },
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CallProfile:
        """What to_json wrote (a copy already checked), as a CallProfile."""
        return cls.from_profile(data)


def read_call_profiles(directory: Path) -> dict[str, CallProfile]:
    """The call profiles of every `*.yaml` in a folder (as domain.profiles.load_profiles finds them),
    by number."""
    import yaml  # only here: a process-per-call script reads a cached copy (agi_scripts.call_profiles)

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when there: 10x faster
    profiles = {}
    for path in sorted(directory.glob("*.yaml")):
        profile = CallProfile.from_profile(
            yaml.load(path.read_text(encoding="utf-8"), Loader=loader), path.name
        )
        profiles[profile.number] = profile
    return profiles
