"""Dates outside the supported range are a usage error (exit 2) naming the range, never a traceback.

The range is defined once (``citykpi.engine.calendar.MIN_DATE`` … ``MAX_DATE``) and checked both by
the CLI's shared date parsing and by the library, so ``evaluate(as_of=…)`` is protected too.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from typer.testing import CliRunner

from citykpi.catalogue import load_catalogue
from citykpi.cli import app
from citykpi.engine.calendar import MAX_DATE, MIN_DATE, window
from citykpi.engine.evaluate import evaluate
from citykpi.errors import CatalogueError, UsageError
from citykpi.warehouse import IngestOptions, Warehouse, ingest
from tests._warehouse_support import DATA, catalogue, checksum, open_with_areas, write

CSV = "indicator_id,area_id,period,value\nenv.air.aqi,重庆,2024-01-01,55\nenv.air.aqi,成都,2024-01-02,60\n"
RANGE = "1900-01-01 … 2199-12-31"
EXTREMES = ("9999-12-31", "0001-01-01", "1899-12-31", "2200-01-01")


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("dates")
    with open_with_areas(tmp) as wh:
        ingest(wh, catalogue(), [write(tmp / "a.csv", CSV)], IngestOptions())
    # two recorded runs, so that `diff`'s default --from and --to resolve
    for day in ("2024-01-01", "2024-01-02"):
        result = CliRunner().invoke(
            app, [*_global(tmp / "test.duckdb"), "evaluate", "--date", day, "--scheduled"]
        )
        assert result.exit_code == 0, result.output
    return tmp / "test.duckdb"


def _global(db: Path) -> list[str]:
    return ["--db", str(db), "--catalogue", str(DATA / "catalogue_cn10")]


COMMANDS = {
    "evaluate": ["evaluate", "--date"],
    "evaluate --explain": ["evaluate", "--explain", "--date"],
    "evaluate --as-ingested": ["evaluate", "--as-ingested", "--date"],
    "alerts": ["alerts", "--date"],
    "rank": ["rank", "env.air.aqi", "--date"],
    "show --to": ["show", "env.air.aqi", "--to"],
    "show --from": ["show", "env.air.aqi", "--from"],
    "diff --from": ["diff", "--from"],
    "diff --to": ["diff", "--to"],
    "run": ["run", "--date"],
}


@pytest.mark.parametrize("day", EXTREMES)
@pytest.mark.parametrize("command", list(COMMANDS))
def test_out_of_range_dates_are_a_usage_error(db: Path, command: str, day: str) -> None:
    before = db.read_bytes()
    result = CliRunner().invoke(app, [*_global(db), *COMMANDS[command], day])
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    assert f"{day} is outside the supported range {RANGE}" in result.output
    assert result.output.startswith("Error: ") and len(result.output.strip().splitlines()) == 1
    assert db.read_bytes() == before  # nothing was recorded


@pytest.mark.parametrize("day", ["1900-01-01", "2199-12-31"])
@pytest.mark.parametrize("command", ["evaluate", "alerts", "rank", "show --to", "show --from"])
def test_the_ends_of_the_range_evaluate(db: Path, command: str, day: str) -> None:
    result = CliRunner().invoke(app, [*_global(db), *COMMANDS[command], day])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("as_of", [date(9999, 12, 31), date(1, 1, 1), date(2200, 1, 1)])
def test_the_library_refuses_out_of_range_dates(db: Path, as_of: date) -> None:
    cat = load_catalogue(DATA / "catalogue_cn10")
    with Warehouse.open(db) as wh:
        before = checksum(wh)
        with pytest.raises(
            UsageError, match=f"as_of {as_of.isoformat()} is outside the supported range {RANGE}"
        ):
            evaluate(wh, cat, as_of=as_of)
        with pytest.raises(UsageError, match=f"history_from {as_of.isoformat()} is outside"):
            evaluate(wh, cat, as_of=date(2024, 1, 2), history_from=as_of)
        assert checksum(wh) == before


def test_max_staleness_beyond_ten_years_is_a_check_error(tmp_path: Path) -> None:
    text = (DATA / "catalogue_cn10" / "air.yaml").read_text(encoding="utf-8")
    for too_long in ("100000w", "99999999999w"):
        cat = write(
            tmp_path / too_long / "air.yaml",
            text.replace(
                "    valid_range: [0, 500]\n",
                f"    valid_range: [0, 500]\n    max_staleness: {too_long}\n",
                1,
            ),
        )
        result = CliRunner().invoke(app, ["check", str(cat)])
        assert result.exit_code == 1, result.output
        assert "CK013" in result.output and "max_staleness" in result.output
        with pytest.raises(CatalogueError):
            load_catalogue(cat)


def test_the_longest_staleness_accepted_fits_the_calendar_at_both_ends() -> None:
    """Every grain's look-back, history and last-year shift at the ends of the range, with the
    longest max_staleness the catalogue accepts, stays inside the calendar."""
    from dataclasses import replace

    from citykpi.catalogue.parser.indicator import MAX_STALENESS

    ind = catalogue().indicators[0]
    for frequency in ("daily", "weekly", "monthly", "quarterly", "yearly"):
        longest = replace(ind, frequency=frequency, max_staleness=MAX_STALENESS)
        for grain in ("day", "week", "month", "quarter", "year"):
            for day in (MIN_DATE, MAX_DATE):
                w = window(longest, grain, day, history_from=MIN_DATE)
                assert w.win_lo <= w.cand_lo <= w.cur_start <= day
                assert w.ly_lo < w.ly_hi <= w.cur_start
                assert min(w.win_lo, w.ly_lo).year >= 1800
