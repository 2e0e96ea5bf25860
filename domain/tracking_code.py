"""Tracking codes (کد رهگیری): typed on a keypad and read aloud, so digits only and ten of them.

    P P R R R R R R R C
    |   |             '-- Damm check digit: catches every single-digit error and every adjacent swap
    |   '---------------- seven random digits (secrets): not sequential, not guessable
    '-------------------- issuer prefix: the backend, or an IVR node issuing while the backend is down

Issuer prefixes keep codes issued offline on different IVR nodes from ever colliding with each
other or with the backend's; within one issuer, uniqueness is checked against what it issued.
"""

from __future__ import annotations

import secrets

from domain.digits import digits_problem, is_ascii_digits, normalise_digits

LENGTH = 10
RANDOM_DIGITS = 7

# Damm's totally anti-symmetric quasigroup of order 10.
_DAMM = (
    (0, 3, 1, 7, 5, 9, 8, 6, 4, 2),
    (7, 0, 9, 2, 1, 5, 4, 8, 6, 3),
    (4, 2, 0, 6, 8, 7, 1, 3, 5, 9),
    (1, 7, 5, 0, 9, 8, 3, 4, 2, 6),
    (6, 1, 2, 3, 0, 4, 5, 9, 7, 8),
    (3, 6, 7, 4, 2, 0, 9, 5, 8, 1),
    (5, 8, 6, 9, 7, 2, 0, 1, 3, 4),
    (8, 9, 4, 5, 3, 6, 2, 0, 1, 7),
    (9, 4, 3, 8, 6, 1, 7, 2, 0, 5),
    (2, 5, 8, 1, 4, 3, 6, 7, 9, 0),
)


class InvalidTrackingCode(ValueError):
    pass


def damm_digit(digits: str) -> int:
    if not is_ascii_digits(digits):
        raise InvalidTrackingCode("a Damm check digit is computed over the digits 0-9 only")
    interim = 0
    for d in digits:
        interim = _DAMM[interim][int(d)]
    return interim


def issuer_prefix(code: str) -> str:
    """The two digits naming who issued a (parsed) code: the backend or one IVR node."""
    return code[:2]


def new_tracking_code(prefix: str, randbelow=secrets.randbelow) -> str:
    if len(prefix) != 2 or not is_ascii_digits(prefix) or prefix[0] == "0":
        raise ValueError("an issuer prefix is two digits, not starting with 0")
    body = prefix + str(randbelow(10**RANDOM_DIGITS)).zfill(RANDOM_DIGITS)
    return body + str(damm_digit(body))


def parse_tracking_code(raw: str) -> str:
    """The normalised code, or InvalidTrackingCode when it cannot be one we issued."""
    code = normalise_digits(raw)
    if problem := digits_problem(code):
        raise InvalidTrackingCode(f"a tracking code has {LENGTH} digits ({problem})")
    if len(code) != LENGTH:
        raise InvalidTrackingCode(f"a tracking code has {LENGTH} digits")
    if damm_digit(code) != 0:
        raise InvalidTrackingCode("the tracking code's check digit does not match: a digit was mistyped")
    return code


def is_valid_tracking_code(raw: str) -> bool:
    try:
        parse_tracking_code(raw)
    except InvalidTrackingCode:
        return False
    return True
