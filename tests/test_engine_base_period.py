"""Change against a fixed base period ("down 20 % on 2010"): the basis and the scorecard columns."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest

from citykpi.catalogue.model import BandSet, Indicator, Ratio, Rollup, Thresholds
from citykpi.engine.plan import compile_plan
from tests.engine_helpers import City, cell, indicator

END = date(2020, 12, 31)


def _pm25(**kw: object) -> Indicator:
    fields: dict[str, object] = {
        "frequency": "yearly",
        "base_period": date(2010, 1, 1),
        "thresholds": Thresholds(
            basis="change_base_period", bands=BandSet(cuts={"yellow": -20.0, "red": 0.0})
        ),
        "rollup": Rollup(time="last", area="mean"),
        **kw,
    }
    return indicator("env.pm25", **fields)


@pytest.fixture
def city(tmp_path: Path) -> City:
    c = City(tmp_path)
    # 2010: D1 50, D2 70 (city mean 60); 2019 and 2020 follow; one year in between
    c.observe("env.pm25", [("D1", date(2010, 1, 1), 50.0), ("D2", date(2010, 1, 1), 70.0)], freq_class=1)
    c.observe("env.pm25", [("D1", date(2015, 1, 1), 45.0), ("D2", date(2015, 1, 1), 60.0)], freq_class=1)
    c.observe("env.pm25", [("D1", date(2019, 1, 1), 42.0), ("D2", date(2019, 1, 1), 70.0)], freq_class=1)
    c.observe("env.pm25", [("D1", date(2020, 1, 1), 40.0), ("D2", date(2020, 1, 1), 77.0)], freq_class=1)
    return c


def test_change_against_the_base_year_colours_the_cell(city: City) -> None:
    sc = city.evaluate(_pm25(), as_of=END, grain="year")
    d1, d2, c = (cell(sc, "env.pm25", a) for a in ("D1", "D2", "C"))
    # D1: 40 vs 50 → -20 %, exactly at the yellow cut (not inclusive): green
    assert (d1["base_value"], d1["change_base"], d1["basis_value"], d1["status"]) == (
        50.0,
        -20.0,
        -20.0,
        "green",
    )
    # D2: 77 vs 70 → +10 %: red (from 0 up)
    assert (d2["base_value"], d2["change_base"], d2["status"]) == (70.0, pytest.approx(10.0), "red")
    assert d2["explanation"] == "red: 10% vs base period > 0 (red above 0)"
    # the city is the mean of its districts, in the base year too: 58.5 vs 60
    assert (c["value"], c["base_value"]) == (58.5, 60.0)
    assert c["change_base"] == pytest.approx(-2.5)
    assert c["status"] == "yellow"


def test_no_value_in_the_base_period_is_not_applicable(city: City) -> None:
    sc = city.evaluate(_pm25(base_period=date(2012, 1, 1)), as_of=END, grain="year")
    d1 = cell(sc, "env.pm25", "D1")
    assert (d1["value"], d1["base_value"], d1["status"]) == (40.0, None, "not_applicable")
    assert d1["explanation"] == "not_applicable: no value in the base period"


def test_base_columns_are_filled_whatever_the_basis(city: City) -> None:
    absolute = replace(_pm25(), thresholds=Thresholds(bands=BandSet(cuts={"red": 100.0})))
    d1 = cell(city.evaluate(absolute, as_of=END, grain="year"), "env.pm25", "D1")
    assert (d1["status"], d1["base_value"], d1["change_base"]) == ("green", 50.0, -20.0)
    none = replace(absolute, base_period=None)
    d1 = cell(city.evaluate(none, as_of=END, grain="year"), "env.pm25", "D1")
    assert (d1["base_value"], d1["change_base"]) == (None, None)


def test_a_rate_changes_in_points(city: City) -> None:
    rate = replace(_pm25(), unit="%")
    d1 = cell(city.evaluate(rate, as_of=END, grain="year"), "env.pm25", "D1")
    assert (d1["change_unit"], d1["change_base"]) == ("points", -10.0)


def test_a_ratio_reads_its_inputs_in_the_base_period(city: City) -> None:
    city.observe(
        "pop",
        [(a, date(y, 1, 1), 10.0 if y == 2010 else 20.0) for a in ("D1", "D2") for y in (2010, 2020)],
        freq_class=1,
    )
    pop = indicator("pop", frequency="yearly", rollup=Rollup(time="last", area="sum"))
    per = indicator(
        "env.per_pop",
        frequency="yearly",
        base_period=date(2010, 1, 1),
        value=Ratio(numerator="env.pm25", denominator="pop"),
        thresholds=Thresholds(basis="change_base_period", bands=BandSet(cuts={"red": 0.0})),
        rollup=Rollup(time="last", area="recompute"),
    )
    plain = replace(_pm25(), base_period=None)
    d1 = cell(city.evaluate(plain, pop, per, as_of=END, grain="year"), "env.per_pop", "D1")
    # 2010: 50 / 10 = 5; 2020: 40 / 20 = 2 → -60 %
    assert (d1["value"], d1["base_value"], d1["change_base"], d1["status"]) == (2.0, 5.0, -60.0, "green")


def test_the_base_period_adds_no_statement(city: City) -> None:
    def count(*inds: Indicator) -> int:
        from citykpi.catalogue.model import Catalogue

        cat = Catalogue(indicators=tuple(inds))
        keys = {i.id: n for n, i in enumerate(cat.indicators, start=1)}
        _, plan = compile_plan(
            cat,
            keys,
            {},
            as_of=END,
            grain="year",
            obs="observations",
            level_filter=None,
            area_filter=None,
            classes={},
        )
        return len(plan.statements)

    assert count(_pm25()) == count(replace(_pm25(), base_period=None, thresholds=Thresholds()))


def test_a_source_filter_decides_which_rows_every_measure_counts(tmp_path: Path) -> None:
    from datetime import datetime

    from citykpi.catalogue.model import Catalogue, Measure, SourceTable
    from citykpi.engine.evaluate import evaluate
    from citykpi.warehouse import IngestOptions, ingest
    from tests._warehouse_support import write

    city = City(tmp_path)
    src = SourceTable(
        id="cases",
        columns={"key": "text", "opened": "timestamp", "area": "text", "status": "text"},
        time_column="opened",
        area_column="area",
        key="key",
    )
    text = (
        "key,opened,area,status\n1,2025-06-30 10:00,D1,Closed\n2,2025-06-30 11:00,D1,Duplicate\n"
        "3,2025-06-30 12:00,D2,Open\n"
    )
    n = indicator(
        "cases.n",
        value=Measure(source="cases", numerator="count(*)"),
        rollup=Rollup(time="sum", area="recompute"),
        thresholds=Thresholds(),
    )
    ingest(
        city.wh,
        Catalogue(indicators=(n,), sources=(src,)),
        [write(tmp_path / "c.csv", text)],
        IngestOptions(fmt="source", source="cases", now=datetime(2025, 7, 1)),
    )

    def counts(source: SourceTable) -> dict[str, float]:
        sc = evaluate(
            city.wh, Catalogue(indicators=(n,), sources=(source,)), as_of=date(2025, 6, 30), persist=False
        )
        return {r["area_id"]: r["value"] for r in sc.cells.to_dicts()}

    assert counts(src) == {"C": 3.0, "D1": 2.0, "D2": 1.0}
    assert counts(replace(src, filter="status <> 'Duplicate'")) == {"C": 2.0, "D1": 1.0, "D2": 1.0}


def test_the_terminal_shows_the_change_against_the_base_period(city: City) -> None:
    from rich.console import Console

    from citykpi.render.terminal import print_scorecard

    console = Console(width=140, record=True, color_system=None)
    print_scorecard(console, city.evaluate(_pm25(), as_of=END, grain="year"), lang="en")
    text = console.export_text()
    assert "vs base" in text and "-20.0%" in text
    console = Console(width=140, record=True, color_system=None)
    print_scorecard(
        console, city.evaluate(replace(_pm25(), base_period=None), as_of=END, grain="year"), lang="en"
    )
    assert "vs base" not in console.export_text()  # no indicator has one: no column
