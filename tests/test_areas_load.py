"""`areas load`: formats, hierarchy validation with file:row, atomic replace, stable keys."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from citykpi.cli import app
from citykpi.errors import DataError
from citykpi.warehouse import Warehouse, load_areas
from tests._warehouse_support import DATA, checksum, open_with_areas, write

HEADER = "id,name,name_en,level,parent,population,groups\n"
GOOD = (
    HEADER
    + "c,市,City,city,,100,\nd1,一区,D1,district,c,60,core;north\nd2,二区,D2,district,c,40,\ns1,街,S1,street,d1,,\n"
)


def test_csv_yaml_parquet_load(tmp_path: Path) -> None:
    with Warehouse.open(tmp_path / "w.duckdb") as wh:
        report = load_areas(wh, write(tmp_path / "a.csv", GOOD))
        assert report.total == 4
        assert report.by_level == {"city": 1, "district": 2, "street": 1}
        frame = wh.areas()
        assert frame.filter(pl.col("area_id") == "d1")["groups"].to_list() == [["core", "north"]]
        assert frame.filter(pl.col("area_id") == "s1")["parent_id"].to_list() == ["d1"]

    with Warehouse.open(tmp_path / "y.duckdb") as wh:
        report = load_areas(wh, DATA / "areas_nyc.yaml")
        assert report.total == 7
        si = wh.areas().filter(pl.col("area_id") == "STATEN ISLAND").row(0, named=True)
        assert si["groups"] == ["outer"]
        assert si["population"] == 495747

    pq = tmp_path / "a.parquet"
    pl.read_csv(tmp_path / "a.csv", infer_schema=False).write_parquet(pq)
    with Warehouse.open(tmp_path / "p.duckdb") as wh:
        assert load_areas(wh, pq).total == 4


def test_gb18030_areas_csv(tmp_path: Path) -> None:
    with Warehouse.open(tmp_path / "w.duckdb") as wh:
        load_areas(wh, write(tmp_path / "a.csv", GOOD, encoding="gb18030"))
        assert "一区" in wh.areas()["name"].to_list()


# Locations are file:row with 1-based *data* rows (the header is not counted), as in the rejects table.
BAD = [
    (HEADER + "c,市,City,city,,,\nc,市,City,district,c,,\n", "a.csv:2: duplicate area id 'c' (first at"),
    (HEADER + "c,市,City,city,,,\nd,区,D,county,c,,\n", "a.csv:2: area 'd' has unknown level 'county'"),
    (HEADER + "d1,区,D,district,d2,,\nd2,区,D,district,d1,,\n", "no root area (level city, no parent)"),
    (HEADER + "d,区,D,district,x,,\n", "names parent 'x', which is not in the file"),
    (
        HEADER + "c,市,City,city,,,\ns,街,S,street,c,,\n",
        "a.csv:2: area 's' (level street) has parent 'c' of level city",
    ),
    (HEADER + "c,市,City,city,,,\nd,区,D,district,,,\n", "a.csv:2: area 'd' (level district) has no parent"),
    (HEADER + "c,市,City,city,,,\nd1,区,D,district,d2,,\nd2,区,D,district,d1,,\n", "parent cycle"),
    (HEADER + "c,市,City,city,,abc,\n", "a.csv:1: area 'c': population 'abc' is not a number"),
    ("id,name\nc,市\n", "missing column(s) level"),
    (HEADER, "no areas in the file"),
    (HEADER + ",市,City,city,,,\n", "a.csv:1: missing area id"),
]


@pytest.mark.parametrize(("text", "message"), BAD)
def test_bad_hierarchy_is_rejected_and_database_unchanged(tmp_path: Path, text: str, message: str) -> None:
    with open_with_areas(tmp_path) as wh:
        before = checksum(wh)
        with pytest.raises(DataError) as err:
            load_areas(wh, write(tmp_path / "a.csv", text))
        assert message in str(err.value)
        assert checksum(wh) == before


def test_yaml_errors_have_line_numbers(tmp_path: Path) -> None:
    text = "areas:\n  - {id: c, level: city}\n  - {id: d, level: district, parent: nope}\n"
    with Warehouse.open(tmp_path / "w.duckdb") as wh:
        with pytest.raises(DataError, match=r"a.yaml:3: area 'd' names parent 'nope'"):
            load_areas(wh, write(tmp_path / "a.yaml", text))
        with pytest.raises(DataError, match="not valid YAML"):
            load_areas(wh, write(tmp_path / "b.yaml", "areas: [\n"))


def test_reload_keeps_keys_and_refuses_to_drop_referenced_areas(tmp_path: Path) -> None:
    with Warehouse.open(tmp_path / "w.duckdb") as wh:
        load_areas(wh, write(tmp_path / "a.csv", GOOD))
        keys = dict(wh.areas().select("area_id", "area_key").iter_rows())
        # reorder and add an area: existing keys stay
        text = HEADER + "d3,三区,D3,district,c,,\n" + GOOD[len(HEADER) :]
        report = load_areas(wh, write(tmp_path / "b.csv", text))
        assert report.added == ("d3",)
        new = dict(wh.areas().select("area_id", "area_key").iter_rows())
        assert {k: new[k] for k in keys} == keys
        assert new["d3"] > max(keys.values())

        # an observation on d2, then a file without d2
        wh.con.execute(
            "INSERT INTO observations VALUES (1, ?, ?, 1.0, NULL, NULL, 1, 0)",
            [keys["d2"], datetime(2024, 1, 1)],
        )
        without_d2 = HEADER + "c,市,City,city,,100,\nd1,一区,D1,district,c,60,\ns1,街,S1,street,d1,,\n"
        before = checksum(wh)
        with pytest.raises(DataError, match=r"1 area\(s\) missing from the new file still have data: d2"):
            load_areas(wh, write(tmp_path / "c.csv", without_d2))
        assert checksum(wh) == before
        report = load_areas(wh, tmp_path / "c.csv", force=True)
        assert set(report.removed) == {"d2", "d3"}
        assert report.orphaned_observations == 1
        # a removed key is never handed out again
        load_areas(wh, write(tmp_path / "d.csv", without_d2 + "d9,九区,D9,district,c,,\n"))
        again = dict(wh.areas().select("area_id", "area_key").iter_rows())
        assert again["d9"] not in keys.values() and again["d9"] != new["d3"]


def test_cli_areas_load(tmp_path: Path) -> None:
    runner = CliRunner()
    db = str(tmp_path / "w.duckdb")
    result = runner.invoke(app, ["--db", db, "areas", "load", str(DATA / "areas_cn10.csv")])
    assert result.exit_code == 0, result.output
    assert "Loaded 11 areas (1 city, 10 district)" in result.output
    bad = write(tmp_path / "bad.csv", HEADER + "c,市,City,city,,,\nc,市,City,city,,,\n")
    result = runner.invoke(app, ["--db", db, "areas", "load", str(bad)])
    assert result.exit_code == 3
    assert "duplicate area id 'c'" in result.output


MANY_ROOTS = (
    HEADER + "DE,德国,Germany,city,,,\nFR,法国,France,city,,,\n"
    "DE1,柏林,Berlin,district,DE,,\nDE2,汉堡,Hamburg,district,DE,,\nFR1,巴黎,Paris,district,FR,,\n"
)


def test_several_roots_load_and_roll_up_each_on_its_own(tmp_path: Path) -> None:
    from datetime import date

    from citykpi.catalogue.model import Catalogue, Rollup
    from citykpi.engine.evaluate import evaluate
    from citykpi.warehouse import IngestOptions, ingest
    from tests.engine_helpers import indicator

    with Warehouse.open(tmp_path / "w.duckdb") as wh:
        report = load_areas(wh, write(tmp_path / "a.csv", MANY_ROOTS))
        assert (report.total, report.roots, report.by_level) == (5, 2, {"city": 2, "district": 3})
        assert wh.areas().filter(pl.col("area_id") == "FR1")["parent_id"].to_list() == ["FR"]
        pop = indicator("pop.total", rollup=Rollup(time="last", area="sum"), frequency="yearly")
        data = write(
            tmp_path / "o.csv",
            "indicator_id,area_id,period,value\n"
            "pop.total,DE1,2020,3\npop.total,DE2,2020,2\npop.total,FR1,2020,7\n",
        )
        ingest(wh, Catalogue(indicators=(pop,)), [data], IngestOptions(now=datetime(2024, 1, 1)))
        sc = evaluate(wh, Catalogue(indicators=(pop,)), as_of=date(2020, 12, 31), grain="year", persist=False)
        got = {r["area_id"]: (r["value"], r["source"]) for r in sc.cells.to_dicts()}
        # each country is the roll-up of its own cities only; no invented common root
        assert got["DE"] == (5.0, "rollup") and got["FR"] == (7.0, "rollup")


def test_cli_says_how_many_top_level_areas(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["--db", str(tmp_path / "w.duckdb"), "areas", "load", str(write(tmp_path / "a.csv", MANY_ROOTS))]
    )
    assert result.exit_code == 0, result.output
    assert "(2 city, 3 district; 2 top-level areas)" in result.output
