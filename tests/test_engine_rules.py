"""Hand-computed expectations for every rule kind of the engine."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from citykpi.catalogue.model import (
    BandSet,
    Component,
    CompositeIndex,
    Condition,
    Formula,
    FromSeries,
    Measure,
    Normalisation,
    Observed,
    Override,
    Ratio,
    Rollup,
    ScaleStep,
    SourceTable,
    Target,
    Text,
    Thresholds,
)
from citykpi.render.format import sort_history
from citykpi.warehouse import Warehouse
from tests.engine_helpers import AS_OF, City, cell, indicator

CUTS = BandSet(cuts={"blue": 10.0, "yellow": 20.0, "orange": 30.0, "red": 40.0})


@pytest.fixture
def city(tmp_path: Path) -> City:
    c = City(tmp_path)
    yield c
    c.wh.close()


# --- thresholds -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "inclusive", "status"),
    [
        (5, False, "green"),
        (10, False, "green"),
        (10, True, "blue"),
        (25, False, "yellow"),
        (40, False, "orange"),
        (40, True, "red"),
        (41, False, "red"),
    ],
)
def test_lower_is_better_cut_edges(city: City, value: float, inclusive: bool, status: str) -> None:
    ind = indicator("t.low", thresholds=Thresholds(bands=replace(CUTS, inclusive=inclusive)))
    city.daily("t.low", "C", [value])
    assert cell(city.evaluate(ind), "t.low", "C")["status"] == status


def test_higher_is_better_and_explanation(city: City) -> None:
    bands = BandSet(cuts={"blue": 95.0, "yellow": 90.0, "red": 80.0})
    ind = indicator("t.high", direction="higher_is_better", unit="%", thresholds=Thresholds(bands=bands))
    city.daily("t.high", "C", [85.0])
    city.daily("t.high", "D1", [79.5])
    sc = city.evaluate(ind)
    assert cell(sc, "t.high", "C")["status"] == "yellow"
    red = cell(sc, "t.high", "D1")
    assert red["status"] == "red"
    assert red["explanation"] == "red: 79.5 % < 80 (red below 80)"


def test_band_direction(city: City) -> None:
    bands = BandSet(ranges={"green": (0.3, 2.0), "yellow": (0.2, 4.0)})
    ind = indicator("t.cl", direction="band", unit="mg/L", thresholds=Thresholds(bands=bands))
    city.daily("t.cl", "C", [1.0])
    city.daily("t.cl", "D1", [3.0])
    city.daily("t.cl", "D2", [0.1])
    sc = city.evaluate(ind)
    assert [cell(sc, "t.cl", a)["status"] for a in ("C", "D1", "D2")] == ["green", "yellow", "red"]
    assert "outside the green range 0.3–2" in cell(sc, "t.cl", "D2")["explanation"]


def test_percent_of_target_and_limit(city: City) -> None:
    tgt = indicator(
        "t.tgt",
        direction="higher_is_better",
        thresholds=Thresholds(basis="percent_of_target", bands=BandSet(cuts={"yellow": 90.0, "red": 70.0})),
        target=Target(value=200.0, due=date(2025, 12, 31)),
    )
    lim = indicator(
        "t.lim",
        thresholds=Thresholds(
            basis="percent_of_limit", limit=50.0, bands=BandSet(cuts={"orange": 80.0, "red": 100.0})
        ),
    )
    city.daily("t.tgt", "C", [170.0])  # 85 % of target → yellow
    city.daily("t.lim", "C", [45.0])  # 90 % of limit → orange
    sc = city.evaluate(tgt, lim)
    assert cell(sc, "t.tgt", "C")["basis_value"] == pytest.approx(85.0)
    assert cell(sc, "t.tgt", "C")["status"] == "yellow"
    assert cell(sc, "t.lim", "C")["basis_value"] == pytest.approx(90.0)
    assert cell(sc, "t.lim", "C")["status"] == "orange"


def test_change_bases_percent_and_points(city: City) -> None:
    prev = indicator(
        "t.chg",
        thresholds=Thresholds(basis="change_previous", bands=BandSet(cuts={"yellow": 10.0, "red": 50.0})),
    )
    ly = indicator(
        "t.yoy",
        unit="%",
        thresholds=Thresholds(basis="change_last_year", bands=BandSet(cuts={"yellow": 1.0, "red": 5.0})),
    )
    city.daily("t.chg", "C", [100.0, 120.0])  # +20 % → yellow
    city.daily("t.yoy", "C", [50.0], end=AS_OF - timedelta(days=365))
    city.daily("t.yoy", "C", [53.0])  # +3 points → yellow
    sc = city.evaluate(prev, ly)
    c1 = cell(sc, "t.chg", "C")
    assert c1["change_previous"] == pytest.approx(20.0) and c1["status"] == "yellow"
    c2 = cell(sc, "t.yoy", "C")
    assert c2["change_unit"] == "points"
    assert c2["last_year_value"] == 50.0 and c2["change_last_year"] == pytest.approx(3.0)
    assert c2["status"] == "yellow"


def test_change_basis_without_previous_is_not_applicable(city: City) -> None:
    ind = indicator("t.chg", thresholds=Thresholds(basis="change_previous", bands=CUTS))
    city.daily("t.chg", "C", [100.0])
    c = cell(city.evaluate(ind), "t.chg", "C")
    assert c["status"] == "not_applicable"
    assert c["value"] == 100.0


def test_persistence_needs_n_periods_running(city: City) -> None:
    ind = indicator("t.p", thresholds=Thresholds(bands=CUTS, for_periods=3))
    city.daily("t.p", "C", [5.0, 45.0, 45.0])  # red only two days → not persisted
    city.daily("t.p", "D1", [45.0, 45.0, 35.0])  # red, red, orange → orange persisted
    city.daily("t.p", "D2", [45.0, 46.0, 47.0])  # red three days
    sc = city.evaluate(ind)
    assert cell(sc, "t.p", "C")["status"] == "green"
    assert cell(sc, "t.p", "D1")["status"] == "orange"
    d2 = cell(sc, "t.p", "D2")
    assert d2["status"] == "red"
    assert d2["explanation"].endswith("for 3 days running")


def test_streak_counts_periods_in_current_colour(city: City) -> None:
    ind = indicator("t.s", thresholds=Thresholds(bands=CUTS))
    city.daily("t.s", "C", [5.0, 35.0, 31.0, 33.0])
    city.daily("t.s", "D1", [35.0, None, 31.0, 33.0])  # a missing day breaks the streak
    sc = city.evaluate(ind)
    assert cell(sc, "t.s", "C")["streak"] == 3
    assert cell(sc, "t.s", "D1")["streak"] == 2


@pytest.mark.parametrize("days_back", [40, 120], ids=["bit-mask count", "ordered-list count"])
def test_streak_is_the_same_however_deep_the_history(city: City, days_back: int) -> None:
    """Up to 61 periods of history the streak is counted with bit masks, deeper with ordered lists."""
    from citykpi.engine.compiler import MASK_PERIODS, _streak_parts

    uses_masks = "bit_or" in _streak_parts(days_back)[0]
    assert uses_masks == (days_back < MASK_PERIODS)
    ind = indicator("t.s", thresholds=Thresholds(bands=CUTS))
    city.daily("t.s", "C", [5.0] * 10 + [35.0] * 25)  # orange for the last 25 days
    city.daily("t.s", "D1", [35.0] * 12 + [None] + [35.0] * 22)  # the gap ends the run at 22
    city.daily("t.s", "D2", [15.0] * 35)  # blue throughout: as long as the kept history allows
    sc = city.evaluate(ind, history_from=AS_OF - timedelta(days=days_back))
    assert cell(sc, "t.s", "C")["streak"] == 25
    assert cell(sc, "t.s", "D1")["streak"] == 22
    assert cell(sc, "t.s", "D2")["streak"] == 35


def test_stale_and_no_data(city: City) -> None:
    ind = indicator("t.st", max_staleness=timedelta(days=2))
    city.daily("t.st", "C", [12.0], end=AS_OF - timedelta(days=3))
    sc = city.evaluate(ind)
    c = cell(sc, "t.st", "C")
    assert c["status"] == "stale" and c["value"] == 12.0
    assert c["explanation"].startswith("stale: latest value 12 index from 2025-06-27")
    assert cell(sc, "t.st", "D1")["status"] == "no_data"


def test_future_observations_are_never_read(city: City) -> None:
    ind = indicator("t.f")
    city.daily("t.f", "C", [5.0, 45.0], end=AS_OF + timedelta(days=1))
    c = cell(city.evaluate(ind), "t.f", "C")
    assert c["value"] == 5.0 and c["status"] == "green"


def test_overrides_area_beats_level(city: City) -> None:
    ind = indicator(
        "t.o",
        thresholds=Thresholds(
            bands=CUTS,
            overrides=(
                Override(level="district", bands=BandSet(cuts={"red": 100.0})),
                Override(area="D2", bands=BandSet(cuts={"red": 5.0})),
            ),
        ),
    )
    for a in ("C", "D1", "D2"):
        city.daily("t.o", a, [50.0])
    sc = city.evaluate(ind)
    assert [cell(sc, "t.o", a)["status"] for a in ("C", "D1", "D2")] == ["red", "green", "red"]


def test_own_scale_label(city: City) -> None:
    steps = (
        ScaleStep(Text("优", "Excellent"), "green", 50.0),
        ScaleStep(Text("良", "Good"), "blue", 100.0),
        ScaleStep(Text("轻度污染", "Light"), "yellow", None),
    )
    ind = indicator(
        "t.aqi", scale=steps, thresholds=Thresholds(bands=BandSet(cuts={"blue": 50.0, "yellow": 100.0}))
    )
    city.daily("t.aqi", "C", [75.0])
    city.daily("t.aqi", "D1", [120.0])
    sc = city.evaluate(ind)
    assert cell(sc, "t.aqi", "C")["band_label"] == "良"
    assert cell(sc, "t.aqi", "D1")["band_label"] == "轻度污染"


# --- time roll-ups --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rollup", "expected"),
    [("sum", 60.0), ("mean", 15.0), ("last", 25.0), ("max", 25.0), ("min", 5.0), ("count", 4.0)],
)
def test_time_rollups_over_a_month(city: City, rollup: str, expected: float) -> None:
    ind = indicator("t.m", rollup=Rollup(time=rollup, area="none"))
    city.observe(
        "t.m", [("C", date(2025, 6, d), v) for d, v in ((3, 5.0), (10, 20.0), (17, 10.0), (24, 25.0))]
    )
    city.observe("t.m", [("C", date(2025, 5, 31), 1000.0)])  # previous month: not in June's value
    c = cell(city.evaluate(ind, grain="month"), "t.m", "C")
    assert c["period_start"] == date(2025, 6, 1) and c["period_end"] == date(2025, 6, 30)
    assert c["value"] == pytest.approx(expected)


def test_count_where_from_series_good_air_days(city: City) -> None:
    aqi = indicator("t.aqi")
    good = indicator(
        "t.good",
        frequency="yearly",
        direction="higher_is_better",
        unit="days",
        value=FromSeries("t.aqi"),
        rollup=Rollup(time="count_where", where=Condition("<=", 100.0), area="recompute"),
        thresholds=Thresholds(bands=BandSet(cuts={"red": 100.0})),
    )
    values = [50.0, 150.0, 100.0, 101.0, 99.0] * 10  # 30 days ≤ 100
    city.daily("t.aqi", "C", values)
    city.daily("t.aqi", "C", [10.0] * 5, end=date(2024, 12, 31))  # last year: not counted in 2025
    sc = city.evaluate(aqi, good)
    c = cell(sc, "t.good", "C")
    assert c["value"] == 30.0 and c["period_start"] == date(2025, 1, 1)
    assert c["last_year_value"] == 5.0
    # recompute: a district without its own AQI series gets no value (never a roll-up of children)
    assert cell(sc, "t.good", "D1")["status"] == "no_data"


def test_monthly_indicator_at_day_grain_uses_latest_month(city: City) -> None:
    ind = indicator("t.kpi", frequency="monthly", rollup=Rollup(time="last", area="none"))
    city.observe("t.kpi", [("C", date(2025, 4, 1), 12.0), ("C", date(2025, 5, 1), 22.0)])
    c = cell(city.evaluate(ind), "t.kpi", "C")
    assert c["value"] == 22.0 and c["period_start"] == date(2025, 5, 1)
    assert c["previous_value"] == 12.0 and c["status"] == "yellow"


# --- area roll-ups --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rollup", "weight", "expected_d1", "expected_c"),
    [
        ("sum", None, 30.0, 30.0 + 40.0),
        ("mean", None, 15.0, (15.0 + 40.0) / 2),
        ("max", None, 20.0, 40.0),
        ("min", None, 10.0, 10.0),
        ("worst", None, 20.0, 40.0),
        # S1 pop 20 value 10, S2 pop 40 value 20 → D1 = 16.67; C = (16.67*60 + 40*40)/100
        (
            "weighted_mean",
            "population",
            (10 * 20 + 20 * 40) / 60,
            ((10 * 20 + 20 * 40) / 60 * 60 + 40 * 40) / 100,
        ),
    ],
)
def test_area_rollups(
    city: City, rollup: str, weight: str | None, expected_d1: float, expected_c: float
) -> None:
    ind = indicator(
        "t.r", levels=("city", "district", "street"), rollup=Rollup(time="last", area=rollup, weight=weight)
    )
    city.daily("t.r", "S1", [10.0])
    city.daily("t.r", "S2", [20.0])
    city.daily("t.r", "D2", [40.0])
    sc = city.evaluate(ind)
    assert cell(sc, "t.r", "D1")["value"] == pytest.approx(expected_d1)
    assert cell(sc, "t.r", "D1")["source"] == "rollup"
    assert cell(sc, "t.r", "C")["value"] == pytest.approx(expected_c)


def test_worst_for_higher_is_better_takes_the_minimum(city: City) -> None:
    ind = indicator(
        "t.w",
        direction="higher_is_better",
        thresholds=Thresholds(bands=BandSet(cuts={"red": 50.0})),
        rollup=Rollup(time="last", area="worst"),
    )
    city.daily("t.w", "D1", [90.0])
    city.daily("t.w", "D2", [40.0])
    c = cell(city.evaluate(ind), "t.w", "C")
    assert c["value"] == 40.0 and c["status"] == "red"


def test_ratio_of_sums_never_averages_child_ratios(city: City) -> None:
    ind = indicator(
        "t.rate",
        unit="%",
        direction="higher_is_better",
        value=Observed(with_parts=True, scale=100.0),
        thresholds=Thresholds(bands=BandSet(cuts={"red": 50.0})),
        rollup=Rollup(time="sum", area="ratio_of_sums"),
    )
    city.observe("t.rate", [("D1", AS_OF, 90.0), ("D2", AS_OF, 10.0)], parts=[(9.0, 10.0), (10.0, 100.0)])
    sc = city.evaluate(ind)
    assert cell(sc, "t.rate", "D1")["value"] == pytest.approx(90.0)
    # (9 + 10) / (10 + 100) = 17.27 %, not the mean of 90 % and 10 %
    assert cell(sc, "t.rate", "C")["value"] == pytest.approx(19 / 110 * 100)


def test_parent_own_data_beats_rollup_and_none_means_no_rollup(city: City) -> None:
    summed = indicator("t.own", rollup=Rollup(time="last", area="sum"))
    none = indicator("t.none", rollup=Rollup(time="last", area="none"))
    for i in ("t.own", "t.none"):
        city.daily(i, "D1", [1.0])
        city.daily(i, "D2", [2.0])
    city.daily("t.own", "C", [100.0])
    sc = city.evaluate(summed, none)
    assert cell(sc, "t.own", "C")["value"] == 100.0 and cell(sc, "t.own", "C")["source"] == "observed"
    assert cell(sc, "t.none", "C")["status"] == "no_data"


# --- derived values --------------------------------------------------------------------------


def test_ratio_per_100k_and_formula(city: City) -> None:
    cases = indicator("t.cases", rollup=Rollup(time="sum", area="sum"))
    pop = indicator("t.pop", frequency="yearly", rollup=Rollup(time="last", area="sum"))
    rate = indicator(
        "t.rate",
        unit="per 100k",
        value=Ratio("t.cases", "t.pop", 100000.0),
        thresholds=Thresholds(bands=BandSet(cuts={"red": 50.0})),
    )
    gap = indicator("t.gap", value=Formula("a - 2 * b", {"a": "t.cases", "b": "t.cases"}))
    city.daily("t.cases", "D1", [30.0])
    city.daily("t.cases", "D2", [10.0])
    city.observe("t.pop", [("D1", date(2025, 1, 1), 60000.0), ("D2", date(2025, 1, 1), 40000.0)])
    sc = city.evaluate(cases, pop, rate, gap)
    assert cell(sc, "t.rate", "D1")["value"] == pytest.approx(50.0)
    # city: ratio of the rolled-up sums: 40 / 100,000 × 100,000
    assert cell(sc, "t.rate", "C")["value"] == pytest.approx(40.0)
    assert cell(sc, "t.rate", "D1")["source"] == "derived"
    assert cell(sc, "t.gap", "C")["value"] == pytest.approx(-40.0)


def test_measure_over_raw_source_table_recomputed_per_level(city: City) -> None:
    src = SourceTable(
        id="cases",
        time_column="created_at",
        area_column="street",
        columns={
            "case_id": "text",
            "created_at": "timestamp",
            "due_at": "timestamp",
            "closed_at": "timestamp",
            "street": "text",
        },
    )
    ind = indicator(
        "t.ontime",
        unit="%",
        direction="higher_is_better",
        levels=("city", "district", "street"),
        frequency="monthly",
        thresholds=Thresholds(bands=BandSet(cuts={"red": 60.0})),
        value=Measure(
            source="cases", numerator="count_if(closed_at <= due_at)", denominator="count(*)", scale=100.0
        ),
        rollup=Rollup(time="sum", area="recompute"),
    )
    from citykpi.catalogue.model import Catalogue
    from citykpi.engine.evaluate import evaluate
    from citykpi.warehouse.schema import source_table_ddl

    city.wh.con.execute(source_table_ddl(src))
    day = datetime(2025, 6, 10)
    rows = [("a", "S1", 1), ("b", "S1", 1), ("c", "S1", 30), ("d", "S2", 1), ("e", "D2", 30)]
    for case_id, area, days in rows:
        city.wh.con.execute(
            "INSERT INTO src_cases VALUES (?, ?, ?, ?, ?, ?, 1)",
            [case_id, day, day + timedelta(days=7), day + timedelta(days=days), area, city.area_keys[area]],
        )
    sc = evaluate(city.wh, Catalogue(indicators=(ind,), sources=(src,)), as_of=AS_OF, persist=False)
    assert cell(sc, "t.ontime", "S1")["value"] == pytest.approx(200 / 3)
    assert cell(sc, "t.ontime", "D1")["value"] == pytest.approx(75.0)  # 3 of 4 cases under D1
    assert cell(sc, "t.ontime", "C")["value"] == pytest.approx(60.0)  # 3 of 5 cases in the city
    assert cell(sc, "t.ontime", "D2")["status"] == "red"


# --- targets ---------------------------------------------------------------------------------


def test_targets_attainment_and_expected_progress(city: City) -> None:
    rail = indicator(
        "t.rail",
        unit="km",
        frequency="monthly",
        direction="higher_is_better",
        thresholds=Thresholds(bands=BandSet(cuts={"red": 0.0})),
        target=Target(
            value=593.0,
            due=date(2025, 12, 31),
            baseline=500.0,
            baseline_date=date(2025, 1, 1),
            method="end_value",
        ),
    )
    parks = indicator(
        "t.parks",
        unit="parks",
        frequency="monthly",
        direction="higher_is_better",
        thresholds=Thresholds(bands=BandSet(cuts={"red": 0.0})),
        rollup=Rollup(time="last", area="sum"),
        target=Target(value=100.0, due=date(2025, 12, 31), method="time_proportional"),
    )
    city.observe("t.rail", [("C", date(2025, 6, 1), 530.0)])
    city.observe("t.parks", [("C", date(2025, 6, 1), 60.0)])
    sc = city.evaluate(rail, parks)
    r = cell(sc, "t.rail", "C")
    assert r["attainment"] == pytest.approx(30 / 93)
    elapsed = (AS_OF - date(2025, 1, 1)).days / (date(2025, 12, 31) - date(2025, 1, 1)).days
    assert r["expected_progress"] == pytest.approx(elapsed)
    assert r["target_status"] == "behind"
    p = cell(sc, "t.parks", "C")
    assert p["attainment"] == pytest.approx(0.6) and p["target_status"] == "on_track"


def test_lower_is_better_target(city: City) -> None:
    ind = indicator("t.fires", frequency="monthly", target=Target(value=50.0, due=date(2025, 12, 31)))
    city.observe("t.fires", [("C", date(2025, 6, 1), 40.0)])
    c = cell(city.evaluate(ind), "t.fires", "C")
    assert c["attainment"] == pytest.approx(1.25) and c["target_status"] == "achieved"


# --- indices ---------------------------------------------------------------------------------


def _index_row(sc, index_id: str, area: str) -> dict:
    import polars as pl

    rows = sc.indices.filter((pl.col("index_id") == index_id) & (pl.col("area_id") == area)).to_dicts()
    assert len(rows) == 1
    return rows[0]


def test_index_colour_score_goalposts_cap_and_coverage(city: City) -> None:
    a = indicator("t.a", tier="bottom_line")
    b = indicator(
        "t.b", direction="higher_is_better", thresholds=Thresholds(bands=BandSet(cuts={"red": 0.0}))
    )
    c_ = indicator("t.c")
    idx = CompositeIndex(
        id="idx.x",
        name=Text("指数", "Index"),
        cap_on_red=30.0,
        min_coverage=0.5,
        components=(
            Component("t.a", weight=1.0),  # colour score
            Component("t.b", weight=3.0, normalise=Normalisation("goalposts", low=0.0, high=200.0)),
            Component("t.c", weight=1.0),
        ),
    )
    parent = CompositeIndex(id="idx.top", name=Text("总", "Top"), components=(Component("idx.x"),))
    city.daily("t.a", "C", [5.0])  # green → 100
    city.daily("t.b", "C", [150.0])  # 75
    city.daily("t.c", "C", [25.0])  # yellow → 60
    city.daily("t.a", "D1", [45.0])  # red bottom line → cap
    city.daily("t.b", "D1", [200.0])
    city.daily("t.a", "D2", [5.0])  # only one component of weight 1 of 5 → coverage 0.2 < 0.5
    sc = city.evaluate(a, b, c_, indices=(idx, parent))
    x = _index_row(sc, "idx.x", "C")
    assert x["score"] == pytest.approx((100 + 3 * 75 + 60) / 5)
    assert x["coverage"] == pytest.approx(1.0) and x["components_used"] == 3
    d1 = _index_row(sc, "idx.x", "D1")
    assert d1["capped"] is True and d1["score"] == pytest.approx(30.0)
    assert d1["coverage"] == pytest.approx(0.8)
    assert _index_row(sc, "idx.x", "D2")["status"] == "no_data"
    assert _index_row(sc, "idx.top", "C")["score"] == pytest.approx(x["score"])
    assert _index_row(sc, "idx.x", "C")["rank"] == 1


def test_geometric_index(city: City) -> None:
    a = indicator("t.a")
    b = indicator("t.b")
    idx = CompositeIndex(
        id="idx.g",
        name=Text("g", "g"),
        aggregation="geometric",
        components=(Component("t.a"), Component("t.b")),
    )
    city.daily("t.a", "C", [5.0])  # 100
    city.daily("t.b", "C", [45.0])  # red → 20
    sc = city.evaluate(a, b, indices=(idx,))
    assert _index_row(sc, "idx.g", "C")["score"] == pytest.approx((100 * 20) ** 0.5)


# --- retrospection -----------------------------------------------------------------------------


def test_as_ingested_replays_what_was_known(city: City) -> None:
    ind = indicator("t.late")
    city.observe("t.late", [("C", AS_OF, 5.0)], finished_at=datetime(2025, 6, 30, 12))
    city.observe("t.late", [("C", AS_OF - timedelta(days=1), 45.0)], finished_at=datetime(2025, 7, 3))
    now = cell(city.evaluate(ind), "t.late", "C")
    assert now["previous_value"] == 45.0
    then = cell(city.evaluate(ind, as_ingested=True), "t.late", "C")
    assert then["previous_value"] is None and then["value"] == 5.0


def test_area_filter_expands_named_groups(city: City) -> None:
    from citykpi.catalogue.model import AreaGroup, Catalogue
    from citykpi.engine.evaluate import evaluate

    ind = indicator("t.g")
    city.daily("t.g", "D1", [5.0])
    city.daily("t.g", "D2", [45.0])
    cat = Catalogue(indicators=(ind,), groups=(AreaGroup("core", Text("核心", "Core"), ("D2",)),))
    sc = evaluate(city.wh, cat, as_of=AS_OF, areas=["core"], persist=False)
    assert sc.cells["area_id"].to_list() == ["D2"]


def test_ratio_divides_the_whole_period_of_a_finer_input(city: City) -> None:
    """A monthly rate of daily cases per yearly population uses the month's cases, and is fresh."""
    cases = indicator("t.cases", rollup=Rollup(time="sum", area="sum"))
    pop = indicator("t.pop", frequency="yearly", rollup=Rollup(time="last", area="sum"))
    rate = indicator(
        "t.rate",
        frequency="monthly",
        unit="per 10k",
        value=Ratio("t.cases", "t.pop", 10000.0),
        thresholds=Thresholds(bands=BandSet(cuts={"red": 50.0})),
    )
    city.daily("t.cases", "D1", [1.0] * 30)  # June: 30 cases
    city.observe("t.pop", [("D1", date(2025, 1, 1), 60000.0)])
    c = cell(city.evaluate(cases, pop, rate), "t.rate", "D1")
    assert c["value"] == pytest.approx(30 / 60000 * 10000)
    assert c["status"] == "green"
    assert c["period_start"] == date(2025, 6, 1)


def test_cumulative_targets_sum_since_the_baseline(city: City) -> None:
    green = indicator(
        "t.green_ha",
        unit="ha",
        frequency="monthly",
        direction="higher_is_better",
        thresholds=Thresholds(bands=BandSet(cuts={"red": 0.0})),
        rollup=Rollup(time="sum", area="sum"),
        target=Target(
            value=1000.0, due=date(2025, 12, 31), baseline_date=date(2025, 1, 1), method="cumulative"
        ),
    )
    fires = indicator(
        "t.fires",
        unit="count",
        frequency="monthly",
        rollup=Rollup(time="sum", area="sum"),
        target=Target(
            value=10000.0, due=date(2025, 12, 31), baseline_date=date(2025, 1, 1), method="cumulative"
        ),
    )
    months = [date(2025, m, 1) for m in range(1, 7)]
    city.observe("t.green_ha", [("D1", m, 60.0) for m in months] + [("D2", m, 40.0) for m in months])
    city.observe("t.fires", [("C", m, 900.0) for m in months])
    city.observe("t.fires", [("C", date(2024, 12, 1), 5000.0)])  # before the baseline: not counted
    sc = city.evaluate(green, fires)
    g = cell(sc, "t.green_ha", "C")
    assert g["value"] == 100.0  # June's additions
    assert g["attainment"] == pytest.approx(600 / 1000)  # descendants' sums since January
    assert g["target_status"] == "on_track"
    f = cell(sc, "t.fires", "C")
    assert f["attainment"] == pytest.approx(5400 / 10000)
    assert f["target_status"] == "behind"  # 54 % of the year's budget used in 49 % of the year


def test_rows_of_either_storage_class_are_found(city: City) -> None:
    """Monthly rows stored as class 1 (their own row groups) or, after a frequency change, class 0."""
    ind = indicator("t.m", frequency="monthly", rollup=Rollup(time="last", area="none"))
    city.observe("t.m", [("C", date(2025, 5, 1), 12.0)], freq_class=1)
    city.observe("t.m", [("D1", date(2025, 5, 1), 22.0)], freq_class=0)
    sc = city.evaluate(ind)
    assert cell(sc, "t.m", "C")["value"] == 12.0
    assert cell(sc, "t.m", "D1")["value"] == 22.0


def test_history_from_keeps_a_long_history_for_drill_downs(city: City) -> None:
    ind = indicator("t.h")
    city.daily("t.h", "C", [float(n) for n in range(40)])
    short = city.evaluate(ind)
    assert short.history.filter(pl.col("area_id") == "C").height == 9  # day grain: today + 8 days
    long = city.evaluate(ind, history_from=AS_OF - timedelta(days=30))
    hist = sort_history(long.history.filter(pl.col("area_id") == "C"))
    assert hist.height == 31
    assert hist["value"].to_list() == [float(n) for n in range(9, 40)]
    assert cell(long, "t.h", "C")["value"] == cell(short, "t.h", "C")["value"] == 39.0


def test_an_off_grid_record_is_aggregated_with_its_day(city: City) -> None:
    """A daily series normally skips the aggregate (one record a day); a day that also holds an
    off-midnight record is aggregated whole, so both records count."""
    ind = indicator("t.d", rollup=Rollup(time="sum", area="none"))
    city.daily("t.d", "C", [1.0, 2.0])
    city.observe("t.d", [("C", datetime(2025, 6, 30, 13, 0), 5.0)])
    c = cell(city.evaluate(ind), "t.d", "C")
    assert c["value"] == 7.0
    assert c["previous_value"] == 1.0


def test_a_filtered_run_records_only_the_cells_it_shows(city: City) -> None:
    """--indicator t.rate computes its inputs but records (and returns) t.rate's cells alone."""
    from citykpi.engine.runs import load_run

    cases = indicator("t.cases", rollup=Rollup(time="sum", area="sum"))
    pop = indicator("t.pop", frequency="yearly", rollup=Rollup(time="last", area="sum"))
    rate = indicator("t.rate", unit="per 100k", value=Ratio("t.cases", "t.pop", 100000.0))
    city.daily("t.cases", "D1", [30.0])
    city.observe("t.pop", [("D1", date(2025, 1, 1), 60000.0)])
    sc = city.evaluate(cases, pop, rate, indicator_glob="t.rate", persist=True)
    assert set(sc.cells.get_column("indicator_id")) == {"t.rate"}
    assert cell(sc, "t.rate", "D1")["value"] == pytest.approx(50.0)
    stored = load_run(city.wh, int(sc.run_id or 0))
    assert set(stored.cells.get_column("indicator_id")) == {"t.rate"}
    assert stored.cells.height == sc.cells.height


def test_history_from_reaches_back_for_measures_too(city: City) -> None:
    """A measure over a raw source table keeps the history --from asks for, like any series."""
    src = SourceTable(
        id="cases",
        time_column="created_at",
        area_column="street",
        columns={"case_id": "text", "created_at": "timestamp", "street": "text"},
    )
    ind = indicator(
        "t.count",
        frequency="monthly",
        value=Measure(source="cases", numerator="count(*)"),
        rollup=Rollup(time="sum", area="recompute"),
    )
    from citykpi.catalogue.model import Catalogue
    from citykpi.engine.evaluate import evaluate
    from citykpi.warehouse.schema import source_table_ddl

    city.wh.con.execute(source_table_ddl(src))
    for n in range(18):  # one case on the 15th of each month, 2024-01 … 2025-06
        when = datetime(2024 + n // 12, n % 12 + 1, 15)
        city.wh.con.execute(
            "INSERT INTO src_cases VALUES (?, ?, ?, ?, 1)", [f"c{n}", when, "S1", city.area_keys["S1"]]
        )
    cat = Catalogue(indicators=(ind,), sources=(src,))
    sc = evaluate(city.wh, cat, as_of=AS_OF, persist=False, history_from=date(2024, 6, 1))
    months = sorted(sc.history.filter(pl.col("area_id") == "C").get_column("period_start").to_list())
    assert months[0] == date(2024, 6, 1) and len(months) == 13  # 2024-06 … 2025-06


@pytest.mark.parametrize(
    ("value", "status", "shown"),
    [
        (1.46, "red", "red: 1.46 % < 1.5 (red below 1.5)"),
        (1.4999, "red", "red: 1.4999 % < 1.5 (red below 1.5)"),
        (1.5, "yellow", "yellow: 1.5 % < 2.25 (yellow below 2.25)"),
        (2.2, "yellow", "yellow: 2.2 % < 2.25 (yellow below 2.25)"),
        (2.26, "green", "green: 2.26 % ≥ 2.25 (yellow below 2.25)"),
        (3.04, "green", "green: 3.0 % ≥ 2.25 (yellow below 2.25)"),
    ],
)
def test_explanations_print_enough_digits_to_be_true(
    city: City, value: float, status: str, shown: str
) -> None:
    """One decimal declared: a value that rounds onto its cut gets the digits that tell them apart, and
    a cut prints exactly as declared (2.25, not 2.2 or 2.3)."""
    bands = BandSet(cuts={"yellow": 2.25, "red": 1.5})
    ind = indicator(
        "t.rate", direction="higher_is_better", unit="%", decimals=1, thresholds=Thresholds(bands=bands)
    )
    city.daily("t.rate", "C", [value])
    c = cell(city.evaluate(ind), "t.rate", "C")
    assert (c["status"], c["explanation"]) == (status, shown)


def test_band_explanation_tells_a_value_from_the_edge_it_crossed(city: City) -> None:
    bands = BandSet(ranges={"green": (0.3, 2.0), "yellow": (0.2, 4.0)})
    ind = indicator("t.cl", direction="band", unit="mg/L", decimals=1, thresholds=Thresholds(bands=bands))
    city.daily("t.cl", "C", [2.04])
    c = cell(city.evaluate(ind), "t.cl", "C")
    assert c["status"] == "yellow"
    assert c["explanation"] == "yellow: 2.04 mg/L outside the green range 0.3–2", c["explanation"]


def test_an_indicator_without_thresholds_is_unscored_and_counted_apart(city: City) -> None:
    """Not green: a value nobody declared a cut for is shown, never coloured, and counted on its own."""
    plain = indicator("t.plain", thresholds=Thresholds())
    scored = indicator("t.scored")
    city.daily("t.plain", "C", [50.0])
    city.daily("t.scored", "C", [5.0])
    sc = city.evaluate(plain, scored)
    c = cell(sc, "t.plain", "C")
    assert (c["status"], c["severity"], c["streak"], c["value"]) == ("unscored", None, None, 50.0)
    assert c["explanation"] == "unscored: 50 index; no thresholds are declared for it"
    assert cell(sc, "t.scored", "C")["status"] == "green"
    counts = sc.counts()
    assert counts["unscored"] == 1 and counts["green"] == 1


def test_an_override_gives_thresholds_to_one_area_only(city: City) -> None:
    ov = Override(bands=BandSet(cuts={"red": 10.0}), area="D1")
    ind = indicator("t.ov", thresholds=Thresholds(overrides=(ov,)))
    city.daily("t.ov", "C", [50.0])
    city.daily("t.ov", "D1", [50.0])
    sc = city.evaluate(ind)
    assert cell(sc, "t.ov", "D1")["status"] == "red"
    assert cell(sc, "t.ov", "C")["status"] == "unscored"


def test_a_declared_baseline_is_the_top_levels_never_another_areas(city: City) -> None:
    """The plan's baseline (50) is the city's starting point: the city's progress counts from it, a
    district's is measured against the target alone (40 / 100), never from the city's baseline
    (which read (40 − 50) / (100 − 50) = −20 %)."""
    ind = indicator(
        "t.plan",
        direction="higher_is_better",
        target=Target(value=100.0, due=date(2025, 12, 31), baseline=50.0, baseline_date=date(2025, 1, 1)),
    )
    city.daily("t.plan", "C", [75.0])
    city.daily("t.plan", "D1", [40.0])
    sc = city.evaluate(ind)
    assert cell(sc, "t.plan", "C")["attainment"] == pytest.approx(0.5)
    assert cell(sc, "t.plan", "D1")["attainment"] == pytest.approx(0.4)


def test_a_stale_cell_explains_its_value_not_its_basis(city: City) -> None:
    """A stale cell of a change-based indicator carried '4544% vs last year': its value, in its unit."""
    ind = indicator(
        "t.chg",
        unit="cases",
        max_staleness=timedelta(days=2),
        thresholds=Thresholds(basis="change_last_year", bands=BandSet(cuts={"red": 50.0})),
    )
    city.daily("t.chg", "C", [4544.0], end=AS_OF - timedelta(days=3))
    c = cell(city.evaluate(ind), "t.chg", "C")
    assert c["status"] == "stale"
    assert c["explanation"].startswith("stale: latest value 4544 cases from 2025-06-27"), c["explanation"]


FIVE_DISTRICTS = (
    ("C", "city", None, 500.0),
    *((f"D{n}", "district", "C", 100.0) for n in range(1, 6)),
)


@pytest.mark.parametrize("method", ["z_score", "min_max"])
def test_a_relative_score_is_coloured_by_rank_and_not_applicable_alone(tmp_path: Path, method: str) -> None:
    """Five districts scored against each other: the best fifth is green, the worst red, whatever the
    score reads; the city, alone at its level, has nothing to be compared with (never 100 and green)."""
    city = City(tmp_path, areas=FIVE_DISTRICTS)
    try:
        a = indicator("t.a", direction="higher_is_better")
        idx = CompositeIndex(
            id="idx.rel",
            name=Text("相对", "Relative"),
            normalise=Normalisation(method),
            colour_by="quintile",
            components=(Component("t.a"),),
        )
        city.daily("t.a", "C", [50.0])
        for n, v in enumerate((10.0, 20.0, 30.0, 40.0, 50.0), start=1):
            city.daily("t.a", f"D{n}", [v])
        sc = city.evaluate(a, indices=(idx,))
        statuses = {f"D{n}": _index_row(sc, "idx.rel", f"D{n}")["status"] for n in range(1, 6)}
        assert statuses == {"D5": "green", "D4": "blue", "D3": "yellow", "D2": "orange", "D1": "red"}
        alone = _index_row(sc, "idx.rel", "C")
        assert (alone["score"], alone["status"]) == (None, "not_applicable")
    finally:
        city.wh.close()


def test_check_refuses_absolute_bands_on_a_relative_index(tmp_path: Path) -> None:
    from citykpi.catalogue import check_catalogue

    base = """schema_version: 1
indicators:
  - id: t.a
    name: {zh: 甲, en: A}
    kind: kpi
    domain: test
    unit: count
    description: a count
    levels: [city, district]
    frequency: daily
    direction: higher_is_better
    thresholds: {red: 1}
indices:
  - id: idx.rel
    name: {zh: 相对, en: Relative}
    normalise: {method: z_score}
    components: [t.a]
"""
    (tmp_path / "c.yaml").write_text(base, encoding="utf-8")
    rules = [
        (d.rule, d.location.line if d.location else None)
        for d in check_catalogue(tmp_path / "c.yaml").diagnostics
    ]
    assert ("CK053", 16) in rules, rules  # at its normalise line
    (tmp_path / "c.yaml").write_text(base + "    colour_by: quintile\n", encoding="utf-8")
    assert "CK053" not in {d.rule for d in check_catalogue(tmp_path / "c.yaml").diagnostics}


def test_a_read_only_evaluation_treats_an_unloaded_source_as_empty(city: City, tmp_path: Path) -> None:
    """evaluate opens the warehouse read-only by default: a measure whose raw source was never ingested
    has no data (its indicator shows no colour) and nothing is written, rather than failing the run."""
    from citykpi.catalogue.model import Catalogue
    from citykpi.engine.evaluate import evaluate
    from citykpi.warehouse.schema import table_names

    src = SourceTable(
        id="cases",
        time_column="created_at",
        area_column="street",
        columns={"case_id": "text", "created_at": "timestamp", "street": "text"},
    )
    count = indicator(
        "t.count",
        value=Measure(source="cases", numerator="count(*)"),
        rollup=Rollup(time="sum", area="recompute"),
    )
    daily = indicator("t.d")
    city.daily("t.d", "C", [1.0, 2.0])
    city.wh.close()
    with Warehouse.open(tmp_path / "city.duckdb", read_only=True) as ro:
        sc = evaluate(ro, Catalogue(indicators=(count, daily), sources=(src,)), as_of=AS_OF, persist=False)
        assert cell(sc, "t.d", "C")["value"] == 2.0
        counted = sc.cells.filter(pl.col("indicator_id") == "t.count")
        assert counted.height > 0 and counted.get_column("value").is_null().all()
        assert "src_cases" not in table_names(ro.con)  # the empty stand-in was this session's alone
