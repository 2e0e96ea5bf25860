"""The Iranian national ID (کد ملی): ten digits, the last a check digit over the first nine."""

from __future__ import annotations

from domain.digits import digits_problem, normalise_digits


class InvalidNationalId(ValueError):
    """Why a national ID was refused, in words a caller or operator can act on."""


def check_digit(first_nine: str) -> int:
    total = sum(int(d) * (10 - i) for i, d in enumerate(first_nine))
    remainder = total % 11
    return remainder if remainder < 2 else 11 - remainder


def parse_national_id(raw: str) -> str:
    """The normalised ten-digit ID, or InvalidNationalId saying what is wrong."""
    digits = normalise_digits(raw)
    if problem := digits_problem(digits):
        raise InvalidNationalId(f"a national ID has digits only ({problem})")
    if len(digits) != 10:
        raise InvalidNationalId(f"a national ID has 10 digits, this has {len(digits)}")
    if len(set(digits)) == 1:
        raise InvalidNationalId("a national ID cannot be one digit repeated")
    if check_digit(digits[:9]) != int(digits[9]):
        raise InvalidNationalId("the check digit does not match: a digit was mistyped")
    return digits


def is_valid_national_id(raw: str) -> bool:
    try:
        parse_national_id(raw)
    except InvalidNationalId:
        return False
    return True


def with_check_digit(first_nine: str) -> str:
    """Complete nine digits into a valid ID (demo data and tests)."""
    return first_nine + str(check_digit(first_nine))
