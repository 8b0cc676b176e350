"""The sample city evaluated at a sub-daily grain across the whole catalogue: the daily indicators with
a seasonal basis or a forecast keep working beside the vital signs (period starts are date-times there)."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime

import pytest
from typer.testing import CliRunner, Result

from citykpi.cli import app
from citykpi.engine.seasonal import peer_rows
from citykpi.render.outlook import period_grain
from tests.golden_support import END, ENV, SampleCity


def run(city: SampleCity, *args: str) -> Result:
    return CliRunner(env=ENV).invoke(app, ["--db", str(city.db), "--catalogue", str(city.catalogue), *args])


def rows(result: Result) -> list[dict[str, str]]:
    assert result.exit_code == 0, result.stderr
    return list(csv.DictReader(io.StringIO(result.stdout)))


def test_the_peers_of_a_date_time_are_those_of_its_date_at_the_same_time() -> None:
    by_date = peer_rows("day", [date(2025, 12, 31)], 3)
    by_time = peer_rows("day", [datetime(2025, 12, 31)], 3)
    assert [(g, d.date(), p.date(), r) for g, d, p, r in by_time] == by_date  # type: ignore[attr-defined]
    # a Wednesday, a working day: the three Wednesdays before it
    assert [p for _g, _d, p, _r in by_time] == [
        datetime(2025, 12, 24),
        datetime(2025, 12, 17),
        datetime(2025, 12, 10),
    ]


def test_a_cell_s_grain_from_date_times_with_an_exclusive_end() -> None:
    assert period_grain(datetime(2025, 12, 31, 10), datetime(2025, 12, 31, 11)) == "hour"
    assert period_grain(datetime(2025, 12, 31, 10, 15), datetime(2025, 12, 31, 10, 30)) == "15min"
    assert period_grain(datetime(2025, 12, 31), datetime(2026, 1, 1)) == "day"
    assert period_grain(datetime(2025, 12, 1), datetime(2026, 1, 1)) == "month"
    assert period_grain(date(2025, 12, 31), date(2025, 12, 31)) == "day"  # dates: first and last day


def test_every_indicator_evaluates_at_the_hour_and_the_quarter_hour(sample_city: SampleCity) -> None:
    day = rows(run(sample_city, "evaluate", "--date", END.isoformat(), "--level", "city", "--format", "csv"))
    for grain in ("hour", "15min"):
        at = rows(
            run(
                sample_city,
                "evaluate",
                "--at",
                f"{END}T10:30",
                "--period",
                grain,
                "--level",
                "city",
                "--format",
                "csv",
            )
        )
        assert {r["indicator_id"] for r in at} == {r["indicator_id"] for r in day}


def test_early_warning_in_an_hourly_evaluation(sample_city: SampleCity) -> None:
    """A daily indicator forecasts in days, from its daily roll-up, exactly as in the day's evaluation;
    an hourly one in hours: Jiulongpo's end-point pressure falls 0.015 MPa an hour from 0.300 at 05:00
    to 0.225 at 10:00 (the sample's booster pump trip), so the line reaches red (below 0.14) after
    (0.225 − 0.14) / 0.015 = 5.7 hours: in the 6th, within the 6-hour horizon, on the same day."""
    daily = rows(run(sample_city, "alerts", "--early", "--date", END.isoformat(), "--format", "csv"))
    hourly = rows(
        run(sample_city, "alerts", "--early", "--at", f"{END}T10:30", "--period", "hour", "--format", "csv")
    )
    key = ("indicator_id", "area_id", "forecast_status", "forecast_periods", "forecast_date")
    in_hours = [r for r in hourly if r["period_start"].endswith("T10:00:00.000000")]
    in_days = [r for r in hourly if r not in in_hours]
    assert in_days and [tuple(r[k] for k in key) for r in in_days] == [
        tuple(r[k] for k in key) for r in daily
    ]
    assert [tuple(r[k] for k in key) for r in in_hours] == [
        ("water.supply.pressure", "500107", "red", "6", "2025-12-31"),
        ("water.supply.pressure_twa", "500107", "red", "6", "2025-12-31"),
    ]
    assert float(in_hours[0]["value"]) == pytest.approx(0.225)
    assert float(in_hours[0]["forecast_slope"]) == pytest.approx(-0.015)
    text = run(sample_city, "alerts", "--early", "--at", f"{END}T10:30", "--period", "hour")
    assert text.exit_code == 0 and "天后转" in text.stdout and "周后转" not in text.stdout
    assert "约6小时后转红" in text.stdout and "2025-12-31 10:30" in text.stdout
