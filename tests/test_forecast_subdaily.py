"""Early warning at the hour and the quarter hour: hours to breach, the same time of day on comparable
days as a seasonal baseline, and declared incidents left out of it by whole days.

Every expectation is computed by hand from the readings the test writes (a known slope, a known spike)
and China's calendar around New Year 2026 (1–3 January off, Sunday 4 January worked, 调休).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from citykpi.catalogue.model import (
    FORECAST_DEFAULTS,
    BandSet,
    Catalogue,
    Forecast,
    Incident,
    Rollup,
    Thresholds,
)
from citykpi.engine import seasonal
from citykpi.engine.evaluate import evaluate
from citykpi.engine.holidays import DayType, day_type
from citykpi.render.outlook import fmt_outlook
from tests.engine_helpers import City, cell, indicator

CUTS = BandSet(cuts={"blue": 110.0, "yellow": 115.0, "orange": 120.0, "red": 125.0})


@pytest.fixture
def city(tmp_path: Path) -> City:
    return City(tmp_path)


# --- comparable days --------------------------------------------------------------------------------


def test_new_year_2026_in_the_calendar() -> None:
    """The days the expectations below are written from."""
    kinds = {
        date(2025, 12, 27) + timedelta(days=n): day_type(date(2025, 12, 27) + timedelta(days=n))
        for n in range(10)
    }
    assert [d.day for d, k in kinds.items() if k is DayType.HOLIDAY] == [1, 2, 3]
    assert [d.day for d, k in kinds.items() if k is DayType.ADJUSTED] == [4]
    assert [d.day for d, k in kinds.items() if k is DayType.WEEKEND] == [27, 28]


def test_an_hour_is_compared_with_the_same_time_on_days_of_its_kind() -> None:
    """Working days (the worked Sunday too) with working days, rest days with rest days, holidays with
    holidays; newest first, the days before New Year skipped by a working Monday."""
    peers = seasonal.time_of_day_peers
    assert peers(date(2026, 1, 5), 4) == [
        date(2026, 1, 4),
        date(2025, 12, 31),
        date(2025, 12, 30),
        date(2025, 12, 29),
    ]
    assert peers(date(2025, 12, 28), 3) == [date(2025, 12, 27), date(2025, 12, 21), date(2025, 12, 20)]
    assert peers(date(2026, 1, 3), 2) == [date(2026, 1, 2), date(2026, 1, 1)]
    at = datetime(2026, 1, 5, 8, 15)
    assert seasonal.peer_rows("15min", [at], 2) == [
        ("15min", at, datetime(2026, 1, 4, 8, 15), 1),
        ("15min", at, datetime(2025, 12, 31, 8, 15), 2),
    ]
    assert seasonal.PEER_RULES["hour"] is peers


# --- hours to breach --------------------------------------------------------------------------------


def _rising(city: City, grain: str, end: datetime, n: int, start: float, step: float) -> None:
    """``n`` readings at each period start of ``grain`` up to ``end``, rising by ``step`` a period."""
    length = timedelta(hours=1) if grain == "hour" else timedelta(minutes=15)
    rows = [("D1", end - length * (n - 1 - j), start + step * j) for j in range(n)]
    city.observe("v.level", rows, freq_class=2)


def _level(grain: str) -> object:
    frequency = "hourly" if grain == "hour" else "realtime"
    return indicator(
        "v.level",
        frequency=frequency,
        rollup=Rollup(time="last", area="max"),
        forecast=Forecast(),
        thresholds=Thresholds(bands=CUTS),
    )


def test_an_hourly_trend_is_forecast_in_hours(city: City) -> None:
    """97.5, 99.5, … 107.5 over the six hours to 09:00, 2 an hour: the line reaches yellow (115) after
    3.75 hours, so in the 4th, and orange (120) after 6.25, beyond the 6-hour horizon."""
    assert FORECAST_DEFAULTS["hour"] == (6, 6)
    _rising(city, "hour", datetime(2025, 12, 31, 9), 6, 97.5, 2.0)
    got = cell(city.evaluate(_level("hour"), grain="hour", at=datetime(2025, 12, 31, 9, 30)), "v.level", "D1")
    assert (got["value"], got["status"]) == (107.5, "green")
    assert got["forecast_slope"] == pytest.approx(2.0)
    assert got["forecast_r2"] == pytest.approx(1.0)
    assert (got["forecast_status"], got["forecast_periods"]) == ("yellow", 4)
    assert got["forecast_date"] == date(2025, 12, 31)
    assert fmt_outlook(got) == "→ yellow in ~4 hours (around 2025-12-31)"
    assert fmt_outlook(got, "zh") == "→ 约4小时后转黄（2025-12-31前后）"


def test_a_crossing_after_midnight_is_dated_the_next_day(city: City) -> None:
    _rising(city, "hour", datetime(2025, 12, 31, 22), 6, 97.5, 2.0)
    got = cell(city.evaluate(_level("hour"), grain="hour", at=datetime(2025, 12, 31, 22)), "v.level", "D1")
    assert (got["forecast_status"], got["forecast_periods"], got["forecast_date"]) == (
        "yellow",
        4,
        date(2026, 1, 1),
    )


def test_a_quarter_hourly_trend_is_forecast_in_quarter_hours(city: City) -> None:
    """Eight quarter hours to 09:45, 1.5 a quarter from 100 to 110.5 (blue): yellow (115) is reached
    after 3 quarters, orange (120) after 6.33 (in the 7th), red (125) after 9.67, beyond the
    8-quarter horizon: the worst colour within it is orange."""
    assert FORECAST_DEFAULTS["15min"] == (8, 8)
    _rising(city, "15min", datetime(2025, 12, 31, 9, 45), 8, 100.0, 1.5)
    got = cell(
        city.evaluate(_level("15min"), grain="15min", at=datetime(2025, 12, 31, 9, 50)), "v.level", "D1"
    )
    assert got["value"] == pytest.approx(110.5) and got["status"] == "blue"
    assert (got["forecast_status"], got["forecast_periods"]) == ("orange", 7)
    assert fmt_outlook(got) == "→ orange in ~7 quarter-hours (around 2025-12-31)"


def test_a_flat_hour_forecasts_nothing(city: City) -> None:
    _rising(city, "hour", datetime(2025, 12, 31, 9), 6, 108.0, 0.0)
    got = cell(city.evaluate(_level("hour"), grain="hour", at=datetime(2025, 12, 31, 9)), "v.level", "D1")
    assert got["forecast_status"] is None and got["forecast_periods"] is None


# --- seasonal baselines at the hour -------------------------------------------------------------------

ANOMALY = Thresholds(
    basis="anomaly",
    bands=BandSet(ranges={"green": (-3.0, 3.0), "yellow": (-5.0, 5.0), "orange": (-8.0, 8.0)}),
    baseline=4,
)


def _eight_o_clock(city: City, values: dict[date, float]) -> None:
    """Readings at 08:00 of the days given, and 50 at 03:00 every day (another time of day)."""
    rows = [("D1", datetime.combine(d, datetime.min.time()).replace(hour=8), v) for d, v in values.items()]
    days = sorted(values)
    rows += [
        ("D1", datetime.combine(days[0] + timedelta(days=n), datetime.min.time()).replace(hour=3), 50.0)
        for n in range((days[-1] - days[0]).days + 1)
    ]
    city.observe("v.flow", rows, freq_class=2)


def _flow() -> object:
    return indicator(
        "v.flow",
        frequency="hourly",
        direction="band",
        rollup=Rollup(time="last", area="max"),
        thresholds=ANOMALY,
    )


def test_an_hour_is_scored_against_the_same_hour_of_comparable_days(city: City) -> None:
    """Monday 5 January 08:00 reads 20; the 08:00 of its four comparable days (Sunday 4 January,
    worked, and 31, 30 and 29 December) read 10, 12, 10 and 12: median 11, MAD 1, spread 1.4826,
    so the score is (20 − 11) / 1.4826 = 6.07, orange. The quiet holidays (8 at 08:00) and the
    rest days (2) are not among them, and neither is 03:00."""
    values = {
        date(2025, 12, 27): 2.0,
        date(2025, 12, 28): 2.0,
        date(2025, 12, 29): 12.0,
        date(2025, 12, 30): 10.0,
    }
    values |= {date(2025, 12, 31): 12.0, date(2026, 1, 1): 8.0, date(2026, 1, 2): 8.0, date(2026, 1, 3): 8.0}
    values |= {date(2026, 1, 4): 10.0, date(2026, 1, 5): 20.0}
    _eight_o_clock(city, values)
    got = cell(city.evaluate(_flow(), grain="hour", at=datetime(2026, 1, 5, 8, 30)), "v.flow", "D1")
    assert got["basis_value"] == pytest.approx(9 / 1.4826, rel=1e-6), got["explanation"]
    assert got["status"] == "orange"


def test_an_incident_leaves_out_whole_days_at_the_hour(city: City) -> None:
    """The same Monday with 30 and 31 December declared an incident (to 31 December, a date): the
    08:00 of both days are left out, the whole of the last day included, so 26 and 25 December
    stand in beside 4 January and 29 December: 12, 10, 12, 12, median 12, MAD 0, mean absolute
    deviation 0.5, spread 0.5 × 1.2533; the score is (20 − 12) / 0.62665 = 12.8, red. (Had 31
    December 08:00 been kept, its 30 would have been a peer.)"""
    values = {date(2025, 12, 24) + timedelta(days=n): 12.0 for n in range(3)}  # 24, 25, 26 December
    values |= {date(2025, 12, 29): 10.0, date(2025, 12, 30): 30.0, date(2025, 12, 31): 30.0}
    values |= {date(2026, 1, 4): 12.0, date(2026, 1, 5): 20.0}
    _eight_o_clock(city, values)
    declared = Catalogue(
        indicators=(_flow(),),
        incidents=(Incident("main_burst", date(2025, 12, 30), date(2025, 12, 31), indicators=("v.*",)),),
    )
    got = cell(
        evaluate(city.wh, declared, grain="hour", at=datetime(2026, 1, 5, 8, 30), persist=False),
        "v.flow",
        "D1",
    )
    assert got["basis_value"] == pytest.approx(8 / (0.5 * 1.2533), rel=1e-4), got["explanation"]
    assert got["status"] == "red"
