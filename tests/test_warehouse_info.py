"""`db info`, the read-only `query`, and the ingest command through the CLI."""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from citykpi.cli import app
from citykpi.errors import QueryError, UsageError, WarehouseError
from citykpi.warehouse import IngestOptions, Warehouse, db_info, ingest, run_query
from citykpi.warehouse.schema import OBSERVATION_COLUMNS, SCHEMA_VERSION
from tests._warehouse_support import DATA, catalogue, checksum, open_with_areas, write

CSV = "indicator_id,area_id,period,value\nenv.air.aqi,重庆,2024-01-01,55\nenv.air.aqi,成都,2024-01-02,60\n"
BAD = CSV + "env.air.aqi,火星,2024-01-01,1\n"


@pytest.fixture
def db(tmp_path: Path) -> Path:
    with open_with_areas(tmp_path) as wh:
        ingest(wh, catalogue(), [write(tmp_path / "a.csv", CSV)], IngestOptions())
    return tmp_path / "test.duckdb"


def test_db_info(db: Path) -> None:
    with Warehouse.open(db, read_only=True) as wh:
        info = db_info(wh)
    assert info.tables["observations"] == 2
    assert info.areas == 11 and info.indicators == 8
    assert (info.observations_from, info.observations_to) == (datetime(2024, 1, 1), datetime(2024, 1, 2))
    assert info.batches["rows_loaded"].to_list() == [2]
    assert json.loads(json.dumps(info.to_dict()))["schema_version"] == SCHEMA_VERSION


def test_query_reads(db: Path) -> None:
    frame = run_query(db, "SELECT count(*) AS n FROM observations")
    assert frame["n"].to_list() == [2]
    assert run_query(db, "WITH x AS (SELECT 1 AS a) SELECT * FROM x")["a"].to_list() == [1]
    assert "observations" in run_query(db, "SHOW TABLES")["name"].to_list()
    assert run_query(db, "DESCRIBE observations").height == len(OBSERVATION_COLUMNS)
    assert run_query(db, "EXPLAIN SELECT * FROM areas").height >= 1


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("COPY observations TO '/tmp/x.csv'", "not COPY"),
        ("ATTACH '/tmp/other.duckdb'", "not ATTACH"),
        ("INSTALL httpfs", "not INSTALL$"),
        ("FORCE INSTALL httpfs", "not FORCE INSTALL$"),
        ("LOAD httpfs", "not LOAD$"),
        ("/* hidden */ -- comment\ninstall httpfs", "not INSTALL$"),
        ("USE memory", "not USE$"),
        ("UPDATE EXTENSIONS", "not UPDATE$"),
        ("DELETE FROM observations", "not DELETE"),
        ("CREATE TABLE x (a INT)", "not CREATE"),
        ("PRAGMA version", "not PRAGMA"),
        ("SET threads = 1", "not SET"),
        ("SELECT 1; SELECT 2", "exactly one SQL statement, got 2"),
        ("", "exactly one SQL statement, got 0"),
        (
            "SELECT * FROM read_csv('/etc/passwd')",
            "not allowed in a query: .*file system operations are disabled",
        ),
        ("SELECT * FROM read_parquet('/tmp/x.parquet')", "file system operations are disabled"),
    ],
)
def test_query_refuses_anything_but_reads(db: Path, sql: str, message: str) -> None:
    before = db.read_bytes()
    with pytest.raises(UsageError) as caught:
        run_query(db, sql)
    assert re.search(message, caught.value.message), caught.value.message
    assert db.read_bytes() == before


@pytest.mark.parametrize(
    ("sql", "message", "hint"),
    [
        ("SELEC 1", '^cannot parse the query: Parser Error: syntax error at or near "SELEC"$', None),
        (
            "SELECT * FROM nowhere",
            "^query failed: Catalog Error: Table with name nowhere does not exist!$",
            "Did you mean",
        ),
        ("SELECT nocol FROM areas", "^query failed: Binder Error: .*nocol", None),
        ("SELECT 'x'::INT", "^query failed: Conversion Error: Could not convert string 'x' to INT32$", None),
    ],
)
def test_failing_sql_is_a_database_error_in_one_line(
    db: Path, sql: str, message: str, hint: str | None
) -> None:
    before = db.read_bytes()
    with pytest.raises(QueryError) as caught:
        run_query(db, sql)
    assert re.search(message, caught.value.message), caught.value.message
    assert caught.value.exit_code == 3
    assert (caught.value.hint or "").startswith(hint or "")
    assert db.read_bytes() == before


def test_query_missing_database(tmp_path: Path) -> None:
    with pytest.raises(WarehouseError, match="no database at"):
        run_query(tmp_path / "none.duckdb", "SELECT 1")
    assert not (tmp_path / "none.duckdb").exists()


def _cli(db: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["--db", str(db), "--catalogue", str(DATA / "catalogue_cn10"), *args])
    return result.exit_code, result.output


def test_cli_db_info_and_query(db: Path) -> None:
    code, out = _cli(db, "db", "info")
    assert code == 0 and "observations" in out and "2024-01-01" in out
    code, out = _cli(db, "db", "info", "--format", "json")
    assert code == 0 and json.loads(out)["tables"]["observations"] == 2
    code, out = _cli(db, "query", "SELECT area_id FROM areas WHERE level = 'city'", "--format", "csv")
    assert (code, out) == (0, "area_id\ncn\n")
    code, out = _cli(db, "query", "SELECT count(*) AS n FROM observations", "--format", "json")
    assert code == 0 and json.loads(out) == [{"n": 2}]
    code, out = _cli(db, "query", "SELECT 42 AS answer")
    assert code == 0 and "42" in out
    code, out = _cli(db, "query", "DROP TABLE observations")
    assert code == 2 and "not DROP" in out
    code, out = _cli(db, "query", "INSTALL httpfs")
    assert code == 2 and "not INSTALL\n" in out
    for failing in ("SELECT * FROM nowhere", "SELEC 1", "SELECT 'x'::INT"):
        code, out = _cli(db, "query", failing)
        assert code == 3 and out.startswith("Error: ") and "Traceback" not in out, (failing, out)
        assert "LINE 1" not in out  # one line, not the engine's caret picture
    code, out = _cli(db, "query", "SELECT 1", "--format", "xml")
    assert code == 2


def test_cli_ingest_exit_codes(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    assert _cli(db, "areas", "load", str(DATA / "areas_cn10.csv"))[0] == 0
    good, bad = write(tmp_path / "good.csv", CSV), write(tmp_path / "bad.csv", BAD.replace("55", "56"))

    code, out = _cli(db, "ingest", str(good), "--dry-run")
    assert code == 0 and "dry_run" in out and "would load 2 rows" in out
    code, out = _cli(db, "ingest", str(good))
    assert code == 0 and "loaded" in out and "(batch 1)" in out
    code, out = _cli(db, "ingest", str(good))
    assert code == 0 and "unchanged" in out

    with Warehouse.open(db) as wh:
        before = checksum(wh)
    code, out = _cli(db, "ingest", str(bad), "--strict", "--quiet")
    assert code == 1 and "rejected" in out and "unknown area id" in out
    code, out = _cli(db, "ingest", str(bad), "--on-duplicate", "replace")
    assert code == 1 and "1 rejected" in out and "2 replaced" in out
    assert "(batch 3)" in out and "(the rows: citykpi db rejects --batch 3)" in out
    with Warehouse.open(db) as wh:
        assert checksum(wh) != before
        assert wh.con.execute("SELECT count(*) FROM observations_superseded").fetchall() == [(2,)]

    code, out = _cli(db, "ingest", str(tmp_path / "missing.csv"))
    assert code == 2 and "no such file or directory" in out
    code, out = _cli(db, "ingest", str(good), "--on-duplicate", "merge")
    assert code == 2
    code, out = _cli(db, "ingest", str(good), "--map", "nonsense")
    assert code == 2 and "expected NAME=VALUE" in out
    code, out = _cli(db, "ingest", str(good), "--date-format", "period")
    assert code == 2 and "--date-format 'period': expected NAME=VALUE" in out
    ragged = write(
        tmp_path / "ragged.csv", "indicator_id,area_id,period,value\nenv.air.aqi,重庆,2024-01-01\n"
    )
    code, out = _cli(db, "ingest", str(ragged))
    assert code == 1 and "rows have different numbers of fields" in out
    assert "fix the file so that every line has as many fields as the header" in out  # what to do
    fresh = tmp_path / "fresh.duckdb"
    code, out = _cli(fresh, "ingest", str(good), "--on-duplicate", "merge")
    assert code == 2 and not fresh.exists()  # a usage error creates no database


def test_cli_ingest_json_report(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    assert _cli(db, "areas", "load", str(DATA / "areas_cn10.csv"))[0] == 0
    good, bad = write(tmp_path / "good.csv", CSV), write(tmp_path / "bad.csv", BAD.replace("55", "56"))
    cat = str(DATA / "catalogue_cn10")
    result = CliRunner().invoke(
        app, ["--db", str(db), "--catalogue", cat, "ingest", "--json", str(good), str(bad)]
    )
    assert result.exit_code == 1  # bad.csv has a bad row (and clashes with good.csv)
    report = json.loads(result.stdout)  # stdout is the JSON alone: no progress or summary lines
    files = {Path(f["path"]).name: f for f in report["files"]}
    assert (files["good.csv"]["status"], files["good.csv"]["rows_loaded"], files["good.csv"]["batch_id"]) == (
        "loaded",
        2,
        1,
    )
    assert files["bad.csv"]["rejects"]["unknown area id (load it with `citykpi areas load`)"] == 1
    assert report["dry_run"] is False


def test_cli_ingest_wide_and_source(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    _cli(db, "areas", "load", str(DATA / "areas_cn10.csv"))
    wide = write(tmp_path / "w.csv", "city,date,AQI,PM2.5\n重庆,2024-01-01,50,20\n")
    code, out = _cli(
        db,
        "ingest",
        str(wide),
        "-f",
        "wide",
        "--map",
        "area_id=city",
        "--map",
        "period=date",
        "--map",
        "AQI=env.air.aqi",
        "--map",
        "PM2.5=env.air.pm25",
    )
    assert code == 0, out
    assert "2 loaded" in out

    nyc = tmp_path / "n.duckdb"
    _cli(nyc, "areas", "load", str(DATA / "areas_nyc.yaml"))
    cases = write(
        tmp_path / "c.csv",
        "Unique Key,Created Date,Closed Date,Agency,Complaint Type,Borough,Latitude\n"
        "1,02/28/2023 11:31:00 PM,,DOT,Noise,BRONX,40.1\n",
    )
    fmt = "%m/%d/%Y %I:%M:%S %p"
    code, out = _cli(
        nyc,
        "ingest",
        str(cases),
        "--format",
        "source",
        "--source",
        "nyc311",
        "--date-format",
        f"created_date={fmt}",
        "--date-format",
        f"closed_date={fmt}",
    )
    assert code == 0, out
    with Warehouse.open(nyc) as wh:
        assert wh.con.execute("SELECT created_date FROM src_nyc311").fetchall() == [
            (datetime(2023, 2, 28, 23, 31),)
        ]


def test_help_texts() -> None:
    for args in (
        ["ingest", "--help"],
        ["areas", "load", "--help"],
        ["db", "info", "--help"],
        ["query", "--help"],
    ):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0 and "Example" in result.output
    out = CliRunner().invoke(app, ["ingest", "--help"]).output
    assert "Exit codes" in out
