"""Iran's public holidays, solar and lunar, computed for a range of years, with overrides (issue 8.16)."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from domain.deadlines import due_at
from domain.holidays import (
    Overrides,
    apply_overrides,
    computed_holidays,
    holidays_from_file,
    holidays_in_year,
    load_overrides,
    lunar_holidays,
    save_overrides,
    solar_holidays,
)
from domain.profiles import PROJECT_ROOT, Calendar, DeadlineRule, load_profile

TEHRAN = ZoneInfo("Asia/Tehran")


def named(holidays, name: str) -> list[dt.date]:
    return [h.date for h in holidays if h.name == name]


def test_solar_holidays_fall_on_their_jalali_dates():
    days = solar_holidays(1405)
    assert named(days, "Nowruz") == [dt.date(2026, 3, d) for d in (21, 22, 23, 24)]
    assert named(days, "Nature Day (Sizdah Bedar)") == [dt.date(2026, 4, 2)]
    assert named(days, "Victory of the Islamic Revolution") == [dt.date(2027, 2, 11)]  # 22 Bahman
    assert named(solar_holidays(1404), "Nationalisation of the oil industry") == [dt.date(2026, 3, 20)]
    assert len(days) == 10


def test_lunar_holidays_by_umm_al_qura_within_a_day_of_the_official_ones():
    days = lunar_holidays(1447)
    assert len(days) == 16
    # Iran observed Ashura 1447 on 2025-07-06; Umm al-Qura may be a day off.
    assert abs((named(days, "Ashura")[0] - dt.date(2025, 7, 6)).days) <= 1
    assert named(days, "Ashura")[0] - named(days, "Tasua")[0] == dt.timedelta(days=1)
    # Eid al-Fitr 1447 is about the Nowruz of 1405 (official: 2026-03-21).
    assert abs((named(days, "Eid al-Fitr")[0] - dt.date(2026, 3, 21)).days) <= 1
    # Imam Reza's martyrdom is the last day of Safar, after the 28th, before Rabi al-Awwal.
    demise, reza = (
        named(days, "Demise of the Prophet and martyrdom of Imam Hassan")[0],
        named(days, "Martyrdom of Imam Reza")[0],
    )
    assert (reza - demise).days in (1, 2)


def test_a_range_of_years_holds_every_holiday_once_per_year():
    days = computed_holidays(1403, 1410)
    for year in range(1403, 1411):
        in_year = holidays_in_year(days, year)
        # 10 solar and 16 lunar; a lunar year is 11 days shorter, so one holiday can come twice.
        assert 26 <= len(in_year) <= 28, year
        assert {h.source for h in in_year} == {"solar", "lunar"}


def calendar_with(overrides: Overrides) -> Calendar:
    days = apply_overrides(computed_holidays(1404, 1404), overrides)
    return Calendar(weekend=["friday"], holidays=[h.date for h in days])


def test_an_override_moving_a_lunar_holiday_moves_a_deadline_across_it():
    one_day = DeadlineRule(working_days=1)
    thursday = dt.datetime(2025, 7, 3, 10, 0, tzinfo=TEHRAN)
    computed = calendar_with(Overrides())
    assert dt.date(2025, 7, 5) in computed.holidays and dt.date(2025, 7, 6) not in computed.holidays
    # Friday is the weekend and Saturday is Ashura by Umm al-Qura: due on Sunday.
    assert due_at(thursday, one_day, computed).astimezone(TEHRAN).date() == dt.date(2025, 7, 6)
    # Iran observed Tasua and Ashura a day later: the deadline moves to Monday.
    official = calendar_with(
        Overrides(
            add={dt.date(2025, 7, 5): "Tasua", dt.date(2025, 7, 6): "Ashura"}, remove={dt.date(2025, 7, 4)}
        )
    )
    assert due_at(thursday, one_day, official).astimezone(TEHRAN).date() == dt.date(2025, 7, 7)


def test_overrides_file_round_trip_and_spec_loading(tmp_path):
    spec = tmp_path / "iran.yaml"
    shutil.copy(PROJECT_ROOT / "config" / "holidays" / "iran.yaml", spec)
    target = tmp_path / "overrides.yaml"
    save_overrides(target, Overrides(add={dt.date(2025, 7, 6): "Ashura"}, remove={dt.date(2025, 7, 4)}))
    assert load_overrides(target) == Overrides(
        add={dt.date(2025, 7, 6): "Ashura"}, remove={dt.date(2025, 7, 4)}
    )
    days = holidays_from_file(spec)
    assert dt.date(2025, 7, 4) not in {h.date for h in days}
    assert next(h for h in days if h.date == dt.date(2025, 7, 6)).source == "override"
    # The older form, a plain list of dates, still loads.
    plain = tmp_path / "plain.yaml"
    plain.write_text("- 2026-03-21\n- 2026-03-22\n", encoding="utf-8")
    assert [h.date for h in holidays_from_file(plain)] == [dt.date(2026, 3, 21), dt.date(2026, 3, 22)]


@pytest.mark.parametrize("number", ["1482", "111"])
def test_service_profiles_carry_solar_and_lunar_holidays(number):
    calendar = load_profile(Path(PROJECT_ROOT / "config" / "services" / f"{number}.yaml")).calendar
    assert dt.date(2026, 3, 21) in calendar.holidays  # Nowruz 1405
    assert dt.date(2025, 7, 5) in calendar.holidays  # Ashura 1447 (Umm al-Qura)
    assert dt.date(2030, 1, 1) < max(calendar.holidays)  # years ahead, not one year
