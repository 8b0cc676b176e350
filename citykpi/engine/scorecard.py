"""The Scorecard result object: what ``evaluate`` returns and every renderer/exporter consumes."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from fnmatch import fnmatchcase
from pathlib import Path

import polars as pl

from citykpi.catalogue.model import COLOURS, NON_COLOUR_STATUSES, SEVERITY, STATUSES

#: What --fail-on / fail_on accept: a colour at or above which a run fails, or never.
FAIL_ON: tuple[str, ...] = ("never", *COLOURS)

#: Column order and types of ``Scorecard.cells`` (see docs/design.md).
CELL_SCHEMA: Mapping[str, pl.DataType] = {
    "indicator_id": pl.String(),
    "area_id": pl.String(),
    "level": pl.String(),
    "domain": pl.String(),
    "kind": pl.String(),
    "tier": pl.String(),
    "unit": pl.String(),
    "name_zh": pl.String(),
    "name_en": pl.String(),
    "area_name_zh": pl.String(),
    "area_name_en": pl.String(),
    "period_start": pl.Date(),
    "period_end": pl.Date(),
    "value": pl.Float64(),
    "basis_value": pl.Float64(),
    "status": pl.String(),
    "severity": pl.Int8(),
    "band_label": pl.String(),
    "band_label_en": pl.String(),
    "explanation": pl.String(),
    "previous_value": pl.Float64(),
    "change_previous": pl.Float64(),
    "week_ago_value": pl.Float64(),
    "change_week_ago": pl.Float64(),
    "last_year_value": pl.Float64(),
    "change_last_year": pl.Float64(),
    "base_value": pl.Float64(),
    "change_base": pl.Float64(),
    "change_unit": pl.String(),
    "streak": pl.Int32(),
    "target_value": pl.Float64(),
    "target_due": pl.Date(),
    "attainment": pl.Float64(),
    "expected_progress": pl.Float64(),
    "target_status": pl.String(),
    "source": pl.String(),
    "forecast_status": pl.String(),
    "forecast_periods": pl.Int32(),
    "forecast_date": pl.Date(),
    "forecast_periods_low": pl.Int32(),
    "forecast_periods_high": pl.Int32(),
    "forecast_slope": pl.Float64(),
    "forecast_r2": pl.Float64(),
    "anomaly_score": pl.Float64(),
    "target_forecast": pl.String(),
    "target_projected": pl.Float64(),
    "target_pace_needed": pl.Float64(),
    "target_pace": pl.Float64(),
}

#: Column order and types of ``Scorecard.indices``.
INDEX_SCHEMA: Mapping[str, pl.DataType] = {
    "index_id": pl.String(),
    "area_id": pl.String(),
    "level": pl.String(),
    "name_zh": pl.String(),
    "name_en": pl.String(),
    "area_name_zh": pl.String(),
    "area_name_en": pl.String(),
    "score": pl.Float64(),
    "status": pl.String(),
    "severity": pl.Int8(),
    "coverage": pl.Float64(),
    "capped": pl.Boolean(),
    "components_used": pl.Int32(),
    "components_total": pl.Int32(),
    "rank": pl.Int32(),
}

#: Columns of ``Scorecard.history``: recent values per indicator × area, for sparklines. Its rows come
#: in no particular order (sort by indicator_id, area_id, period_start; ``history_series`` does).
HISTORY_SCHEMA: Mapping[str, pl.DataType] = {
    "indicator_id": pl.String(),
    "area_id": pl.String(),
    "period_start": pl.Date(),
    "value": pl.Float64(),
}

#: Columns of ``Scorecard.parts``: the numerator and denominator behind a cell's value (value =
#: numerator / denominator × factor), for the indicators that have them; read only when asked
#: (``evaluate(parts=True)``, as ``citykpi rank`` does for an indicator's league table).
PARTS_SCHEMA: Mapping[str, pl.DataType] = {
    "indicator_id": pl.String(),
    "area_id": pl.String(),
    "numerator": pl.Float64(),
    "denominator": pl.Float64(),
    "factor": pl.Float64(),
}


def empty_frame(schema: Mapping[str, pl.DataType]) -> pl.DataFrame:
    """An empty frame with the given schema."""
    return pl.DataFrame(schema=dict(schema))


@dataclass(frozen=True)
class Scorecard:
    """The evaluated catalogue as of a date: cells (indicator × area), indices, recent history."""

    as_of: date
    grain: str
    cells: pl.DataFrame
    indices: pl.DataFrame = field(default_factory=lambda: empty_frame(INDEX_SCHEMA))
    history: pl.DataFrame = field(default_factory=lambda: empty_frame(HISTORY_SCHEMA))
    #: numerator and denominator per cell (``PARTS_SCHEMA``); empty unless the evaluation asked for them
    parts: pl.DataFrame = field(default_factory=lambda: empty_frame(PARTS_SCHEMA))
    catalogue_hash: str = ""
    run_id: int | None = None
    generated_at: datetime | None = None
    #: Extra facts for reports (e.g. {"queries": 9, "seconds": 1.8, "as_ingested": null}).
    meta: Mapping[str, object] = field(default_factory=dict)

    def write(self, format: str, path: str | Path, *, lang: str = "zh", fail_on: str = "red") -> Path:
        """Write this scorecard as ``format`` (csv, parquet, json, jsonl, markdown, html, xlsx, junit) to ``path``.

        The file is replaced atomically: a reader never sees half of it, and a failure leaves the old
        file as it was. ``lang`` picks the language of names in human-facing formats; ``fail_on`` the
        colour at which a junit test case fails.
        """
        from citykpi.render.exporters import write_scorecard  # render depends on the engine, not the reverse

        return write_scorecard(self, format, path, lang=lang, fail_on=fail_on)

    def counts(self) -> dict[str, int]:
        """Number of cells per status, every status present (zero when absent)."""
        got = dict(self.cells.group_by("status").len().iter_rows()) if self.cells.height else {}
        return {s: int(got.get(s, 0)) for s in STATUSES}

    def worst_severity(self) -> int | None:
        """Highest colour severity among the cells (0 green … 4 red), None when no cell has a colour."""
        if not self.cells.height:
            return None
        worst = self.cells.get_column("severity").max()
        return None if worst is None else int(worst)  # type: ignore[arg-type]

    def breaches(self, fail_on: str) -> bool:
        """True when some cell is at least as severe as colour ``fail_on`` ('never' → always False)."""
        if fail_on == "never":
            return False
        worst = self.worst_severity()
        return worst is not None and worst >= SEVERITY[fail_on]

    def filter(
        self,
        *,
        levels: Iterable[str] | None = None,
        areas: Iterable[str] | None = None,
        domains: Iterable[str] | None = None,
        kinds: Iterable[str] | None = None,
        statuses: Iterable[str] | None = None,
        indicator_glob: str | None = None,
    ) -> Scorecard:
        """A scorecard restricted to the given levels, areas, domains, kinds, statuses and id glob."""
        cells = self.cells
        indices = self.indices
        if levels:
            lv = list(levels)
            cells = cells.filter(pl.col("level").is_in(lv))
            indices = indices.filter(pl.col("level").is_in(lv))
        if areas:
            ar = list(areas)
            cells = cells.filter(pl.col("area_id").is_in(ar))
            indices = indices.filter(pl.col("area_id").is_in(ar))
        if domains:
            cells = cells.filter(pl.col("domain").is_in(list(domains)))
        if kinds:
            cells = cells.filter(pl.col("kind").is_in(list(kinds)))
        if statuses:
            cells = cells.filter(pl.col("status").is_in(list(statuses)))
        if indicator_glob:
            ids = [
                i
                for i in cells.get_column("indicator_id").unique().to_list()
                if fnmatchcase(i, indicator_glob)
            ]
            cells = cells.filter(pl.col("indicator_id").is_in(ids))
        return replace(self, cells=cells, indices=indices)


def colour_rank(status: str) -> int:
    """Sort key for statuses: red first, then orange … green, then stale, unscored, no_data, not_applicable."""
    if status in COLOURS:
        return 4 - SEVERITY[status]
    return 5 + NON_COLOUR_STATUSES.index(status)
