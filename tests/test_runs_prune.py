"""`citykpi runs prune`: old runs go (cells and index scores with them), recent ones and the latest stay."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from citykpi.cli import app
from citykpi.engine.runs import prune_runs
from citykpi.errors import UsageError
from citykpi.warehouse import Warehouse
from tests._warehouse_support import checksum

NOW = datetime(2026, 6, 30, 12, 0)


def make_runs(path: Path, ages_days: list[int]) -> None:
    """Runs 1..n recorded ``ages_days`` before NOW, each with 3 cells and 2 index scores."""
    with Warehouse.open(path) as wh:
        for run_id, age in enumerate(ages_days, start=1):
            created = NOW - timedelta(days=age)
            wh.con.execute(
                "INSERT INTO runs (run_id, created_at, as_of, grain, cells) VALUES (?, ?, ?, 'day', 3)",
                [run_id, created, created.date()],
            )
            for cell in range(3):
                wh.con.execute("INSERT INTO run_cells VALUES (?, ?, 1, 1.0, 'green', 0)", [run_id, cell + 1])
            for area in range(2):
                wh.con.execute(
                    "INSERT INTO run_indices VALUES (?, 'idx', ?, 80.0, 'green', 1.0)", [run_id, area + 1]
                )


def run_ids(path: Path) -> list[int]:
    with Warehouse.open(path, read_only=True) as wh:
        tables = {
            t: sorted({int(r[0]) for r in wh.con.execute(f"SELECT run_id FROM {t}").fetchall()})
            for t in ("runs", "run_cells", "run_indices")
        }
    assert tables["runs"] == tables["run_cells"] == tables["run_indices"]  # nothing orphaned
    return tables["runs"]


@pytest.mark.parametrize(
    ("keep", "keep_days", "kept"),
    [
        (2, None, [5, 6]),
        (None, 10, [4, 5, 6]),  # recorded 9, 3 and 2 days ago
        (2, 10, [4, 5, 6]),  # either rule keeps a run
        (5, 1, [2, 3, 4, 5, 6]),
        (1, None, [6]),
        (None, 1, [6]),  # nothing within a day but the latest, which is always kept
        (10, None, [1, 2, 3, 4, 5, 6]),
    ],
)
def test_rules(tmp_path: Path, keep: int | None, keep_days: int | None, kept: list[int]) -> None:
    db = tmp_path / "r.duckdb"
    make_runs(db, [400, 200, 30, 9, 3, 2])
    with Warehouse.open(db) as wh:
        report = prune_runs(wh, keep=keep, keep_days=keep_days, now=NOW)
    gone = [r for r in range(1, 7) if r not in kept]
    assert (list(report.runs), report.cells, report.index_scores, report.kept) == (
        gone,
        3 * len(gone),
        2 * len(gone),
        len(kept),
    )
    assert run_ids(db) == kept


def test_dry_run_changes_nothing(tmp_path: Path) -> None:
    db = tmp_path / "r.duckdb"
    make_runs(db, [30, 20, 10])
    with Warehouse.open(db) as wh:
        before = checksum(wh)
        report = prune_runs(wh, keep=1, dry_run=True)
        assert checksum(wh) == before
    assert (report.runs, report.cells, report.dry_run) == ((1, 2), 6, True)


@pytest.mark.parametrize(
    ("keep", "keep_days", "message"),
    [(None, None, "say what to keep"), (0, None, "at least 1"), (None, 0, "at least 1")],
)
def test_refuses_without_a_rule(
    tmp_path: Path, keep: int | None, keep_days: int | None, message: str
) -> None:
    db = tmp_path / "r.duckdb"
    make_runs(db, [3, 2])
    with Warehouse.open(db) as wh, pytest.raises(UsageError, match=message):
        prune_runs(wh, keep=keep, keep_days=keep_days)
    assert run_ids(db) == [1, 2]


def test_cli(tmp_path: Path) -> None:
    db = tmp_path / "r.duckdb"
    make_runs(db, [30, 20, 10, 5])
    runner = CliRunner()
    dry = runner.invoke(app, ["--db", str(db), "runs", "prune", "--keep", "2", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert (
        dry.stdout.strip()
        == "would remove 2 run(s) (runs 1–2): 6 cells, 4 index scores, 0 delivered or dropped digest(s); 2 run(s) kept"
    )
    assert run_ids(db) == [1, 2, 3, 4]
    done = runner.invoke(app, ["--db", str(db), "runs", "prune", "--keep", "2"])
    assert (
        done.stdout.strip()
        == "removed 2 run(s) (runs 1–2): 6 cells, 4 index scores, 0 delivered or dropped digest(s); 2 run(s) kept"
    )
    assert run_ids(db) == [3, 4]
    none = runner.invoke(app, ["--db", str(db), "runs", "prune"])
    assert none.exit_code == 2 and "say what to keep" in none.stderr
    missing = runner.invoke(app, ["--db", str(tmp_path / "nope.duckdb"), "runs", "prune", "--keep", "1"])
    assert missing.exit_code == 3 and not (tmp_path / "nope.duckdb").exists()


def test_previous_run_is_found_behind_many_newer_runs(tmp_path: Path) -> None:
    """The previous run for an old date is the latest run before it, however many runs are newer."""
    from datetime import date

    from citykpi.engine.runs import previous_run

    db = tmp_path / "r.duckdb"
    with Warehouse.open(db) as wh:
        wh.con.execute(
            "INSERT INTO runs (run_id, as_of, grain, cells, scheduled) VALUES (1, DATE '2020-01-01', 'day', 0, true)"
        )
        wh.con.execute(
            "INSERT INTO runs (run_id, as_of, grain, cells, scheduled) "
            "SELECT i, DATE '2025-01-01', 'day', 0, true FROM range(2, 1503) t(i)"
        )
        found = previous_run(wh, date(2024, 1, 1))
        assert found is not None and found.run_id == 1
        latest = previous_run(wh, date(2025, 1, 2))
        assert latest is not None and latest.run_id == 1502
        assert previous_run(wh, date(2020, 1, 1)) is None


def test_previous_run_is_the_latest_earlier_date_of_the_scheduled_runs(tmp_path: Path) -> None:
    """Ad-hoc runs, runs of another period and a run recorded later for an older date are not "the
    previous run": it is the newest earlier date's last scheduled run of the same period."""
    from datetime import date

    from citykpi.engine.runs import previous_run_id

    db = tmp_path / "r.duckdb"
    rows = [
        (1, "2025-12-29", "day", True),
        (2, "2025-12-30", "day", True),
        (3, "2025-12-30", "day", True),  # the day re-run: its last run counts
        (4, "2025-12-30", "day", False),  # an analyst's evaluate --record
        (5, "2025-06-01", "day", True),  # a backfill recorded after, for an older date
        (6, "2025-12-30", "month", True),
    ]
    with Warehouse.open(db) as wh:
        for run_id, day, grain, scheduled in rows:
            wh.con.execute(
                "INSERT INTO runs (run_id, as_of, grain, cells, scheduled) VALUES (?, ?, ?, 0, ?)",
                [run_id, date.fromisoformat(day), grain, scheduled],
            )
        assert previous_run_id(wh, date(2025, 12, 31), grain="day") == 3
        assert previous_run_id(wh, date(2025, 12, 31), grain="day", scheduled_only=False) == 4
        assert previous_run_id(wh, date(2025, 12, 31), grain="month") == 6
        assert previous_run_id(wh, date(2025, 12, 30), grain="day") == 1
        assert previous_run_id(wh, date(2025, 6, 1), grain="day") is None
