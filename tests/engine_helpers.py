"""Builders for engine tests: a small warehouse with areas and observations written directly.

Observations go straight into the warehouse tables (not through ingest) so that engine tests
exercise evaluation alone; ingest has its own tests.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl

from citykpi.catalogue.model import BandSet, Catalogue, Indicator, Rollup, Text, Thresholds
from citykpi.engine.evaluate import evaluate
from citykpi.engine.scorecard import Scorecard
from citykpi.warehouse.connection import Warehouse

#: city C with districts D1 (pop 60) and D2 (pop 40); D1 has streets S1 (pop 20) and S2 (pop 40)
AREAS: Sequence[tuple[str, str, str | None, float]] = (
    ("C", "city", None, 100.0),
    ("D1", "district", "C", 60.0),
    ("D2", "district", "C", 40.0),
    ("S1", "street", "D1", 20.0),
    ("S2", "street", "D1", 40.0),
)

AS_OF = date(2025, 6, 30)


def indicator(id: str, **kw: Any) -> Indicator:
    """An indicator with sensible defaults (daily, lower_is_better, city+district, cuts 10/20/30/40)."""
    base = Indicator(
        id=id,
        name=Text(id, id),
        kind="vital_sign",
        domain="test",
        unit="index",
        levels=("city", "district"),
        frequency="daily",
        direction="lower_is_better",
        thresholds=Thresholds(
            bands=BandSet(cuts={"blue": 10.0, "yellow": 20.0, "orange": 30.0, "red": 40.0})
        ),
        rollup=Rollup(time="last", area="none"),
    )
    return replace(base, **kw)


class City:
    """A warehouse file under a tmp folder with the test areas loaded."""

    def __init__(self, tmp: Path, areas: Sequence[tuple[str, str, str | None, float]] = AREAS) -> None:
        self.wh = Warehouse.open(tmp / "city.duckdb")
        keys = {a[0]: n for n, a in enumerate(areas, start=1)}
        self.area_keys = keys
        for area_id, level, parent, pop in areas:
            self.wh.con.execute(
                "INSERT INTO areas VALUES (?, ?, ?, ?, ?, ?, ?, [])",
                [keys[area_id], area_id, area_id, area_id, level, keys[parent] if parent else None, pop],
            )
        self.batch = 0

    def observe(
        self,
        indicator_id: str,
        rows: Iterable[tuple[str, date | datetime, float | None]],
        *,
        parts: Iterable[tuple[float, float]] | None = None,
        finished_at: datetime | None = None,
        freq_class: int = 0,
    ) -> int:
        """Store observations (area id, period, value) as one batch; returns the batch id.

        ``freq_class`` is the storage class ingest would give them (0 daily or finer, 1 coarser);
        the engine must find rows of either class, so the default 0 is right for any indicator.
        """
        self.wh.register_indicators([indicator_id])
        ikey = self.wh.indicator_keys()[indicator_id]
        self.batch += 1
        rows = list(rows)
        part_list = list(parts) if parts is not None else [(None, None)] * len(rows)
        frame = pl.DataFrame(
            {
                "indicator_key": [ikey] * len(rows),
                "area_key": [self.area_keys[a] for a, _, _ in rows],
                "period": [
                    p if isinstance(p, datetime) else datetime.combine(p, datetime.min.time())
                    for _, p, _ in rows
                ],
                "value": [v for _, _, v in rows],
                "numerator": [n for n, _ in part_list],
                "denominator": [d for _, d in part_list],
                "batch_id": [self.batch] * len(rows),
            },
            schema={
                "indicator_key": pl.Int32(),
                "area_key": pl.Int32(),
                "period": pl.Datetime("us"),
                "value": pl.Float64(),
                "numerator": pl.Float64(),
                "denominator": pl.Float64(),
                "batch_id": pl.Int32(),
            },
        )
        self.wh.con.register("_obs", frame)
        fc = freq_class
        self.wh.con.execute(
            "INSERT INTO observations (indicator_key, area_key, period, value, numerator, denominator, batch_id, "
            f"freq_class) SELECT *, {int(fc)} FROM _obs"
        )
        self.wh.con.execute(f"INSERT OR IGNORE INTO series_classes VALUES ({ikey}, {int(fc)})")
        self.wh.con.unregister("_obs")
        self.wh.con.execute(
            "INSERT INTO batches (batch_id, kind, path, status, finished_at) VALUES (?, 'observations', 'test', 'loaded', ?)",
            [self.batch, finished_at or datetime(2020, 1, 1)],
        )
        return self.batch

    def daily(
        self, indicator_id: str, area: str, values: Sequence[float | None], *, end: date = AS_OF
    ) -> None:
        """Store one value per day ending on ``end`` (None = missing day)."""
        start = end - timedelta(days=len(values) - 1)
        self.observe(
            indicator_id,
            [(area, start + timedelta(days=n), v) for n, v in enumerate(values) if v is not None],
        )

    def evaluate(self, *indicators: Indicator, **kw: Any) -> Scorecard:
        """Evaluate a catalogue of these indicators (as of AS_OF unless a date or an instant is given)."""
        if kw.get("at") is None:
            kw.setdefault("as_of", AS_OF)
        kw.setdefault("persist", False)
        indices = kw.pop("indices", ())
        return evaluate(self.wh, Catalogue(indicators=tuple(indicators), indices=tuple(indices)), **kw)


def cell(scorecard: Scorecard, indicator_id: str, area_id: str) -> dict[str, Any]:
    """The scorecard row of one indicator × area, as a dict."""
    rows = scorecard.cells.filter(
        (pl.col("indicator_id") == indicator_id) & (pl.col("area_id") == area_id)
    ).to_dicts()
    assert len(rows) == 1, f"expected one cell for {indicator_id} × {area_id}, got {len(rows)}"
    return rows[0]
