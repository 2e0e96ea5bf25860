"""Digit strings typed by people: every Unicode decimal digit (Persian ۰-۹, Arabic-Indic ٠-٩, full-width
０-９, Devanagari, ...) becomes ASCII, so one number has one spelling and one identity."""

from __future__ import annotations

import unicodedata

_SEPARATORS = frozenset(" -_\u200c\u200f\u200e\t")


def _ascii_digit(ch: str) -> str:
    value = unicodedata.decimal(ch, None)
    return ch if value is None else str(value)


def normalise_digits(text: str) -> str:
    """ASCII digits for any Unicode decimal digit; spaces and dashes between groups dropped.
    Characters that only look like digits (superscripts, circled or fraction forms) are kept as they
    are, for `digits_problem` to name."""
    if text.isascii() and text.isdigit():
        # What the IVR sends: nothing to convert or drop (a character at a time cost ~2% of intake).
        return text
    return "".join(_ascii_digit(ch) for ch in text if ch not in _SEPARATORS)


def is_ascii_digits(text: str) -> bool:
    """0-9 only. str.isdigit() is not enough: it accepts "²" and "①", which int() refuses."""
    return text.isascii() and text.isdigit()


def digits_problem(text: str) -> str | None:
    """Why `text` (already normalised) is not a digit string, in words; None when it is one."""
    for ch in text:
        if "0" <= ch <= "9":
            continue
        if unicodedata.numeric(ch, None) is not None:
            name = unicodedata.name(ch, f"U+{ord(ch):04X}").lower()
            return f"{name} looks like a digit but is not one: type 0-9"
        return "it has other characters"
    return None


def to_persian_digits(text: str) -> str:
    return text.translate(str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹"))
