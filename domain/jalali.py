"""Dates as Iranians read them: Jalali calendar, Tehran time."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import jdatetime

MONTHS_FA = (
    "فروردین",
    "اردیبهشت",
    "خرداد",
    "تیر",
    "مرداد",
    "شهریور",
    "مهر",
    "آبان",
    "آذر",
    "دی",
    "بهمن",
    "اسفند",
)


# The span jdatetime can write (Jalali years 1 to 9377), with a day to spare for any time zone. A time
# outside it (a bad date that got stored) is shown at the nearest edge instead of breaking the screen.
EARLIEST = dt.datetime(623, 1, 1, tzinfo=dt.UTC)
LATEST = dt.datetime(9998, 12, 31, tzinfo=dt.UTC)


def to_jalali(moment: dt.datetime, tz: str = "Asia/Tehran") -> jdatetime.datetime:
    """Total for every datetime: a naive one is taken as UTC, one out of range is clamped."""
    if moment.utcoffset() is None:
        moment = moment.replace(tzinfo=dt.UTC)
    # Comparing aware datetimes never overflows; converting year 1 or 9999 to another zone can.
    moment = min(max(moment, EARLIEST), LATEST)
    local = moment.astimezone(ZoneInfo(tz))
    return jdatetime.datetime.fromgregorian(datetime=local.replace(tzinfo=None))


def jalali_text(moment: dt.datetime, tz: str = "Asia/Tehran") -> str:
    """1405/09/02 10:15, for screens and JSON."""
    j = to_jalali(moment, tz)
    return f"{j.year:04d}/{j.month:02d}/{j.day:02d} {j.hour:02d}:{j.minute:02d}"


def jalali_parts(moment: dt.datetime, tz: str = "Asia/Tehran") -> dict[str, int]:
    """The pieces the IVR needs to say a date in words."""
    j = to_jalali(moment, tz)
    return {"year": j.year, "month": j.month, "day": j.day, "hour": j.hour, "minute": j.minute}


def jalali_long_fa(moment: dt.datetime, tz: str = "Asia/Tehran") -> str:
    """۲ آذر ۱۴۰۵ ساعت ۱۰:۱۵, for SMS texts."""
    from domain.digits import to_persian_digits

    j = to_jalali(moment, tz)
    return to_persian_digits(f"{j.day} {MONTHS_FA[j.month - 1]} {j.year} ساعت {j.hour:02d}:{j.minute:02d}")
