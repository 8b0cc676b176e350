"""Accuracy when a series has values wrong both ways: outside the valid range, robust outliers, and
values that are both — each value counts once as inaccurate (hand-computed)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

from citykpi.catalogue.model import Catalogue, Rollup
from citykpi.quality import assess
from tests.engine_helpers import City, indicator

AS_OF = date(2025, 6, 30)


def test_a_value_out_of_range_and_an_outlier_counts_once(tmp_path: Path) -> None:
    city = City(tmp_path)
    ind = indicator("q.both", valid_range=(0.0, 12.5), rollup=Rollup(time="last", area="sum"))
    values = [10.0, 11.0, 12.0, 13.0, 14.0, 15.0, 500.0]  # the last seven days
    days = [AS_OF - timedelta(days=6 - n) for n in range(7)]
    city.observe("q.both", [("D1", d, v) for d, v in zip(days, values, strict=True)])
    r = assess(city.wh, Catalogue(indicators=(ind,)), as_of=AS_OF, now=datetime(2025, 7, 5))
    (d1,) = r.series.filter(r.series["area_id"] == "D1").to_dicts()
    # out of range: 13, 14, 15, 500; median 13, MAD median(3, 2, 1, 0, 1, 2, 487) = 2, so only 500
    # scores above 3.5 (0.6745 × 487 / 2); inaccurate: the four out of range, 500 among them
    assert (d1["values"], d1["out_of_range"], d1["outliers"], d1["inaccurate"]) == (7, 4, 1, 4)
    assert d1["accuracy"] == 3 / 7 * 100
    assert sorted((o["value"], o["problem"]) for o in r.outliers.to_dicts()) == [
        (13.0, "out_of_range"),
        (14.0, "out_of_range"),
        (15.0, "out_of_range"),
        (500.0, "out_of_range"),
    ]
