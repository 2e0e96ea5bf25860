"""What may be shown of an identity: pure, shared by the backend and the IVR node (R9)."""

from __future__ import annotations

import re

_LONG_DIGITS = re.compile(r"\d{6,}")


def mask_phone(number: str) -> str:
    """What a log line or an operator screen may show of a phone number."""
    return number[:4] + "*" * max(0, len(number) - 6) + number[-2:] if len(number) > 6 else "***"


def without_identities(text: str) -> str:
    """Free text (an error message) with every run of six or more digits hidden: no national ID or
    phone number survives into a log or a listing."""
    return _LONG_DIGITS.sub(lambda m: "#" * len(m.group(0)), text)
