"""Property: CSV or Parquet → ingest → observations loses nothing and invents nothing."""

from __future__ import annotations

import tempfile
from datetime import datetime, timedelta
from pathlib import Path

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from citykpi.warehouse import IngestOptions, ingest
from tests._warehouse_support import catalogue, open_with_areas

AREAS = ["上海", "北京", "南京", "广州", "成都", "杭州", "武汉", "深圳", "西安", "重庆"]
INDICATORS = ["env.air.aqi", "env.air.pm25", "test.count"]

records = st.lists(
    st.tuples(
        st.sampled_from(INDICATORS),
        st.sampled_from(AREAS),
        st.integers(min_value=0, max_value=2000),  # hours after 2020-01-01
        st.floats(min_value=0, max_value=500, allow_nan=False, allow_infinity=False),
    ),
    min_size=1,
    max_size=60,
    unique_by=lambda r: (r[0], r[1], r[2]),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=records, parquet=st.booleans())
def test_round_trip(rows: list[tuple[str, str, int, float]], parquet: bool) -> None:
    start = datetime(2020, 1, 1)
    frame = pl.DataFrame(
        {
            "indicator_id": [r[0] for r in rows],
            "area_id": [r[1] for r in rows],
            "period": [start + timedelta(hours=r[2]) for r in rows],
            "value": [r[3] for r in rows],
        }
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / ("obs.parquet" if parquet else "obs.csv")
        if parquet:
            frame.write_parquet(path)
        else:
            frame.write_csv(path)
        with open_with_areas(Path(tmp)) as wh:
            f = ingest(wh, catalogue(), [path], IngestOptions()).files[0]
            assert (f.status, f.rows_loaded, f.rows_rejected) == ("loaded", len(rows), 0)
            stored = wh.frame(
                "SELECT k.indicator_id, a.area_id, o.period, o.value FROM observations o "
                "JOIN indicator_keys k USING (indicator_key) JOIN areas a USING (area_key)"
            )
    key = ["indicator_id", "area_id", "period"]
    assert stored.sort(key).equals(frame.sort(key))
