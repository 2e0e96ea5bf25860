import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.national_id import (
    InvalidNationalId,
    check_digit,
    is_valid_national_id,
    parse_national_id,
    with_check_digit,
)


def test_known_valid_ids():
    assert parse_national_id("0013542419") == "0013542419"
    assert is_valid_national_id("0499370899")


def test_persian_and_arabic_digits_are_normalised():
    assert parse_national_id("۰۰۱۳۵۴۲۴۱۹") == "0013542419"
    assert parse_national_id("٠٠١٣٥٤٢٤١٩") == "0013542419"
    assert parse_national_id("001-354241-9") == "0013542419"


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ("0013542418", "check digit"),
        ("001354241", "10 digits"),
        ("00135424190", "10 digits"),
        ("1111111111", "repeated"),
        ("0000000000", "repeated"),
        ("abcdefghij", "digits only"),
        ("", "10 digits"),
    ],
)
def test_invalid_ids_say_why(raw, why):
    with pytest.raises(InvalidNationalId, match=why):
        parse_national_id(raw)


nine_digits = st.text(alphabet="0123456789", min_size=9, max_size=9).filter(lambda s: len(set(s)) > 1)


@given(nine_digits)
def test_completed_ids_are_valid(first_nine):
    assert is_valid_national_id(with_check_digit(first_nine))


@given(nine_digits, st.integers(0, 8), st.integers(1, 9))
def test_a_single_changed_digit_among_the_first_nine_is_caught(first_nine, pos, delta):
    nid = with_check_digit(first_nine)
    changed = nid[:pos] + str((int(nid[pos]) + delta) % 10) + nid[pos + 1 :]
    # Mod 11 with weights 2..10 catches every single substitution, except when the true check
    # value is 10 (written as 0) and the change lands on the other value mapping to the same digit.
    if check_digit(changed[:9]) == int(changed[9]):
        assert len({check_digit(first_nine), check_digit(changed[:9])}) == 1
    else:
        assert not is_valid_national_id(changed)


@given(nine_digits, st.integers(1, 9))
def test_a_wrong_check_digit_is_caught(first_nine, delta):
    nid = with_check_digit(first_nine)
    assert not is_valid_national_id(nid[:9] + str((int(nid[9]) + delta) % 10))
