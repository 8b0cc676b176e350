"""`citykpi db rejects`: the batches that rejected rows, and one batch's rows to fix or send back."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from citykpi.cli import app
from citykpi.warehouse import IngestOptions, ingest, reject_batches, reject_rows, resolve_batch
from tests._warehouse_support import catalogue, open_with_areas, write

HEADER = "indicator_id,area_id,period,value\n"
NOW = datetime(2025, 6, 1)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """Three batches: clean, two bad rows (one a formula-like cell), one bad row."""
    with open_with_areas(tmp_path) as wh:
        files = [
            write(tmp_path / "clean.csv", HEADER + "env.air.aqi,北京,2024-01-02,5\n"),
            write(
                tmp_path / "mixed.csv",
                HEADER + "env.air.aqi,北京,2024-01-03,5\nenv.air.aqi,火星,2024-01-03,6\n"
                "env.air.aqi,上海,2024-01-03,=1+2\n",
            ),
            write(
                tmp_path / "late.csv",
                HEADER + "env.air.aqi,上海,2030-01-01,7\nenv.air.aqi,上海,2024-01-04,8\n",
            ),
        ]
        ingest(wh, catalogue(), files, IngestOptions(now=NOW))
    return tmp_path / "test.duckdb"


def cli(db: Path, *args: str) -> Result:
    return CliRunner(env={"COLUMNS": "120"}).invoke(app, ["--db", str(db), "db", "rejects", *args])


def test_library(db: Path) -> None:
    from citykpi.warehouse import Warehouse

    with Warehouse.open(db, read_only=True) as wh:
        batches = reject_batches(wh)
        assert batches.get_column("batch_id").to_list() == [3, 2]
        assert batches.row(1, named=True)["reasons"] == (
            "1 × unknown area id (load it with `citykpi areas load`); 1 × unparseable number"
        )
        assert resolve_batch(wh, "latest") == 3 and resolve_batch(wh, "2") == 2
        rows = reject_rows(wh, 2)
        assert rows.select("row_number", "column_name", "value").rows() == [
            (2, "area_id", "火星"),
            (3, "value", "=1+2"),
        ]


def test_summary_and_rows_in_the_terminal(db: Path) -> None:
    summary = cli(db)
    assert summary.exit_code == 0, summary.output
    assert "batches with rejected rows" in summary.stdout and "mixed.csv" in summary.stdout
    assert "clean.csv" not in summary.stdout
    rows = cli(db, "--batch", "latest")
    assert rows.exit_code == 0, rows.output
    assert "batch 3: 1 rejected row(s)" in rows.stdout and "period in the future" in rows.stdout


def test_csv_to_send_back_neutralises_formulas(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "back.csv"
    r = cli(db, "--batch", "2", "--format", "csv", "--output", str(out))
    assert r.exit_code == 0, r.output
    assert f"wrote {out} (2 rows)" in r.stderr
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert [(x["row_number"], x["column_name"], x["value"]) for x in rows] == [
        ("2", "area_id", "火星"),
        ("3", "value", "'=1+2"),
    ]
    assert rows[0]["path"].endswith("mixed.csv")


def test_json_to_stdout(db: Path) -> None:
    r = cli(db, "--batch", "3", "--format", "json")
    assert r.exit_code == 0, r.output
    assert [x["reason"] for x in json.loads(r.stdout)] == ["period in the future"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--batch", "99"], "no batch 99"),
        (["--batch", "seven"], "expected a batch number or 'latest'"),
        (["--format", "xml"], "--format"),
        (["--output", "x.csv"], "--output needs an export format"),  # as for every table command
    ],
)
def test_usage_errors(db: Path, args: list[str], message: str) -> None:
    r = cli(db, *args)
    assert r.exit_code == 2 and message in r.stderr


def test_a_clean_database(tmp_path: Path) -> None:
    with open_with_areas(tmp_path):
        pass
    db = tmp_path / "test.duckdb"
    assert "no batch has rejected rows" in cli(db).stdout
    r = cli(db, "--batch", "latest")
    assert r.exit_code == 2 and "no batch has rejected rows" in r.stderr
