"""Real time under failure: a five-minute batch and the alert lifecycle's update are all-or-nothing.

Real processes, real SIGKILLs (the pause points of ``tests/reliability_support.py``): a batch killed
inside its transaction leaves nothing and loads exactly once when sent again; a feed re-sending its
latest readings changes nothing; a lifecycle update killed before its commit leaves the episode table
as it was, and the next update gives the episodes a clean one does.
"""

from __future__ import annotations

import json
import shutil
from datetime import timedelta
from pathlib import Path

from tests.reliability_support import check_invariants, cli, kill_at
from tests.test_cli_realtime import BEIJING, CATALOGUE, DATA, SHANGHAI, START


def new_city(root: Path) -> tuple[str, ...]:
    """The gas city of test_cli_realtime with areas and no readings: the global options to reach it."""
    (root / "catalogue").mkdir(parents=True)
    (root / "catalogue" / "gas.yaml").write_text(CATALOGUE, encoding="utf-8")
    shutil.copy(DATA / "areas_cn10.csv", root / "areas.csv")
    opts = ("--db", str(root / "city.duckdb"), "--catalogue", str(root / "catalogue"))
    done = cli(*opts, "areas", "load", root / "areas.csv")
    assert done.returncode == 0, done.stderr
    return opts


def batch(path: Path, slots: range) -> Path:
    """The readings of the quarter-hours ``slots`` of both districts, in city time, as a feed sends them."""
    lines = ["indicator_id,area_id,period,value"]
    for n in slots:
        for area, values in (("上海", SHANGHAI), ("北京", BEIJING)):
            lines.append(f"gas.lel,{area},{START + timedelta(minutes=15 * n):%Y-%m-%d %H:%M},{values[n]}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def stored(opts: tuple[str, ...], sql: str) -> list[dict[str, object]]:
    done = cli(*opts, "query", sql, "--format", "json")
    assert done.returncode == 0, done.stderr
    return list(json.loads(done.stdout))


def test_a_killed_micro_batch_loads_exactly_once_and_re_sends_change_nothing(tmp_path: Path) -> None:
    opts = new_city(tmp_path)
    db = Path(opts[1])
    files = [batch(tmp_path / f"b{k}.csv", range(4 * k, 4 * k + 4)) for k in range(4)]
    for f in files[:2]:
        assert cli(*opts, "ingest", f, "--on-duplicate", "resend").returncode == 0
    before = check_invariants(db)
    kill_at("inserted", "ingest", *opts, "ingest", files[2], "--on-duplicate", "resend")
    assert check_invariants(db) == before  # nothing of the killed batch
    for f in files[2:]:
        assert cli(*opts, "ingest", f, "--on-duplicate", "resend").returncode == 0
    again = cli(*opts, "ingest", files[2], "--json")
    assert again.returncode == 0 and json.loads(again.stdout)["files"][0]["status"] == "unchanged"
    # the feed re-sends its last hour with the next batch: every reading is known, nothing changes
    resent = cli(
        *opts, "ingest", batch(tmp_path / "resent.csv", range(8, 16)), "--on-duplicate", "resend", "--json"
    )
    assert resent.returncode == 0, resent.stderr
    report = json.loads(resent.stdout)["files"][0]
    assert (report["rows_loaded"], report["rows_skipped"], report["rows_rejected"]) == (0, 16, 0)
    facts = check_invariants(db)
    assert (facts.loaded_batches, facts.observations) == (5, 32)  # four batches and the re-send, 32 readings
    periods = stored(opts, "SELECT count(DISTINCT period) AS n FROM observations")
    assert periods == [{"n": 16}]


def test_a_killed_lifecycle_update_leaves_the_episodes_as_they_were(tmp_path: Path) -> None:
    killed, clean = new_city(tmp_path / "killed"), new_city(tmp_path / "clean")
    for opts in (killed, clean):
        assert cli(*opts, "ingest", batch(tmp_path / "all.csv", range(16))).returncode == 0
    evaluate = ("evaluate", "--at", "2025-12-31T15:30", "--period", "hour", "--record", "--format", "json")
    kill_at("lifecycle", "lifecycle", *killed, *evaluate)
    check_invariants(Path(killed[1]))
    assert stored(killed, "SELECT count(*) AS n FROM alert_episodes") == [{"n": 0}]
    assert stored(killed, "SELECT count(*) AS n FROM alert_progress") == [{"n": 0}]
    assert stored(killed, "SELECT count(*) AS n FROM runs") == [{"n": 1}]  # the run committed before it
    for opts in (killed, clean):
        assert cli(*opts, *evaluate).returncode == 0
    episodes = "SELECT * EXCLUDE (indicator_key, area_key) FROM alert_episodes ORDER BY started_at, peak"
    got, want = stored(killed, episodes), stored(clean, episodes)
    assert got == want and len(want) == 2  # 上海's leak and 北京's flap, each one episode
    check_invariants(Path(killed[1]))
