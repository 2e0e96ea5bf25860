"""Iran's official public holidays, computed for a range of years (R12: deadlines skip holidays).

Two calendars make the list. The Solar Hijri holidays fall on fixed Jalali dates (jdatetime). The lunar
(Hijri) holidays move about eleven days a year; they are computed with the Umm al-Qura calendar
(hijridate), which agrees with Iran's official calendar to within a day. Where the official
announcement differs, an administrator records it in an overrides file (added and removed dates),
applied last. Pure: dates in, dates out; reading and writing the YAML files is kept at the bottom.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import jdatetime
import yaml
from hijridate import Gregorian, Hijri
from pydantic import BaseModel, Field

# (Jalali month, day, name)
SOLAR_HOLIDAYS: tuple[tuple[int, int, str], ...] = (
    (1, 1, "Nowruz"),
    (1, 2, "Nowruz"),
    (1, 3, "Nowruz"),
    (1, 4, "Nowruz"),
    (1, 12, "Islamic Republic Day"),
    (1, 13, "Nature Day (Sizdah Bedar)"),
    (3, 14, "Demise of Imam Khomeini"),
    (3, 15, "15 Khordad uprising"),
    (11, 22, "Victory of the Islamic Revolution"),
    (12, 29, "Nationalisation of the oil industry"),
)

LAST_DAY = 0  # "the last day of the month": Safar has 29 or 30 days
# (Hijri month, day, name)
LUNAR_HOLIDAYS: tuple[tuple[int, int, str], ...] = (
    (1, 9, "Tasua"),
    (1, 10, "Ashura"),
    (2, 20, "Arbaeen"),
    (2, 28, "Demise of the Prophet and martyrdom of Imam Hassan"),
    (2, LAST_DAY, "Martyrdom of Imam Reza"),
    (3, 17, "Birth of the Prophet and of Imam Sadegh"),
    (6, 3, "Martyrdom of Fatima"),
    (7, 13, "Birth of Imam Ali"),
    (7, 27, "Mab'ath"),
    (8, 15, "Birth of Imam Mahdi"),
    (9, 21, "Martyrdom of Imam Ali"),
    (10, 1, "Eid al-Fitr"),
    (10, 2, "Eid al-Fitr (second day)"),
    (10, 25, "Martyrdom of Imam Sadegh"),
    (12, 10, "Eid al-Adha"),
    (12, 18, "Eid al-Ghadir"),
)

Source = Literal["solar", "lunar", "override"]


@dataclass(frozen=True, order=True)
class Holiday:
    date: dt.date
    name: str
    source: Source = "solar"


@dataclass
class Overrides:
    """Dates the official calendar announces differently from the computed one."""

    add: dict[dt.date, str] = field(default_factory=dict)
    remove: set[dt.date] = field(default_factory=set)

    def declare(self, day: dt.date, name: str) -> None:
        """`day` is a holiday (added, or kept though computed otherwise)."""
        self.remove.discard(day)
        self.add[day] = name

    def revoke(self, day: dt.date) -> None:
        """`day` is not a holiday after all."""
        self.add.pop(day, None)
        self.remove.add(day)


def jalali_year_span(year: int) -> tuple[dt.date, dt.date]:
    """First and last Gregorian day of a Jalali year."""
    first = jdatetime.date(year, 1, 1).togregorian()
    return first, jdatetime.date(year + 1, 1, 1).togregorian() - dt.timedelta(days=1)


def solar_holidays(jalali_year: int) -> list[Holiday]:
    return [
        Holiday(jdatetime.date(jalali_year, month, day).togregorian(), name, "solar")
        for month, day, name in SOLAR_HOLIDAYS
    ]


def lunar_holidays(hijri_year: int) -> list[Holiday]:
    """The lunar holidays of one Hijri year by Umm al-Qura (valid 1343-1500 AH)."""
    found = []
    for month, day, name in LUNAR_HOLIDAYS:
        if day == LAST_DAY:
            day = Hijri(hijri_year, month, 1).month_length()
        found.append(Holiday(Hijri(hijri_year, month, day).to_gregorian(), name, "lunar"))
    return found


def computed_holidays(first_jalali_year: int, last_jalali_year: int) -> list[Holiday]:
    """Every solar and lunar holiday from 1 Farvardin of the first year to the end of the last."""
    start, _ = jalali_year_span(first_jalali_year)
    _, end = jalali_year_span(last_jalali_year)
    days = [h for year in range(first_jalali_year, last_jalali_year + 1) for h in solar_holidays(year)]
    first_hijri = Gregorian.fromdate(start).to_hijri().year
    last_hijri = Gregorian.fromdate(end).to_hijri().year
    for year in range(first_hijri, last_hijri + 1):
        days += [h for h in lunar_holidays(year) if start <= h.date <= end]
    return sorted(days)


def apply_overrides(holidays: list[Holiday], overrides: Overrides) -> list[Holiday]:
    kept = [h for h in holidays if h.date not in overrides.remove and h.date not in overrides.add]
    kept += [Holiday(date, name, "override") for date, name in overrides.add.items()]
    return sorted(kept)


def holidays_in_year(holidays: list[Holiday], jalali_year: int) -> list[Holiday]:
    start, end = jalali_year_span(jalali_year)
    return [h for h in holidays if start <= h.date <= end]


# --- the files ------------------------------------------------------------------------------


class HolidaySpec(BaseModel):
    """config/holidays/iran.yaml: which calendar, which years, where the overrides are."""

    calendar: Literal["iran"] = "iran"
    jalali_years: tuple[int, int] = Field(description="first and last Jalali year to compute")
    overrides: str | None = Field(default=None, description="file of added/removed dates, beside this one")


def overrides_path(spec_path: Path) -> Path | None:
    raw = yaml.safe_load(spec_path.read_text(encoding="utf-8"))
    if not isinstance(raw, dict):
        return None
    spec = HolidaySpec.model_validate(raw)
    return spec_path.parent / spec.overrides if spec.overrides else None


def load_overrides(path: Path) -> Overrides:
    if not path.exists():
        return Overrides()
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    add = {_as_date(k): str(v) for k, v in (raw.get("add") or {}).items()}
    return Overrides(add=add, remove={_as_date(d) for d in raw.get("remove") or []})


OVERRIDES_HEADER = """\
# Public holidays announced differently from the computed calendar (config/holidays/iran.yaml).
# `add`: date -> name (a holiday the computation lacks, or a lunar holiday moved by a day);
# `remove`: dates that are not holidays after all. Applied last. Written by
# `didehban holidays set DATE --name NAME` and `didehban holidays set --remove DATE`; restart the
# backend and the scheduler after a change.
"""


def save_overrides(path: Path, overrides: Overrides) -> None:
    body = {
        "add": {d: overrides.add[d] for d in sorted(overrides.add)},
        "remove": sorted(overrides.remove),
    }
    text = OVERRIDES_HEADER + yaml.safe_dump(body, allow_unicode=True, sort_keys=False)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)  # never a half-written file for the backend to read


def holidays_from_file(path: Path) -> list[Holiday]:
    """A spec (computed years plus overrides), or, as before, a plain list of dates."""
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    if raw is None:
        return []
    if isinstance(raw, list):
        return sorted(Holiday(_as_date(d), "holiday", "override") for d in raw)
    spec = HolidaySpec.model_validate(raw)
    holidays = computed_holidays(*spec.jalali_years)
    if spec.overrides:
        holidays = apply_overrides(holidays, load_overrides(path.parent / spec.overrides))
    return holidays


def _as_date(value: object) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value))
