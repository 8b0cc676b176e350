"""Disk full, file size limit and read-only destinations during ingest, export and run.

Each case asserts a clear ``Error:`` line with exit 3 and nothing half-written: the database's
content is unchanged (and still whole), no partial export, no stray temporary file; and once the
disk has room again the same command succeeds.

Disk full is a small tmpfs (we run as root here) and, everywhere, ``RLIMIT_FSIZE`` in the child;
read-only is a read-only bind mount, else ``chattr +i``. Root ignores permission bits, so every
technique is checked to really refuse a write before a test relies on it.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import subprocess
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import duckdb
import pytest

from citykpi.render.exporters import EXTENSIONS, FORMATS
from citykpi.warehouse import Warehouse, ingest, load_areas
from tests.reliability_support import (
    PYTHON,
    REPO,
    check_invariants,
    cli,
    content_digest,
    write_config,
)
from tests.scorecard_city import START, write_city, write_days


def _writable(folder: Path) -> bool:
    probe = folder / f".probe-{uuid.uuid4().hex}"
    try:
        probe.write_bytes(b"x")
    except OSError:
        return False
    probe.unlink()
    return True


@contextlib.contextmanager
def tmpfs(folder: Path, size_kb: int) -> Iterator[Path]:
    """A tmpfs of ``size_kb`` KiB mounted on ``folder`` (skips the test when mounting is not allowed)."""
    folder.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs", str(folder)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


@contextlib.contextmanager
def read_only(folder: Path) -> Iterator[Path]:
    """Make ``folder`` refuse writes (read-only bind mount, else chattr +i); verified, else skip."""
    undo: list[list[str]] = []
    mounted = subprocess.run(["mount", "--bind", str(folder), str(folder)], capture_output=True)
    if mounted.returncode == 0:
        undo.append(["umount", "-l", str(folder)])
        subprocess.run(["mount", "-o", "remount,bind,ro", str(folder)], capture_output=True)
    if _writable(folder):
        for cmd in undo:
            subprocess.run(cmd, check=False)
        undo = []
        if subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode == 0:
            undo.append(["chattr", "-i", str(folder)])
    try:
        if _writable(folder):
            pytest.skip("cannot make a folder read-only here (no bind mount, no chattr)")
        yield folder
    finally:
        for cmd in undo:
            subprocess.run(cmd, check=False)


def fill(folder: Path, leave_kb: int) -> Path:
    """Fill the file system of ``folder`` until ``leave_kb`` KiB remain; returns the filler file."""
    stat = os.statvfs(folder)
    free = stat.f_bavail * stat.f_frsize
    filler = folder / "filler"
    with filler.open("wb") as fh:
        left = max(0, free - leave_kb * 1024)
        while left > 0:
            chunk = min(left, 1 << 20)
            try:
                fh.write(b"\0" * chunk)
                fh.flush()
            except OSError:
                break
            left -= chunk
    return filler


def big_csv(path: Path, rows: int) -> Path:
    """A long-format CSV of ``rows`` valid hourly AQI observations for the tiny city's two districts."""
    con = duckdb.connect()
    con.execute(
        f"""COPY (
            SELECT 'env.air.aqi' AS indicator_id, a.area AS area_id,
                   TIMESTAMP '2000-01-01' + INTERVAL (h.i) HOUR AS period, (h.i % 300)::DOUBLE AS value
            FROM range({rows // 2}) h(i), (SELECT unnest(['500103', '500112']) AS area) a
        ) TO '{path}' (HEADER)"""
    )
    con.close()
    return path


def seed(db: Path, root: Path) -> None:
    """The tiny city's areas and one day of observations in ``db``."""
    paths = write_city(root)
    write_days(paths["inbox"], START, START)
    from citykpi.catalogue import load_catalogue

    with Warehouse.open(db) as wh:
        load_areas(wh, paths["areas"])
        ingest(wh, load_catalogue(paths["catalogue"]), [paths["inbox"]])


def assert_clean_error(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    """Exit 3, one ``Error:`` line naming the cause, no traceback."""
    assert result.returncode == 3, (result.returncode, result.stderr[-2000:])
    assert "Traceback" not in result.stderr and "Exception ignored" not in result.stderr, result.stderr
    assert "Error: " in result.stderr
    for needle in needles:
        assert needle in result.stderr, result.stderr


# --- ingest ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rows", "leave_kb"),
    [
        pytest.param(2_000, 0, id="small-file-no-room"),
        pytest.param(2_000, 16, id="small-file-16KiB-room", marks=pytest.mark.slow),
        pytest.param(300_000, 0, id="big-file-no-room"),
        pytest.param(300_000, 512, id="big-file-512KiB-room", marks=pytest.mark.slow),
    ],
)
def test_ingest_on_a_full_disk_stores_nothing_then_recovers(tmp_path: Path, rows: int, leave_kb: int) -> None:
    data = big_csv(tmp_path / "big.csv", rows)
    with tmpfs(tmp_path / "disk", 64 * 1024) as disk:
        db = disk / "w.duckdb"
        seed(db, tmp_path / "city")
        before = content_digest(db)
        (disk / "tmp").mkdir()
        filler = fill(disk, leave_kb)
        env = {**os.environ, "TMPDIR": str(disk / "tmp")}
        result = subprocess.run(
            [PYTHON, "-m", "citykpi", "--db", str(db), "--catalogue", str(tmp_path / "city" / "catalogue"),
             "ingest", str(data), "--quiet"],
            capture_output=True, text=True, cwd=REPO, env=env, timeout=300,
        )  # fmt: skip
        if result.returncode == 0:  # it fitted after all: then it must be whole
            facts = check_invariants(db)
            assert facts.observations == 4 + rows
            pytest.skip(f"{rows} rows fitted in {leave_kb} KiB")
        assert_clean_error(result, "No space left on device")
        assert content_digest(db) == before, "a failed ingest changed the database"
        check_invariants(db)
        assert list((disk / "tmp").iterdir()) == [], "a temporary file was left behind"
        assert {p.name for p in disk.iterdir()} <= {"w.duckdb", "w.duckdb.wal", "filler", "tmp"}
        filler.unlink()
        again = cli("--db", db, "--catalogue", tmp_path / "city" / "catalogue", "ingest", data, "--quiet")
        assert again.returncode == 0, again.stderr
        assert check_invariants(db).observations == 4 + rows


def test_ingest_gb18030_with_a_full_temp_folder(tmp_path: Path) -> None:
    """The UTF-8 copy of a GB18030 file cannot be written: exit 3, no stray temp file, db unchanged."""
    seed(tmp_path / "w.duckdb", tmp_path / "city")
    data = tmp_path / "gbk.csv"
    rows = "".join(f"env.air.aqi,500103,2026-11-02,{n % 300},渝中区第{n}条\n" for n in range(10_000))
    data.write_bytes(("indicator_id,area_id,period,value,备注\n" + rows).encode("gb18030"))
    before = content_digest(tmp_path / "w.duckdb")
    with tmpfs(tmp_path / "tmpdisk", 64) as tmpdir:
        result = subprocess.run(
            [PYTHON, "-m", "citykpi", "--db", str(tmp_path / "w.duckdb"),
             "--catalogue", str(tmp_path / "city" / "catalogue"), "ingest", str(data)],
            capture_output=True, text=True, cwd=REPO, env={**os.environ, "TMPDIR": str(tmpdir)}, timeout=120,
        )  # fmt: skip
        assert_clean_error(result, "cannot write a temporary UTF-8 copy", "No space left on device")
        assert list(tmpdir.iterdir()) == []
    assert content_digest(tmp_path / "w.duckdb") == before


CHILD_WITH_FSIZE = """
import resource, runpy, sys
limit = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
sys.argv = ["citykpi", *sys.argv[2:]]
runpy.run_module("citykpi", run_name="__main__")
"""


def test_ingest_beyond_the_file_size_limit(tmp_path: Path) -> None:
    """RLIMIT_FSIZE (works without root): the database may not grow; exit 3, content unchanged."""
    db = tmp_path / "w.duckdb"
    seed(db, tmp_path / "city")
    data = big_csv(tmp_path / "big.csv", 300_000)
    before = content_digest(db)
    limit = db.stat().st_size + 64 * 1024
    result = subprocess.run(
        [PYTHON, "-c", CHILD_WITH_FSIZE, str(limit), "--db", str(db),
         "--catalogue", str(tmp_path / "city" / "catalogue"), "ingest", str(data), "--quiet"],
        capture_output=True, text=True, cwd=REPO, timeout=300,
    )  # fmt: skip
    assert_clean_error(result, "File too large")
    assert content_digest(db) == before
    check_invariants(db)
    assert (
        resource.getrlimit(resource.RLIMIT_FSIZE)[0] == resource.RLIM_INFINITY
    )  # the test itself is unlimited


def test_ingest_into_a_read_only_folder(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    db = folder / "w.duckdb"
    seed(db, tmp_path / "city")
    data = big_csv(tmp_path / "big.csv", 2_000)
    before = db.read_bytes()
    with read_only(folder):
        result = cli("--db", db, "--catalogue", tmp_path / "city" / "catalogue", "ingest", data)
        assert_clean_error(result, "cannot open database")
        assert db.read_bytes() == before
        assert sorted(p.name for p in folder.iterdir()) == ["w.duckdb"]


# --- export ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def city_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny city with a week of data (for evaluate --output)."""
    from tests.reliability_support import build_city

    return build_city(tmp_path_factory.mktemp("city"))["db"].parent


#: Every format on a full disk; the text formats share one code path, so the default run tries four.
_FULL_DISK_FORMATS = [
    pytest.param(f, marks=pytest.mark.slow) if f in ("jsonl", "markdown", "junit", "json") else f
    for f in FORMATS
]


@pytest.mark.parametrize("fmt", _FULL_DISK_FORMATS)
def test_export_to_a_full_disk_keeps_the_old_file(tmp_path: Path, city_db: Path, fmt: str) -> None:
    with tmpfs(tmp_path / "disk", 512) as disk:
        target = disk / f"s{EXTENSIONS[fmt]}"
        # yesterday's report: a real previous export, which --output replaces without --force
        yesterday = cli(
            "--db", city_db / "city.duckdb", "--catalogue", city_db / "catalogue",
            "evaluate", "--date", "2026-11-06", "--no-record", "--format", fmt, "--output", target,
        )  # fmt: skip
        assert yesterday.returncode == 0, yesterday.stderr
        before = target.read_bytes()
        fill(disk, 0)
        result = cli(
            "--db", city_db / "city.duckdb", "--catalogue", city_db / "catalogue",
            "evaluate", "--date", "2026-11-07", "--format", fmt, "--output", target,
        )  # fmt: skip
        assert_clean_error(result, f"cannot write {target}", "No space left on device")
        assert target.read_bytes() == before
        assert sorted(p.name for p in disk.iterdir()) == ["filler", target.name], "a temp file was left"


@pytest.mark.parametrize("fmt", ["csv", "parquet", "xlsx", "html"])
def test_export_to_a_read_only_folder(tmp_path: Path, city_db: Path, fmt: str) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    target = folder / f"s{EXTENSIONS[fmt]}"
    with read_only(folder):
        result = cli(
            "--db", city_db / "city.duckdb", "--catalogue", city_db / "catalogue",
            "evaluate", "--date", "2026-11-07", "--format", fmt, "--output", target,
        )  # fmt: skip
        assert_clean_error(result, f"cannot write {target}")
        assert list(folder.iterdir()) == []


# --- the daily run -----------------------------------------------------------------------------


def test_run_with_read_only_outputs_then_recovers(tmp_path: Path) -> None:
    """Ingest and the run are committed; exports fail whole (exit 3); the next run writes them all."""
    paths = write_city(tmp_path)
    config = write_config(tmp_path)
    last = START + timedelta(days=3)
    write_days(paths["inbox"], START, last)
    out = tmp_path / "out"
    out.mkdir()
    with read_only(out):
        result = cli("run", "--config", config, "--date", last.isoformat())
        assert_clean_error(result, "cannot write", "scorecard-2026-11-04-day")
        assert list(out.iterdir()) == []
    facts = check_invariants(paths["db"])
    assert (facts.loaded_batches, facts.runs) == (4, 1)
    again = cli("run", "--config", config, "--date", last.isoformat())
    assert again.returncode == 0, again.stderr
    assert "no new files" in again.stderr
    assert sorted(p.suffix for p in out.iterdir() if p.is_file()) == [".csv", ".html", ".json", ".xlsx"]


def test_run_with_a_read_only_inbox(tmp_path: Path) -> None:
    """Files cannot be archived: the day is still evaluated and written, but the run is partial (exit 4)
    with the reason; what was ingested is whole and not ingested twice."""
    paths = write_city(tmp_path)
    config = write_config(tmp_path)
    last = START + timedelta(days=2)
    write_days(paths["inbox"], START, last)
    with read_only(paths["inbox"]):
        result = cli("run", "--config", config, "--date", last.isoformat())
        assert result.returncode == 4, result.stderr
        assert "Traceback" not in result.stderr
        assert "ERROR   run=1 cannot move obs-2026-11-01.csv" in result.stderr
        assert 'archive = "keep"' in result.stderr
    report = json.loads((tmp_path / "out" / "runs" / f"run-{last}-day.json").read_text(encoding="utf-8"))
    assert report["health"]["status"] == "partial" and len(report["health"]["reasons"]) == 3
    assert sorted(p.suffix for p in (tmp_path / "out").iterdir() if p.is_file()) == [
        ".csv",
        ".html",
        ".json",
        ".xlsx",
    ]
    check_invariants(paths["db"])
    again = cli("run", "--config", config, "--date", last.isoformat())
    assert again.returncode == 0, again.stderr
    facts = check_invariants(paths["db"])
    assert facts.observations == 3 * 4 and facts.loaded_batches == 3
