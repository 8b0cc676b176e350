"""Every listing command takes --format json|csv|… through the shared exporter, and the files parse."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from citykpi.catalogue import load_catalogue
from citykpi.cli import app
from citykpi.engine.evaluate import evaluate
from citykpi.notify.digest import Digest, NotifierPlan, empty_state
from citykpi.notify.outbox import queue
from citykpi.warehouse import Warehouse, ingest, load_areas
from tests.scorecard_city import START, write_city, write_days

DAY = "2026-11-19"
LISTINGS = {
    "alerts": ["alerts", "--date", DAY],
    "rank": ["rank", "env.air.aqi", "--date", DAY],
    "show": ["show", "env.air.aqi", "--to", DAY],
    "diff": ["diff"],
    "runs list": ["runs", "list"],
    "db rejects": ["db", "rejects"],
    "alerts silences": ["alerts", "silences", "--all"],
    "alerts outbox": ["alerts", "outbox", "--all"],
}


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The tiny city with two scheduled runs, a rejected row and a silence."""
    root = tmp_path_factory.mktemp("listings")
    paths = write_city(root)
    files = write_days(paths["inbox"], START, START.replace(day=19))
    bad = root / "bad.csv"
    bad.write_text("indicator_id,area_id,period,value\nenv.air.aqi,999,2026-11-19,1\n", encoding="utf-8")
    catalogue = load_catalogue(paths["catalogue"])
    with Warehouse.open(paths["db"]) as wh:
        load_areas(wh, paths["areas"])
        ingest(wh, catalogue, [*files, bad])
        for day in (START.replace(day=18), START.replace(day=19)):
            evaluate(wh, catalogue, as_of=day, scheduled=True)
        digest = Digest("duty", "citykpi-k", 2, START.replace(day=19), "day", 1, {"key": "citykpi-k"})
        queue(wh, [NotifierPlan("duty", digest, empty_state())], now=datetime(2026, 11, 20, tzinfo=UTC))
    base = ["--db", str(paths["db"]), "--catalogue", str(paths["catalogue"])]
    added = CliRunner().invoke(
        app, [*base, "alerts", "silence", "add", "--indicator", "env.*", "--for", "1d", "--reason", "test"]
    )
    assert added.exit_code == 0, added.output
    return base


@pytest.mark.parametrize("name", list(LISTINGS))
def test_json_and_csv(db: list[str], name: str) -> None:
    as_json = CliRunner().invoke(app, [*db, *LISTINGS[name], "--format", "json"])
    assert as_json.exit_code == 0, as_json.output
    rows = json.loads(as_json.stdout)
    assert isinstance(rows, list) and rows and isinstance(rows[0], dict), name
    as_csv = CliRunner().invoke(app, [*db, *LISTINGS[name], "--format", "csv"])
    assert as_csv.exit_code == 0, as_csv.output
    table = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert len(table) == len(rows) and list(table[0]) == list(rows[0]), name


@pytest.mark.parametrize("fmt", ["jsonl", "markdown", "parquet"])
def test_the_other_table_formats(db: list[str], fmt: str, tmp_path: Path) -> None:
    out = tmp_path / f"silences.{ {'markdown': 'md'}.get(fmt, fmt) }"
    r = CliRunner().invoke(app, [*db, "alerts", "silences", "--format", fmt, "--output", str(out)])
    assert r.exit_code == 0 and out.stat().st_size > 0, r.output
