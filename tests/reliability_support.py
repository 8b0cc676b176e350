"""Helpers for the reliability tests: a tiny real city with a cron config, and the database invariants."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import duckdb

from citykpi.warehouse import Warehouse, load_areas
from citykpi.warehouse.schema import table_names
from tests._warehouse_support import checksum
from tests.scorecard_city import START, write_city, write_days

REPO = Path(__file__).resolve().parents[1]
PYTHON = sys.executable


def write_config(root: Path, *, formats: str = '["csv", "json", "html", "xlsx"]', extra: str = "") -> Path:
    """A citykpi.toml for the tiny city under ``root`` (database city.duckdb, inbox/, out/)."""
    path = root / "citykpi.toml"
    path.write_text(
        f"""database = "city.duckdb"
catalogue = "catalogue"
areas = "areas.csv"
inbox = ["inbox"]
lang = "en"
fail_on = "never"
settle = 0
{extra}
[outputs]
folder = "out"
formats = {formats}
""",
        encoding="utf-8",
    )
    return path


def build_city(root: Path, *, last: date = START + timedelta(days=6)) -> dict[str, Path]:
    """The tiny city with its inbox loaded and one run recorded (via the library, in-process)."""
    from citykpi.cron import RunConfig, run_job

    paths = write_city(root)
    paths["config"] = write_config(root)
    write_days(paths["inbox"], START, last)
    run_job(RunConfig.load(paths["config"]), as_of=last)
    return paths


def areas_template(root: Path) -> tuple[bytes, Path]:
    """The bytes of a database holding only the tiny city's areas (no observations), and its catalogue folder."""
    paths = write_city(root)
    with Warehouse.open(root / "t.duckdb") as wh:
        load_areas(wh, paths["areas"])
    return (root / "t.duckdb").read_bytes(), paths["catalogue"]


def cli(*args: str | Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``python -m citykpi ARGS`` in a subprocess (a real process: real signals, real exit codes)."""
    return subprocess.run(
        [PYTHON, "-m", "citykpi", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=timeout,
    )


def file_digest(path: Path) -> str:
    """sha256 of a file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def content_digest(db: Path) -> str:
    """A digest of every table's full content (not the file's bytes, which DuckDB may reorganise)."""
    with Warehouse.open(db, read_only=True, create=False) as wh:
        return checksum(wh)


@dataclass(frozen=True)
class Facts:
    """What a consistent database holds (after the invariants were checked)."""

    batches: int
    loaded_batches: int
    observations: int
    source_rows: int
    runs: int
    run_cells: int


def check_invariants(db: Path) -> Facts:
    """Open ``db`` and assert it is whole: every batch all-or-none, every run complete, no orphans.

    * rows per batch_id in its target table (observations plus the superseded copies, or a raw
      ``src_*`` table) equal ``batches.rows_loaded``; rejected batches hold no rows;
    * no observation, source row or reject points at a batch that is not recorded;
    * ``run_cells`` per run equal ``runs.cells``; no cells or index scores without their run.
    """
    with Warehouse.open(db, read_only=True, create=False) as wh:
        con = wh.con
        tables = set(table_names(con))
        sources = sorted(t for t in tables if t.startswith("src_"))
        batches = con.execute("SELECT batch_id, target, status, rows_loaded FROM batches").fetchall()
        known = {int(b[0]) for b in batches}

        def per_batch(table: str) -> dict[int, int]:
            return {
                int(k): int(n)
                for k, n in con.execute(
                    f'SELECT batch_id, count(*) FROM "{table}" GROUP BY batch_id'
                ).fetchall()
            }

        stored: dict[str, dict[int, int]] = {
            "observations": per_batch("observations"),
            **{s: per_batch(s) for s in sources},
        }
        superseded = per_batch("observations_superseded")
        for batch_id, target, status, rows_loaded in batches:
            have = stored.get(str(target), {}).get(int(batch_id), 0)
            if target == "observations":
                have += superseded.get(int(batch_id), 0)
            expected = int(rows_loaded or 0) if status == "loaded" else 0
            assert have == expected, f"batch {batch_id} ({status}) holds {have} rows, recorded {rows_loaded}"
        for table, counts in [*stored.items(), ("observations_superseded", superseded)]:
            orphans = set(counts) - known
            assert not orphans, f"{table} has rows of unrecorded batches {sorted(orphans)}"
        reject_batches = {int(r[0]) for r in con.execute("SELECT DISTINCT batch_id FROM rejects").fetchall()}
        assert reject_batches <= known, "rejects of unrecorded batches"

        runs = {int(r): int(c) for r, c in con.execute("SELECT run_id, cells FROM runs").fetchall()}
        cells = {
            int(r): int(n)
            for r, n in con.execute("SELECT run_id, count(*) FROM run_cells GROUP BY run_id").fetchall()
        }
        for run_id, n in runs.items():
            assert cells.get(run_id, 0) == n, f"run {run_id} has {cells.get(run_id, 0)} cells, recorded {n}"
        assert set(cells) <= set(runs), "run_cells without their run"
        index_runs = {int(r[0]) for r in con.execute("SELECT DISTINCT run_id FROM run_indices").fetchall()}
        assert index_runs <= set(runs), "run_indices without their run"
        return Facts(
            batches=len(batches),
            loaded_batches=sum(1 for b in batches if b[2] == "loaded"),
            observations=sum(stored["observations"].values()),
            source_rows=sum(sum(stored[s].values()) for s in sources),
            runs=len(runs),
            run_cells=sum(cells.values()),
        )


#: A child process that runs the CLI with a pause injected at a chosen point (argv: point seconds ARGS…).
#: It prints a marker line when it reaches the point: ``inserted`` (inside the ingest transaction, rows
#: appended, not committed), ``persisting`` (inside the run's transaction, cells inserted), ``queued``
#: (the run's digests committed to the outbox, none sent), ``sending`` (a webhook's digest marked
#: ``sending`` and committed, not sent yet), ``sent`` (a webhook took a digest, the outbox has not
#: recorded it), ``appended`` (the same for the JSONL notifier: the line is in its file) or ``written``
#: (an export's temporary file written, not yet renamed). Point ``none`` injects nothing.
PAUSE_CHILD = """
import os, sys, time
import citykpi.engine.runs as runs
import citykpi.render.exports as exports
import citykpi.warehouse.ingest
from citykpi.cli import main

ingest_mod = sys.modules["citykpi.warehouse.ingest"]  # the package re-exports a function of that name

point, seconds = sys.argv[1], float(sys.argv[2])
release = os.environ.get("CITYKPI_TEST_RELEASE")  # the pause ends early once this file exists


def pause(seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end and not (release and os.path.exists(release)):
        time.sleep(0.05)


if point == "ingest":
    original_load = ingest_mod._Plan.load
    def load(self, con, path, writing):
        result = original_load(self, con, path, writing)
        print("inserted", flush=True)
        pause(seconds)
        return result
    ingest_mod._Plan.load = load
elif point == "persist":
    def persist_run(wh, scorecard, *, options, scheduled=False):
        con = wh.con
        con.execute("BEGIN TRANSACTION")
        con.execute("INSERT INTO runs (run_id, created_at, as_of, grain, catalogue_hash, options, max_batch_id, cells, counts) "
                    "VALUES (999, now(), DATE '2026-11-07', 'day', 'x', '{}', 0, 1000, '{}')")
        con.execute("INSERT INTO run_cells SELECT 999, ikey, area_key, value, status, severity FROM t_cells")
        print("persisting", flush=True)
        pause(seconds)
        raise SystemExit(9)
    runs.persist_run = persist_run
elif point == "queued":
    import citykpi.notify.outbox as outbox
    original_deliver = outbox.deliver_pending
    def deliver_pending(*args, **kwargs):
        print("queued", flush=True)
        pause(seconds)
        return original_deliver(*args, **kwargs)
    outbox.deliver_pending = deliver_pending
elif point in ("sent", "appended"):
    import citykpi.notify.outbox as outbox
    original_record = outbox.record
    def record(wh, notifier, key, delivery, **kwargs):
        if delivery.delivered and (notifier == "archive") == (point == "appended"):
            print(point, key, flush=True)
            pause(seconds)
        return original_record(wh, notifier, key, delivery, **kwargs)
    outbox.record = record
elif point == "sending":
    import citykpi.notify.outbox as outbox
    original_mark = outbox.mark_sending
    def mark_sending(wh, notifier, key, **kwargs):
        original_mark(wh, notifier, key, **kwargs)
        if notifier != "archive":
            print("sending", key, flush=True)
            pause(seconds)
    outbox.mark_sending = mark_sending
elif point == "export":
    original_write = exports.atomic_write
    def atomic_write(path, write):
        def slow(tmp):
            write(tmp)
            print("written", tmp, flush=True)
            pause(seconds)
        return original_write(path, slow)
    exports.atomic_write = atomic_write
sys.argv = ["citykpi", *sys.argv[3:]]
main()
"""


def start_paused(
    point: str, seconds: float, *args: str | Path, release: Path | None = None
) -> subprocess.Popen[str]:
    """Start the CLI with a pause at ``point`` (see :data:`PAUSE_CHILD`); stdout and stderr merged.

    The pause lasts ``seconds``, or until the file ``release`` is created.
    """
    env = {**os.environ, **({"CITYKPI_TEST_RELEASE": str(release)} if release else {})}
    return subprocess.Popen(
        [PYTHON, "-c", PAUSE_CHILD, point, str(seconds), *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=REPO,
        env=env,
    )


def start_cli(*args: str | Path) -> subprocess.Popen[str]:
    """``python -m citykpi ARGS`` started in the background (stdout and stderr piped)."""
    return subprocess.Popen(
        [PYTHON, "-m", "citykpi", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )


def wait_for(proc: subprocess.Popen[str], marker: str) -> str:
    """Read the child's output until a line contains ``marker``; returns what was read."""
    assert proc.stdout is not None
    seen: list[str] = []
    for line in proc.stdout:
        seen.append(line)
        if marker in line:
            return "".join(seen)
    raise AssertionError(f"child ended without {marker!r}:\n" + "".join(seen)[-3000:])


def sample_city(root: Path, *, days: int = 20, end: str = "2025-12-31") -> dict[str, Path]:
    """The sample city (``days`` days) with the hourly, periodic and hotline data loaded; daily data as inbox files."""
    from citykpi.catalogue import load_catalogue
    from citykpi.sample import load_sample
    from citykpi.warehouse import Warehouse

    gen = root / "gen"
    done = subprocess.run(
        [PYTHON, "-m", "citykpi.sample", "--out", str(gen), "--days", str(days), "--end", end],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr
    daily = gen / "observations_daily.parquet"
    pending = root / "pending"
    pending.mkdir()
    con = duckdb.connect()
    dates = [
        r[0]
        for r in con.execute(f"SELECT DISTINCT CAST(period AS DATE) FROM '{daily}' ORDER BY 1").fetchall()
    ]
    for d in dates:
        con.execute(
            f"COPY (SELECT * FROM '{daily}' WHERE CAST(period AS DATE) = DATE '{d}') "
            f"TO '{pending / f'daily-{d}.csv'}' (HEADER)"
        )
    con.close()
    daily.unlink()
    manifest = json.loads((gen / "manifest.json").read_text(encoding="utf-8"))
    manifest["order"] = [n for n in manifest["order"] if n != "observations_daily.parquet"]
    (gen / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    catalogue = REPO / "indicators"
    db = root / "city.duckdb"
    with Warehouse.open(db) as wh:
        load_sample(wh, load_catalogue(catalogue), gen)
    (root / "inbox").mkdir()
    (root / "citykpi.toml").write_text(
        f'database = "city.duckdb"\ncatalogue = "{catalogue}"\ninbox = ["inbox"]\nfail_on = "never"\nsettle = 0\n'
        '[outputs]\nfolder = "out"\nformats = ["json", "xlsx", "html"]\n',
        encoding="utf-8",
    )
    return {"db": db, "catalogue": catalogue, "gen": gen, "pending": pending, "config": root / "citykpi.toml"}


def kill_at(marker: str, point: str, *args: str | Path) -> None:
    """Run the CLI with a pause at ``point``; SIGKILL it when ``marker`` is printed."""
    import signal

    proc = start_paused(point, 120, *args)
    seen = wait_for(proc, marker)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=120)
    assert proc.returncode == -signal.SIGKILL, seen[-3000:]
