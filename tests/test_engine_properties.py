"""Engine properties: constant statement count, SQL colours agree with the reference classifier,
worsening never improves a colour, ratio roll-up equals the ratio of summed parts."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import duckdb
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from citykpi.catalogue.bands import classify
from citykpi.catalogue.model import (
    COLOURS,
    SEVERITY,
    BandSet,
    Condition,
    Formula,
    FromSeries,
    Observed,
    Ratio,
    Rollup,
    Thresholds,
)
from citykpi.engine import compiler, tables
from tests.engine_helpers import AS_OF, City, cell, indicator


def _catalogue(n: int) -> list:
    """n indicators of each kind: observed, from-series, ratio, formula."""
    out = []
    for i in range(n):
        base = f"g{i}.base"
        out.append(indicator(base, rollup=Rollup(time="mean", area="sum")))
        out.append(
            indicator(
                f"g{i}.days",
                frequency="yearly",
                value=FromSeries(base),
                rollup=Rollup(time="count_where", where=Condition("<=", 20.0), area="recompute"),
            )
        )
        out.append(indicator(f"g{i}.ratio", value=Ratio(base, base, 100.0)))
        out.append(indicator(f"g{i}.formula", value=Formula("a * 2 + 1", {"a": base})))
    return out


def test_statement_count_does_not_grow_with_the_catalogue(tmp_path: Path) -> None:
    counts = []
    for n in (2, 60):
        (tmp_path / str(n)).mkdir()
        city = City(tmp_path / str(n))
        inds = _catalogue(n)
        for ind in inds[::4]:
            city.daily(ind.id, "D1", [5.0, 25.0])
        sc = city.evaluate(*inds)
        assert sc.cells.height == len(inds) * 3
        counts.append(sc.meta["statements"])
        city.wh.close()
    assert counts[0] == counts[1]


finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)


@st.composite
def band_sets(draw: st.DrawFn) -> tuple[BandSet, str]:
    direction = draw(st.sampled_from(["lower_is_better", "higher_is_better", "band"]))
    if direction == "band":
        centre = draw(finite)
        widths = sorted(draw(st.lists(st.floats(0.1, 1e3), min_size=4, max_size=4)))
        ranges = {c: (centre - w, centre + w) for c, w in zip(COLOURS[:4], widths, strict=True)}
        return BandSet(ranges=ranges), direction
    colours = draw(st.lists(st.sampled_from(COLOURS[1:]), min_size=1, max_size=4, unique=True))
    colours.sort(key=SEVERITY.__getitem__)
    cuts = sorted(draw(st.lists(finite, min_size=len(colours), max_size=len(colours), unique=True)))
    if direction == "higher_is_better":
        cuts.reverse()
    return BandSet(cuts=dict(zip(colours, cuts, strict=True)), inclusive=draw(st.booleans())), direction


def _sql_colours(bands: BandSet, direction: str, values: list[float]) -> list[str]:
    """Classify values with the engine's SQL severity expression."""
    con = duckdb.connect()
    row = tables._bandset_row(1, direction, bands)
    con.register("bs_frame", pl.DataFrame([row], schema=tables._BANDSET_SCHEMA))
    con.register(
        "v_frame",
        pl.DataFrame({"n": list(range(len(values))), "v": values}, schema={"n": pl.Int64, "v": pl.Float64}),
    )
    sev = compiler._severity("x.v", "bs")
    out = con.execute(f"SELECT {sev} FROM v_frame x, bs_frame bs ORDER BY x.n").fetchall()
    return [COLOURS[r[0]] for r in out]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(band_sets(), st.lists(finite, min_size=1, max_size=20))
def test_sql_classification_matches_reference(bs: tuple[BandSet, str], values: list[float]) -> None:
    bands, direction = bs
    assert _sql_colours(bands, direction, values) == [classify(v, bands, direction) for v in values]


@settings(max_examples=150, deadline=None)
@given(band_sets(), finite, st.floats(0, 1e5))
def test_worsening_never_improves_the_colour(bs: tuple[BandSet, str], value: float, step: float) -> None:
    bands, direction = bs
    if direction == "band":
        centre = (bands.ranges["green"][0] + bands.ranges["green"][1]) / 2
        worse = value + step if value >= centre else value - step
    elif direction == "lower_is_better":
        worse = value + step
    else:
        worse = value - step
    a, b = _sql_colours(bands, direction, [value, worse])
    assert SEVERITY[b] >= SEVERITY[a]


@pytest.fixture(scope="module")
def ratio_city(tmp_path_factory: pytest.TempPathFactory) -> City:
    return City(tmp_path_factory.mktemp("ratio"))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.tuples(st.floats(0, 1e4), st.floats(1, 1e4)),
        min_size=2,
        max_size=2,
    ),
    st.integers(0, 10_000),
)
def test_ratio_rollup_equals_ratio_of_summed_parts(ratio_city: City, parts: list, salt: int) -> None:
    ind_id = f"t.rate{salt}"
    ind = indicator(
        ind_id,
        unit="%",
        value=Observed(with_parts=True, scale=100.0),
        rollup=Rollup(time="sum", area="ratio_of_sums"),
        thresholds=Thresholds(bands=BandSet(cuts={"red": 50.0})),
    )
    ratio_city.wh.con.execute(
        "DELETE FROM observations WHERE indicator_key IN (SELECT indicator_key FROM indicator_keys WHERE indicator_id = ?)",
        [ind_id],
    )
    ratio_city.observe(
        ind_id,
        [("D1", AS_OF - timedelta(days=0), None), ("D2", AS_OF, None)],
        parts=parts,
    )
    city_value = cell(ratio_city.evaluate(ind), ind_id, "C")["value"]
    num = sum(p[0] for p in parts)
    den = sum(p[1] for p in parts)
    assert city_value == pytest.approx(num / den * 100, rel=1e-9, abs=1e-9)
