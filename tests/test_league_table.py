"""League tables are honest (issue: analyst correctness): an index's change is its score against the
previous period, areas without a colour are listed last and never ranked, and an empty table says why."""

from __future__ import annotations

from dataclasses import replace

import polars as pl
from typer.testing import CliRunner

from citykpi.cli import app
from citykpi.render.views import league_table
from tests.golden_support import SampleCity
from tests.scorecard_fixtures import make_scorecard


def test_an_index_changes_against_its_previous_score() -> None:
    now = make_scorecard()
    before = replace(now, indices=now.indices.with_columns(pl.col("score") - 2.5))
    table = league_table(now, "index.operation", level="district", previous=before)
    assert table["change_previous"].to_list() == [2.5, 2.5]
    assert set(table["change_unit"].to_list()) == {"points"}
    alone = league_table(now, "index.operation", level="district")  # nothing to compare with
    assert alone["change_previous"].null_count() == alone.height


def test_areas_without_a_colour_are_listed_last_and_not_ranked() -> None:
    table = league_table(
        make_scorecard(), "water.supply.pressure_ok", level="district", direction="higher_is_better"
    )
    # Yuzhong is stale and Yubei has no data: neither outranks anything, and neither gets a number
    assert table["status"].to_list() == ["stale", "no_data"]
    assert table["rank"].to_list() == [None, None]
    ranked = league_table(make_scorecard(), "env.air.aqi", level="district", direction="lower_is_better")
    assert ranked["rank"].to_list() == [1, 2]


def _rank(city: SampleCity, *args: str) -> tuple[int, str, str]:
    runner = CliRunner(env={"COLUMNS": "120", "NO_COLOR": "1"})
    r = runner.invoke(app, ["--db", str(city.db), "--catalogue", str(city.catalogue), "rank", *args])
    return r.exit_code, r.stdout, r.stderr


def test_an_empty_level_says_why(sample_city: SampleCity) -> None:
    code, out, _ = _rank(
        sample_city, "env.air.aqi", "--level", "street", "--date", "2025-12-31", "--lang", "en"
    )
    assert code == 0
    assert out.strip() == "no street-level areas to rank: env.air.aqi is reported at city, district only"
    code, out, err = _rank(
        sample_city, "env.air.aqi", "--level", "street", "--date", "2025-12-31", "--format", "csv"
    )
    assert code == 0 and out.startswith("rank,area_id") and "reported at city, district only" in err


def test_the_index_league_has_a_change_column(sample_city: SampleCity) -> None:
    code, out, _ = _rank(sample_city, "index.operation", "--date", "2025-12-31", "--format", "csv")
    assert code == 0
    frame = pl.read_csv(out.encode())
    assert frame.height == 40 and frame["change_previous"].null_count() < frame.height
