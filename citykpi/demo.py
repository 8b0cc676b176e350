"""``make demo`` (``python -m citykpi.demo``): the sample city end to end, as a user would type it.

Generates the sample city if needed, then runs the real commands one by one, printing each
first: check the catalogue, load the areas, ingest every file the sample's departments send,
evaluate the last day, show what is red or stale and why, what is heading for orange or red and
which target will be missed, the gas leak's alert by the hour (pending, firing, resolved) and the
episodes of the alert lifecycle, two league tables of the districts (an index, and a rate with its
intervals), and write the HTML report and the spreadsheet. The demo database is rebuilt on every
run, so the demo is repeatable.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

SAMPLE_DIR = Path("sample_data/generated")
CATALOGUE = Path("indicators")


def _needs_generation(manifest: Path) -> bool:
    """True when the sample files are missing or older than the catalogue or the generator."""
    if not manifest.exists():
        return True
    made = manifest.stat().st_mtime
    sources = [*CATALOGUE.rglob("*.yaml"), *Path(__file__).parent.joinpath("sample").glob("*.py")]
    return any(p.stat().st_mtime > made for p in sources)


def _run(args: list[str], env: dict[str, str], *, allow: tuple[int, ...] = (0,)) -> int:
    """Print a command as typed, run it, and stop the demo if it fails."""
    shown = args if args[0] == "citykpi" else ["python", "-m", *args]
    print(f"\n$ {shlex.join(shown)}", flush=True)
    cmd = (
        [sys.executable, "-m", *args]
        if args[0] != "citykpi"
        else [sys.executable, "-m", "citykpi", *args[1:]]
    )
    code = subprocess.call(cmd, env=env)
    if code not in allow:
        print(f"demo stopped: `{shlex.join(args)}` exited {code}", file=sys.stderr)
        raise SystemExit(code)
    return code


def main(argv: list[str] | None = None) -> int:
    """Run the demo; returns the process exit code."""
    parser = argparse.ArgumentParser(prog="python -m citykpi.demo", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=Path("out"), help="folder for the database and the report"
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    db = out / "demo.duckdb"
    for stale in (db, Path(f"{db}.wal")):
        stale.unlink(missing_ok=True)
    env = {**os.environ, "CITYKPI_DB": str(db), "CITYKPI_CATALOGUE": str(CATALOGUE)}
    env.setdefault("COLUMNS", "120")

    manifest_path = SAMPLE_DIR / "manifest.json"
    print(f"# the sample city: {CATALOGUE}/ (catalogue), {SAMPLE_DIR}/ (data); database {db}")
    print(f"$ export CITYKPI_DB={db}")
    if _needs_generation(manifest_path):
        _run(["citykpi.sample", "--out", str(SAMPLE_DIR)], env)
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    end = str(manifest["end"])

    for step in demo_steps(manifest, out):
        _run(step, env)
    report = out / f"scorecard-{end}.html"
    print(f"\nHTML report: {report.resolve()}")
    for line in REPORT_CONTENTS:
        print(f"  - {line}")
    print(f"Spreadsheet: {(out / f'scorecard-{end}.xlsx').resolve()}")
    print(f"demo finished in {time.perf_counter() - started:.0f} s")
    return 0


#: What the HTML report holds, as the demo tells its reader (tests/test_demo.py checks each claim).
REPORT_CONTENTS: tuple[str, ...] = (
    "summary and legend, the composite indices of every district, league tables",
    "the red, orange and stale cells first, each with the reason for its colour",
    "per domain the city's rows and a district × indicator matrix (hover a cell for its reason)",
    "a search box and status filters; click a column head to sort",
    "trend charts: the city's line over the districts' range",
    "one self-contained file (no network, no CDN); prints on A4 landscape",
)


def demo_steps(manifest: Mapping[str, Any], out: Path) -> list[list[str]]:
    """Every command the demo runs after generating the sample, in order (the README shows them)."""
    end = str(manifest["end"])
    return [
        ["citykpi", "check"],
        *(shlex.split(entry["command"]) for entry in manifest["files"]),
        ["citykpi", "evaluate", "--date", end, "--level", "city"],
        ["citykpi", "alerts", "--date", end, "--level", "city"],
        ["citykpi", "alerts", "--early", "--date", end],
        ["citykpi", "show", "econ.digital_core_share", "--to", end],
        ["citykpi", "evaluate", "--date", end, "--level", "city", "--status", "stale", "--why"],
        *hourly_steps(end),
        *report_steps(end, out),
    ]


def hourly_steps(end: str) -> list[list[str]]:
    """The vital signs by the hour: the gas leak's alert goes pending → firing → resolved; a tunnel's
    CO flaps around its red cut all evening and the clear level holds it as one episode; a water
    pressure still green is seen turning orange hours ahead."""
    return [
        shlex.split(
            f"citykpi evaluate --at {end}T10:30 --period hour --indicator 'gas.leak.*' --area 500106"
        ),
        shlex.split(f"citykpi alerts --early --at {end}T10:30 --period hour --level district"),
        *(
            ["citykpi", "alerts", "--at", f"{end}T{instant}", "--level", "district"]
            for instant in ("09:30", "10:30", "18:30")
        ),
        ["citykpi", "alerts", "history"],
    ]


def report_steps(end: str, out: Path) -> list[list[str]]:
    """The demo's last commands: two league tables (an index; a rate with intervals), the HTML and
    xlsx reports of the last day."""
    return [
        ["citykpi", "rank", "index.operation", "--date", end, "--level", "district"],
        # a rate built from counts: each district's 95 % interval and whether it is within the funnel
        shlex.split(f"citykpi rank case.hotline.on_time_rate --date {end} --period month --level district"),
        *(
            ["citykpi", "evaluate", "--date", end, "--format", fmt, "--output", str(report)]
            for fmt, report in (
                ("html", out / f"scorecard-{end}.html"),
                ("xlsx", out / f"scorecard-{end}.xlsx"),
            )
        ),
    ]


if __name__ == "__main__":
    sys.exit(main())
