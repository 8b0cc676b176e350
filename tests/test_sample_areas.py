"""The sample city's areas: a sound three-level hierarchy with populations that add up."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from citykpi.catalogue import load_catalogue
from citykpi.sample.areas import CENTRAL_URBAN, CITY_ID

ROOT = Path(__file__).resolve().parent.parent
AREAS = ROOT / "sample_data" / "areas.csv"
DEPTH = {"city": 0, "district": 1, "street": 2}


def _areas() -> pl.DataFrame:
    return pl.read_csv(AREAS, schema_overrides={"id": pl.String, "parent": pl.String})


def test_one_root_and_unique_ids() -> None:
    areas = _areas()
    assert areas["id"].n_unique() == areas.height
    roots = areas.filter(pl.col("parent").is_null())
    assert roots["id"].to_list() == [CITY_ID]
    assert roots["level"].to_list() == ["city"]


def test_parents_exist_one_level_up() -> None:
    areas = _areas()
    level = dict(zip(areas["id"], areas["level"], strict=True))
    for area_id, area_level, parent in areas.select("id", "level", "parent").iter_rows():
        if parent is None:
            continue
        assert parent in level, area_id
        assert DEPTH[level[parent]] == DEPTH[area_level] - 1, area_id
        if area_level == "street":
            assert area_id.startswith(parent)


def test_sizes_look_like_chongqing() -> None:
    counts = dict(_areas().group_by("level").len().iter_rows())
    assert counts["city"] == 1
    assert 38 <= counts["district"] <= 42
    assert 950 <= counts["street"] <= 1_100


def test_populations_sum_to_the_parent() -> None:
    areas = _areas()
    pop = dict(zip(areas["id"], areas["population"], strict=True))
    sums = areas.filter(pl.col("parent").is_not_null()).group_by("parent").agg(pl.col("population").sum())
    for parent, total in sums.iter_rows():
        assert abs(total - pop[parent]) <= 0.001 * pop[parent], parent
    assert 30_000_000 < pop[CITY_ID] < 34_000_000


def test_central_urban_group_matches_the_catalogue() -> None:
    areas = _areas()
    in_file = set(areas.filter(pl.col("groups").fill_null("").str.contains(CENTRAL_URBAN))["id"])
    catalogue = load_catalogue(ROOT / "indicators")
    group = next(g for g in catalogue.groups if g.id == CENTRAL_URBAN)
    assert in_file == set(group.areas)
    assert len(in_file) == 11  # "9+2"
    names = dict(zip(areas["id"], areas["name"], strict=True))
    assert names["500103"] == "渝中区" and names["500105"] == "江北区"
