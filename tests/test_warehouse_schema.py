"""Opening the warehouse: create, migrate, foreign / corrupt / newer files, busy lock, --wait."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from citykpi.errors import DatabaseBusyError, WarehouseError
from citykpi.warehouse import SCHEMA_VERSION, Warehouse
from citykpi.warehouse import schema as schema_mod
from citykpi.warehouse.connection import default_memory_limit
from citykpi.warehouse.schema import CORE_TABLES, table_names
from tests._warehouse_support import DATA, open_with_areas


def test_new_database_has_every_table_and_version(tmp_path: Path) -> None:
    with Warehouse.open(tmp_path / "w.duckdb") as wh:
        assert wh.schema_version == SCHEMA_VERSION
        assert set(CORE_TABLES) <= table_names(wh.con)
        version = wh.con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchall()
        assert version == [(str(SCHEMA_VERSION),)]
    # reopening neither fails nor migrates again
    with Warehouse.open(tmp_path / "w.duckdb", read_only=True) as wh:
        assert wh.schema_version == SCHEMA_VERSION
        assert wh.read_only


def test_observation_types_are_fast_types(tmp_path: Path) -> None:
    with Warehouse.open(tmp_path / "w.duckdb") as wh:
        cols = dict(
            wh.con.execute(
                "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'observations'"
            ).fetchall()
        )
        assert cols["indicator_key"] == "INTEGER"
        assert cols["area_key"] == "INTEGER"
        assert cols["period"] == "TIMESTAMP"
        assert cols["value"] == "DOUBLE"
        # no index on observations: duplicates are found by anti-joins at ingest
        idx = wh.con.execute(
            "SELECT count(*) FROM duckdb_constraints() WHERE table_name = 'observations' "
            "AND constraint_type IN ('PRIMARY KEY', 'UNIQUE')"
        ).fetchall()
        assert idx == [(0,)]


def test_migrations_apply_in_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "w.duckdb"
    Warehouse.open(path).close()
    nxt = SCHEMA_VERSION + 1
    extra = (nxt, ("CREATE TABLE notes (note TEXT)", "INSERT INTO notes VALUES ('next')"))
    monkeypatch.setattr(schema_mod, "MIGRATIONS", (*schema_mod.MIGRATIONS, extra))
    monkeypatch.setattr(schema_mod, "SCHEMA_VERSION", nxt)
    with Warehouse.open(path) as wh:
        assert wh.schema_version == nxt
        assert wh.con.execute("SELECT note FROM notes").fetchall() == [("next",)]


def test_failed_migration_rolls_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "w.duckdb"
    Warehouse.open(path).close()
    nxt = SCHEMA_VERSION + 1
    broken = (nxt, ("CREATE TABLE half (a INT)", "THIS IS NOT SQL"))
    monkeypatch.setattr(schema_mod, "MIGRATIONS", (*schema_mod.MIGRATIONS, broken))
    monkeypatch.setattr(schema_mod, "SCHEMA_VERSION", nxt)
    with pytest.raises(WarehouseError, match=f"migration to schema version {nxt} failed"):
        Warehouse.open(path)
    monkeypatch.undo()
    with Warehouse.open(path) as wh:
        assert wh.schema_version == SCHEMA_VERSION
        assert "half" not in table_names(wh.con)


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    with Warehouse.open(path) as wh:
        wh.con.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(WarehouseError, match="made by a newer citykpi; upgrade"):
        Warehouse.open(path)


def test_foreign_duckdb_file_is_refused_and_untouched(tmp_path: Path) -> None:
    path = tmp_path / "other.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE customers (id INT)")
    con.close()
    before = path.read_bytes()
    with pytest.raises(WarehouseError, match="not made by citykpi"):
        Warehouse.open(path)
    assert path.read_bytes() == before


@pytest.mark.parametrize("content", [b"", b"this is not a database" * 500])
def test_corrupt_file_is_a_clear_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "broken.duckdb"
    path.write_bytes(content)
    with pytest.raises(WarehouseError, match="not a valid DuckDB database"):
        Warehouse.open(path)
    assert path.read_bytes() == content


def test_missing_database_without_create(tmp_path: Path) -> None:
    with pytest.raises(WarehouseError, match="no database at"):
        Warehouse.open(tmp_path / "nope.duckdb", create=False)
    with pytest.raises(WarehouseError, match="no database at"):
        Warehouse.open(tmp_path / "nope.duckdb", read_only=True)
    assert not (tmp_path / "nope.duckdb").exists()


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(WarehouseError, match="does not exist"):
        Warehouse.open(tmp_path / "no" / "such" / "w.duckdb")


def test_register_indicators_keeps_keys_stable(tmp_path: Path) -> None:
    with Warehouse.open(tmp_path / "w.duckdb") as wh:
        wh.register_indicators(["b.x", "a.x"])
        first = wh.indicator_keys()
        wh.register_indicators(["c.x", "a.x", "a.x"])
        second = wh.indicator_keys()
        assert {k: second[k] for k in first} == first
        assert second["c.x"] > max(first.values())
        wh.register_indicators([])


def test_areas_frame(tmp_path: Path) -> None:
    with open_with_areas(tmp_path) as wh:
        frame = wh.areas()
        assert frame.columns == [
            "area_key",
            "area_id",
            "name",
            "name_en",
            "level",
            "parent_key",
            "parent_id",
            "population",
            "groups",
        ]
        cq = frame.filter(frame["area_id"] == "重庆").row(0, named=True)
        assert cq["parent_id"] == "cn"
        assert cq["groups"] == ["west", "central"]
        assert cq["population"] == 32050000


def test_memory_limit_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CITYKPI_MEMORY_LIMIT", "512MB")
    assert default_memory_limit() == "512MB"
    with Warehouse.open(tmp_path / "w.duckdb") as wh:
        limit = wh.con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]
        assert "488" in limit or "512" in limit  # DuckDB shows MiB
    monkeypatch.delenv("CITYKPI_MEMORY_LIMIT")
    assert default_memory_limit().endswith("MB")


# --- concurrency ---------------------------------------------------------------------------------

HOLDER = """
import sys, time
from citykpi.warehouse import Warehouse
wh = Warehouse.open(sys.argv[1])
print("ready", flush=True)
time.sleep(float(sys.argv[2]))
wh.close()
"""


def _hold(path: Path, seconds: float) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path), str(seconds)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    return proc


def test_second_writer_gets_busy_error(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    Warehouse.open(path).close()
    proc = _hold(path, 30)
    try:
        with pytest.raises(
            DatabaseBusyError, match=r"is busy \(another citykpi process is writing\); retry, or pass --wait"
        ):
            Warehouse.open(path)
        with pytest.raises(DatabaseBusyError):
            Warehouse.open(path, wait=0.5)
    finally:
        proc.kill()
        proc.wait()


def test_wait_waits_for_the_writer(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    Warehouse.open(path).close()
    proc = _hold(path, 1.5)
    try:
        start = time.monotonic()
        with Warehouse.open(path, wait=30) as wh:
            assert wh.schema_version == SCHEMA_VERSION
        assert time.monotonic() - start > 0.5
    finally:
        proc.kill()
        proc.wait()


def test_areas_file_fixture_exists() -> None:
    assert (DATA / "areas_cn10.csv").is_file()


def test_handed_over_connection_has_no_unread_result(tmp_path: Path) -> None:
    """DuckDB 2 refuses con.sql() while an execute() result is unread; open() must not leave one."""
    Warehouse.open(tmp_path / "w.duckdb").close()
    with Warehouse.open(tmp_path / "w.duckdb") as wh:
        assert wh.con.frame("SELECT 1 AS one").rows() == [(1,)]  # frame() finishes any unread result itself


def test_cli_reports_corrupt_database(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from citykpi.cli import app

    bad = tmp_path / "bad.duckdb"
    bad.write_bytes(b"garbage" * 100)
    result = CliRunner().invoke(app, ["--db", str(bad), "db", "info"])
    assert result.exit_code == 3
    assert "not a valid DuckDB database" in result.output
    result = CliRunner().invoke(app, ["--db", str(tmp_path / "none.duckdb"), "query", "SELECT 1"])
    assert result.exit_code == 3 and "no database at" in result.output


def test_version_1_database_with_data_migrates_and_keeps_its_rows(tmp_path: Path) -> None:
    """A database written by schema 1 (no storage classes) opens, migrates and keeps every row."""
    import duckdb

    path = tmp_path / "v1.duckdb"
    con = duckdb.connect(str(path))
    for stmt in dict(schema_mod.MIGRATIONS)[1]:
        con.execute(stmt)
    con.execute("INSERT INTO meta VALUES ('schema_version', '1')")
    con.execute("INSERT INTO indicator_keys VALUES (1, 'a.b')")
    con.execute("INSERT INTO observations VALUES (1, 1, TIMESTAMP '2025-01-01', 2.5, NULL, NULL, 1)")
    con.close()
    with Warehouse.open(path) as wh:
        assert wh.schema_version == SCHEMA_VERSION
        rows = wh.con.execute("SELECT indicator_key, value, freq_class FROM observations").fetchall()
        assert rows == [(1, 2.5, 0)]
        assert wh.con.execute("SELECT * FROM series_classes").fetchall() == [(1, 0)]


def test_version_2_runs_become_scheduled_when_they_evaluated_everything(tmp_path: Path) -> None:
    """Schema 3 tells scheduled runs from ad-hoc ones. A run recorded before it counts as scheduled
    when it evaluated the whole catalogue (what "the previous run" always meant), as ad hoc when it
    was filtered (a look at one level or domain is no baseline for tomorrow's alerts)."""
    import duckdb

    path = tmp_path / "v2.duckdb"
    con = duckdb.connect(str(path))
    for version in (1, 2):
        for stmt in dict(schema_mod.MIGRATIONS)[version]:
            con.execute(stmt)
    con.execute("INSERT INTO meta VALUES ('schema_version', '2')")
    whole = json.dumps(
        {
            "levels": None,
            "areas": None,
            "domains": None,
            "kinds": None,
            "indicator": None,
            "as_ingested": None,
        },
        sort_keys=True,
    )
    filtered = json.dumps({**json.loads(whole), "levels": ["city"]}, sort_keys=True)
    for run_id, options in ((1, whole), (2, filtered), (3, None)):
        con.execute(
            "INSERT INTO runs VALUES (?, TIMESTAMP '2025-01-02', DATE '2025-01-01', 'day', 'h', ?, 1, 0, '{}')",
            [run_id, options],
        )
    con.close()
    with Warehouse.open(path) as wh:
        assert wh.schema_version == SCHEMA_VERSION
        rows = wh.con.execute("SELECT run_id, scheduled FROM runs ORDER BY run_id").fetchall()
        assert rows == [(1, True), (2, False), (3, True)]
        for table in ("silences", "notify_outbox", "notify_state"):
            assert wh.con.execute(f"SELECT count(*) FROM {table}").fetchall() == [(0,)]
