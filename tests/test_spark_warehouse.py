"""A Spark warehouse's tables: batches are published whole or not at all, and readers see committed
batches only. These tests use the control connection (DuckDB reads the published Parquet files);
no Spark session is started, but the backend wants PySpark and Java present, as every command does."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from citykpi.backend import published
from citykpi.catalogue import load_catalogue
from citykpi.errors import WarehouseError
from citykpi.warehouse import IngestOptions, Warehouse, ingest, load_areas
from tests.spark_support import MASTER, require_spark, write_rule_catalogue, write_rule_data


@pytest.fixture
def folder(tmp_path: Path) -> Iterator[tuple[Path, object, list[object], Path]]:
    require_spark()
    from citykpi.backend.spark import SparkBackend

    catalogue = load_catalogue(write_rule_catalogue(tmp_path / "catalogue"))
    areas, files = write_rule_data(catalogue, tmp_path / "data")
    root = tmp_path / "warehouse"
    with Warehouse.open(root, backend=SparkBackend(MASTER)) as wh:
        load_areas(wh, areas)
    yield root, catalogue, files, areas


def _open(root: Path) -> Warehouse:
    from citykpi.backend.spark import SparkBackend

    return Warehouse.open(root, backend=SparkBackend(MASTER))


def _counts(wh: Warehouse) -> tuple[int, int, int]:
    obs = wh.con.execute("SELECT count(*) FROM observations").fetchall()[0][0]
    batches = wh.con.execute("SELECT count(*) FROM batches WHERE status = 'loaded'").fetchall()[0][0]
    keys = wh.con.execute("SELECT count(*) FROM series_classes").fetchall()[0][0]
    return int(obs), int(batches), int(keys)


def test_a_failed_publish_leaves_nothing_visible_and_the_retry_loads(
    folder: tuple[Path, object, list[object], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, catalogue, files, _ = folder
    first = files[0]
    real_rename = Path.rename

    def failing_rename(self: Path, target: object) -> Path:
        real_rename(self, target)  # the folder lands, then the "disk" fails before the batch commits
        raise OSError(28, "No space left on device")

    with _open(root) as wh:
        before = _counts(wh)
        monkeypatch.setattr(Path, "rename", failing_rename)
        with pytest.raises(WarehouseError, match="nothing of it is visible"):
            ingest(wh, catalogue, [first.path], first.options)  # type: ignore[attr-defined]
        monkeypatch.setattr(Path, "rename", real_rename)
        assert _counts(wh) == before
    assert list((root / "tables" / "observations").glob("batch_id=*"))  # the orphan folder is there…
    with _open(root) as wh:
        assert _counts(wh) == before  # …and nobody sees it
        report = ingest(wh, catalogue, [first.path], first.options)  # type: ignore[attr-defined]
        assert report.files[0].status == "loaded"
        loaded = report.files[0].rows_loaded
        assert _counts(wh)[0] == before[0] + loaded
        assert not list((root / published.STAGING).glob("*"))


def test_readers_see_committed_batches_only(folder: tuple[Path, object, list[object], Path]) -> None:
    root, catalogue, files, _ = folder
    first = files[0]
    with _open(root) as wh:
        report = ingest(wh, catalogue, [first.path], first.options)  # type: ignore[attr-defined]
        n = _counts(wh)[0]
        batch = report.files[0].batch_id
    tables = root / "tables" / "observations"
    shutil.copytree(tables / f"batch_id={batch}", tables / "batch_id=999")  # files of no committed batch
    with _open(root) as wh:
        assert _counts(wh)[0] == n
        wh.con.execute("UPDATE batches SET status = 'rejected' WHERE batch_id = ?", [batch])
        assert _counts(wh)[0] == 0  # a batch that is not 'loaded' shows nothing


def test_a_dry_run_and_a_rejected_file_publish_nothing(
    folder: tuple[Path, object, list[object], Path], tmp_path: Path
) -> None:
    root, catalogue, files, _ = folder
    first = files[0]
    with _open(root) as wh:
        dry = ingest(wh, catalogue, [first.path], IngestOptions(fmt="long", dry_run=True))  # type: ignore[attr-defined]
        assert dry.files[0].status == "dry_run"
        bad = tmp_path / "bad.csv"
        bad.write_text("indicator_id,area_id,period,value\nno.such,500000,2025-12-31,1\n", encoding="utf-8")
        rejected = ingest(wh, catalogue, [bad], IngestOptions(fmt="long"))  # type: ignore[attr-defined]
        assert rejected.files[0].status == "rejected"
        assert _counts(wh)[0] == 0
    assert not list((root / "tables" / "observations").glob("batch_id=*/day=*/*.parquet"))


def test_a_file_is_not_a_warehouse_folder(tmp_path: Path) -> None:
    require_spark()
    (tmp_path / "file").write_text("x", encoding="utf-8")
    with pytest.raises(WarehouseError, match="not a Spark warehouse folder"):
        _open(tmp_path / "file")
    with pytest.raises(WarehouseError, match="no citykpi warehouse"):
        from citykpi.backend.spark import SparkBackend

        Warehouse.open(tmp_path / "empty", read_only=True, backend=SparkBackend(MASTER))
