"""Whatever a caller, a client or a stored row holds, the pure core answers with its own errors or a
value, never a crash (issue 8, faults 5 and 9)."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.deadlines import LATEST_DUE, due_at
from domain.digits import normalise_digits
from domain.jalali import jalali_long_fa, jalali_parts, jalali_text
from domain.national_id import InvalidNationalId, parse_national_id
from domain.profiles import Calendar, DeadlineRule
from domain.tracking_code import InvalidTrackingCode, damm_digit, new_tracking_code, parse_tracking_code

# Any text at all, including digits from every script and characters that only look like digits.
hostile_text = st.one_of(
    st.text(),
    st.text(alphabet=st.characters(categories=["Nd", "No", "Nl"]), max_size=12),
    st.text(alphabet="0123456789²³¹⁰①٣۴０９𝟗 -", max_size=14),
)


@given(hostile_text)
@settings(max_examples=400)
def test_parse_national_id_raises_only_its_own_error(raw):
    try:
        nid = parse_national_id(raw)
    except InvalidNationalId:
        return
    assert len(nid) == 10 and nid.isascii() and nid.isdigit()


@given(hostile_text)
@settings(max_examples=400)
def test_parse_tracking_code_raises_only_its_own_error(raw):
    try:
        code = parse_tracking_code(raw)
    except InvalidTrackingCode:
        return
    assert len(code) == 10 and code.isascii() and code.isdigit()


@given(st.one_of(hostile_text, st.text(alphabet="0123456789", max_size=14)))
@settings(max_examples=400)
def test_normalised_digits_read_as_one_character_at_a_time(raw):
    # ASCII digits alone are returned as they are (the IVR's case); the same as reading each character.
    from domain.digits import _SEPARATORS, _ascii_digit

    assert normalise_digits(raw) == "".join(_ascii_digit(ch) for ch in raw if ch not in _SEPARATORS)


def test_every_unicode_decimal_digit_is_one_identity():
    nid = "0013542419"
    fullwidth = nid.translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    bold = "".join(chr(0x1D7CE + int(d)) for d in nid)  # mathematical bold digits
    devanagari = nid.translate(str.maketrans("0123456789", "०१२३४५६७८९"))
    for spelling in (fullwidth, bold, devanagari, "۰۰۱۳۵۴۲۴۱۹"):
        assert parse_national_id(spelling) == nid
    assert normalise_digits("１２-３") == "123"


@pytest.mark.parametrize("raw", ["001354241²", "①013542419", "00135424¹9"])
def test_digit_lookalikes_are_refused_clearly(raw):
    with pytest.raises(InvalidNationalId, match="looks like a digit but is not one"):
        parse_national_id(raw)


def test_a_superscript_digit_in_a_tracking_code_is_a_clear_refusal():
    code = new_tracking_code("10")
    with pytest.raises(InvalidTrackingCode, match="looks like a digit"):
        parse_tracking_code(code[:9] + "²")
    with pytest.raises(InvalidTrackingCode):
        damm_digit("12²")


aware_moments = st.datetimes(
    min_value=dt.datetime.min, max_value=dt.datetime.max, timezones=st.timezones()
).filter(lambda d: d.utcoffset() is not None)
fixed_offsets = st.builds(
    lambda d, minutes: d.replace(tzinfo=dt.timezone(dt.timedelta(minutes=minutes))),
    st.datetimes(min_value=dt.datetime.min, max_value=dt.datetime.max),
    st.integers(-(24 * 60 - 1), 24 * 60 - 1),
)


@given(st.one_of(aware_moments, fixed_offsets))
@settings(max_examples=300)
def test_jalali_rendering_is_total(moment):
    assert jalali_text(moment)
    parts = jalali_parts(moment)
    assert 1 <= parts["month"] <= 12
    assert jalali_long_fa(moment)


def test_year_one_and_year_9999_render():
    for moment in (
        dt.datetime(1, 1, 1, tzinfo=dt.UTC),
        dt.datetime(1, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=5))),
        dt.datetime.max.replace(tzinfo=dt.timezone(dt.timedelta(hours=-5))),
    ):
        assert jalali_text(moment, "Asia/Tehran")
        assert jalali_text(moment, "America/New_York")


CALENDAR = Calendar(weekend=["friday"], holidays=[dt.date(2026, 3, 21)])
RULES = [
    DeadlineRule(hours=3),
    DeadlineRule(same_day=True),
    DeadlineRule(working_days=1),
    DeadlineRule(working_days=10),
]


@given(st.one_of(aware_moments, fixed_offsets), st.sampled_from(RULES))
@settings(max_examples=300)
def test_deadlines_never_overflow(start, rule):
    due = due_at(start, rule, CALENDAR, "Asia/Tehran")
    assert due.utcoffset() == dt.timedelta(0)
    assert due <= LATEST_DUE
    assert jalali_text(due)


def test_an_offset_date_at_the_edge_gets_a_deadline():
    start = dt.datetime(1, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=5)))
    assert due_at(start, DeadlineRule(hours=3), CALENDAR)
    end = dt.datetime(9999, 12, 31, 23, tzinfo=dt.timezone(dt.timedelta(hours=-5)))
    assert due_at(end, DeadlineRule(working_days=10), CALENDAR) == LATEST_DUE
