"""The benchmark harness on the micro scale: every case runs on its own and reports the child's own peak."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "bench" / "run.py"


def test_evaluate_case_alone_on_a_fresh_cache(tmp_path: Path) -> None:
    """`--cases evaluate` on a fresh machine builds what it needs instead of reporting "not available".

    The data is generated in a child process, so the bench process stays small and no child's
    ``ru_maxrss`` starts from a parent of several GiB.
    """
    out = tmp_path / "results.json"
    env = dict(os.environ, CITYKPI_BENCH_CACHE=str(tmp_path / "cache"))
    cmd = [sys.executable, str(BENCH), "--scale", "micro", "--cases", "evaluate,early", "--runs", "1"]
    r = subprocess.run(
        [*cmd, "--loop-sample", "0", "--output", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    doc = json.loads(out.read_text(encoding="utf-8"))
    cases = {c["case"]: c for c in doc["cases"]}
    for name in (
        "evaluate day: citykpi engine",
        "evaluate day: citykpi CLI",
        "evaluate day: hand SQL (ck db)",
        "early: citykpi engine",
        "early: hand SQL (ck db)",
        "early: citykpi engine, no forecasts",
    ):
        assert cases[name]["status"] == "ok", cases[name]
        assert cases[name]["median_s"] > 0
    assert doc["bench_process_peak_mb"] < 400, (
        "the bench process must not build data in-process",
        doc["bench_process_peak_mb"],
    )
    peaks = {c["peak_mb"] for c in cases.values() if c["peak_mb"]}
    assert len(peaks) > 1, "every case reporting the same peak means the parent's peak leaked in"
    assert doc["targets"]["evaluate_day_peak_gib"]["value"] is not None
    assert doc["targets"]["early_vs_no_forecasts"]["value"] is not None


def test_find_case_times_search_and_completion_beside_baselines(tmp_path: Path) -> None:
    """`--cases find`: search in process beside a plain scan, the CLI beside a bare process, completion of
    indicator and area ids beside completing a command name — all in the same run, each with a ratio."""
    out = tmp_path / "results.json"
    env = dict(os.environ, CITYKPI_BENCH_CACHE=str(tmp_path / "cache"))
    cmd = [sys.executable, str(BENCH), "--scale", "micro", "--cases", "find", "--runs", "1"]
    r = subprocess.run([*cmd, "--output", str(out)], env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    cases = {c["case"]: c for c in json.loads(out.read_text(encoding="utf-8"))["cases"]}
    search = cases["find: search in process"]
    assert search["status"] == "ok" and search["median_s"] > 0
    assert cases["find: plain scan (baseline)"]["median_s"] > 0
    assert search["detail"]["ratio_vs_scan"] > 0 and search["detail"]["same_matches_as_scan"] is True
    assert len(search["detail"]["queries"]) >= 6
    assert cases["find: catalogue search (CLI)"]["detail"]["ratio_vs_floor"] > 0
    if Path(sys.executable).with_name("citykpi").exists():
        for name in ("indicator ids", "area ids"):
            case = cases[f"find: complete {name}"]
            assert case["status"] == "ok" and case["detail"]["ratio_vs_floor"] > 0, case
        assert cases["find: complete area ids"]["detail"]["completions"] > 0
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert doc["targets"]["search_under_200ms"]["value"] is not None
