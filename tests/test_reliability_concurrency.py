"""Two writers at once: the second waits (--wait) or gets the busy error (exit 3; `run`: 75); never corruption.

A first process is paused at a chosen point (inside its ingest transaction, or while writing a run's
exports); a second process then tries to work on the same database.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest

from citykpi.catalogue import load_catalogue
from citykpi.warehouse import Warehouse, ingest
from tests.reliability_support import (
    build_city,
    check_invariants,
    cli,
    start_cli,
    start_paused,
    wait_for,
    write_config,
)
from tests.scorecard_city import START, write_city, write_day, write_days

HOLD = 60.0  # the longest the first process stays paused (the test releases it earlier)


@pytest.fixture
def city(tmp_path: Path) -> dict[str, Path]:
    """The tiny city with a week loaded and one run; two new day files ready to ingest."""
    paths = build_city(tmp_path)
    extra = tmp_path / "extra"
    extra.mkdir()
    paths["a"] = write_day(extra, START + timedelta(days=7))
    paths["b"] = write_day(extra, START + timedelta(days=8))
    paths["release"] = tmp_path / "release"
    return paths


def _db(paths: dict[str, Path]) -> list[str]:
    return ["--db", str(paths["db"]), "--catalogue", str(paths["catalogue"])]


def _waits_then_finishes(waiter: subprocess.Popen[str], release: Path) -> tuple[int, str]:
    """The waiter is still waiting while the first process holds the database; release it; collect."""
    time.sleep(0.6)
    assert waiter.poll() is None, "the --wait process did not wait"
    release.touch()
    _out, err = waiter.communicate(timeout=120)
    return waiter.returncode, err


def test_two_ingests_at_once(city: dict[str, Path]) -> None:
    before = check_invariants(city["db"])
    first = start_paused("ingest", HOLD, *_db(city), "ingest", city["a"], release=city["release"])
    try:
        wait_for(first, "inserted")
        busy = cli(*_db(city), "ingest", city["b"])
        assert busy.returncode == 3, busy.stderr
        assert "is busy (another citykpi process is writing); retry, or pass --wait SECONDS" in busy.stderr
        code, err = _waits_then_finishes(
            start_cli(*_db(city), "ingest", city["b"], "--wait", "60"), city["release"]
        )
        assert code == 0, err
    finally:
        city["release"].touch()
        first.wait(timeout=60)
    assert first.returncode == 0
    after = check_invariants(city["db"])
    assert (after.loaded_batches, after.observations) == (before.loaded_batches + 2, before.observations + 8)


def test_ingest_beside_evaluate_and_readers(city: dict[str, Path]) -> None:
    before = check_invariants(city["db"])
    first = start_paused("ingest", HOLD, *_db(city), "ingest", city["a"], release=city["release"])
    try:
        wait_for(first, "inserted")
        for args in (
            ["evaluate", "--record"],
            ["evaluate"],  # a read-only look is a reader: busy too
            ["db", "info"],
            ["query", "SELECT count(*) FROM observations"],
        ):
            busy = cli(*_db(city), *args)
            assert busy.returncode == 3 and "is busy" in busy.stderr, (args, busy.stderr)
        waiter = start_cli(
            *_db(city), "evaluate", "--date", "2026-11-08", "--format", "json", "--record", "--wait", "60"
        )
        code, err = _waits_then_finishes(waiter, city["release"])
        assert code == 0, err
    finally:
        city["release"].touch()
        first.wait(timeout=60)
    after = check_invariants(city["db"])
    assert after.runs == before.runs + 1 and after.observations == before.observations + 4
    # the evaluation that waited saw the finished batch: its run records the new max batch id
    with Warehouse.open(city["db"], read_only=True) as wh:
        max_batch = wh.con.execute("SELECT max(batch_id) FROM batches").fetchall()[0][0]
        recorded = wh.con.execute("SELECT max_batch_id FROM runs ORDER BY run_id DESC LIMIT 1").fetchall()[0][
            0
        ]
    assert recorded == max_batch


def test_two_runs_at_once(tmp_path: Path) -> None:
    paths = write_city(tmp_path)
    config = write_config(tmp_path)
    day = START + timedelta(days=3)
    write_days(paths["inbox"], START, day)
    release = tmp_path / "release"
    first = start_paused(
        "export", HOLD, "run", "--config", config, "--date", day.isoformat(), release=release
    )
    try:
        wait_for(first, "written")
        busy = cli("run", "--config", config, "--date", day.isoformat())
        assert busy.returncode == 75, busy.stderr  # busy: try later (sysexits EX_TEMPFAIL)
        assert "another citykpi run holds" in busy.stderr
        # while a run writes its exports it has closed the database: a plain ingest may use it
        late = write_day(tmp_path, START + timedelta(days=4))
        beside = cli("--db", paths["db"], "--catalogue", paths["catalogue"], "ingest", late)
        assert beside.returncode == 0, beside.stderr
        code, err = _waits_then_finishes(
            start_cli("run", "--config", config, "--date", day.isoformat(), "--wait", "60"), release
        )
        assert code == 0, err
        assert "no new files" in err
    finally:
        release.touch()
        first.wait(timeout=60)
    assert first.returncode == 0
    facts = check_invariants(paths["db"])
    assert (facts.loaded_batches, facts.observations, facts.runs) == (5, 20, 2)  # each file once, two runs


def test_readers_see_a_consistent_snapshot(tmp_path: Path) -> None:
    """In one process, a reader during an ingest transaction sees the database as before it, then all of it."""
    ingest_mod = sys.modules["citykpi.warehouse.ingest"]  # the package re-exports a function of that name

    paths = build_city(tmp_path)
    data = write_day(tmp_path, START + timedelta(days=7))
    catalogue = load_catalogue(paths["catalogue"])
    inside = threading.Event()
    release = threading.Event()
    original = ingest_mod._Plan.load

    def paused(self: object, con: object, path: str, writing: object) -> object:
        result = original(self, con, path, writing)  # type: ignore[arg-type]
        inside.set()
        release.wait(30)
        return result

    seen: list[tuple[int, int]] = []
    with Warehouse.open(paths["db"]) as wh:
        reader = wh.con.cursor()

        def counts() -> tuple[int, int]:
            row = reader.execute(
                "SELECT (SELECT count(*) FROM observations), (SELECT count(*) FROM batches)"
            ).fetchall()[0]
            return int(row[0]), int(row[1])

        start = counts()
        ingest_mod._Plan.load = paused  # type: ignore[method-assign]
        try:
            worker = threading.Thread(target=lambda: ingest(wh, catalogue, [data]))
            worker.start()
            assert inside.wait(30)
            for _ in range(5):
                seen.append(counts())
                time.sleep(0.05)
            release.set()
            worker.join(30)
        finally:
            ingest_mod._Plan.load = original  # type: ignore[method-assign]
        end = counts()
        reader.close()
    assert set(seen) == {start}, "a reader saw part of an uncommitted batch"
    assert end == (start[0] + 4, start[1] + 1)
