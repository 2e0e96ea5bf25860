"""Service profiles: one YAML file per short number under `config/services/`. Pure data and parsing:
both the backend and the IVR node read the same files."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, Field, model_validator

from domain.call_profiles import WEEKDAYS  # noqa: F401 - one list of weekdays, imported from here too

# The repository root: profiles may name a holidays file relative to it.
PROJECT_ROOT = Path(__file__).resolve().parents[1]

UnitLevel = Literal["national", "province", "county", "centre", "governorate", "agency"]
Weekday = Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]


class UnitSpec(BaseModel):
    code: str
    name_fa: str
    level: UnitLevel
    children: list[UnitSpec] = Field(default_factory=list)

    def walk(self, parent: UnitSpec | None = None) -> Iterator[tuple[UnitSpec, UnitSpec | None]]:
        yield self, parent
        for child in self.children:
            yield from child.walk(self)


class DeadlineRule(BaseModel):
    hours: float | None = None
    working_days: int | None = None
    same_day: bool = False

    @model_validator(mode="after")
    def _exactly_one(self) -> DeadlineRule:
        if sum([self.hours is not None, self.working_days is not None, self.same_day]) != 1:
            raise ValueError("a deadline rule has exactly one of hours, working_days, same_day")
        return self


class Calendar(BaseModel):
    weekend: list[Weekday] = Field(default_factory=lambda: ["friday"])
    workday_start: dt.time = dt.time(7, 30)
    workday_end: dt.time = dt.time(14, 30)
    holidays: list[dt.date] = Field(default_factory=list)


class OfficeHours(BaseModel):
    days: list[Weekday]
    start: dt.time
    end: dt.time


class ServiceProfile(BaseModel):
    number: str
    slug: str
    name: str
    name_fa: str
    organisation_fa: str
    timezone: str = "Asia/Tehran"
    kinds: dict[str, str]
    categories: dict[str, str]
    channels: dict[str, str]
    deadlines: dict[Literal["urgent", "normal", "violation"], DeadlineRule]
    calendar: Calendar
    operator_hours: OfficeHours
    units: list[UnitSpec]

    def all_units(self) -> Iterator[tuple[UnitSpec, UnitSpec | None]]:
        for root in self.units:
            yield from root.walk()

    @property
    def root_unit(self) -> UnitSpec:
        return self.units[0]

    def deadline_rule(self, kind: str, urgent: bool) -> DeadlineRule:
        if urgent:
            return self.deadlines["urgent"]
        if kind == "violation":
            return self.deadlines["violation"]
        return self.deadlines["normal"]


def holidays_file(raw: dict, base: Path) -> Path | None:
    """The holidays file a profile names (shared by several profiles), if it names one."""
    holidays = (raw.get("calendar") or {}).get("holidays")
    if not isinstance(holidays, str):
        return None
    path = Path(holidays)
    if not path.is_absolute():
        path = PROJECT_ROOT / path if (PROJECT_ROOT / path).exists() else base / path
    return path


def _resolve_holidays(raw: dict, base: Path) -> dict:
    from domain.holidays import holidays_from_file

    path = holidays_file(raw, base)
    if path is not None:  # computed years and overrides, or a plain list of dates
        raw["calendar"]["holidays"] = sorted({h.date for h in holidays_from_file(path)})
    return raw


def load_profile(path: Path) -> ServiceProfile:
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    return ServiceProfile.model_validate(_resolve_holidays(raw, path.parent))


def load_profiles(directory: Path) -> dict[str, ServiceProfile]:
    profiles = {}
    for path in sorted(directory.glob("*.yaml")):
        profile = load_profile(path)
        profiles[profile.number] = profile
    return profiles


@lru_cache
def profiles_in(directory: str) -> dict[str, ServiceProfile]:
    """The profiles of a folder, read once per process."""
    return load_profiles(Path(directory))


class UnknownService(LookupError):
    pass


def profile_of(profiles: dict[str, ServiceProfile], number: str) -> ServiceProfile:
    try:
        return profiles[number]
    except KeyError:
        raise UnknownService(f"no service profile for the number {number!r}") from None
