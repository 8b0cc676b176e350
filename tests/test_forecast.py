"""Early warning through the real engine: days to breach, target-miss forecasts, seasonal anomaly scores.

Every expectation here is computed by hand from the series the test writes (a known slope, a known
spike); the engine is evaluated on a small warehouse, set-based, exactly as ``citykpi evaluate`` runs it.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import polars as pl
import pytest

from citykpi.catalogue.model import (
    BandSet,
    Catalogue,
    DomainSettings,
    Forecast,
    Incident,
    Override,
    Target,
    Thresholds,
)
from citykpi.engine import seasonal
from citykpi.engine.evaluate import evaluate
from citykpi.engine.holidays import DayType, day_type
from citykpi.engine.plan import compile_evaluation
from tests.engine_helpers import AS_OF, City, cell, indicator
from tests.plan_support import gathered

CUTS = BandSet(cuts={"blue": 110.0, "yellow": 115.0, "orange": 120.0, "red": 125.0})


def _districts(n: int) -> list[tuple[str, str, str | None, float]]:
    return [("C", "city", None, float(n)), *[(f"D{i:05d}", "district", "C", 1.0) for i in range(n)]]


def _load(
    city: City, indicator_id: str, series: dict[str, Sequence[float | None]], end: date = AS_OF
) -> None:
    """One batch of daily values per area, each series ending on ``end``."""
    rows = []
    for area, values in series.items():
        start = end - timedelta(days=len(values) - 1)
        rows.extend((area, start + timedelta(days=n), v) for n, v in enumerate(values) if v is not None)
    city.observe(indicator_id, rows)


# --- days to breach --------------------------------------------------------------------------------


def _true_crossing(level_now: float, slope: float, edge: float) -> int:
    """Periods until a line at ``level_now`` (today) with ``slope`` per period is past ``edge``."""
    x = (edge - level_now) / slope
    return max(1, math.floor(x) + 1)


@pytest.mark.parametrize("noise", [0.0, 0.6])
def test_a_known_slope_is_forecast_to_cross_within_one_period(tmp_path: Path, noise: float) -> None:
    """40 lines with known slopes, rising towards the cuts (lower is better) or falling away from them
    (higher is better): the forecast crossing is the true one ± 1 period, at the worst cut the line
    reaches within the 14-day horizon, and an area override's own cut is the one crossed."""
    rng = random.Random(7)
    n = 40
    city = City(tmp_path, _districts(n))
    crossings: dict[str, dict[str, int]] = {}  # area → colour → true periods to the crossing
    rising: dict[str, list[float]] = {}
    falling: dict[str, list[float]] = {}
    for i in range(n):
        area = f"D{i:05d}"
        slope = rng.uniform(0.8, 3.0)
        now = rng.uniform(96.0, 108.0)
        rising[area] = [now - slope * (27 - t) + rng.gauss(0, noise) for t in range(28)]
        falling[area] = [200 - v for v in rising[area]]  # the mirror image, for higher_is_better
        cuts = {"blue": 110.0, "yellow": 115.0, "orange": 120.0, "red": 125.0}
        if area == "D00003":  # an area override moves red up to 122
            cuts["red"] = 122.0
        crossings[area] = {c: _true_crossing(now, slope, edge) for c, edge in cuts.items()}
    _load(city, "t.up", rising)
    _load(city, "t.down", falling)
    up = indicator(
        "t.up",
        forecast=Forecast(),
        thresholds=Thresholds(
            bands=CUTS, overrides=(Override(replace(CUTS, cuts={**CUTS.cuts, "red": 122.0}), area="D00003"),)
        ),
    )
    mirrored = BandSet(cuts={c: 200 - v for c, v in CUTS.cuts.items()})
    down = indicator(
        "t.down",
        direction="higher_is_better",
        forecast=Forecast(),
        thresholds=Thresholds(
            bands=mirrored,
            overrides=(Override(replace(mirrored, cuts={**mirrored.cuts, "red": 78.0}), area="D00003"),),
        ),
    )
    sc = city.evaluate(up, down)
    horizon, order = 14, list(CUTS.cuts)
    forecasts = 0
    for ind in ("t.up", "t.down"):
        for area, true in crossings.items():
            got = cell(sc, ind, area)
            colour = got["forecast_status"]
            # the worst colour the line reaches within the horizon; a crossing one period either side of
            # the horizon's end may or may not count
            worse = order[order.index(colour) + 1 :] if colour else order
            assert all(true[c] >= horizon for c in worse), (ind, area, colour, true)
            if colour is None:
                continue
            forecasts += 1
            assert abs(got["forecast_periods"] - true[colour]) <= 1, (
                ind,
                area,
                got["forecast_periods"],
                true,
            )
            assert got["forecast_periods"] <= horizon and true[colour] <= horizon + 1
            assert got["forecast_date"] == AS_OF + timedelta(days=got["forecast_periods"])
            assert got["forecast_periods_low"] <= got["forecast_periods"] <= got["forecast_periods_high"]
            assert got["forecast_r2"] > 0.9
    assert forecasts >= 70  # nearly every line reaches a cut within two weeks
    assert cell(sc, "t.up", "D00003")["forecast_status"] == "red"  # its override's red (122) comes sooner


def test_band_direction_warns_only_when_moving_away_from_the_middle(tmp_path: Path) -> None:
    """Residual chlorine, green 0.3–2.0 (yellow 0.2–3, orange 0.1–4, red outside): falling 0.02 a day
    from 0.61 warns at the lower edges; falling from 2.6 back towards the middle does not."""
    city = City(tmp_path)
    _load(
        city,
        "w.cl",
        {
            "D1": [0.61 + 0.02 * (27 - t) for t in range(28)],
            "D2": [2.6 + 0.02 * (27 - t) for t in range(28)],
        },
    )
    bands = BandSet(ranges={"green": (0.3, 2.0), "yellow": (0.2, 3.0), "orange": (0.1, 4.0)})
    ind = indicator("w.cl", direction="band", thresholds=Thresholds(bands=bands), forecast=Forecast())

    def forecast(horizon: int, area: str = "D1") -> tuple[str | None, int | None]:
        got = cell(city.evaluate(replace(ind, forecast=Forecast(horizon=horizon))), "w.cl", area)
        return got["forecast_status"], got["forecast_periods"]

    # below 0.3 after 15.5 days (yellow on day 16), below 0.2 on day 21 (orange), below 0.1 on day 26 (red)
    assert forecast(14) == (None, None)
    assert forecast(16) == ("yellow", 16)
    assert forecast(22) == ("orange", 21)
    assert forecast(30) == ("red", 26)
    recovering = cell(city.evaluate(replace(ind, forecast=Forecast(horizon=30))), "w.cl", "D2")
    assert recovering["status"] == "yellow" and recovering["forecast_status"] is None
    assert recovering["forecast_slope"] == pytest.approx(-0.02)


def test_no_forecast_without_a_good_fit_a_bad_direction_or_the_setting(tmp_path: Path) -> None:
    city = City(tmp_path)
    rng = random.Random(3)
    _load(
        city,
        "t.a",
        {
            "C": [100 + 0.2 * t + rng.gauss(0, 6) for t in range(28)],  # a weak trend in loud noise: R² low
            "D1": [108 - 0.5 * t for t in range(28)],  # improving
            "D2": [100 + 0.8 * t for t in range(28)],  # 121.6 (orange) and rising: red above 125 in 5 days
        },
    )
    sc = city.evaluate(indicator("t.a", thresholds=Thresholds(bands=CUTS), forecast=Forecast()))
    noisy, better, worse = (cell(sc, "t.a", a) for a in ("C", "D1", "D2"))
    assert noisy["forecast_r2"] < 0.6 and noisy["forecast_status"] is None
    assert better["forecast_slope"] == pytest.approx(-0.5) and better["forecast_status"] is None
    assert (worse["status"], worse["forecast_status"], worse["forecast_periods"]) == ("orange", "red", 5)
    plain = city.evaluate(indicator("t.a", thresholds=Thresholds(bands=CUTS)))
    assert plain.cells.get_column("forecast_slope").null_count() == plain.cells.height
    # a domain's forecast: block turns it on for its indicators; an indicator's own block wins key by key
    bare = indicator("t.a", thresholds=Thresholds(bands=CUTS))
    on = Catalogue(indicators=(bare,), domains=(DomainSettings("test", Forecast(horizon=4)),))
    assert cell(evaluate(city.wh, on, as_of=AS_OF, persist=False), "t.a", "D2")["forecast_status"] is None
    longer = replace(on, indicators=(replace(bare, forecast=Forecast(horizon=5)),))
    assert (
        cell(evaluate(city.wh, longer, as_of=AS_OF, persist=False), "t.a", "D2")["forecast_status"] == "red"
    )
    off = replace(on, indicators=(replace(bare, forecast=Forecast(enabled=False)),))
    assert cell(evaluate(city.wh, off, as_of=AS_OF, persist=False), "t.a", "D2")["forecast_slope"] is None


# --- pure noise: forecasts on at most 1 % ------------------------------------------------------------

#: Series per noise shape (× 4 shapes = 10,000 cells in one evaluation) and days of history each.
NOISE_SERIES, NOISE_DAYS = 2_500, 40


def _gaussian(rng: random.Random) -> list[float]:
    return [100 + rng.gauss(0, 5) for _ in range(NOISE_DAYS)]


def _heavy_tailed(rng: random.Random) -> list[float]:
    """Student's t with 3 degrees of freedom (outliers several times the spread), scaled to sd 5."""
    out = []
    for _ in range(NOISE_DAYS):
        chi2 = sum(rng.gauss(0, 1) ** 2 for _ in range(3))
        out.append(100 + 5 * rng.gauss(0, 1) / math.sqrt(chi2 / 3) / math.sqrt(3))
    return out


def _autoregressive(phi: float) -> Callable[[random.Random], list[float]]:
    """AR(1) noise, stationary sd 5: each day keeps ``phi`` of the day before's deviation."""

    def series(rng: random.Random) -> list[float]:
        x, out = rng.gauss(0, 1), []
        for _ in range(NOISE_DAYS):
            x = phi * x + rng.gauss(0, math.sqrt(1 - phi * phi))
            out.append(100 + 5 * x)
        return out

    return series


def _weekly(rng: random.Random) -> list[float]:
    """A weekly rhythm (busy Mondays, quiet Sundays) with gaussian noise, no trend."""
    rhythm = (4.0, 2.0, 1.0, 0.0, -1.0, -3.0, -3.0)
    start = AS_OF - timedelta(days=NOISE_DAYS - 1)
    return [100 + rhythm[(start + timedelta(days=t)).weekday()] + rng.gauss(0, 3) for t in range(NOISE_DAYS)]


def _random_walk(rng: random.Random) -> list[float]:
    """A random walk with the same spread over four weeks as the others (sd 5 after 28 steps)."""
    x, out = 0.0, []
    for _ in range(NOISE_DAYS):
        x += rng.gauss(0, 5 / math.sqrt(28))
        out.append(100 + x)
    return out


NOISE_SHAPES: dict[str, Callable[[random.Random], list[float]]] = {
    "n.gaussian": _gaussian,
    "n.heavy_tailed": _heavy_tailed,
    "n.ar1_0_7": _autoregressive(0.7),
    "n.weekly": _weekly,
}
#: Series that drift without a level to return to: their 28-day trends are real while they last, and
#: a straight line cannot tell them from a lasting trend (docs/forecast.md gives the rates measured here).
DRIFTING_SHAPES: dict[str, Callable[[random.Random], list[float]]] = {
    "n.ar1_0_95": _autoregressive(0.95),
    "n.random_walk": _random_walk,
}
#: Share of each shape's series that get a forecast (deterministic: seeded); docs/forecast.md quotes them.
NOISE_RATES = {"n.gaussian": 0.0, "n.heavy_tailed": 0.0, "n.ar1_0_7": 0.0024, "n.weekly": 0.0}
DRIFTING_RATES = {"n.ar1_0_95": 0.0496, "n.random_walk": 0.0828}


@pytest.fixture(scope="module")
def noise_city(tmp_path_factory: pytest.TempPathFactory) -> City:
    city = City(tmp_path_factory.mktemp("noise"), _districts(NOISE_SERIES))
    for n, (name, shape) in enumerate({**NOISE_SHAPES, **DRIFTING_SHAPES}.items()):
        rng = random.Random(1000 + n)
        _load(city, name, {f"D{i:05d}": shape(rng) for i in range(NOISE_SERIES)})
    return city


def _noise_rates(city: City, names: Sequence[str]) -> dict[str, float]:
    inds = [
        indicator(n, levels=("district",), thresholds=Thresholds(bands=CUTS), forecast=Forecast())
        for n in names
    ]
    sc = city.evaluate(*inds)
    assert sc.cells.height == NOISE_SERIES * len(names)
    assert sc.cells.get_column("forecast_slope").null_count() == 0  # every series was fitted
    rates = sc.cells.group_by("indicator_id").agg(
        pl.col("forecast_status").is_not_null().mean().alias("rate")
    )
    return dict(rates.iter_rows())  # type: ignore[arg-type]


def test_pure_noise_raises_a_forecast_on_at_most_one_percent_of_ten_thousand_series(noise_city: City) -> None:
    """10,000 series of noise around 100 (cuts at 110/115/120/125, two to five spreads away): gaussian,
    heavy-tailed, autocorrelated and weekly; a forecast on at most 1 % of each shape's series."""
    rates = _noise_rates(noise_city, list(NOISE_SHAPES))
    assert set(rates) == set(NOISE_SHAPES) and len(NOISE_SHAPES) * NOISE_SERIES == 10_000
    assert all(rate <= 0.01 for rate in rates.values()), rates
    assert rates == pytest.approx(NOISE_RATES, abs=1e-9)
    _assert_documented(NOISE_RATES)


def test_drifting_series_raise_the_documented_share_of_forecasts(noise_city: City) -> None:
    """Random walks are not noise around a level, and a 28-day line cannot tell their drift from a trend:
    the share of them that gets a forecast is measured here and stated in docs/forecast.md."""
    rates = _noise_rates(noise_city, list(DRIFTING_SHAPES))
    assert rates == pytest.approx(DRIFTING_RATES, abs=1e-9)
    _assert_documented(DRIFTING_RATES)


def _assert_documented(rates: dict[str, float]) -> None:
    """docs/forecast.md states each measured share (so that the docs cannot drift from the engine)."""
    doc = (Path(__file__).resolve().parents[1] / "docs" / "forecast.md").read_text(encoding="utf-8")
    for name, rate in rates.items():
        line = f"| `{name.removeprefix('n.')}` | {rate * 100:.2f} % |"
        assert line in doc, f"docs/forecast.md should say {line}"


# --- seasonal baselines and China's calendar ---------------------------------------------------------

#: Relative level of each kind of day: busy Mondays, quiet Sundays, quieter holidays; an adjusted
#: working day (调休) is worked like a Wednesday.
RHYTHM = {1: 1.25, 2: 1.10, 3: 1.05, 4: 1.00, 5: 0.95, 6: 0.70, 7: 0.60}
HOLIDAY_LEVEL, ADJUSTED_LEVEL = 0.50, 1.05
ANOMALY = Thresholds(
    basis="anomaly",
    bands=BandSet(ranges={"green": (-6.0, 6.0), "yellow": (-8.0, 8.0), "orange": (-10.0, 10.0)}),
    baseline=12,
)


def _calendar_series(start: date, end: date, rng: random.Random, spikes: dict[date, float]) -> list[float]:
    """A daily volume that follows the weekly rhythm and China's calendar, 3 % noise, spikes × factor."""
    out = []
    d = start
    while d <= end:
        kind = day_type(d)
        level = {
            DayType.HOLIDAY: HOLIDAY_LEVEL,
            DayType.ADJUSTED: ADJUSTED_LEVEL,
        }.get(kind, RHYTHM[d.isoweekday()])
        out.append(1000 * level * (1 + rng.gauss(0, 0.03)) * spikes.get(d, 1.0))
        d += timedelta(days=1)
    return out


def _flagged_days(city: City, ind_id: str, days: Sequence[date], area: str = "C") -> list[date]:
    ind = indicator(ind_id, direction="band", levels=("city",), thresholds=ANOMALY)
    flagged = []
    for d in days:
        got = cell(city.evaluate(ind, as_of=d), ind_id, area)
        assert got["basis_value"] is not None, (d, got["explanation"])
        if got["status"] != "green":
            flagged.append(d)
    return flagged


SPIKE = date(2024, 10, 9)  # the Wednesday after the National Day week
AROUND_NATIONAL_DAY = [date(2024, 9, 20) + timedelta(days=n) for n in range(31)]


@pytest.fixture(scope="module")
def seasonal_city(tmp_path_factory: pytest.TempPathFactory) -> City:
    city = City(tmp_path_factory.mktemp("seasonal"))
    start, end = date(2024, 1, 1), date(2024, 10, 31)
    city.daily("h.volume", "C", _calendar_series(start, end, random.Random(5), {SPIKE: 1.5}), end=end)
    return city


def test_a_weekly_series_is_flagged_exactly_on_its_spike(seasonal_city: City) -> None:
    """31 days around National Day 2024 (holidays 1–7 October; 29 September and 12 October are worked
    Sundays and Saturdays, 调休): Mondays are busy, weekends and holidays quiet, and only the spike
    stands out against its comparable days."""
    assert day_type(date(2024, 10, 3)) is DayType.HOLIDAY
    assert (
        day_type(date(2024, 9, 29)) is DayType.ADJUSTED and day_type(date(2024, 10, 12)) is DayType.ADJUSTED
    )
    assert _flagged_days(seasonal_city, "h.volume", AROUND_NATIONAL_DAY) == [SPIKE]


def test_without_the_holiday_calendar_the_holidays_would_be_flagged(
    seasonal_city: City, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The counterfactual: compared with plain weekdays, the quiet holidays and the worked weekend days
    look like anomalies. This is what the calendar prevents."""
    monkeypatch.setattr(seasonal, "day_class", lambda d: f"day-{d.isoweekday()}")
    flagged = _flagged_days(
        seasonal_city, "h.volume", [date(2024, 9, 29), date(2024, 10, 2), date(2024, 10, 12)]
    )
    assert flagged == [date(2024, 9, 29), date(2024, 10, 2), date(2024, 10, 12)]


def test_declared_incidents_are_left_out_of_the_baseline(tmp_path: Path) -> None:
    """Two weeks of flooding lifted every day; declared as an incident, they no longer lift the baseline
    of the weeks after (earlier Mondays stand in), so a new surge is seen against the normal level."""
    city = City(tmp_path)
    end = date(2024, 7, 29)  # a Monday; its four comparable Mondays are 22, 15, 8 and 1 July
    flood = {date(2024, 7, 8) + timedelta(days=n): 1.6 for n in range(14)}  # 8–21 July at 1.6×
    series = _calendar_series(date(2024, 3, 1), end, random.Random(9), {**flood, end: 1.4})
    city.daily("h.volume", "C", series, end=end)
    ind = indicator("h.volume", direction="band", levels=("city",), thresholds=replace(ANOMALY, baseline=4))
    plain = cell(city.evaluate(ind, as_of=end), "h.volume", "C")
    declared = Catalogue(
        indicators=(ind,),
        incidents=(Incident("flood_2024_07", date(2024, 7, 8), date(2024, 7, 21), indicators=("h.*",)),),
    )
    excluded = cell(evaluate(city.wh, declared, as_of=end, persist=False), "h.volume", "C")
    # with the flooded Mondays the median is 1.6k and the spread wide: 1.75k (1.4 × 1.25k) looks normal
    assert plain["status"] == "green", plain["explanation"]
    assert excluded["status"] != "green" and excluded["basis_value"] > 6, excluded["explanation"]


def test_periods_without_enough_comparable_days_are_not_applicable(tmp_path: Path) -> None:
    city = City(tmp_path)
    city.daily("h.volume", "C", [100.0] * 10 + [140.0])
    ind = indicator("h.volume", levels=("city",), thresholds=ANOMALY)
    got = cell(city.evaluate(ind), "h.volume", "C")
    assert got["status"] == "not_applicable" and got["streak"] is None
    assert "comparable earlier periods" in got["explanation"]


def test_seasonal_baselines_are_read_only_as_far_back_as_needed() -> None:
    """Indicators that neither forecast nor have a seasonal basis read what they read before; the
    sample's hotline (12 comparable days) reads back to them (its incident's area is not in this plan)."""
    frame = compile_evaluation(gathered()).frames["ck_ind"]
    quiet = frame.filter((pl.col("fc_window") == 0) & (pl.col("bl_n") == 0))
    assert quiet.height > 100 and (quiet["hist"] == quiet["keep"]).all()
    hotline = frame.filter(pl.col("indicator_id") == "case.hotline.cases").row(0, named=True)
    assert (hotline["bl_n"], hotline["bl_k"], hotline["keep"]) == (12, 1, 8)
    # the farthest: 24 December 2025, whose 12th working Wednesday back skips 1 October (National Day)
    assert seasonal.day_peers(date(2025, 12, 24), 12)[-1] == date(2025, 9, 17)
    assert hotline["hist"] == (date(2025, 12, 31) - date(2025, 9, 17)).days


# --- target-miss forecasts ---------------------------------------------------------------------------


def _months(start: date, n: int) -> list[date]:
    return [
        date(start.year + (start.month - 1 + m) // 12, (start.month - 1 + m) % 12 + 1, 1) for m in range(n)
    ]


@pytest.mark.parametrize(
    ("target", "verdict"),
    [(72.0, "will_meet"), (73.5, "will_meet"), (80.0, "will_miss"), (65.0, "will_meet")],
)
def test_a_dated_target_is_projected_to_its_due_date(tmp_path: Path, target: float, verdict: str) -> None:
    """A monthly KPI rising 0.5 a month, 61.5 in December 2025: by December 2027 (24 months on) the
    line reaches 73.5; a target of 80 will be missed, one of 72 met. The pace needed to land on the
    target is its distance over the 24 months left."""
    city = City(tmp_path)
    months = _months(date(2024, 1, 1), 24)
    city.observe("k.share", [("C", m, 50 + 0.5 * n) for n, m in enumerate(months)], freq_class=1)
    as_of = date(2025, 12, 31)
    ind = indicator(
        "k.share",
        frequency="monthly",
        direction="higher_is_better",
        levels=("city",),
        thresholds=Thresholds(bands=BandSet(cuts={"yellow": 40.0, "red": 30.0})),
        target=Target(value=target, due=date(2027, 12, 31), baseline=50.0, baseline_date=date(2024, 1, 1)),
        forecast=Forecast(),
    )
    got = cell(city.evaluate(ind, as_of=as_of), "k.share", "C")
    assert got["target_projected"] == pytest.approx(73.5)
    assert got["target_forecast"] == verdict
    assert got["target_pace"] == pytest.approx(0.5)
    assert got["target_pace_needed"] == pytest.approx((target - 61.5) / (730 / (365.25 / 12)))


def test_a_noisy_target_near_the_line_is_at_risk(tmp_path: Path) -> None:
    city = City(tmp_path)
    rng = random.Random(2)
    months = _months(date(2024, 1, 1), 24)
    city.observe(
        "k.share", [("C", m, 50 + 0.5 * n + rng.gauss(0, 1.0)) for n, m in enumerate(months)], freq_class=1
    )
    ind = indicator(
        "k.share",
        frequency="monthly",
        direction="higher_is_better",
        levels=("city",),
        thresholds=Thresholds(bands=BandSet(cuts={"yellow": 40.0, "red": 30.0})),
        target=Target(value=73.5, due=date(2027, 12, 31)),
        forecast=Forecast(),
    )
    got = cell(city.evaluate(ind, as_of=date(2025, 12, 31)), "k.share", "C")
    assert got["target_forecast"] == "at_risk"
    assert abs(got["target_projected"] - 73.5) < 6


@pytest.mark.parametrize(("target", "verdict"), [(3_900.0, "will_meet"), (4_500.0, "will_miss")])
def test_a_cumulative_target_adds_the_months_left_to_the_sum_so_far(
    tmp_path: Path, target: float, verdict: str
) -> None:
    """Revenue of 200 + 5 a month since January 2024: January–June 2026 sum to 1,995 (320 … 345); the
    line adds 350 … 375 for July–December: 4,170 by the end of 2026."""
    city = City(tmp_path)
    months = _months(date(2024, 1, 1), 30)
    city.observe("k.revenue", [("C", m, 200.0 + 5 * n) for n, m in enumerate(months)], freq_class=1)
    ind = indicator(
        "k.revenue",
        frequency="monthly",
        direction="higher_is_better",
        levels=("city",),
        rollup=replace(indicator("x.y").rollup, time="sum"),
        thresholds=Thresholds(bands=BandSet(cuts={"yellow": 100.0})),
        target=Target(
            value=target, due=date(2026, 12, 31), baseline_date=date(2026, 1, 1), method="cumulative"
        ),
        forecast=Forecast(),
    )
    got = cell(city.evaluate(ind, as_of=date(2026, 6, 30)), "k.revenue", "C")
    assert got["target_projected"] == pytest.approx(4_170.0)
    assert got["target_forecast"] == verdict
    assert got["target_pace"] == pytest.approx(345.0)  # the line's current month
    assert got["target_pace_needed"] == pytest.approx((target - 1_995.0) / (184 / (365.25 / 12)))


def test_a_target_already_due_has_no_forecast(tmp_path: Path) -> None:
    city = City(tmp_path)
    months = _months(date(2024, 1, 1), 24)
    city.observe("k.share", [("C", m, 50 + 0.5 * n) for n, m in enumerate(months)], freq_class=1)
    ind = indicator(
        "k.share",
        frequency="monthly",
        direction="higher_is_better",
        levels=("city",),
        target=Target(value=70.0, due=date(2025, 12, 31)),
        forecast=Forecast(),
    )
    got = cell(city.evaluate(ind, as_of=date(2025, 12, 31)), "k.share", "C")
    assert got["target_forecast"] is None and got["forecast_slope"] == pytest.approx(0.5)
