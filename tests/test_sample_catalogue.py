"""The sample catalogue: sound, big enough, and using every feature of the model at least once."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from citykpi.catalogue import check_catalogue, load_catalogue
from citykpi.catalogue.model import (
    AGGREGATIONS,
    AREA_ROLLUPS,
    BASES,
    DIRECTIONS,
    FREQUENCIES,
    NORMALISATIONS,
    TARGET_METHODS,
    TIME_ROLLUPS,
    UNITS,
    Catalogue,
    Measure,
    Observed,
    Ratio,
)

ROOT = Path(__file__).resolve().parent.parent
INDICATORS = ROOT / "indicators"


def _catalogue() -> Catalogue:
    return load_catalogue(INDICATORS)


def test_check_reports_no_problems() -> None:
    result = check_catalogue(str(INDICATORS))
    assert [str(d) for d in result.diagnostics] == []


def test_size_and_spread() -> None:
    cat = _catalogue()
    assert len(cat.indicators) >= 160
    assert len({i.domain for i in cat.indicators}) >= 12
    kinds = Counter(i.kind for i in cat.indicators)
    assert kinds["kpi"] >= 60 and kinds["vital_sign"] >= 40
    freqs = Counter(i.frequency for i in cat.indicators)
    assert freqs["hourly"] >= 3 and freqs["daily"] >= 30
    assert set(FREQUENCIES) - {"realtime"} <= set(freqs)
    for ind in cat.indicators:
        assert ind.name.zh and ind.name.en and ind.owner and ind.description, ind.id
        assert ind.unit in UNITS, ind.id


def test_every_feature_is_used() -> None:
    cat = _catalogue()
    inds = cat.indicators
    assert {i.direction for i in inds} == set(DIRECTIONS)
    assert {i.thresholds.basis for i in inds} == set(BASES)
    assert {i.rollup.time for i in inds} == set(TIME_ROLLUPS)
    assert {i.rollup.area for i in inds} == set(AREA_ROLLUPS)
    assert {i.target.method for i in inds if i.target} == set(TARGET_METHODS)
    assert {i.value.kind for i in inds} == {"observed", "ratio", "formula", "measure", "from"}
    assert any(isinstance(i.value, Observed) and i.value.with_parts for i in inds)
    assert any(isinstance(i.value, Ratio) and i.value.scale == 100_000 for i in inds)
    assert any(isinstance(i.value, Measure) and i.value.filter for i in inds)
    assert any(i.thresholds.for_periods > 1 for i in inds)
    assert any(o.level for i in inds for o in i.thresholds.overrides)
    assert any(o.area for i in inds for o in i.thresholds.overrides)
    assert any(i.thresholds.bands.inclusive for i in inds)
    assert any(i.scale for i in inds)
    assert any(i.tier == "bottom_line" for i in inds)
    assert any(len(i.levels) == 3 for i in inds) and any(i.levels == ("city",) for i in inds)
    methods = {c.normalise.method for x in cat.indices for c in x.components if c.normalise}
    methods |= {x.normalise.method for x in cat.indices}
    assert methods == set(NORMALISATIONS)
    assert {x.aggregation for x in cat.indices} == set(AGGREGATIONS)
    assert any(x.cap_on_red is not None for x in cat.indices)
    assert any(c.ref.startswith("index.") for x in cat.indices for c in x.components)


def test_the_five_indices_and_the_real_targets() -> None:
    cat = _catalogue()
    names = {x.name.zh for x in cat.indices}
    assert {"发展指数", "建设指数", "运维指数", "服务指数", "健康指数"} <= names
    targets = {i.id: i.target for i in cat.indicators if i.target}
    assert targets["tr.rail.operating_km"].value == 593
    assert targets["dg.twin.pipeline_coverage"].value == 100
    assert targets["ur.green.new_green_space"].value == 1000
    assert targets["ur.green.pocket_parks"].value == 100
    assert targets["ur.urban_village.projects"].value == 163
    assert targets["dg.apps"].value == 260
    assert targets["env.air.good_days"].baseline == 329
    assert targets["tr.parking.roadside_compliance"].value == 98
    assert targets["drain.sewage.treatment_rate"].value == 98
    assert targets["drain.sewage.collection_rate"].value == 73
    assert targets["drain.sponge_city_share"].value == 45
    assert targets["econ.gdp_growth"].value == 6
    assert {s.id for s in cat.sources} == {"hotline_cases"}
    assert {g.id for g in cat.groups} >= {"central_urban"}
