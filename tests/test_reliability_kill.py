"""SIGKILL at random points of ingest, evaluate and run: the database always opens and is whole.

Fast tests kill each command at one chosen, worst-case point (inside its transaction, between files,
while exports are written). The slow test (``pytest -m slow``) kills ``ingest``, ``evaluate`` and
``run`` after random delays on the sample city, many times over, and checks after every kill that
every batch is all-or-none, every run complete, and that the same command then completes.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pytest

from tests.reliability_support import (
    PYTHON,
    REPO,
    build_city,
    check_invariants,
    cli,
    kill_at,
    sample_city,
    write_config,
)
from tests.scorecard_city import START, write_city, write_days

# --- fast: one worst-case point per command -------------------------------------------------------------


def test_kill_inside_the_run_transaction_leaves_no_partial_run(tmp_path: Path) -> None:
    paths = build_city(tmp_path)
    before = check_invariants(paths["db"])
    kill_at(
        "persisting",
        "persist",
        "--db",
        paths["db"],
        "--catalogue",
        paths["catalogue"],
        "evaluate",
        "--record",
    )
    after = check_invariants(paths["db"])
    assert after == before  # the half-recorded run 999 is gone
    again = cli(
        "--db", paths["db"], "--catalogue", paths["catalogue"], "evaluate", "--record", "--format", "json"
    )
    assert again.returncode == 0, again.stderr
    assert check_invariants(paths["db"]).runs == before.runs + 1


def test_kill_between_inbox_files_then_the_next_run_completes(tmp_path: Path) -> None:
    paths = write_city(tmp_path)
    config = write_config(tmp_path)
    last = START + timedelta(days=5)
    write_days(paths["inbox"], START, last)
    kill_at(
        "ingest obs-2026-11-03.csv: loaded", "none", "run", "--config", config, "--date", last.isoformat()
    )
    facts = check_invariants(paths["db"])
    assert facts.runs == 0 and 1 <= facts.loaded_batches <= 6
    again = cli("run", "--config", config, "--date", last.isoformat())  # the lock died with the process
    assert again.returncode == 0, again.stderr
    facts = check_invariants(paths["db"])
    assert (facts.loaded_batches, facts.observations, facts.runs) == (6, 24, 1)  # each file exactly once
    assert sorted(p.name for p in paths["inbox"].iterdir()) == ["done"]


def test_kill_while_writing_exports_leaves_no_half_file(tmp_path: Path) -> None:
    paths = write_city(tmp_path)
    config = write_config(tmp_path)
    day = START + timedelta(days=2)
    write_days(paths["inbox"], START, day)
    kill_at("written", "export", "run", "--config", config, "--date", day.isoformat())
    out = tmp_path / "out"
    visible = [p for p in out.iterdir() if not p.name.startswith(".")]
    assert visible == [], "a report appeared before it was complete"
    check_invariants(paths["db"])
    again = cli("run", "--config", config, "--date", day.isoformat())
    assert again.returncode == 0, again.stderr
    reports = sorted(p.name for p in out.iterdir() if not p.name.startswith(".") and p.is_file())
    assert reports == [f"scorecard-{day}-day{ext}" for ext in (".csv", ".html", ".json", ".xlsx")]
    assert [p.name for p in (out / "runs").iterdir()] == [f"run-{day}-day.json"]
    json.loads((out / f"scorecard-{day}-day.json").read_text(encoding="utf-8"))


# --- slow: many kills at random points on the sample city ---------------------------------------------


@dataclass
class KillStats:
    """Figures of the random-kill loop."""

    attempts: dict[str, int] = field(default_factory=dict)
    killed: dict[str, int] = field(default_factory=dict)  # SIGKILL landed while the command ran
    finished_first: dict[str, int] = field(default_factory=dict)  # the command ended before the kill
    recovered: int = 0  # the same command, run again, completed
    checks: int = 0  # invariant checks passed
    stray_temp_files: set[str] = field(
        default_factory=set
    )  # hidden .*.tmp exports a kill left (never a report)


def _command(kind: str, city: dict[str, Path], root: Path, step: int) -> list[str]:
    db, cat = str(city["db"]), str(city["catalogue"])
    if kind == "ingest":
        data = ["kpi_periodic.csv", "observations_hourly.parquet", "water_supply_daily_wide.csv"][step % 3]
        extra = ["--format", "wide", "--map", "period=date"] if data.startswith("water") else []
        return ["--db", db, "--catalogue", cat, "ingest", str(city["gen"] / data), *extra,
                "--force", "--on-duplicate", "replace", "--quiet"]  # fmt: skip
    if kind == "evaluate":
        return ["--db", db, "--catalogue", cat, "evaluate", "--date", "2025-12-31", "--format", "json",
                "--record", "--output", str(root / "eval.json")]  # fmt: skip
    pending = sorted(city["pending"].iterdir())
    if pending:
        shutil.move(str(pending[0]), str(root / "inbox" / pending[0].name))
    day = sorted(p.name for p in (root / "inbox").rglob("daily-*.csv"))[-1][6:16]
    return ["run", "--config", str(city["config"]), "--date", day]


def _check_reports(folder: Path, stats: KillStats) -> None:
    """Every visible report is complete; count hidden temporary files a kill left behind."""
    if not folder.exists():
        return
    for p in folder.iterdir():
        if p.name.startswith("."):
            stats.stray_temp_files.add(p.name)
            continue
        if p.suffix == ".json":
            json.loads(p.read_text(encoding="utf-8"))
        elif p.suffix == ".html":
            assert p.read_text(encoding="utf-8").rstrip().endswith("</html>"), p
        elif p.suffix == ".xlsx":
            import openpyxl

            openpyxl.load_workbook(p, read_only=True).close()


def _stale_after_rewrite(folder: Path) -> list[str]:
    """Hidden ``.NAME.PID.XXXXXXXX.tmp`` files of a dead writer whose report NAME was written again
    since: the rewrite should have removed them (exports.remove_stale_temp_files)."""
    stale = []
    for p in folder.glob(".*.tmp") if folder.exists() else []:
        name, _, rest = p.name[1:-4].rpartition(".")
        report, _, pid = name.rpartition(".")
        target = folder / report
        if not (pid.isdigit() and len(rest) == 8 and target.exists()):
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            if target.stat().st_mtime >= p.stat().st_mtime:
                stale.append(p.name)
    return stale


@pytest.mark.slow
def test_random_kills_never_break_the_database(tmp_path: Path) -> None:
    """Kill ingest/evaluate/run after random delays; check the database after every kill."""
    iterations = int(os.environ.get("CITYKPI_KILLS", "45"))
    budget = float(os.environ.get("CITYKPI_KILL_SECONDS", "600"))
    rng = random.Random(int(os.environ.get("CITYKPI_KILL_SEED", "20261125")))
    city = sample_city(tmp_path, days=20)
    stats = KillStats()
    # how long each command takes when left alone (the range the kill delay is drawn from)
    duration: dict[str, float] = {}
    for kind in ("ingest", "evaluate", "run"):
        started = time.monotonic()
        done = cli(*_command(kind, city, tmp_path, 0), timeout=300)
        assert done.returncode in (0, 1, 4), done.stderr  # run: 4 when the sample's feeds are stale
        duration[kind] = time.monotonic() - started
    timings: dict[str, list[float]] = {k: [v] for k, v in duration.items()}
    before_rows = check_invariants(city["db"])
    deadline = time.monotonic() + budget
    kinds = ("ingest", "evaluate", "run")
    for step in range(iterations):
        if time.monotonic() > deadline:
            break
        kind = kinds[step % 3]
        args = _command(kind, city, tmp_path, step)
        stats.attempts[kind] = stats.attempts.get(kind, 0) + 1
        proc = subprocess.Popen(
            [PYTHON, "-m", "citykpi", *args], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        time.sleep(rng.uniform(0.05, duration[kind] * 0.95))
        proc.send_signal(signal.SIGKILL)
        _, err = proc.communicate(timeout=120)
        if proc.returncode == -signal.SIGKILL:
            stats.killed[kind] = stats.killed.get(kind, 0) + 1
        else:
            assert proc.returncode in (0, 1, 4), err.decode()[-2000:]
            stats.finished_first[kind] = stats.finished_first.get(kind, 0) + 1
        facts = check_invariants(city["db"])
        stats.checks += 1
        _check_reports(tmp_path / "out", stats)
        # the same command, left alone, completes (no stale lock, no damage)
        started = time.monotonic()
        again = cli(*(args if kind != "run" else _command("run", city, tmp_path, step)), timeout=300)
        assert again.returncode in (0, 1, 4), (kind, again.stderr[-2000:])
        for folder in (tmp_path, tmp_path / "out"):
            assert not _stale_after_rewrite(folder), f"a rewrite left a killed writer's temp file in {folder}"
        timings[kind].append(time.monotonic() - started)  # keep the delay range true to the machine's pace
        duration[kind] = statistics.median(timings[kind][-5:])
        stats.recovered += 1
        facts = check_invariants(city["db"])
        stats.checks += 1
        assert facts.observations >= before_rows.observations  # nothing lost: rows are only added or replaced
    kills = sum(stats.killed.values())
    print(
        f"\nrandom kills: {kills} SIGKILLs landed ({stats.killed}), {sum(stats.finished_first.values())} commands "
        f"finished first ({stats.finished_first}), {stats.checks} invariant checks passed, "
        f"{stats.recovered} recoveries, {len(stats.stray_temp_files)} hidden temp export files left by kills (each gone after the next write), "
        f"final: {check_invariants(city['db'])}"
    )
    attempts = sum(stats.attempts.values())
    assert kills >= min(30, int(attempts * 0.6)), f"only {kills} kills landed in {attempts} attempts: {stats}"
