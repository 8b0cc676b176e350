"""Sub-daily evaluation: the hour and 15-minute grains, instants, timed roll-ups, staleness in minutes.

Every expectation is computed by hand from the readings written in the test.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from citykpi.catalogue.model import Condition, FromSeries, Rollup, Thresholds
from citykpi.engine.calendar import Moment, comparison_offsets, trunc_at, window
from citykpi.engine.scorecard import CELL_SCHEMA, cell_schema
from citykpi.errors import UsageError
from tests.engine_helpers import City, cell, indicator

AT = datetime(2025, 12, 31, 14, 0)


def five_minute_readings(city: City, indicator_id: str = "gas.lel", area: str = "D1") -> None:
    """Readings every 5 minutes from 2025-12-30 00:00 to 2025-12-31 23:55; reading n is n % 50."""
    start = datetime(2025, 12, 30)
    rows = [(area, start + timedelta(minutes=5 * n), float(n % 50)) for n in range(2 * 24 * 12)]
    city.observe(indicator_id, rows, freq_class=2)


def gas(**kw: object) -> object:
    return indicator("gas.lel", frequency="realtime", rollup=Rollup(time="max", area="max"), **kw)


@pytest.fixture
def city(tmp_path: Path) -> City:
    return City(tmp_path)


# --- calendar ------------------------------------------------------------------------------------


def test_a_moment_is_the_end_of_a_day_or_an_instant() -> None:
    day = Moment.of_day(date(2025, 12, 31))
    assert (day.end, day.now, day.day, day.at, day.label()) == (
        datetime(2026, 1, 1),
        datetime(2026, 1, 1),
        date(2025, 12, 31),
        None,
        "2025-12-31",
    )
    instant = Moment.of_instant(AT)
    assert instant.last == AT and instant.now == AT and instant.end > AT
    assert (instant.day, instant.at, instant.label()) == (date(2025, 12, 31), AT, "2025-12-31 14:00")


def test_periods_start_on_the_hour_and_the_quarter_hour() -> None:
    t = datetime(2025, 12, 31, 14, 44, 59)
    assert trunc_at("hour", t) == datetime(2025, 12, 31, 14)
    assert trunc_at("15min", t) == datetime(2025, 12, 31, 14, 30)
    assert trunc_at("day", t) == datetime(2025, 12, 31)
    assert comparison_offsets("hour") == (24, 168)
    assert comparison_offsets("15min") == (96, 672)
    assert comparison_offsets("day") == (None, 7)


def test_an_hourly_window_reads_the_same_hour_a_day_and_a_week_back() -> None:
    w = window(gas(max_staleness=timedelta(hours=1)), "hour", Moment.of_instant(AT))
    # staleness 1 h: look back max(2 h, 1 h + 1 day) = 25 hours
    assert w.cur_start == datetime(2025, 12, 31, 14)
    assert w.cand_lo == datetime(2025, 12, 30, 13)
    # the same hour yesterday and last week of the hour evaluated: one bucket each
    assert (w.dy_lo, w.dy_hi) == (datetime(2025, 12, 30, 14), datetime(2025, 12, 30, 15))
    assert (w.wk_lo, w.wk_hi) == (datetime(2025, 12, 24, 14), datetime(2025, 12, 24, 15))


def test_a_day_window_keeps_its_dates() -> None:
    w = window(gas(), "day", date(2025, 12, 31))
    assert w.cur_start == date(2025, 12, 31) and w.dy_lo is None and w.wk_k == 7


# --- values at the hour and 15-minute grains -----------------------------------------------------


def test_an_hour_is_the_roll_up_of_its_readings_with_its_comparisons(city: City) -> None:
    five_minute_readings(city)
    c = cell(city.evaluate(gas(), grain="hour", at=AT), "gas.lel", "D1")
    # 14:00 holds only the 14:00 reading (n = 288 + 168 = 456 → 6); 13:00–13:55 are n 444…455 → 44…49, 0…5
    assert c["period_start"] == datetime(2025, 12, 31, 14) and c["period_end"] == datetime(2025, 12, 31, 15)
    assert (c["value"], c["previous_value"]) == (6.0, 49.0)
    # yesterday 14:00–14:55: n 168…179 → 18…29; no readings a week ago
    assert (c["day_ago_value"], c["week_ago_value"]) == (29.0, None)
    assert c["change_previous"] == pytest.approx((6 - 49) / 49 * 100)
    assert c["change_day_ago"] == pytest.approx((6 - 29) / 29 * 100)
    assert (c["status"], c["streak"]) == ("green", 1)


def test_a_quarter_hour_and_its_streak(city: City) -> None:
    five_minute_readings(city)
    c = cell(city.evaluate(gas(), grain="15min", at=AT), "gas.lel", "D1")
    assert (c["period_start"], c["period_end"]) == (
        datetime(2025, 12, 31, 14),
        datetime(2025, 12, 31, 14, 15),
    )
    # 13:45–13:55 → 3, 4, 5; yesterday 14:00–14:10 → 18, 19, 20
    assert (c["value"], c["previous_value"], c["day_ago_value"]) == (6.0, 5.0, 20.0)
    # green at 14:00, 13:45 and 13:30 (0, 1, 2); red at 13:15 (47, 48, 49)
    assert c["streak"] == 3


def test_at_a_day_grain_the_instant_cuts_the_day_short(city: City) -> None:
    five_minute_readings(city)
    at_two = cell(city.evaluate(gas(), grain="day", at=AT), "gas.lel", "D1")
    whole = cell(city.evaluate(gas(), as_of=date(2025, 12, 31)), "gas.lel", "D1")
    assert at_two["period_start"] == date(2025, 12, 31) == whole["period_start"]
    # by 14:00 the day has seen n 288…456 (every value 0…49): max 49, as has the whole day
    assert at_two["value"] == 49.0 == whole["value"]
    mid = cell(city.evaluate(gas(), grain="day", at=datetime(2025, 12, 31, 0, 20)), "gas.lel", "D1")
    assert mid["value"] == 42.0  # 00:00 … 00:20 → n 288…292 → 38…42


def test_sub_daily_cells_carry_date_times_and_day_cells_keep_dates(city: City) -> None:
    five_minute_readings(city)
    hourly = city.evaluate(gas(), grain="hour", at=AT)
    assert dict(hourly.cells.schema) == dict(cell_schema("hour"))
    assert hourly.cells.schema["period_start"] == pl.Datetime("us")
    assert list(hourly.cells.columns)[-2:] == ["day_ago_value", "change_day_ago"]
    daily = city.evaluate(gas(), as_of=date(2025, 12, 31))
    assert dict(daily.cells.schema) == dict(CELL_SCHEMA)
    assert hourly.at == AT and daily.at is None and hourly.label == "2025-12-31 14:00"


def test_a_sub_daily_grain_takes_an_instant_not_a_date(city: City) -> None:
    five_minute_readings(city)
    with pytest.raises(UsageError, match="evaluates an instant"):
        city.evaluate(gas(), grain="hour", as_of=date(2025, 12, 31))
    with pytest.raises(UsageError, match="not both"):
        city.evaluate(gas(), grain="hour", as_of=date(2025, 12, 31), at=AT)
    # no instant: the newest reading's
    newest = city.evaluate(gas(), grain="hour", as_of=None)
    assert newest.at == datetime(2025, 12, 31, 23, 55)


def test_an_hourly_series_at_its_own_grain(city: City) -> None:
    hourly = indicator("w.pressure", frequency="hourly", rollup=Rollup(time="last", area="none"))
    rows = [("D1", datetime(2025, 12, 31, h), float(h)) for h in range(24)]
    city.observe("w.pressure", rows, freq_class=2)
    c = cell(city.evaluate(hourly, grain="hour", at=datetime(2025, 12, 31, 9, 30)), "w.pressure", "D1")
    assert (c["period_start"], c["value"], c["previous_value"]) == (datetime(2025, 12, 31, 9), 9.0, 8.0)
    # at the day grain an hourly series is rolled up to its day, as it always was
    d = cell(city.evaluate(hourly, as_of=date(2025, 12, 31)), "w.pressure", "D1")
    assert (d["period_start"], d["value"]) == (date(2025, 12, 31), 23.0)


def test_persistence_counts_hours_at_the_hour_grain(city: City) -> None:
    lel = gas(thresholds=Thresholds(bands=gas().thresholds.bands, for_periods=3))
    # hours 11, 12, 13 red (45), 14 orange (35): the least severe of the last three hours is orange
    rows = [("D1", datetime(2025, 12, 31, h), v) for h, v in ((11, 45.0), (12, 45.0), (13, 45.0), (14, 35.0))]
    city.observe("gas.lel", rows, freq_class=2)
    at_13 = cell(city.evaluate(lel, grain="hour", at=datetime(2025, 12, 31, 13, 30)), "gas.lel", "D1")
    assert at_13["status"] == "red" and at_13["explanation"].endswith("for 3 hours running")
    at_14 = cell(city.evaluate(lel, grain="hour", at=AT), "gas.lel", "D1")
    assert at_14["status"] == "orange"


# --- staleness in minutes -------------------------------------------------------------------------


def test_staleness_in_minutes(city: City) -> None:
    lel = gas(max_staleness=timedelta(minutes=30))
    city.observe("gas.lel", [("D1", datetime(2025, 12, 31, 13, 30), 5.0)], freq_class=2)
    fresh = cell(city.evaluate(lel, grain="15min", at=AT), "gas.lel", "D1")
    assert fresh["status"] == "green"  # exactly 30 minutes old: not older than 30m
    stale = cell(city.evaluate(lel, grain="15min", at=datetime(2025, 12, 31, 14, 1)), "gas.lel", "D1")
    assert stale["status"] == "stale"
    assert stale["explanation"] == "stale: latest value 5 index from 2025-12-31 13:30, older than 30m"
    assert stale["period_start"] == datetime(2025, 12, 31, 13, 30)
    # a day and a half later the look-back (staleness + a day) no longer reaches it
    gone = cell(city.evaluate(lel, grain="15min", at=datetime(2026, 1, 2, 2, 0)), "gas.lel", "D1")
    assert gone["status"] == "no_data"


# --- timed roll-ups -------------------------------------------------------------------------------


def timed_catalogue() -> tuple[object, object, object]:
    raw = indicator("p.raw", frequency="realtime", rollup=Rollup(time="last", area="none"))
    twa = indicator(
        "p.twa", frequency="realtime", value=FromSeries("p.raw"), rollup=Rollup(time="time_weighted_mean")
    )
    above = indicator(
        "p.above",
        frequency="realtime",
        value=FromSeries("p.raw"),
        rollup=Rollup(time="minutes_where", where=Condition(">=", 35.0)),
    )
    return raw, twa, above


def values(card: object, *ids: str) -> list[float | None]:
    return [cell(card, i, "D1")["value"] for i in ids]  # type: ignore[arg-type]


def test_time_weighted_mean_and_minutes_above_a_cut(city: City) -> None:
    raw, twa, above = timed_catalogue()
    t = datetime(2025, 12, 31, 14)
    rows = [
        (t, 10.0),
        (t + timedelta(minutes=10), 40.0),
        (t + timedelta(minutes=40), 20.0),
        (t + timedelta(hours=1), 50.0),
    ]
    city.observe("p.raw", [("D1", p, v) for p, v in rows], freq_class=2)
    # the 14:00 hour as of 15:30: 10 for 10 min, 40 for 30 min, 20 for 20 min (to the hour's end)
    at = datetime(2025, 12, 31, 15, 30)
    card = city.evaluate(raw, twa, above, grain="hour", at=at)
    assert cell(card, "p.twa", "D1")["previous_value"] == pytest.approx((100 + 1200 + 400) / 60)
    assert cell(card, "p.above", "D1")["previous_value"] == 30.0
    # the 15:00 hour: 50 from 15:00 until the instant evaluated (30 min)
    assert values(card, "p.twa", "p.above") == [50.0, 30.0]
    # mid-hour at 14:50: 10 for 10 min, 40 for 30, 20 for 10 (to the instant)
    card = city.evaluate(raw, twa, above, grain="hour", at=datetime(2025, 12, 31, 14, 50))
    assert values(card, "p.twa", "p.above") == [pytest.approx(1500 / 50), 30.0]
    # the whole day: the 15:00 reading holds until midnight (9 h)
    card = city.evaluate(raw, twa, above, as_of=date(2025, 12, 31))
    assert values(card, "p.twa", "p.above") == [pytest.approx((100 + 1200 + 400 + 50 * 540) / 600), 570.0]


def test_a_reading_at_the_instant_itself_is_its_own_time_weighted_mean(city: City) -> None:
    raw, twa, above = timed_catalogue()
    city.observe("p.raw", [("D1", AT, 42.0)], freq_class=2)
    card = city.evaluate(raw, twa, above, grain="hour", at=AT)
    assert values(card, "p.twa", "p.above") == [42.0, 0.0]


def test_yesterday_is_the_same_hour_as_the_hour_evaluated(city: City) -> None:
    """A silent feed's cell shows its last hour; its comparison with yesterday is for the hour evaluated
    (what the centre looks at), and one bucket a day back is all that is read for it."""
    lel = gas(max_staleness=timedelta(hours=3))
    rows = [("D1", datetime(2025, 12, 30, h), float(h)) for h in range(24)]
    rows += [("D1", datetime(2025, 12, 31, h), 100.0 + h) for h in range(13)]  # silent after 12:00
    city.observe("gas.lel", rows, freq_class=2)
    c = cell(city.evaluate(lel, grain="hour", at=datetime(2025, 12, 31, 14, 30)), "gas.lel", "D1")
    assert (c["period_start"], c["value"], c["previous_value"]) == (datetime(2025, 12, 31, 12), 112.0, 111.0)
    assert c["day_ago_value"] == 14.0  # yesterday 14:00, the hour evaluated
