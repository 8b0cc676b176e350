"""Shared helpers for the warehouse tests: a small catalogue, areas files, table checksums."""

from __future__ import annotations

import hashlib
from pathlib import Path

from citykpi.catalogue.model import Catalogue, Indicator, SourceTable, Text, Thresholds
from citykpi.warehouse import Warehouse
from citykpi.warehouse.schema import table_names
from tests import real_data

DATA = Path(__file__).parent / "data"
REAL = real_data.REAL


def indicator(
    iid: str, *, unit: str = "index", valid_range: tuple[float | None, float | None] | None = None
) -> Indicator:
    """A minimal daily indicator."""
    return Indicator(
        id=iid,
        name=Text(zh=iid, en=iid),
        kind="vital_sign",
        domain="environment",
        unit=unit,
        levels=("city", "district"),
        frequency="daily",
        direction="lower_is_better",
        thresholds=Thresholds(),
        valid_range=valid_range,
    )


AIR = {
    "AQI": "env.air.aqi",
    "PM2.5": "env.air.pm25",
    "PM10": "env.air.pm10",
    "SO2": "env.air.so2",
    "NO2": "env.air.no2",
    "O3": "env.air.o3",
    "CO": "env.air.co",
}

HOTLINE = SourceTable(
    id="nyc311",
    columns={
        "unique_key": "text",
        "created_date": "timestamp",
        "closed_date": "timestamp",
        "agency": "text",
        "complaint_type": "text",
        "borough": "text",
        "latitude": "double",
    },
    time_column="created_date",
    area_column="borough",
    key="unique_key",
    formats={"created_date": "%m/%d/%Y %I:%M:%S %p", "closed_date": "%m/%d/%Y %I:%M:%S %p"},
)


def catalogue() -> Catalogue:
    """Air-quality indicators (AQI 0–500) plus a test indicator and the NYC 311 source."""
    inds = [indicator(i, valid_range=(0, 500) if i == "env.air.aqi" else (0, None)) for i in AIR.values()]
    inds.append(indicator("test.count", unit="count"))
    return Catalogue(indicators=tuple(inds), sources=(HOTLINE,))


def checksum(wh: Warehouse) -> str:
    """A digest of every table's full content, to prove a failed operation changed nothing."""
    h = hashlib.sha256()
    for name in sorted(table_names(wh.con)):
        h.update(name.encode())
        rows = wh.con.execute(f'SELECT * FROM "{name}" ORDER BY ALL').fetchall()
        h.update(repr(rows).encode())
    return h.hexdigest()


def open_with_areas(tmp_path: Path, areas: Path | None = None) -> Warehouse:
    """A new file database under ``tmp_path`` with the ten-city areas loaded."""
    from citykpi.warehouse import load_areas

    wh = Warehouse.open(tmp_path / "test.duckdb")
    load_areas(wh, areas or DATA / "areas_cn10.csv")
    return wh


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` (parents created) and return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode(encoding))
    return path


def count(wh: Warehouse, table: str) -> int:
    """Rows in ``table``."""
    row = wh.con.execute(f'SELECT count(*) FROM "{table}"').fetchall()
    return int(row[0][0])
