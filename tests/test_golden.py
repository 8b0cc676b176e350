"""Golden outputs of the sample city: every export format and every read command, byte for byte.

Each case runs one ``citykpi`` command against the session's sample-city warehouse and compares what
it printed (and the file it wrote) with ``tests/golden/<case>``, after removing what varies between
machines and runs (paths, wall-clock times, the version; see ``golden_support.normalise``). Binary
exports are compared by content: Parquet as its schema and rows, xlsx as its sheets' cells.

A failure prints a unified diff. When a change of result is intended, rewrite the files on purpose
and review the diff in git::

    CITYKPI_UPDATE_GOLDEN=1 .venv/bin/pytest tests/test_golden.py
"""

from __future__ import annotations

import difflib
import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from citykpi.cli import app
from tests.golden_support import ENV, GOLDEN, SampleCity, normalise, updating

DAY = "2025-12-31"


def _parquet_dump(path: Path) -> str:
    """Schema and rows of a Parquet file (its bytes also carry the writer's version)."""
    import polars as pl

    frame = pl.read_parquet(path)
    schema = "".join(f"# {name}: {dtype}\n" for name, dtype in frame.schema.items())
    return schema + frame.write_csv(float_precision=None)


def _xlsx_dump(path: Path) -> str:
    """Document title and every sheet's cells, row by row (the zip's bytes are checked elsewhere)."""
    import openpyxl

    wb = openpyxl.load_workbook(path, read_only=True)
    out = io.StringIO()
    out.write(f"# title: {wb.properties.title}\n# created: {wb.properties.created}\n")
    for ws in wb.worksheets:
        out.write(f"## sheet {ws.title}\n")
        for row in ws.iter_rows(values_only=True):
            out.write("\t".join("" if v is None else repr(v) for v in row) + "\n")
    wb.close()
    return out.getvalue()


def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


#: How an exported file becomes golden text, by extension.
DUMPS: dict[str, Callable[[Path], str]] = {"parquet": _parquet_dump, "xlsx": _xlsx_dump}


@dataclass(frozen=True)
class Case:
    """One command; ``output`` names the file it writes (its extension picks the dump)."""

    name: str
    args: tuple[str, ...]
    output: str | None = None


def _evaluate(name: str, *args: str, output: str | None = None) -> Case:
    out = ("--output", "{out}") if output else ()
    return Case(name, ("evaluate", "--date", DAY, "--no-record", *args, *out), output)


CASES: tuple[Case, ...] = (
    # the catalogue, without data
    Case("check.txt", ("check",)),
    Case("check-json.json", ("check", "--format", "json")),
    Case("check-github.txt", ("check", "--format", "github")),
    Case("check-junit.xml", ("check", "--format", "junit")),
    Case("schema.json", ("schema",)),
    Case("catalogue-list.txt", ("catalogue", "list")),
    Case("catalogue-list-en-district.txt", ("catalogue", "list", "--lang", "en", "--level", "district")),
    Case("catalogue-list.json", ("catalogue", "list", "--format", "json")),
    Case("catalogue-list.csv", ("catalogue", "list", "--format", "csv")),
    Case("catalogue-docs.md", ("catalogue", "docs")),
    Case("catalogue-docs.html", ("catalogue", "docs", "--format", "html")),
    # the warehouse
    Case("db-info.txt", ("db", "info")),
    Case("db-info.json", ("db", "info", "--format", "json")),
    Case("db-rejects.txt", ("db", "rejects")),
    Case("db-rejects-batch.txt", ("db", "rejects", "--batch", "latest")),
    Case("db-rejects-batch.csv", ("db", "rejects", "--batch", "latest", "--format", "csv")),
    Case("db-rejects.json", ("db", "rejects", "--format", "json")),
    # every export format of the last day (city level), and the whole day in csv
    *(
        _evaluate(f"evaluate-day-city.{fmt}", "--level", "city", "--format", fmt, output=f"out.{fmt}")
        for fmt in ("csv", "parquet", "json", "jsonl", "markdown", "html", "xlsx", "junit")
    ),
    _evaluate("evaluate-day-all.csv", "--format", "csv", output="out.csv"),
    _evaluate("evaluate-day-city.txt", "--level", "city"),
    _evaluate(
        "evaluate-day-district-en-why.txt", "--level", "district", "--lang", "en", "--why", "--limit", "5"
    ),
    _evaluate("evaluate-day-by-area.txt", "--level", "city", "--group-by", "area", "--lang", "en"),
    _evaluate("evaluate-day-stale.txt", "--status", "stale", "--why"),
    _evaluate("evaluate-explain.sql", "--explain"),
    # other grains
    *(
        _evaluate(
            f"evaluate-{g}-city.{fmt}", "--period", g, "--level", "city", "--format", fmt, output=f"out.{fmt}"
        )
        for g in ("week", "month", "quarter", "year")
        for fmt in ("csv", "json")
    ),
    *(
        _evaluate(
            f"evaluate-{g}-district.csv",
            "--period",
            g,
            "--level",
            "district",
            "--format",
            "csv",
            output="out.csv",
        )
        for g in ("month", "year")
    ),
    *(_evaluate(f"evaluate-{g}-city.txt", "--period", g, "--level", "city") for g in ("month", "year")),
    # drill-downs and comparisons
    Case("show-aqi.txt", ("show", "env.air.aqi", "--to", DAY, "--area", "500103", "--from", "2025-12-20")),
    Case("show-aqi-en.txt", ("show", "env.air.aqi", "--to", DAY, "--lang", "en")),
    Case("show-ponding-month.txt", ("show", "drain.ponding.depth", "--to", DAY, "--period", "month")),
    Case("alerts.txt", ("alerts", "--date", DAY)),
    Case(
        "alerts-district-en.txt",
        ("alerts", "--date", DAY, "--level", "district", "--min", "yellow", "--lang", "en"),
    ),
    Case("alerts-early.txt", ("alerts", "--early", "--date", DAY)),
    Case("alerts-early-en.csv", ("alerts", "--early", "--date", DAY, "--min", "yellow", "--format", "csv")),
    Case("show-target-forecast-en.txt", ("show", "econ.digital_core_share", "--to", DAY, "--lang", "en")),
    Case("show-chlorine.txt", ("show", "water.supply.residual_chlorine", "--to", DAY, "--area", "500112")),
    Case("rank-index-operation.txt", ("rank", "index.operation", "--date", DAY, "--level", "district")),
    Case("rank-aqi-en.txt", ("rank", "env.air.aqi", "--date", DAY, "--level", "district", "--lang", "en")),
    Case("rank-month.txt", ("rank", "index.safety", "--date", DAY, "--period", "month")),
    # a rate built from counts: intervals, the funnel flag, rank ranges and the note under the table
    Case(
        "rank-rate-funnel-en.txt",
        ("rank", "case.hotline.on_time_rate", "--date", DAY, "--period", "month", "--lang", "en"),
    ),
    Case(
        "rank-rate-funnel.csv",
        ("rank", "case.hotline.on_time_rate", "--date", DAY, "--period", "month", "--format", "csv"),
    ),
    Case("diff.txt", ("diff",)),
    Case("diff-en.txt", ("diff", "--from", "2025-12-30", "--to", DAY, "--lang", "en")),
    Case("runs-list.txt", ("runs", "list")),
)


def run_case(case: Case, city: SampleCity, workdir: Path) -> str:
    """Run one case through the CLI in ``workdir``; the golden text: command, exit code, output, file."""
    out = workdir / case.output if case.output else None
    args = [a.replace("{out}", case.output or "") for a in case.args]
    runner = CliRunner(env=ENV)
    result = runner.invoke(app, ["--db", str(city.db), "--catalogue", str(city.catalogue), *args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    text = f"$ citykpi {' '.join(case.args)}\n# exit {result.exit_code}\n"
    if result.stdout:
        text += "# stdout\n" + result.stdout
    if result.stderr:
        text += "# stderr\n" + result.stderr
    if out is not None:
        text += f"# file {case.output}\n" + DUMPS.get(out.suffix.lstrip("."), _text)(out)
    return normalise(text, city)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_golden(case: Case, sample_city: SampleCity, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # exports are written by relative path, as printed
    got = run_case(case, sample_city, tmp_path)
    path = GOLDEN / case.name
    if updating():
        GOLDEN.mkdir(exist_ok=True)
        path.write_bytes(got.encode("utf-8"))
        return
    assert path.exists(), f"{path} is missing; create it with CITYKPI_UPDATE_GOLDEN=1"
    want = path.read_bytes().decode("utf-8")
    if got != want:
        diff = difflib.unified_diff(
            want.splitlines(keepends=True), got.splitlines(keepends=True), f"golden/{case.name}", "now"
        )
        lines = list(diff)
        shown = "".join(lines[:200]) + (f"… {len(lines) - 200} more diff lines\n" if len(lines) > 200 else "")
        pytest.fail(
            f"{case.name} differs from its golden file (CITYKPI_UPDATE_GOLDEN=1 rewrites it if the change "
            f"is intended):\n{shown}",
            pytrace=False,
        )


def test_every_golden_file_has_a_case() -> None:
    """A golden file without a case would never be compared again."""
    if updating():
        pytest.skip("rewriting")
    assert sorted(p.name for p in GOLDEN.iterdir()) == sorted(c.name for c in CASES)
