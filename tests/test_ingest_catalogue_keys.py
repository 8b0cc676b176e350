"""What ingest checks records against is kept in the warehouse per catalogue (``catalogue_keys``):
written by the first file read with a catalogue, read by the next ones, written again when the
catalogue changes, and never trusted for a catalogue that has no content hash."""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from citykpi.catalogue.model import Catalogue
from citykpi.warehouse import IngestOptions, Warehouse, ingest
from citykpi.warehouse.ingest.keys import KEPT_CATALOGUES, catalogue_id
from tests._warehouse_support import catalogue, open_with_areas, write

NOW = datetime(2025, 1, 1)


def _hashed(cat: Catalogue, digest: str = "a" * 64) -> Catalogue:
    """The catalogue as if loaded from files whose content hash is ``digest``."""
    return dataclasses.replace(cat, content_hash=digest)


def _aqi(path: Path, value: float, day: int = 1) -> Path:
    return write(path, f"indicator_id,area_id,period,value\nenv.air.aqi,上海,2024-01-{day:02d},{value}\n")


def _kept(wh: Warehouse) -> list[tuple[str, int, int]]:
    """(catalogue, generation, rows) of each catalogue ``catalogue_keys`` holds."""
    rows = wh.con.execute(
        "SELECT catalogue, min(generation), count(*) FROM catalogue_keys GROUP BY catalogue ORDER BY 2"
    ).fetchall()
    return [(str(r[0]), int(r[1]), int(r[2])) for r in rows]


@pytest.fixture
def wh(tmp_path: Path) -> Iterator[Warehouse]:
    w = open_with_areas(tmp_path)
    yield w
    w.close()


def test_first_file_writes_the_rows_and_the_next_reads_them(wh: Warehouse, tmp_path: Path) -> None:
    cat = _hashed(catalogue())
    name = catalogue_id(cat)
    assert name is not None
    f = ingest(wh, cat, [_aqi(tmp_path / "a.csv", 80)], IngestOptions(now=NOW)).files[0]
    assert (f.status, f.rows_loaded) == ("loaded", 1)
    assert _kept(wh) == [(name, 1, len(cat.indicators))]
    stored = wh.con.execute(
        """SELECT c.indicator_id, c.indicator_key = k.indicator_key, c.lo, c.hi, c.fc
        FROM catalogue_keys c JOIN indicator_keys k USING (indicator_id) WHERE c.indicator_id = 'env.air.aqi'"""
    ).fetchall()
    assert stored == [("env.air.aqi", True, 0.0, 500.0, 0)]
    # the next file reads them: nothing written again (same generation), same checks
    g = ingest(wh, cat, [_aqi(tmp_path / "b.csv", 900, day=2)], IngestOptions(now=NOW)).files[0]
    assert (g.status, g.rows_rejected) == ("rejected", 1)
    assert g.rejects == {"value outside the indicator's valid_range": 1}
    assert _kept(wh) == [(name, 1, len(cat.indicators))]
    # the ingest's views and tables are gone afterwards
    temp = wh.con.execute("SELECT count(*) FROM duckdb_views() WHERE temporary AND view_name LIKE '_ck_%'")
    assert temp.fetchall() == [(0,)]


def test_a_changed_catalogue_is_checked_by_its_own_rules(wh: Warehouse, tmp_path: Path) -> None:
    old = _hashed(catalogue())
    ingest(wh, old, [_aqi(tmp_path / "a.csv", 80)], IngestOptions(now=NOW))
    inds = tuple(
        dataclasses.replace(i, valid_range=(0, 1000)) if i.id == "env.air.aqi" else i for i in old.indicators
    )
    new = _hashed(dataclasses.replace(old, indicators=inds), "b" * 64)
    f = ingest(wh, new, [_aqi(tmp_path / "b.csv", 900, day=2)], IngestOptions(now=NOW)).files[0]
    assert (f.status, f.rows_loaded) == ("loaded", 1)
    assert [k[:2] for k in _kept(wh)] == [(catalogue_id(old), 1), (catalogue_id(new), 2)]
    # and the old catalogue still rejects it
    g = ingest(wh, old, [_aqi(tmp_path / "c.csv", 900, day=3)], IngestOptions(now=NOW)).files[0]
    assert g.status == "rejected"


def test_a_new_indicator_gets_its_key_and_its_row(wh: Warehouse, tmp_path: Path) -> None:
    cat = _hashed(catalogue())
    ingest(wh, cat, [_aqi(tmp_path / "a.csv", 80)], IngestOptions(now=NOW))
    extra = dataclasses.replace(cat.indicators[-1], id="test.extra")
    more = _hashed(dataclasses.replace(cat, indicators=(*cat.indicators, extra)), "c" * 64)
    data = write(tmp_path / "b.csv", "indicator_id,area_id,period,value\ntest.extra,上海,2024-01-02,3\n")
    f = ingest(wh, more, [data], IngestOptions(now=NOW)).files[0]
    assert (f.status, f.rows_loaded) == ("loaded", 1)
    assert _kept(wh)[-1] == (catalogue_id(more), 2, len(more.indicators))
    keys = wh.con.execute(
        "SELECT count(*) FROM catalogue_keys c JOIN indicator_keys k USING (indicator_id, indicator_key) "
        "WHERE c.indicator_id = 'test.extra'"
    ).fetchall()
    assert keys == [(1,)]


def test_rows_of_a_catalogue_with_fewer_indicators_are_not_trusted(wh: Warehouse, tmp_path: Path) -> None:
    """Rows that do not cover the catalogue (a catalogue rebuilt in code under the same hash) are
    written again rather than used."""
    cat = _hashed(catalogue())
    fewer = dataclasses.replace(cat, indicators=cat.indicators[:3])
    ingest(wh, fewer, [_aqi(tmp_path / "a.csv", 80)], IngestOptions(now=NOW))
    assert _kept(wh) == [(catalogue_id(cat), 1, 3)]
    data = write(tmp_path / "b.csv", "indicator_id,area_id,period,value\ntest.count,上海,2024-01-02,3\n")
    f = ingest(wh, cat, [data], IngestOptions(now=NOW)).files[0]
    assert (f.status, f.rows_loaded) == ("loaded", 1)
    assert _kept(wh) == [(catalogue_id(cat), 2, len(cat.indicators))]


def test_only_the_newest_catalogues_are_kept(wh: Warehouse, tmp_path: Path) -> None:
    base = catalogue()
    names = []
    for n in range(KEPT_CATALOGUES + 3):
        cat = _hashed(base, f"{n:064x}")
        names.append(catalogue_id(cat))
        ingest(wh, cat, [_aqi(tmp_path / f"{n}.csv", 80, day=n + 1)], IngestOptions(now=NOW))
    assert [k[0] for k in _kept(wh)] == names[-KEPT_CATALOGUES:]


def test_a_rolled_back_file_keeps_no_rows(wh: Warehouse, tmp_path: Path) -> None:
    cat = _hashed(catalogue())
    f = ingest(wh, cat, [_aqi(tmp_path / "a.csv", 80)], IngestOptions(now=NOW, dry_run=True)).files[0]
    assert f.status == "dry_run"
    assert _kept(wh) == []


def test_a_catalogue_built_in_code_leaves_no_rows(wh: Warehouse, tmp_path: Path) -> None:
    cat = catalogue()
    assert cat.content_hash == "" and catalogue_id(cat) is None
    f = ingest(wh, cat, [_aqi(tmp_path / "a.csv", 900)], IngestOptions(now=NOW)).files[0]
    assert (f.status, f.rejects) == ("rejected", {"value outside the indicator's valid_range": 1})
    assert _kept(wh) == []


def test_the_parser_version_names_the_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    keys = importlib.import_module("citykpi.warehouse.ingest.keys")
    cat = _hashed(catalogue())
    before = catalogue_id(cat)
    monkeypatch.setattr(keys, "__version__", "99.0.0")
    assert catalogue_id(cat) != before


def test_series_classes_follow_a_change_of_frequency(wh: Warehouse, tmp_path: Path) -> None:
    """The key check also tells whether every class pair is recorded: a batch read with the same
    catalogue adds none, and one read after the indicator turned hourly records its new class."""
    daily = _hashed(catalogue())

    def classes() -> list[tuple[int]]:
        rows = wh.con.execute(
            "SELECT freq_class FROM series_classes JOIN indicator_keys USING (indicator_key) "
            "WHERE indicator_id = 'env.air.aqi' ORDER BY 1"
        ).fetchall()
        return [(int(r[0]),) for r in rows]

    ingest(wh, daily, [_aqi(tmp_path / "a.csv", 80)], IngestOptions(now=NOW))
    ingest(wh, daily, [_aqi(tmp_path / "b.csv", 81, day=2)], IngestOptions(now=NOW))
    assert classes() == [(0,)]
    inds = tuple(
        dataclasses.replace(i, frequency="hourly") if i.id == "env.air.aqi" else i for i in daily.indicators
    )
    hourly = _hashed(dataclasses.replace(daily, indicators=inds), "d" * 64)
    data = write(
        tmp_path / "c.csv", "indicator_id,area_id,period,value\nenv.air.aqi,上海,2024-01-03 10:00,82\n"
    )
    f = ingest(wh, hourly, [data], IngestOptions(now=NOW)).files[0]
    assert (f.status, f.rows_loaded) == ("loaded", 1)
    assert classes() == [(0,), (2,)]
    assert wh.con.execute("SELECT freq_class FROM observations ORDER BY period").fetchall() == [
        (0,),
        (0,),
        (2,),
    ]


def test_storage_classes_come_from_the_kept_rows(wh: Warehouse, tmp_path: Path) -> None:
    """The classes of a kept catalogue are read with its rows: a file of a mixed catalogue still
    goes to one pass per class, on the first file (rows written) and the next (rows read)."""
    base = catalogue()
    inds = tuple(
        dataclasses.replace(i, frequency="monthly") if i.id == "test.count" else i for i in base.indicators
    )
    cat = _hashed(dataclasses.replace(base, indicators=inds))
    for n in (1, 2):
        data = write(
            tmp_path / f"{n}.csv",
            "indicator_id,area_id,period,value\n"
            f"env.air.aqi,上海,2024-0{n}-01,80\ntest.count,上海,2024-0{n}-01,3\n",
        )
        f = ingest(wh, cat, [data], IngestOptions(now=NOW)).files[0]
        assert (f.status, f.rows_loaded) == ("loaded", 2)
    stored = wh.con.execute(
        "SELECT indicator_id, freq_class, count(*) FROM observations JOIN indicator_keys USING (indicator_key) "
        "GROUP BY ALL ORDER BY 1"
    ).fetchall()
    assert stored == [("env.air.aqi", 0, 2), ("test.count", 1, 2)]
