"""An engine error is blamed on the disk only when it is one.

A conversion or binder error at evaluation is a defect in the catalogue's expressions (or in
citykpi): its message names the failing step and says so, instead of sending the user to check a
database that is fine.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from citykpi.backend.duckdb import engine_error_kind
from citykpi.catalogue.model import Catalogue, Formula
from citykpi.cli import app
from citykpi.engine.evaluate import evaluate
from citykpi.errors import EngineError
from citykpi.warehouse import IngestOptions, Warehouse, ingest
from tests._warehouse_support import DATA, catalogue, count, indicator, open_with_areas, write

CSV = "indicator_id,area_id,period,value\nenv.air.aqi,重庆,2024-01-01,55\nenv.air.aqi,成都,2024-01-02,60\n"
DISK_HINT = "the database file may be damaged or its disk full or read-only"


def _bad_formula_catalogue(expression: str) -> Catalogue:
    """A catalogue that never went through `check`: a formula whose types DuckDB refuses."""
    from dataclasses import replace

    base = catalogue()
    bad = replace(indicator("env.air.bad"), value=Formula(expression=expression, inputs={"a": "env.air.aqi"}))
    return replace(base, indicators=(*base.indicators, bad))


@pytest.fixture
def db(tmp_path: Path) -> Path:
    with open_with_areas(tmp_path) as wh:
        ingest(wh, catalogue(), [write(tmp_path / "a.csv", CSV)], IngestOptions())
    return tmp_path / "test.duckdb"


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (duckdb.ConversionException("Conversion Error: Could not convert string 'x' to DOUBLE"), "statement"),
        # data quoted in the message must not make a statement error look like a disk error
        (
            duckdb.ConversionException("Conversion Error: Could not convert string 'disk full' to DOUBLE"),
            "statement",
        ),
        (duckdb.BinderException("Binder Error: No function matches round(DOUBLE, VARCHAR)"), "statement"),
        (duckdb.CatalogException("Catalog Error: Table with name nowhere does not exist!"), "statement"),
        (duckdb.InvalidInputException("Invalid Input Error: bad value"), "statement"),
        (duckdb.IOException('IO Error: Could not read enough bytes from file "x.duckdb"'), "storage"),
        (duckdb.SerializationException("Serialization Error: corrupt block"), "storage"),
        (duckdb.FatalException("FATAL Error: database has been invalidated"), "storage"),
        (
            duckdb.TransactionException(
                "TransactionContext Error: Failed to commit: No space left on device"
            ),
            "storage",
        ),
        (duckdb.OutOfMemoryException("Out of Memory Error: could not allocate block"), "resources"),
        (duckdb.InternalException("INTERNAL Error: unexpected plan"), "statement"),
        (duckdb.PermissionException("Permission Error: file system operations are disabled"), "forbidden"),
    ],
)
def test_engine_errors_are_sorted_by_what_failed(error: duckdb.Error, kind: str) -> None:
    assert engine_error_kind(error) == kind


def test_a_conversion_error_at_evaluation_is_not_blamed_on_the_disk(db: Path) -> None:
    with Warehouse.open(db) as wh:
        with pytest.raises(EngineError) as caught:
            evaluate(wh, _bad_formula_catalogue("a + 'x'"), persist=True)
        assert caught.value.kind == "statement"
        assert caught.value.step == "derived values, layer 1"
    with Warehouse.open(db) as wh:
        assert count(wh, "runs") == 0  # no half run recorded


@pytest.mark.parametrize("expression", ["a + 'x'", "round(a, 'x')", "nullif(a, 'x')"])
def test_cli_says_the_statement_failed_and_names_the_step(
    db: Path, monkeypatch: pytest.MonkeyPatch, expression: str
) -> None:
    # bypass `check` (which refuses these expressions): the catalogue arrives already built
    monkeypatch.setattr("citykpi.catalogue.load_catalogue", lambda _path: _bad_formula_catalogue(expression))
    result = CliRunner().invoke(
        app, ["--db", str(db), "--catalogue", str(DATA / "catalogue_cn10"), "evaluate"]
    )
    assert result.exit_code == 3, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    assert result.stderr.startswith("Error: database error: ")
    assert DISK_HINT not in result.stderr
    assert "a statement failed (evaluation step 'derived values, layer 1')" in result.stderr
    assert "defect in the catalogue's expressions or in citykpi" in result.stderr


def test_a_storage_error_keeps_the_disk_hint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def full(*_args: object, **_kwargs: object) -> None:
        raise duckdb.IOException("IO Error: No space left on device")

    monkeypatch.setattr("citykpi.warehouse.db_info", full)
    Warehouse.open(tmp_path / "w.duckdb").close()
    result = CliRunner().invoke(app, ["--db", str(tmp_path / "w.duckdb"), "db", "info"])
    assert result.exit_code == 3
    assert DISK_HINT in result.stderr
