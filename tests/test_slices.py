"""A large sub-daily evaluation runs in slices of indicators (engine/plan.py, ``slice_count``): the
same cells, in the same order, as the whole catalogue at once; and only where each slice is
complete in itself."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from citykpi.catalogue.model import BandSet, Forecast, Formula, Rollup, Thresholds
from citykpi.engine import plan as planning
from citykpi.engine.plan import compile_evaluation
from citykpi.engine.scorecard import Scorecard
from tests.engine_helpers import City, indicator
from tests.plan_support import gathered

AT = datetime(2025, 12, 31, 14, 30)
STREETS_AND_D2 = ("S1", "S2", "D2")


def vital_signs() -> list[Any]:
    """Ten hourly vital signs: different roll-ups, levels, persistence, a change basis, trend
    forecasts and a seasonal (anomaly) basis."""
    out = []
    for n, (time_rule, area_rule) in enumerate(
        [("max", "max"), ("mean", "mean"), ("last", "max"), ("max", "min"), ("mean", "max"), ("max", "max")]
    ):
        out.append(
            indicator(
                f"vs.s{n}",
                frequency="hourly",
                levels=("city", "district", "street"),
                rollup=Rollup(time=time_rule, area=area_rule),
                max_staleness=timedelta(hours=2),
            )
        )
    out[1] = replace(out[1], thresholds=replace(out[1].thresholds, for_periods=3))
    out.append(
        indicator(
            "vs.change",
            frequency="hourly",
            levels=("city", "district"),
            rollup=Rollup(time="max", area="max"),
            thresholds=replace(Thresholds(bands=out[0].thresholds.bands), basis="change_previous"),
        )
    )
    out.extend(  # two, so that at least one is not in the last slice
        indicator(
            f"vs.trend{n}",
            frequency="hourly",
            levels=("city", "district", "street"),
            rollup=Rollup(time="mean", area="max"),
            forecast=Forecast(min_r2=0.0),
        )
        for n in (1, 2)
    )
    out.append(
        indicator(
            "vs.anomaly",
            frequency="hourly",
            direction="band",
            levels=("city", "district"),
            rollup=Rollup(time="mean", area="mean"),
            thresholds=Thresholds(
                basis="anomaly",
                bands=BandSet(ranges={"green": (-3.0, 3.0), "yellow": (-5.0, 5.0), "orange": (-8.0, 8.0)}),
                baseline=3,
            ),
        )
    )
    return out


def readings(city: City, ids: list[str]) -> None:
    """Two days of readings every 20 minutes (a week for the seasonal one: it needs earlier working
    days); one series falls silent 5 hours early (stale), one area of one indicator has none, and
    values wander through every colour."""
    for n, iid in enumerate(ids):
        start = datetime(2025, 12, 24 if iid == "vs.anomaly" else 30)
        hours = int((AT - start).total_seconds() // 3600)
        rows = []
        for a, area in enumerate(STREETS_AND_D2):
            if n == 3 and area == "S2":
                continue  # no data at all
            last = hours * 3 - (15 if (n, area) == (4, "S1") else 0)
            rows += [
                (area, start + timedelta(minutes=20 * j), float((n * 7 + j * 13 + a * 5) % 50))
                for j in range(last + 1)
                if (j + n + a) % 11  # a gap now and then
            ]
        city.observe(iid, rows, freq_class=2)


@pytest.fixture
def city(tmp_path: Path) -> City:
    c = City(tmp_path)
    readings(c, [i.id for i in vital_signs()])
    return c


def hour(city: City, **kw: Any) -> Scorecard:
    return city.evaluate(*vital_signs(), grain="hour", at=AT, history_levels=(), **kw)


@pytest.mark.parametrize("rows", [1, 40])
@pytest.mark.parametrize(
    "filters", [{}, {"levels": ("district", "street")}, {"areas": ("D1",)}], ids=["all", "levels", "area"]
)
def test_slices_give_the_cells_of_the_whole_catalogue(
    city: City, monkeypatch: pytest.MonkeyPatch, rows: int, filters: dict[str, Any]
) -> None:
    whole = hour(city, **filters)
    monkeypatch.setattr(planning, "SLICE_ROWS", rows)
    sliced = hour(city, **filters)
    assert sliced.meta["statements"] > whole.meta["statements"]  # it did run in slices
    assert whole.cells.height > 0
    if not filters:
        assert set(whole.cells.get_column("status").to_list()) >= {"green", "red", "stale", "no_data"}
    assert_frame_equal(sliced.cells, whole.cells)
    assert_frame_equal(sliced.indices, whole.indices)
    # the trend and the seasonal baseline were computed in their slices, not left out
    anomaly = whole.cells.filter(pl.col("indicator_id") == "vs.anomaly")
    for trend in (whole.cells.filter(pl.col("indicator_id") == f"vs.trend{n}") for n in (1, 2)):
        assert trend.height and trend.get_column("forecast_slope").is_not_null().all()
    assert anomaly.height and anomaly.get_column("basis_value").is_not_null().any()


def _slices(plan: planning.Plan) -> set[str]:
    return {name.rsplit("(slice ", 1)[1] for name, _ in plan.statements if "(slice " in name}


def test_only_a_large_sub_daily_evaluation_whose_slices_stand_alone_is_sliced(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    observed = [i for i in gathered().compiled.indicators if i.frequency in ("realtime", "hourly")]
    assert observed, "the sample catalogue has hourly vital signs"
    hourly = gathered(grain="hour", at=AT, history_levels=())
    vitals = replace(hourly.compiled, indicators=tuple(observed), indices=())
    hourly = replace(hourly, compiled=vitals, shown=frozenset(i.id for i in observed))
    assert not _slices(compile_evaluation(hourly))  # small: one pass
    monkeypatch.setattr(planning, "SLICE_ROWS", 1)
    n = min(planning.MAX_SLICES, len(observed))
    assert len(_slices(compile_evaluation(hourly))) == n > 1
    # sparklines and parts read the periods back after the cells: no slices then
    for request in ({"history_levels": ("city",)}, {"parts": True}):
        asked = replace(hourly, request=replace(hourly.request, **request))
        assert not _slices(compile_evaluation(asked))
    # a day is never sliced; nor is a catalogue whose derived values read other indicators
    daily = replace(gathered(history_levels=()), compiled=vitals, shown=hourly.shown)
    assert not _slices(compile_evaluation(daily))
    ratio = indicator(
        "vs.ratio", frequency="hourly", value=Formula(expression="a * 2", inputs={"a": observed[0].id})
    )
    derived = replace(vitals, indicators=(*observed, ratio))
    keys = {**hourly.keys, ratio.id: max(hourly.keys.values()) + 1}
    with_ratio = replace(hourly, compiled=derived, keys=keys, shown=hourly.shown | {ratio.id})
    assert not _slices(compile_evaluation(with_ratio))
