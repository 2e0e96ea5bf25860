"""What a call needs of a service profile (domain.call_profiles), read without pydantic: the same
values as the full ServiceProfile for every profile we ship, and the same refusals."""

from __future__ import annotations

import datetime as dt

import pytest

from domain.call_profiles import CallProfile, InvalidCallProfile, read_call_profiles
from domain.profiles import PROJECT_ROOT, load_profiles

SERVICES = PROJECT_ROOT / "config" / "services"


def test_the_shipped_profiles_read_as_the_full_profiles_do():
    full = load_profiles(SERVICES)
    light = read_call_profiles(SERVICES)
    assert set(light) == set(full) and light
    for number, profile in full.items():
        call = light[number]
        assert (call.number, call.timezone) == (profile.number, profile.timezone)
        hours = profile.operator_hours
        assert call.operator_hours.days == tuple(hours.days)
        assert (call.operator_hours.start, call.operator_hours.end) == (hours.start, hours.end)
        assert CallProfile.from_json(call.to_json()) == call


RAW = {"number": "1482", "operator_hours": {"days": ["saturday"], "start": "08:00", "end": "16:00:30"}}


def test_times_and_defaults():
    profile = CallProfile.from_profile(RAW)
    assert profile.timezone == "Asia/Tehran"
    assert profile.operator_hours.start == dt.time(8) and profile.operator_hours.end == dt.time(16, 0, 30)
    # YAML reads an unquoted 08:00 as 480 (base 60); pydantic takes a number as seconds, and so do we.
    assert CallProfile.from_profile(
        {**RAW, "operator_hours": {**RAW["operator_hours"], "start": 480}}
    ).operator_hours.start == dt.time(0, 8)


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({**RAW, "number": 1482}, "number"),
        ({k: v for k, v in RAW.items() if k != "number"}, "number: missing"),
        ({**RAW, "timezone": 3}, "timezone"),
        ({**RAW, "operator_hours": None}, "operator_hours"),
        ({**RAW, "operator_hours": {**RAW["operator_hours"], "days": ["caturday"]}}, "operator_hours.days"),
        ({**RAW, "operator_hours": {**RAW["operator_hours"], "days": "saturday"}}, "operator_hours.days"),
        ({**RAW, "operator_hours": {**RAW["operator_hours"], "start": "8 am"}}, "operator_hours.start"),
        ({**RAW, "operator_hours": {**RAW["operator_hours"], "end": None}}, "operator_hours.end"),
        (["not", "a", "mapping"], "mapping"),
    ],
)
def test_a_malformed_profile_is_refused_naming_the_field(raw, field):
    with pytest.raises(InvalidCallProfile, match=field):
        CallProfile.from_profile(raw, "1482.yaml")
