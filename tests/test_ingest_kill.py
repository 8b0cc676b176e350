"""kill -9 in the middle of an ingest leaves no partial batch; the same file loads afterwards.

Also: a second writer gets the busy error from the CLI, and ``--wait`` waits for the first.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from citykpi.cli import app
from citykpi.warehouse import IngestOptions, Warehouse, ingest
from tests._warehouse_support import DATA, catalogue, count, open_with_areas

ROWS = 300_000
REPO = Path(__file__).resolve().parents[1]

CHILD = """
import sys, time
sys.path.insert(0, sys.argv[3])
from citykpi.warehouse import IngestOptions, Warehouse, ingest
ingest_mod = sys.modules["citykpi.warehouse.ingest"]
from tests._warehouse_support import catalogue

mode = sys.argv[4]
if mode == "inject":
    original = ingest_mod._Plan.load
    def load(self, con, path, writing):
        result = original(self, con, path, writing)  # rows appended, transaction still open
        print("inserted", result.loaded, flush=True)
        time.sleep(120)
        return result
    ingest_mod._Plan.load = load

def progress(message, done, total):
    print(message, flush=True)

with Warehouse.open(sys.argv[1]) as wh:
    ingest(wh, catalogue(), [sys.argv[2]], IngestOptions(), progress=progress)
print("done", flush=True)
"""


def _big_file(tmp_path: Path) -> Path:
    path = tmp_path / "big.csv"
    areas = ["上海", "北京", "南京", "广州", "成都", "杭州", "武汉", "深圳", "西安", "重庆"]
    con = duckdb.connect()
    con.execute(
        f"""COPY (
            SELECT 'env.air.aqi' AS indicator_id, a.area AS area_id,
                   TIMESTAMP '2000-01-01' + INTERVAL (h.i) HOUR AS period, (h.i % 300)::DOUBLE AS value
            FROM range({ROWS // len(areas)}) h(i), (SELECT unnest(?) AS area) a
        ) TO '{path}' (HEADER)""",
        [areas],
    )
    con.close()
    return path


def _run_child(db: Path, data: Path, mode: str, until: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(db), str(data), str(REPO), mode],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith(until):
            os.kill(proc.pid, signal.SIGKILL)
            break
    proc.wait(timeout=120)
    return proc


def _assert_consistent(db: Path) -> tuple[int, int]:
    """Every batch in the database is complete: its rows are all there, nothing else is."""
    with Warehouse.open(db) as wh:
        batches = wh.con.execute("SELECT batch_id, status, rows_loaded FROM batches").fetchall()
        for batch_id, status, rows_loaded in batches:
            n = wh.con.execute("SELECT count(*) FROM observations WHERE batch_id = ?", [batch_id]).fetchall()[
                0
            ][0]
            assert status == "loaded" and n == rows_loaded
        orphans = wh.con.execute(
            "SELECT count(*) FROM observations WHERE batch_id NOT IN (SELECT batch_id FROM batches)"
        ).fetchall()[0][0]
        assert orphans == 0
        return len(batches), count(wh, "observations")


def test_kill_inside_the_transaction_leaves_no_partial_batch(tmp_path: Path) -> None:
    data = _big_file(tmp_path)
    db = tmp_path / "test.duckdb"
    open_with_areas(tmp_path).close()
    proc = _run_child(db, data, "inject", until="inserted")
    assert proc.returncode == -signal.SIGKILL
    assert _assert_consistent(db) == (0, 0)
    with Warehouse.open(db) as wh:
        assert count(wh, "rejects") == 0
        f = ingest(wh, catalogue(), [data], IngestOptions()).files[0]
        assert (f.status, f.rows_loaded, f.rows_rejected) == ("loaded", ROWS, 0)
    assert _assert_consistent(db) == (1, ROWS)


def test_kill_while_writing_is_all_or_nothing(tmp_path: Path) -> None:
    data = _big_file(tmp_path)
    db = tmp_path / "test.duckdb"
    open_with_areas(tmp_path).close()
    proc = _run_child(db, data, "plain", until=f"{data}: writing")
    assert proc.returncode in (-signal.SIGKILL, 0)
    batches, rows = _assert_consistent(db)
    assert (batches, rows) in ((0, 0), (1, ROWS))
    with Warehouse.open(db) as wh:
        f = ingest(wh, catalogue(), [data], IngestOptions()).files[0]
        assert f.status == ("unchanged" if batches else "loaded"), f
    assert _assert_consistent(db) == (1, ROWS)


HOLDER = """
import sys, time
from citykpi.warehouse import Warehouse
wh = Warehouse.open(sys.argv[1])
print("ready", flush=True)
time.sleep(float(sys.argv[2]))
wh.close()
"""


@pytest.mark.parametrize(
    ("hold", "extra", "code", "text"), [(30, [], 3, "is busy"), (1.5, ["--wait", "60"], 0, "loaded")]
)
def test_cli_second_writer_busy_or_waits(
    tmp_path: Path, hold: float, extra: list[str], code: int, text: str
) -> None:
    db = tmp_path / "w.duckdb"
    with Warehouse.open(db) as wh:
        from citykpi.warehouse import load_areas

        load_areas(wh, DATA / "areas_cn10.csv")
    data = tmp_path / "a.csv"
    data.write_text("indicator_id,area_id,period,value\nenv.air.aqi,重庆,2024-01-01,5\n", encoding="utf-8")
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(db), str(hold)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        result = CliRunner().invoke(
            app,
            [
                "--db",
                str(db),
                "--catalogue",
                str(DATA / "catalogue_cn10"),
                "ingest",
                str(data),
                "--quiet",
                *extra,
            ],
        )
        assert result.exit_code == code, result.output
        if code:
            assert "retry, or pass --wait SECONDS" in result.output
        else:
            with Warehouse.open(db) as wh:
                assert count(wh, "observations") == 1
    finally:
        proc.kill()
        proc.wait()
