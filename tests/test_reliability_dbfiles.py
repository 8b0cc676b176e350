"""Bad database files: corrupt, truncated, foreign, newer — a clear error (exit 3), never a traceback or a write.

Every command that opens the database is tried on every bad file, and the file's bytes must be the
same afterwards (no silent overwrite, no migration, no repair attempt).
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from citykpi.cli import app
from citykpi.warehouse import Warehouse
from tests.reliability_support import build_city, file_digest
from tests.scorecard_city import START

DAY = "2026-11-07"


@pytest.fixture(scope="module")
def real_db(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The bytes of a real, checkpointed tiny-city database (areas, a week of data, one run)."""
    root = tmp_path_factory.mktemp("real")
    paths = build_city(root)
    return paths["db"].read_bytes()


def _random(size: int) -> Callable[[bytes], bytes]:
    return lambda _real: random.Random(size).randbytes(size)


def _truncated(fraction: float) -> Callable[[bytes], bytes]:
    return lambda real: real[: int(len(real) * fraction)]


def _header_then_garbage(real: bytes) -> bytes:
    return real[:12288] + random.Random(7).randbytes(len(real) - 12288)


def _foreign(tmp: Path) -> bytes:
    path = tmp / "foreign.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE customers (id INTEGER, name TEXT)")
    con.execute("INSERT INTO customers VALUES (1, 'a')")
    con.close()
    return path.read_bytes()


def _newer(tmp: Path, real: bytes) -> bytes:
    path = tmp / "newer.duckdb"
    path.write_bytes(real)
    with Warehouse.open(path) as wh:
        wh.con.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    return path.read_bytes()


KINDS: dict[str, tuple[Callable[[bytes], bytes] | None, str]] = {
    "empty": (lambda _real: b"", "not a valid DuckDB database"),
    "random_64k": (_random(65536), "not a valid DuckDB database"),
    "random_1m": (_random(1 << 20), "not a valid DuckDB database"),
    "text": (lambda _real: b"indicator_id,area_id\n" * 500, "not a valid DuckDB database"),
    "truncated_100b": (lambda real: real[:100], "not a valid DuckDB database"),
    "truncated_8k": (lambda real: real[:8192], "not a valid DuckDB database"),
    # where a cut lands depends on the file's layout: in free space the database is still whole
    "truncated_third": (_truncated(1 / 3), ""),
    "truncated_two_thirds": (_truncated(2 / 3), ""),
    "header_then_garbage": (_header_then_garbage, "Error:"),
    "foreign_duckdb": (None, "not made by citykpi"),
    "newer_schema": (None, "made by a newer citykpi; upgrade"),
}

COMMANDS: dict[str, list[str]] = {
    "db_info": ["db", "info"],
    "query": ["query", "SELECT count(*) FROM observations"],
    "areas_load": ["areas", "load", "{root}/areas.csv"],
    "ingest": ["ingest", "{root}/obs.csv"],
    "evaluate": ["evaluate", "--date", DAY],
    "run": ["run", "--config", "{root}/citykpi.toml", "--date", DAY],
}


def _bad_file(kind: str, tmp: Path, real: bytes) -> bytes:
    make, _ = KINDS[kind]
    if kind == "foreign_duckdb":
        return _foreign(tmp)
    if kind == "newer_schema":
        return _newer(tmp, real)
    assert make is not None
    return make(real)


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("kind", list(KINDS))
def test_bad_database_is_refused_and_left_untouched(
    tmp_path: Path, real_db: bytes, kind: str, command: str
) -> None:
    from tests.scorecard_city import write_city, write_day

    write_city(tmp_path)
    write_day(tmp_path, START).rename(tmp_path / "obs.csv")
    db = tmp_path / "bad.duckdb"
    (tmp_path / "citykpi.toml").write_text(
        f'database = "{db}"\ncatalogue = "catalogue"\ninbox = ["inbox"]\n[outputs]\nfolder = "out"\n',
        encoding="utf-8",
    )
    content = _bad_file(kind, tmp_path, real_db)
    db.write_bytes(content)
    before = file_digest(db)
    args = [a.format(root=tmp_path) for a in COMMANDS[command]]
    result = CliRunner().invoke(app, ["--db", str(db), "--catalogue", str(tmp_path / "catalogue"), *args])
    if not KINDS[kind][1] and result.exit_code in (0, 1):  # the cut missed every used block: a whole database
        assert "Traceback" not in result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)
        return
    assert result.exit_code == 3, (kind, command, result.output)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    assert KINDS[kind][1] in result.stderr, result.stderr
    assert result.stderr.startswith("Error: ") or "\nError: " in result.stderr
    assert file_digest(db) == before, "the bad file was modified"
    assert not (tmp_path / "bad.duckdb.wal").exists() or (tmp_path / "bad.duckdb.wal").stat().st_size == 0
    out = tmp_path / "out"
    exports = [p for p in out.iterdir() if p.name != "runs"] if out.exists() else []
    assert not exports, "exports were written"
    if command == "run":  # the run report says the job failed, and why
        report = json.loads((out / "runs" / f"run-{DAY}-day.json").read_text(encoding="utf-8"))
        assert (report["health"]["status"], report["exit_code"], report["run_id"]) == ("failed", 3, None)
        assert report["error"]["message"].splitlines()[0] in result.stderr


def test_duckdb_failure_inside_a_command_is_a_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read error deep in a damaged file (found after opening) ends as exit 3 and one Error line."""

    def damaged(*_args: object, **_kwargs: object) -> None:
        raise duckdb.IOException('IO Error: Could not read enough bytes from file "x.duckdb"')

    monkeypatch.setattr("citykpi.warehouse.db_info", damaged)
    Warehouse.open(tmp_path / "w.duckdb").close()
    result = CliRunner().invoke(app, ["--db", str(tmp_path / "w.duckdb"), "db", "info"])
    assert result.exit_code == 3
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert result.stderr.startswith("Error: database error: IO Error: Could not read enough bytes")
    debug = CliRunner().invoke(app, ["--debug", "--db", str(tmp_path / "w.duckdb"), "db", "info"])
    assert isinstance(debug.exception, duckdb.IOException)  # --debug shows the real error
