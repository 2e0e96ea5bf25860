"""Report periods (R19, R20): a Jalali week (Saturday to Friday), a Jalali month, or any from/to span
of days, in the service's local time. Pure: dates in, UTC bounds out; no clock, no I/O."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import jdatetime

from domain.digits import normalise_digits, to_persian_digits
from domain.jalali import MONTHS_FA

# Python's weekday(): Monday is 0, so Saturday (the first day of the Iranian week) is 5.
SATURDAY = 5
# The longest span a report covers: reports of more than a few years are a different tool.
MAX_DAYS = 3 * 366


class BadPeriod(ValueError):
    pass


@dataclass(frozen=True)
class Period:
    """Local days first..last, both included."""

    first: dt.date
    last: dt.date
    kind: str = "range"  # week | month | range

    def __post_init__(self) -> None:
        if self.last < self.first:
            raise BadPeriod("a period ends on or after the day it starts")
        if self.days > MAX_DAYS:
            raise BadPeriod(f"a period is at most {MAX_DAYS} days")

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    def bounds(self, tz: str = "Asia/Tehran") -> tuple[dt.datetime, dt.datetime]:
        """[start, end) in UTC: local midnight of the first day to local midnight after the last."""
        zone = ZoneInfo(tz)
        start = dt.datetime.combine(self.first, dt.time(), tzinfo=zone)
        end = dt.datetime.combine(self.last + dt.timedelta(days=1), dt.time(), tzinfo=zone)
        return start.astimezone(dt.UTC), end.astimezone(dt.UTC)

    def previous(self) -> Period:
        """The period of the same length just before (the month before, for a month)."""
        if self.kind == "month":
            j = jdatetime.date.fromgregorian(date=self.first)
            year, month = (j.year, j.month - 1) if j.month > 1 else (j.year - 1, 12)
            return jalali_month(year, month)
        last = self.first - dt.timedelta(days=1)
        return Period(last - dt.timedelta(days=self.days - 1), last, self.kind)

    def _jalali(self) -> tuple[jdatetime.date, jdatetime.date]:
        return jdatetime.date.fromgregorian(date=self.first), jdatetime.date.fromgregorian(date=self.last)

    @property
    def label_fa(self) -> str:
        first, _last = self._jalali()
        if self.kind == "month":
            return to_persian_digits(f"{MONTHS_FA[first.month - 1]} {first.year}")
        text = f"{jalali_day_text(self.first)} تا {jalali_day_text(self.last)}"
        return to_persian_digits(("هفته " if self.kind == "week" else "") + text)

    @property
    def key(self) -> str:
        """A stable name for the period, e.g. month:1404-07, week:1404-07-05, range:1404-07-01..1404-07-10."""
        first, last = self._jalali()
        if self.kind == "month":
            return f"month:{first.year:04d}-{first.month:02d}"
        if self.kind == "week":
            return f"week:{first.year:04d}-{first.month:02d}-{first.day:02d}"
        return f"range:{first.strftime('%Y-%m-%d')}..{last.strftime('%Y-%m-%d')}"


def jalali_week(day: dt.date) -> Period:
    """The Saturday-to-Friday week holding `day` (a Gregorian date, local)."""
    first = day - dt.timedelta(days=(day.weekday() - SATURDAY) % 7)
    return Period(first, first + dt.timedelta(days=6), "week")


def jalali_month(year: int, month: int) -> Period:
    if not 1 <= month <= 12:
        raise BadPeriod("a Jalali month is 1 to 12")
    try:
        first = jdatetime.date(year, month, 1)
        days = jdatetime.j_days_in_month[month - 1]
        if month == 12 and first.isleap():
            days = 30
        last = jdatetime.date(year, month, days)
    except (ValueError, OverflowError) as exc:
        raise BadPeriod(str(exc)) from None
    return Period(first.togregorian(), last.togregorian(), "month")


def local_date(moment: dt.datetime, tz: str = "Asia/Tehran") -> dt.date:
    return moment.astimezone(ZoneInfo(tz)).date()


def parse_jalali_day(text: str) -> dt.date:
    """1404/07/05 (Persian or Latin digits, / or -) to its Gregorian date."""
    parts = [normalise_digits(p) for p in re.split(r"[/\-\s]+", text.strip())]
    try:
        year, month, day = (int(p) for p in parts)
        return jdatetime.date(year, month, day).togregorian()
    except (ValueError, TypeError, OverflowError):
        raise BadPeriod(f"not a Jalali date (1404/07/05): {text[:20]!r}") from None


def parse_jalali_month(text: str) -> Period:
    """1404/07 or 1404-07."""
    parts = [normalise_digits(p) for p in re.split(r"[/\-\s]+", text.strip())]
    try:
        year, month = (int(p) for p in parts)
    except (ValueError, TypeError):
        raise BadPeriod(f"not a Jalali month (1404/07): {text[:20]!r}") from None
    return jalali_month(year, month)


def period_from_query(
    *, date_from: str = "", date_to: str = "", month: str = "", week: str = "", today: dt.date
) -> Period:
    """The period a request names: a month, the week of a day, or from/to (inclusive). Nothing named:
    the current Jalali month."""
    if month:
        return parse_jalali_month(month)
    if week:
        return jalali_week(parse_jalali_day(week))
    if date_from or date_to:
        first = parse_jalali_day(date_from) if date_from else None
        last = parse_jalali_day(date_to) if date_to else today
        if first is None:
            raise BadPeriod("a period needs its first day (from)")
        return Period(first, last)
    j = jdatetime.date.fromgregorian(date=today)
    return jalali_month(j.year, j.month)


def jalali_day_text(day: dt.date) -> str:
    j = jdatetime.date.fromgregorian(date=day)
    return f"{j.year:04d}/{j.month:02d}/{j.day:02d}"
