import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.tracking_code import (
    InvalidTrackingCode,
    damm_digit,
    is_valid_tracking_code,
    new_tracking_code,
    parse_tracking_code,
)

codes = st.builds(
    lambda p, r: new_tracking_code(str(p), randbelow=lambda _n: r),
    st.integers(10, 99),
    st.integers(0, 10**7 - 1),
)


@given(codes)
def test_issued_codes_are_ten_digits_with_prefix_and_valid(code):
    assert len(code) == 10 and code.isdigit() and code[0] != "0"
    assert parse_tracking_code(code) == code


@given(codes, st.integers(0, 9), st.integers(1, 9))
def test_every_single_digit_error_is_caught(code, pos, delta):
    typo = code[:pos] + str((int(code[pos]) + delta) % 10) + code[pos + 1 :]
    assert not is_valid_tracking_code(typo)


@given(codes, st.integers(0, 8))
def test_every_adjacent_swap_is_caught(code, pos):
    if code[pos] == code[pos + 1]:
        return
    swapped = code[:pos] + code[pos + 1] + code[pos] + code[pos + 2 :]
    assert not is_valid_tracking_code(swapped)


def test_codes_are_random_not_sequential():
    issued = [new_tracking_code("10") for _ in range(2000)]
    assert len(set(issued)) > 1990
    # One code tells nothing of the next: consecutive codes are typically millions apart.
    gaps = sorted(abs(int(b[2:9]) - int(a[2:9])) for a, b in itertools.pairwise(issued))
    assert gaps[len(gaps) // 2] > 500_000


def test_persian_digits_and_errors():
    code = new_tracking_code("21")
    persian = code.translate(str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹"))
    assert parse_tracking_code(persian) == code
    with pytest.raises(InvalidTrackingCode, match="10 digits"):
        parse_tracking_code("12345")
    with pytest.raises(InvalidTrackingCode, match="mistyped"):
        parse_tracking_code(code[:9] + str((int(code[9]) + 1) % 10))


def test_damm_reference_value():
    # Damm's published example: 572 -> check digit 4.
    assert damm_digit("572") == 4
    assert damm_digit("5724") == 0


def test_prefix_must_be_two_digits():
    with pytest.raises(ValueError):
        new_tracking_code("05")
