"""Digit strings typed by people: Persian (۰-۹) and Arabic-Indic (٠-٩) digits become ASCII."""

from __future__ import annotations

_TO_ASCII = str.maketrans("۰۱۲۳۴۵۶۷۸۹٠١٢٣٤٥٦٧٨٩", "01234567890123456789")
_SEPARATORS = str.maketrans("", "", " -_\u200c\u200f\u200e\t")


def normalise_digits(text: str) -> str:
    """ASCII digits for any Persian or Arabic-Indic ones; spaces and dashes between groups dropped."""
    return text.translate(_TO_ASCII).translate(_SEPARATORS)


def to_persian_digits(text: str) -> str:
    return text.translate(str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹"))
