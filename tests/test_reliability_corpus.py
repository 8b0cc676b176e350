"""Hostile and broken data files (tests/corpus/data plus generated huge ones) through `citykpi ingest`.

Each file gets a clear outcome and the documented exit code: either the whole file is refused with
a reason (and the database is unchanged, byte for byte of its content), or its bad records are
rejected one by one with row, column and reason while the good ones load. Never a traceback, never
a row silently lost: loaded + rejected = records in the file.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from citykpi.cli import app
from citykpi.warehouse import Warehouse
from tests.reliability_support import areas_template, check_invariants, content_digest

CORPUS = Path(__file__).parent / "corpus" / "data"

AREA = "unknown area id (load it with `citykpi areas load`)"
INDICATOR = "unknown indicator id (not in the catalogue)"
NUMBER = "unparseable number"

#: file → (exit code, loaded rows or None when the whole file is refused, {reject reason: count} or the
#: message of a refused file)
EXPECTED: dict[str, tuple[int, int | None, dict[str, int] | str]] = {
    # refused whole: the database is unchanged
    "empty.csv": (1, None, "the file is empty"),
    "bom_only.csv": (1, None, "no 'indicator_id' column"),
    "newlines_only.csv": (1, None, "cannot read the file as CSV"),
    "nul_only.csv": (1, None, "no 'indicator_id' column"),
    "binary_garbage.csv": (1, None, "text is neither UTF-8 nor GB18030/GBK"),
    "zip_named_csv.csv": (1, None, "text is neither UTF-8 nor GB18030/GBK"),
    "binary_garbage.parquet": (1, None, "cannot read the file as PARQUET"),
    "truncated.parquet": (1, None, "cannot read the file as PARQUET"),
    "foreign_header.csv": (1, None, "no 'indicator_id' column; the file has a, b"),
    "foreign_columns.parquet": (1, None, "no 'indicator_id' column; the file has x"),
    "truncated_last_line.csv": (1, None, "rows have different numbers of fields"),
    "ragged_rows.csv": (1, None, "rows have different numbers of fields"),
    "ragged_extra_field.csv": (1, None, "rows have different numbers of fields"),
    "huge_field.csv": (1, None, "cannot read the file as CSV"),
    # bad records rejected with reasons, good ones loaded
    "header_only.csv": (0, 0, {}),
    "formula_injection.csv": (1, 2, {AREA: 1, INDICATOR: 1, NUMBER: 1, "unparseable date": 1}),
    "invisible_chars.csv": (1, 1, {AREA: 2, INDICATOR: 1}),
    "latin1.csv": (1, 1, {AREA: 1}),
    "mixed_utf8_gbk.csv": (1, 2, {AREA: 1}),
    "nul_bytes.csv": (1, 1, {AREA: 1, NUMBER: 1}),
    "odd_dates.csv": (1, 1, {"missing period": 1, "period in the future": 1, "unparseable date": 2}),
    "odd_numbers.csv": (
        1,
        1,
        {
            "not a finite number (NaN or infinity)": 3,
            NUMBER: 1,
            "value outside the indicator's valid_range": 2,
        },
    ),
    "semicolons_and_quotes.csv": (1, 1, {NUMBER: 1}),
    "truncated_in_quotes.csv": (1, 1, {AREA: 1}),
    "duplicates.csv": (1, 1, {"duplicate within the file (same indicator, area and period)": 2}),
    "wrong_types.parquet": (1, 1, {"missing value": 1, NUMBER: 1}),
    "wrong_types_nested.parquet": (1, 0, {INDICATOR: 1}),
}

HUGE = 10 << 20  # a 10 MiB cell


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The committed corpus plus generated huge files, in one folder."""
    folder = tmp_path_factory.mktemp("corpus")
    for f in CORPUS.iterdir():
        shutil.copy(f, folder / f.name)
    head = "indicator_id,area_id,period,value\nenv.air.aqi,500103,2026-11-01,50\n"
    (folder / "huge_field.csv").write_text(head + "env.air.aqi,500112,2026-11-02," + "9" * HUGE + "\n")
    return folder


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, Path]:
    """A database with the tiny city's areas (no observations); and the catalogue folder."""
    return areas_template(tmp_path_factory.mktemp("city"))


def _records(path: Path) -> int:
    """Data records in a readable corpus file (lines after the header, or Parquet rows)."""
    if path.suffix == ".parquet":
        import polars as pl

        return pl.read_parquet(path).height
    return len(path.read_bytes().splitlines()) - 1


def test_every_corpus_file_has_an_expectation() -> None:
    assert {f.name for f in CORPUS.iterdir()} | {"huge_field.csv"} == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_hostile_file(tmp_path: Path, corpus: Path, template: tuple[bytes, Path], name: str) -> None:
    code, loaded, outcome = EXPECTED[name]
    db = tmp_path / "w.duckdb"
    db.write_bytes(template[0])
    before = content_digest(db)
    result = CliRunner().invoke(
        app, ["--db", str(db), "--catalogue", str(template[1]), "ingest", str(corpus / name)]
    )
    assert result.exit_code == code, result.output[-3000:]
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    facts = check_invariants(db)
    with Warehouse.open(db, read_only=True) as wh:
        reasons = dict(wh.con.execute("SELECT reason, count(*) FROM rejects GROUP BY reason").fetchall())
        rows = wh.con.execute("SELECT row_number, column_name, reason FROM rejects").fetchall()
    if loaded is None:  # refused whole, with the reason on the terminal; nothing stored
        assert isinstance(outcome, str) and outcome in result.output
        assert "rejected" in result.output
        assert content_digest(db) == before
        return
    assert facts.observations == loaded
    assert reasons == outcome
    for row, column, reason in rows:  # 1-based row, the column (a duplicate is the whole record), reason
        assert row is not None and row >= 1 and reason, rows
        assert column or reason.startswith("duplicate"), rows
    if name != "duplicates.csv":  # duplicates: every copy rejected, so count records instead
        assert loaded + sum(reasons.values()) == _records(corpus / name), "a record was lost"
    for reason in outcome:
        assert reason in result.output


def test_formula_cells_stay_text_in_the_rejects(
    tmp_path: Path, corpus: Path, template: tuple[bytes, Path]
) -> None:
    """The rejects table keeps hostile cells verbatim as text; nothing evaluates them."""
    db = tmp_path / "w.duckdb"
    db.write_bytes(template[0])
    CliRunner().invoke(
        app,
        ["--db", str(db), "--catalogue", str(template[1]), "ingest", str(corpus / "formula_injection.csv")],
    )
    with Warehouse.open(db, read_only=True) as wh:
        values = {r[0] for r in wh.con.execute("SELECT value FROM rejects").fetchall()}
    assert "=cmd|' /C calc'!A0" in values and '=HYPERLINK("http://x")' in values
