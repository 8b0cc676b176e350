"""Soak (slow): 30 simulated days of inbox files through `citykpi run` on the sample city.

Each day one file of daily observations (every district and street) lands in the inbox and the real
CLI runs for that day. Database size and run time per day must stay flat, and the last day's results
must equal a one-shot evaluation of the same data loaded at once. Run with ``pytest -m slow -s`` to see
the figures.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import shutil
import statistics
import time
from datetime import date
from pathlib import Path

import pytest

from citykpi.catalogue import load_catalogue
from citykpi.engine.evaluate import evaluate
from citykpi.warehouse import Warehouse, ingest
from citykpi.warehouse.ingest import IngestOptions
from tests.reliability_support import check_invariants, cli, sample_city

DAYS = int(os.environ.get("CITYKPI_SOAK_DAYS", "30"))


def _size(db: Path) -> int:
    wal = db.with_name(db.name + ".wal")
    return db.stat().st_size + (wal.stat().st_size if wal.exists() else 0)


@pytest.mark.slow
def test_thirty_days_stay_flat_and_match_a_one_shot_evaluation(tmp_path: Path) -> None:
    city = sample_city(tmp_path / "soak", days=DAYS)
    pending = sorted(city["pending"].iterdir())
    assert len(pending) == DAYS
    inbox = city["config"].parent / "inbox"
    seconds: list[float] = []
    sizes: list[int] = [_size(city["db"])]
    for f in pending:
        day = f.name[6:16]
        shutil.move(str(f), str(inbox / f.name))
        started = time.monotonic()
        result = cli("run", "--config", city["config"], "--date", day, timeout=600)
        seconds.append(time.monotonic() - started)
        # 4 (partial) when some of the sample city's feeds are stale, which it scripts
        assert result.returncode in (0, 4), result.stderr[-3000:]
        assert result.returncode == 0 or "stale cell(s): a feed stopped delivering" in result.stderr
        assert f"ingest {f.name}: loaded" in result.stderr
        sizes.append(_size(city["db"]))
    facts = check_invariants(city["db"])
    assert facts.runs == DAYS and facts.loaded_batches >= DAYS

    growth = [b - a for a, b in itertools.pairwise(sizes)]
    print(f"\nsoak: {DAYS} days; run seconds per day: {[round(s, 2) for s in seconds]}")
    print(f"soak: database MiB after each day: {[round(s / 2**20, 1) for s in sizes]}")
    print(f"soak: growth per day MiB: {[round(g / 2**20, 2) for g in growth]}")
    # flat run time: the last week is not much slower than the first (after day 1's warm-up)
    first, last = statistics.median(seconds[1:8]), statistics.median(seconds[-7:])
    print(f"soak: median run time days 2-8 {first:.2f} s, last 7 days {last:.2f} s")
    assert last <= 2.0 * first + 1.0, (first, last)
    # flat growth: the database grows by about one day's data, not by its own size
    early, late = statistics.mean(growth[:10]), statistics.mean(growth[-10:])
    print(f"soak: mean growth per day, first 10 days {early / 2**20:.2f} MiB, last 10 {late / 2**20:.2f} MiB")
    assert late <= 2.0 * early + 4 * 2**20, (early, late)
    assert max(growth) <= 32 * 2**20

    # the last day equals one evaluation of the same data loaded at once
    last_day = pending[-1].name[6:16]
    soaked = json.loads(
        (city["config"].parent / "out" / f"scorecard-{last_day}-day.json").read_text(encoding="utf-8")
    )
    once_db = tmp_path / "once.duckdb"
    catalogue = load_catalogue(city["catalogue"])
    from citykpi.sample import load_sample

    with Warehouse.open(once_db) as wh:
        load_sample(wh, catalogue, city["gen"])
        done = sorted((inbox / "done").iterdir())
        report = ingest(wh, catalogue, done, IngestOptions())
        assert report.rows_rejected == 0 and len(done) == DAYS
        once = evaluate(wh, catalogue, as_of=date.fromisoformat(last_day), persist=False)
    expected = {(c["indicator_id"], c["area_id"]): c for c in once.cells.to_dicts()}
    got = {(c["indicator_id"], c["area_id"]): c for c in soaked["cells"]}
    assert got.keys() == expected.keys()
    mismatched = []
    for key, cell in got.items():
        want = expected[key]
        same_value = (cell["value"] is None and want["value"] is None) or (
            cell["value"] is not None
            and want["value"] is not None
            and math.isclose(cell["value"], want["value"], rel_tol=1e-9, abs_tol=1e-9)
        )
        if not same_value or cell["status"] != want["status"] or cell["streak"] != want["streak"]:
            mismatched.append((key, cell["value"], want["value"], cell["status"], want["status"]))
    print(f"soak: last day {last_day}: {len(got)} cells compared with the one-shot evaluation")
    assert not mismatched, mismatched[:10]
