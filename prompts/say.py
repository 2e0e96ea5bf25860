"""Numbers, digits, dates and times as sequences of prompt ids. Pure.

Asterisk's SayNumber has no Persian, so the IVR speaks them by playing word files in order:
1482 -> یک هزار و چهارصد و هشتاد و دو -> num-1 num-1000 and-word num-400 and-word num-80 and-word num-2.
"""

from __future__ import annotations

from domain.digits import normalise_digits

AND = "and-word"
SCALES = ((10**9, "num-1000000000"), (10**6, "num-1000000"), (10**3, "num-1000"))


def say_digits(digits: str) -> list[str]:
    return [f"digit-{d}" for d in normalise_digits(digits) if d.isdigit()]


def _below_thousand(n: int) -> list[str]:
    words: list[str] = []
    hundreds, rest = divmod(n, 100)
    if hundreds:
        words.append(f"num-{hundreds * 100}")
    if rest:
        if words:
            words.append(AND)
        if rest < 20:
            words.append(f"num-{rest}")
        else:
            tens, ones = divmod(rest, 10)
            words.append(f"num-{tens * 10}")
            if ones:
                words += [AND, f"num-{ones}"]
    return words


def say_number(n: int) -> list[str]:
    if n < 0:
        raise ValueError("negative numbers are not spoken by the IVR")
    if n >= 10**12:
        raise ValueError("numbers of a trillion or more are not spoken by the IVR")
    if n == 0:
        return ["num-0"]
    words: list[str] = []
    for scale, scale_id in SCALES:
        count, n = divmod(n, scale)
        if count:
            if words:
                words.append(AND)
            words += [*_below_thousand(count), scale_id]
    if n:
        if words:
            words.append(AND)
        words += _below_thousand(n)
    return words


def say_jalali_date(year: int, month: int, day: int) -> list[str]:
    """دوازدهم مرداد یک هزار و چهارصد و سه."""
    if not 1 <= month <= 12 or not 1 <= day <= 31:
        raise ValueError("not a Jalali date")
    return [f"ord-{day}", f"month-{month}", *say_number(year)]


def say_time(hour: int, minute: int) -> list[str]:
    """ساعت ده و پانزده دقیقه; on the hour: ساعت ده."""
    if not 0 <= hour <= 23 or not 0 <= minute <= 59:
        raise ValueError("not a time of day")
    words = ["hour-word", *say_number(hour)]
    if minute:
        words += [AND, *say_number(minute), "minute-word"]
    return words
