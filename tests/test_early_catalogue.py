"""The early-warning parts of the catalogue: ``forecast:``, ``domains:``, ``incidents:``, basis ``anomaly``;
and the pure pieces behind them (settings, read windows, China's calendar, comparable days)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest

from citykpi.catalogue import check_catalogue
from citykpi.catalogue.jsonschema import catalogue_schema
from citykpi.catalogue.model import DEFAULT_MIN_R2, Forecast
from citykpi.engine import holidays, seasonal
from citykpi.engine.early import forecast_settings, min_points, periods_between
from citykpi.engine.holidays import DayType, day_type
from citykpi.engine.plan import compile_evaluation
from tests.engine_helpers import indicator
from tests.plan_support import gathered

HEAD = """schema_version: 1
indicators:
  - id: a.b
    name: {zh: 甲, en: A}
    kind: vital_sign
    domain: water
    unit: count
    description: x
    levels: [city]
    frequency: daily
    direction: lower_is_better
    thresholds: {yellow: 10, red: 20}
"""


def _check(tmp_path: Path, text: str) -> list[tuple[str, str]]:
    (tmp_path / "c.yaml").write_text(text, encoding="utf-8")
    result = check_catalogue(tmp_path)
    return [(d.rule, d.message) for d in result.diagnostics]


def _load(tmp_path: Path, text: str):  # type: ignore[no-untyped-def]
    (tmp_path / "c.yaml").write_text(text, encoding="utf-8")
    result = check_catalogue(tmp_path)
    assert result.catalogue is not None, result.diagnostics
    return result.catalogue


def test_forecast_blocks_are_read(tmp_path: Path) -> None:
    cat = _load(
        tmp_path,
        HEAD
        + """    forecast: {window: 14, horizon: 5, min_r2: 0.5}
  - id: a.c
    name: {zh: 乙, en: C}
    kind: kpi
    domain: water
    unit: count
    description: x
    levels: [city]
    frequency: monthly
    direction: lower_is_better
    forecast: false
domains:
  - {id: water, forecast: true, description: early warning for every water indicator}
incidents:
  - {id: flood_2025_07, start: 2025-07-10, end: 2025-07-12, indicators: ["a.*"], areas: ["500105"]}
""",
    )
    a, c = cat.by_id["a.b"], cat.by_id["a.c"]
    assert a.forecast == Forecast(enabled=True, window=14, horizon=5, min_r2=0.5, loc=a.forecast.loc)
    assert c.forecast is not None and not c.forecast.enabled
    assert cat.domains[0].id == "water" and cat.domains[0].forecast is not None
    assert cat.incidents[0].start == date(2025, 7, 10) and cat.incidents[0].areas == ("500105",)


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ("forecast: {window: 2}", "window of forecast of indicator a.b must be between 3 and 366"),
        ("forecast: {horizon: 0}", "horizon of forecast of indicator a.b must be between 1 and 366"),
        ("forecast: {min_r2: 1.5}", "min_r2 of forecast of indicator a.b must be between 0 and 1"),
        ("forecast: {windw: 7}", "unknown key 'windw' in forecast of indicator a.b"),
        ("forecast: soon", "forecast of indicator a.b must be a mapping"),
    ],
)
def test_bad_forecast_settings_are_reported(tmp_path: Path, block: str, message: str) -> None:
    diags = _check(tmp_path, HEAD + f"    {block}\n")
    assert any(message in m for _, m in diags), diags


def test_anomaly_baseline_is_checked(tmp_path: Path) -> None:
    anomaly = HEAD.replace(
        "thresholds: {yellow: 10, red: 20}", "thresholds: {basis: anomaly, yellow: 4, red: 6, baseline: 12}"
    )
    cat = _load(tmp_path, anomaly)
    assert cat.by_id["a.b"].thresholds.baseline == 12
    diags = _check(tmp_path, anomaly.replace("baseline: 12", "baseline: 2"))
    assert any("baseline of indicator a.b must be between 3 and 52" in m for _, m in diags)
    diags = _check(tmp_path, HEAD.replace("red: 20}", "red: 20, baseline: 8}"))
    assert any("baseline of indicator a.b only applies to basis anomaly" in m for _, m in diags)


def test_domains_and_incidents_that_match_nothing_are_warned_about(tmp_path: Path) -> None:
    diags = _check(
        tmp_path,
        HEAD
        + """domains:
  - {id: watr, forecast: true}
  - {id: water, forecast: true}
  - {id: water, forecast: false}
incidents:
  - {id: x, start: 2025-01-02, end: 2025-01-01}
  - {id: y, start: 2025-01-01, end: 2025-01-02, indicators: ["b.*"], domains: [air]}
""",
    )
    rules = [r for r, _ in diags]
    assert ("CK109", "settings for domain 'watr', which no indicator is in") in diags
    assert any(r == "CK020" and "duplicate domain id 'water'" in m for r, m in diags)
    assert any(
        r == "CK013" and "incident x ends (2025-01-01) before it starts (2025-01-02)" in m for r, m in diags
    )
    assert rules.count("CK110") == 2


def test_the_json_schema_knows_the_new_keys() -> None:
    schema = catalogue_schema()
    text = json.dumps(schema)
    assert {"domains", "incidents"} <= set(schema["properties"])
    assert "forecast" in schema["$defs"]["indicator"]["properties"]
    assert '"baseline"' in text and '"min_r2"' in text


# --- settings and read windows ----------------------------------------------------------------------


def test_forecast_settings_come_from_the_indicator_then_its_domain_then_the_grain() -> None:
    daily = indicator("a.b", domain="water")
    assert forecast_settings(daily, {}, "day") is None
    assert forecast_settings(daily, {"water": Forecast()}, "day") == (28, 14, DEFAULT_MIN_R2, 4)
    own = replace(daily, forecast=Forecast(window=7))
    domain = {"water": Forecast(horizon=3, min_r2=0.5, baseline=8)}
    assert forecast_settings(own, domain, "day") == (7, 3, 0.5, 8)
    # a declared window counts days: evaluated by month, the month defaults apply
    assert forecast_settings(own, {}, "month") == (12, 6, DEFAULT_MIN_R2, 4)
    assert (
        forecast_settings(replace(daily, forecast=Forecast(enabled=False)), {"water": Forecast()}, "day")
        is None
    )
    assert min_points(28) == 14 and min_points(4) == 3
    assert periods_between("month", date(2024, 11, 1), date(2025, 2, 1)) == 3
    assert periods_between("week", date(2025, 1, 6), date(2025, 2, 3)) == 4


def test_only_indicators_that_forecast_read_further_back() -> None:
    g = gathered()
    plain = compile_evaluation(g).frames["ck_ind"]
    pm25 = next(i for i in g.catalogue.indicators if i.id == "env.air.pm25")
    fc = replace(
        g.catalogue,
        indicators=tuple(replace(i, forecast=Forecast()) if i is pm25 else i for i in g.catalogue.indicators),
    )
    extended = compile_evaluation(replace(g, catalogue=fc, compiled=fc)).frames["ck_ind"]
    before = dict(zip(plain["indicator_id"], plain["win_lo"], strict=True))
    after = dict(zip(extended["indicator_id"], extended["win_lo"], strict=True))
    changed = {i for i in before if before[i] != after[i]}
    assert changed == {"env.air.pm25"}
    # the anomaly score beside the trend reads four comparable days back from the earliest day that is not
    # yet stale (29 December, a Monday: 1 December), the trend 28 days
    assert after["env.air.pm25"] == date(2025, 12, 1)
    row = extended.filter(extended["indicator_id"] == "env.air.pm25").row(0, named=True)
    assert (row["fc_window"], row["fc_horizon"], row["hist"], row["keep"]) == (28, 14, 30, 8)
    assert (row["bl_n"], row["bl_k"]) == (4, 1)


# --- China's calendar ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "kind"),
    [
        (date(2025, 1, 26), DayType.ADJUSTED),  # a Sunday worked before the Spring Festival
        (date(2025, 1, 28), DayType.HOLIDAY),  # New Year's Eve
        (date(2025, 2, 1), DayType.HOLIDAY),  # a Saturday inside the holiday
        (date(2025, 2, 4), DayType.HOLIDAY),
        (date(2025, 2, 5), DayType.WORKDAY),
        (date(2025, 2, 8), DayType.ADJUSTED),  # a Saturday worked after it
        (date(2025, 2, 9), DayType.WEEKEND),
        (date(2025, 10, 1), DayType.HOLIDAY),
    ],
)
def test_day_types_follow_the_state_council_calendar(day: date, kind: DayType) -> None:
    assert day_type(day) is kind


def test_the_installed_calendar_covers_the_years_the_project_evaluates() -> None:
    """The sample city (2024–2025), the real Chongqing data (2022–2025) and the benchmark (2026) need
    holidays; this fails when an older calendar is installed: update chinesecalendar (docs/forecast.md)."""
    first, last = holidays.coverage()
    assert first <= 2022 and last >= 2026, f"{holidays.source()} covers {first}–{last}"


def test_a_year_the_calendar_does_not_cover_is_a_warning_naming_the_update(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(holidays, "coverage", lambda: (2004, 2024))
    assert day_type(date(2025, 1, 28)) is DayType.WORKDAY  # the plain week: a Tuesday
    assert holidays.uncovered_years([date(2024, 12, 31), date(2025, 1, 1), date(2026, 1, 1)]) == [2025, 2026]
    text = holidays.coverage_warning([2025], "seasonal baselines")
    assert "covers 2004–2024, not 2025" in text and "pip install --upgrade chinesecalendar" in text


def test_comparable_days_respect_weekdays_holidays_and_adjusted_working_days() -> None:
    # a working Monday: earlier working Mondays (5 February 2024 … skipping none here)
    assert seasonal.day_peers(date(2025, 2, 10), 3) == [
        date(2025, 1, 27),
        date(2025, 1, 20),
        date(2025, 1, 13),
    ]
    # a holiday: the holidays before it, whatever their weekday
    assert seasonal.day_peers(date(2025, 1, 30), 3) == [
        date(2025, 1, 29),
        date(2025, 1, 28),
        date(2025, 1, 1),
    ]
    # an adjusted working Saturday: the working days before it
    assert seasonal.day_peers(date(2025, 2, 8), 3) == [date(2025, 2, 7), date(2025, 2, 6), date(2025, 2, 5)]
    # a rest Sunday skips Sundays inside a holiday (2 February 2025) and worked ones (26 January)
    assert seasonal.day_peers(date(2025, 2, 9), 2) == [date(2025, 1, 19), date(2025, 1, 12)]
    rows = seasonal.peer_rows("month", [date(2025, 3, 1)], 2)
    assert rows == [
        ("month", date(2025, 3, 1), date(2025, 2, 1), 1),
        ("month", date(2025, 3, 1), date(2025, 1, 1), 2),
    ]


def test_check_against_shows_changed_forecasts_domains_and_incidents(tmp_path: Path) -> None:
    from citykpi.catalogue.diff import diff_catalogues

    before = _load(tmp_path, HEAD + "    forecast: {window: 14}\ndomains:\n  - {id: water, forecast: true}\n")
    (tmp_path / "c.yaml").unlink()
    after = _load(
        tmp_path,
        HEAD
        + "    forecast: {window: 7}\ndomains:\n  - {id: water, forecast: {horizon: 3}}\n"
        + "incidents:\n  - {id: flood, start: 2025-07-01, end: 2025-07-02}\n",
    )
    changes = {(c.entity, c.id, c.change): c for c in diff_catalogues(before, after).changes}
    fields = {f.field: (f.old, f.new) for f in changes[("indicator", "a.b", "changed")].fields}
    assert fields["forecast.window"] == (14, 7)
    domain = {f.field: (f.old, f.new) for f in changes[("domain", "water", "changed")].fields}
    assert domain["forecast.horizon"] == (None, 3)
    assert ("incident", "flood", "added") in changes
