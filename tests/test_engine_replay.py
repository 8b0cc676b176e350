"""Retrospection: a recorded scorecard is reproduced exactly after later corrections were ingested."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import polars as pl

from citykpi.catalogue.model import Catalogue
from citykpi.engine.evaluate import evaluate
from citykpi.engine.runs import diff_runs, load_run
from citykpi.warehouse.ingest import IngestOptions, ingest
from tests.engine_helpers import City, indicator


def _csv(path: Path, rows: list[tuple[str, str, str, float]]) -> Path:
    lines = ["indicator_id,area_id,period,value", *(f"{i},{a},{p},{v}" for i, a, p, v in rows)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_replay_as_ingested_reproduces_the_recorded_run(tmp_path: Path) -> None:
    city = City(tmp_path)
    cat = Catalogue(indicators=(indicator("t.x"),))
    first = _csv(tmp_path / "day1.csv", [("t.x", "D1", "2025-06-29", 5.0), ("t.x", "D1", "2025-06-30", 45.0)])
    now = datetime(2025, 7, 1)
    ingest(city.wh, cat, [first], IngestOptions(now=now))
    # sandbox=False: this connection ingests again below (the sandbox forbids file access until closed)
    run1 = evaluate(city.wh, cat, as_of=date(2025, 6, 30), sandbox=False)
    assert run1.cells.filter(pl.col("area_id") == "D1")["status"].item() == "red"

    # a correction arrives later: the red value was a sensor fault
    fix = _csv(tmp_path / "fix.csv", [("t.x", "D1", "2025-06-30", 12.0)])
    report = ingest(city.wh, cat, [fix], IngestOptions(on_duplicate="replace", now=now))
    assert report.files[0].rows_replaced == 1
    run2 = evaluate(city.wh, cat, as_of=date(2025, 6, 30))
    assert run2.cells.filter(pl.col("area_id") == "D1")["status"].item() == "blue"
    changes = diff_runs(city.wh, run1.run_id, run2.run_id)
    assert changes.filter(pl.col("area_id") == "D1")["change"].item() == "recovered"

    # replaying what was known at run 1 gives run 1's cells exactly
    replay = evaluate(city.wh, cat, as_of=date(2025, 6, 30), as_ingested=int(run1.meta["max_batch_id"]))
    keep = ["indicator_id", "area_id", "value", "status", "severity"]
    assert replay.cells.select(keep).equals(run1.cells.select(keep))
    stored = load_run(city.wh, run1.run_id, cat)
    assert stored.cells.select(keep).sort("area_id").equals(run1.cells.select(keep).sort("area_id"))
    city.wh.close()
