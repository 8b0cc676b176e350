"""One definition of a diff: every change class, and the same answer from stored runs and from scorecards."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from citykpi.engine.diff import CHANGES, DIFF_SCHEMA, diff_cells, diff_scorecards
from citykpi.engine.runs import diff_runs, load_run
from citykpi.engine.scorecard import Scorecard
from citykpi.warehouse import Warehouse
from tests.golden_support import SampleCity

SEV = {"green": 0, "blue": 1, "yellow": 2, "orange": 3, "red": 4}


def _cells(rows: dict[str, str]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "indicator_id": list(rows),
            "area_id": ["500000"] * len(rows),
            "status": list(rows.values()),
            "severity": [SEV.get(s) for s in rows.values()],
            "value": [1.0] * len(rows),
        },
        schema={
            "indicator_id": pl.String,
            "area_id": pl.String,
            "status": pl.String,
            "severity": pl.Int64,
            "value": pl.Float64,
        },
    )


CASES = {
    # indicator: (before, after, change)
    "a.newly_red": ("orange", "red", "newly_red"),
    "b.red_from_stale": ("stale", "red", "newly_red"),
    "c.recovered_to_yellow": ("red", "yellow", "recovered"),
    "d.recovered_to_green": ("orange", "green", "recovered"),
    "e.red_to_orange": ("red", "orange", "better"),
    "f.worse": ("green", "yellow", "worse"),
    "g.better": ("yellow", "blue", "better"),
    "h.stale": ("green", "stale", "changed"),
    "i.back_from_stale": ("no_data", "blue", "changed"),
}


@pytest.mark.parametrize("ind", sorted(CASES))
def test_each_change_class(ind: str) -> None:
    before, after, change = CASES[ind]
    out = diff_cells(_cells({ind: before}), _cells({ind: after}))
    assert out.to_dicts() == [
        {
            "indicator_id": ind,
            "area_id": "500000",
            "status_from": before,
            "status_to": after,
            "value_from": 1.0,
            "value_to": 1.0,
            "change": change,
        }
    ]


def test_new_gone_unchanged_and_reading_order() -> None:
    before = _cells({"x.gone": "green", "y.same": "red", "z.worse": "blue", "w.better": "yellow"})
    after = _cells(
        {"v.new": "green", "y.same": "red", "z.worse": "orange", "w.better": "green", "u.red": "red"}
    )
    out = diff_cells(before, after)
    assert out.schema == pl.Schema(DIFF_SCHEMA)
    assert list(zip(out["change"], out["indicator_id"], strict=True)) == [
        ("worse", "z.worse"),
        ("better", "w.better"),
        ("new", "u.red"),  # a cell that did not exist before is new, whatever its colour
        ("new", "v.new"),
        ("gone", "x.gone"),
    ]
    assert set(out["change"]) <= set(CHANGES)


def test_stored_runs_and_scorecards_agree(sample_city: SampleCity) -> None:
    """``citykpi diff`` (stored runs) and the views (scorecards in memory) give the same rows."""
    with Warehouse.open(sample_city.db, read_only=True) as wh:
        a, b = load_run(wh, 1), load_run(wh, 2)
        stored = diff_runs(wh, 1, 2)
    assert isinstance(a, Scorecard) and a.as_of == date(2025, 12, 30)
    in_memory = diff_scorecards(a, b)
    assert stored.height > 0
    assert stored.equals(in_memory)
    assert "recovered" in set(stored["change"])
