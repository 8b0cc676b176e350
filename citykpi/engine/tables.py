"""The catalogue flattened into small frames (one row per indicator, band set, override, input,
component) that evaluation loads as temporary tables and joins with the observations.

Pure: no database. :func:`build_tables` is the catalogue side of the compile phase.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time

import polars as pl

from citykpi.catalogue.model import (
    COLOURS,
    GRAIN_OF_FREQUENCY,
    GRAINS,
    BandSet,
    Catalogue,
    CompositeIndex,
    Formula,
    FromSeries,
    Indicator,
    Measure,
    Observed,
    Ratio,
)
from citykpi.engine.calendar import (
    Moment,
    history_periods,
    is_subdaily,
    reporting_grain,
    shift,
    shift_at,
    trunc,
    trunc_at,
    window,
)
from citykpi.errors import EvaluationError
from citykpi.vocab.bases import BASES
from citykpi.vocab.rollups import TIME_ROLLUPS


@dataclass
class CatalogueTables:
    """The catalogue flattened into small frames, loaded as temp tables before evaluation."""

    ind: pl.DataFrame
    bandsets: pl.DataFrame
    overrides: pl.DataFrame
    scales: pl.DataFrame
    inputs: pl.DataFrame
    index: pl.DataFrame
    components: pl.DataFrame
    #: derived indicators grouped by dependency layer (layer 1 depends only on base values)
    derived_layers: list[list[Indicator]] = field(default_factory=list)
    #: composite indices grouped by nesting depth
    index_layers: list[list[CompositeIndex]] = field(default_factory=list)
    measures: list[Indicator] = field(default_factory=list)
    #: indicator id → key, including hidden grain copies (see :func:`_with_grain_copies`)
    keys: dict[str, int] = field(default_factory=dict)
    #: more temp-table name → frame (early warning: ``engine/early.py``)
    extra: dict[str, pl.DataFrame] = field(default_factory=dict)
    #: the requested grain (sub-daily grains bucket by date-time, the others by date)
    grain: str = "day"

    def frames(self) -> dict[str, pl.DataFrame]:
        """Temp-table name → frame."""
        return {
            "ck_ind": self.ind,
            "ck_bandset": self.bandsets,
            "ck_override": self.overrides,
            "ck_scale": self.scales,
            "ck_input": self.inputs,
            "ck_index": self.index,
            "ck_component": self.components,
            **self.extra,
        }

    @property
    def max_k(self) -> int:
        """The deepest history period the scorecard reads (k of its oldest bucket; forecasts may read further)."""
        column = "keep" if "keep" in self.ind.columns else "hist"
        deepest = self.ind.get_column(column).max() if self.ind.height else None
        return deepest if isinstance(deepest, int) else 0

    @property
    def week_in_history(self) -> bool:
        """Some indicator's week-ago period (k = ``wk_k``) lies within the history it keeps."""
        if not self.ind.height:
            return False
        return bool(self.ind.select((pl.col("wk_k") <= pl.col("hist")).any()).item())


def _bandset_row(bs_id: int, direction: str, bands: BandSet) -> dict[str, object]:
    row: dict[str, object] = {
        "bs_id": bs_id,
        "direction": direction,
        "inclusive": bands.inclusive,
        # no cut and no range: the value is shown but never coloured (status ``unscored``)
        "scored": bool(bands.cuts or bands.ranges),
    }
    for c in COLOURS[1:]:
        row[f"c_{c}"] = bands.cuts.get(c)
    for c in COLOURS[:4]:
        lo_hi = bands.ranges.get(c)
        row[f"lo_{c}"] = lo_hi[0] if lo_hi else None
        row[f"hi_{c}"] = lo_hi[1] if lo_hi else None
    return row


_BANDSET_SCHEMA: dict[str, pl.DataType] = {
    "bs_id": pl.Int32(),
    "direction": pl.String(),
    "inclusive": pl.Boolean(),
    "scored": pl.Boolean(),
    **{f"c_{c}": pl.Float64() for c in COLOURS[1:]},
    **{f"{p}_{c}": pl.Float64() for c in COLOURS[:4] for p in ("lo", "hi")},
}


def _layers(items: Sequence[str], deps: Callable[[str], Sequence[str]]) -> list[list[str]]:
    """Group ids into dependency layers (ids whose deps are not in ``items`` count as layer 0)."""
    pending = set(items)
    depth: dict[str, int] = {}

    def d(x: str, seen: frozenset[str]) -> int:
        if x not in pending:
            return 0
        if x in depth:
            return depth[x]
        if x in seen:
            raise EvaluationError(f"dependency cycle through {x!r}; run `citykpi check`")
        depth[x] = 1 + max((d(y, seen | {x}) for y in deps(x)), default=0)
        return depth[x]

    for x in items:
        d(x, frozenset())
    out: list[list[str]] = [[] for _ in range(max(depth.values(), default=0))]
    for x in items:
        out[depth[x] - 1].append(x)
    return out


FREQUENCY_OF_GRAIN: dict[str, str] = {
    "15min": "realtime",
    "hour": "hourly",
    "day": "daily",
    "week": "weekly",
    "month": "monthly",
    "quarter": "quarterly",
    "year": "yearly",
}


def _with_grain_copies(
    catalogue: Catalogue, keys: dict[str, int], grain: str
) -> tuple[list[Indicator], dict[str, int], set[str], dict[str, str]]:
    """Give derived indicators their inputs at the derived indicator's own reporting grain.

    A monthly ratio of a daily count over a yearly population must divide the month's count, not
    one day's: each base input finer than its derived indicator gets a hidden copy (id
    ``input@grain``, never reported) rolled up over the coarser period with the input's own rules.

    Returns:
        The indicators to compile (derived ones rewritten to use the copies), the keys extended
        with synthetic keys for the copies, the hidden ids, and copy id → original id.
    """
    by_id = catalogue.by_id
    keys = dict(keys)
    next_key = max(keys.values(), default=0) + 1
    out: list[Indicator] = []
    hidden: set[str] = set()
    series_of: dict[str, str] = {}
    copies: list[Indicator] = []
    for ind in catalogue.indicators:
        v = ind.value
        if not isinstance(v, Ratio | Formula):
            out.append(ind)
            continue
        rd = reporting_grain(ind, grain)
        rename: dict[str, str] = {}
        for ref in ind.inputs:
            inp = by_id[ref]
            if isinstance(inp.value, Ratio | Formula):
                continue
            if GRAINS.index(reporting_grain(inp, grain)) >= GRAINS.index(rd):
                continue
            copy_id = f"{inp.id}@{rd}"
            rename[ref] = copy_id
            if copy_id in hidden:
                continue
            hidden.add(copy_id)
            keys[copy_id] = next_key
            next_key += 1
            copies.append(
                replace(
                    inp,
                    id=copy_id,
                    frequency=FREQUENCY_OF_GRAIN[rd],
                    target=None,
                    max_staleness=inp.staleness,
                )
            )
            if isinstance(inp.value, Observed):
                series_of[copy_id] = series_of.get(inp.id, inp.id)
        if rename and isinstance(v, Ratio):
            ind = replace(
                ind,
                value=replace(
                    v,
                    numerator=rename.get(v.numerator, v.numerator),
                    denominator=rename.get(v.denominator, v.denominator),
                ),
            )
        elif rename and isinstance(v, Formula):
            ind = replace(ind, value=replace(v, inputs={n: rename.get(r, r) for n, r in v.inputs.items()}))
        out.append(ind)
    return out + copies, keys, hidden, series_of


def _base_windows(
    indicators: Sequence[Indicator], by_id: dict[str, Indicator], grain: str
) -> Callable[[str], tuple[date | None, date | None]]:
    """Indicator id → [start, end) of the reporting period holding its ``base_period`` (or Nones).

    A derived indicator's inputs are read over its base period too (unless they declare their own),
    so that the base value of a ratio or formula is computed from its inputs' base values.
    """
    declared: dict[str, date] = {}
    for ind in indicators:
        if ind.base_period is not None:
            declared[ind.id] = ind.base_period
    for ind in indicators:  # layer by layer would be exact; inputs rarely chain deep
        if ind.id in declared:
            stack = list(ind.inputs)
            while stack:
                ref = stack.pop()
                if ref in by_id and ref not in declared:
                    declared[ref] = declared[ind.id]
                    stack.extend(by_id[ref].inputs)

    def of(iid: str) -> tuple[date | None, date | None]:
        start = declared.get(iid)
        if start is None:
            return None, None
        rg = reporting_grain(by_id[iid], grain)
        if is_subdaily(grain):  # sub-daily evaluations bound their windows in date-times
            at = trunc_at(rg, datetime.combine(start, time()))
            return at, shift_at(rg, at, 1)
        lo = trunc(rg, start)
        return lo, shift(rg, lo, 1)

    return of


def build_tables(
    catalogue: Catalogue,
    keys: dict[str, int],
    *,
    grain: str,
    as_of: date | Moment,
    area_keys: dict[str, int],
    history_from: date | None = None,
    shown: Collection[str] | None = None,
) -> CatalogueTables:
    """Flatten the catalogue into catalogue tables for an evaluation as of ``as_of``.

    Args:
        catalogue: the validated catalogue.
        keys: indicator id → warehouse indicator_key.
        grain: evaluation grain (15min, hour, day … year).
        as_of: the evaluation date or moment (window columns are dates for day and coarser
            grains, date-times for sub-daily ones).
        area_keys: area id → area_key (for per-area overrides).
        shown: the ids whose cells a filtered evaluation reports (None: all); the others are
            inputs only, computed but hidden like the grain copies, so no cell of theirs is made.

    Returns:
        The catalogue tables and the dependency layers of derived indicators and indices.
    """
    moment = as_of if isinstance(as_of, Moment) else Moment.of_day(as_of)
    indicators, keys, hidden, series_of = _with_grain_copies(catalogue, keys, grain)
    ind_rows: list[dict[str, object]] = []
    bs_rows: list[dict[str, object]] = []
    ov_rows: list[dict[str, object]] = []
    scale_rows: list[dict[str, object]] = []
    input_rows: list[dict[str, object]] = []
    derived: list[str] = []
    measures: list[Indicator] = []
    by_id = {i.id: i for i in indicators}

    base_of = _base_windows(indicators, by_id, grain)
    for ind in indicators:
        ikey = keys[ind.id]
        w = window(ind, grain, moment, history_from)
        bs_id = len(bs_rows) + 1
        bs_rows.append(_bandset_row(bs_id, ind.direction, ind.thresholds.bands))
        for ov in ind.thresholds.overrides:
            ob = len(bs_rows) + 1
            bs_rows.append(_bandset_row(ob, ind.direction, ov.bands))
            akey = area_keys.get(ov.area) if ov.area else None
            if ov.area and akey is None:
                continue  # override for an area not loaded: nothing to apply it to
            ov_rows.append({"ikey": ikey, "level": ov.level, "area_key": akey, "bs_id": ob})
        for n, step in enumerate(ind.scale):
            scale_rows.append(
                {
                    "ikey": ikey,
                    "step": n,
                    "upto": step.upto,
                    "label_zh": step.label.zh,
                    "label_en": step.label.en,
                }
            )
        v = ind.value
        series_ikey: int | None = None
        vkind = v.kind
        scale = 1.0
        with_parts = False
        if isinstance(v, Observed):
            series_ikey = keys[series_of.get(ind.id, ind.id)]
            with_parts = v.with_parts
            scale = v.scale
        elif isinstance(v, FromSeries):
            series_ikey = keys[v.input]
        elif isinstance(v, Ratio):
            derived.append(ind.id)
            scale = v.scale
            input_rows.append(
                {"ikey": ikey, "slot": 1, "input_ikey": keys[v.numerator], "name": "numerator", "id": ind.id}
            )
            input_rows.append(
                {
                    "ikey": ikey,
                    "slot": 2,
                    "input_ikey": keys[v.denominator],
                    "name": "denominator",
                    "id": ind.id,
                }
            )
        elif isinstance(v, Formula):
            derived.append(ind.id)
            for slot, (name, ref) in enumerate(sorted(v.inputs.items()), start=1):
                input_rows.append(
                    {"ikey": ikey, "slot": slot, "input_ikey": keys[ref], "name": name, "id": ind.id}
                )
        elif isinstance(v, Measure):
            measures.append(ind)
            scale = v.scale
        where = ind.rollup.where
        green = ind.thresholds.bands.ranges.get("green")
        # one raw record per reporting period (daily data at day grain, monthly at month…):
        # such records skip the aggregate in bucket_sql
        raw_id: str | None = None
        if isinstance(v, Observed):
            raw_id = series_of.get(ind.id, ind.id)
        elif isinstance(v, FromSeries):
            raw_id = v.input
        raw_freq = (catalogue.by_id.get(raw_id) or by_id[raw_id]).frequency if raw_id else None
        timed = TIME_ROLLUPS[ind.rollup.time].timed
        single = (
            not timed
            and raw_freq is not None
            and raw_freq not in ("realtime", "hourly")
            and (GRAIN_OF_FREQUENCY[raw_freq] == w.rgrain)
        )
        t = ind.target
        ind_rows.append(
            {
                "ikey": ikey,
                "indicator_id": ind.id,
                "domain": ind.domain,
                "kind": ind.kind,
                "tier": ind.tier,
                "unit": ind.unit,
                "name_zh": ind.name.zh,
                "name_en": ind.name.en,
                "frequency": ind.frequency,
                "vkind": vkind,
                "series_ikey": series_ikey,
                "rgrain": w.rgrain,
                "cur_start": w.cur_start,
                "cand_lo": w.cand_lo,
                "win_lo": w.win_lo,
                "ly_lo": w.ly_lo,
                "ly_hi": w.ly_hi,
                "base_lo": base_of(ind.id)[0],
                "base_hi": base_of(ind.id)[1],
                "dy_k": w.dy_k,
                "wk_k": w.wk_k,
                "dy_lo": w.dy_lo,
                "dy_hi": w.dy_hi,
                "wk_lo": w.wk_lo,
                "wk_hi": w.wk_hi,
                "stale_s": ind.staleness.total_seconds(),
                "time_rollup": ind.rollup.time,
                "timed": timed,
                "where_op": where.op if where else None,
                "where_val": where.value if where else None,
                "area_rollup": ind.rollup.area,
                "weight": ind.rollup.weight,
                "with_parts": with_parts,
                # the value is a numerator over a denominator the engine keeps (league-table intervals)
                "parts": with_parts
                or isinstance(v, Ratio)
                or (isinstance(v, Measure) and v.denominator is not None),
                "single": single,
                "scale": scale,
                "direction": ind.direction,
                "mid": (green[0] + green[1]) / 2 if green else None,
                "basis": ind.thresholds.basis,
                "limit_value": ind.thresholds.limit,
                "for_periods": ind.thresholds.for_periods,
                "change_unit": ind.change_unit,
                # how the basis value reads in explanations, and why it may not be computable (registry)
                "basis_label": BASES[ind.thresholds.basis].label(ind.unit, ind.change_unit),
                # how the value itself reads (a stale cell shows its value, not its basis)
                "unit_label": BASES["absolute"].label(ind.unit, ind.change_unit),
                "na_reason": BASES[ind.thresholds.basis].not_applicable_reason,
                "bs_id": bs_id,
                "target_value": t.value if t else None,
                "target_due": t.due if t else None,
                "baseline": t.baseline if t else None,
                "baseline_date": (t.baseline_date or date(t.due.year, 1, 1)) if t else None,
                "target_method": t.method if t else None,
                "lvl_city": "city" in ind.levels,
                "lvl_district": "district" in ind.levels,
                "lvl_street": "street" in ind.levels,
                "decimals": ind.decimals,
                "hidden": ind.id in hidden or (shown is not None and ind.id not in shown),
                "hist": history_periods(ind, grain, moment, history_from),
            }
        )

    layers_ids = _layers(derived, lambda i: by_id[i].inputs)
    layer_of = {i: n + 1 for n, layer in enumerate(layers_ids) for i in layer}
    for row in input_rows:
        row["layer"] = layer_of.get(str(row.pop("id")), 0)

    index_by_id = {x.id: x for x in catalogue.indices}
    idx_layers = _layers(
        [x.id for x in catalogue.indices],
        lambda i: [c.ref for c in index_by_id[i].components if c.ref in index_by_id],
    )
    idx_rows: list[dict[str, object]] = []
    comp_rows: list[dict[str, object]] = []
    for depth, layer in enumerate(idx_layers, start=1):
        for iid in layer:
            x = index_by_id[iid]
            bs_id = len(bs_rows) + 1
            bs_rows.append(_bandset_row(bs_id, "higher_is_better", x.bands))
            idx_rows.append(
                {
                    "index_id": x.id,
                    "name_zh": x.name.zh,
                    "name_en": x.name.en,
                    "aggregation": x.aggregation,
                    "colour_by": x.colour_by,
                    "cap_on_red": x.cap_on_red,
                    "min_coverage": x.min_coverage,
                    "bs_id": bs_id,
                    "depth": depth,
                    "lvl_city": "city" in x.levels,
                    "lvl_district": "district" in x.levels,
                    "lvl_street": "street" in x.levels,
                }
            )
            for c in x.components:
                norm = c.normalise or x.normalise
                is_index = c.ref in index_by_id
                comp_rows.append(
                    {
                        "index_id": x.id,
                        "ref": c.ref,
                        "ref_index": is_index,
                        "ikey": None if is_index else keys[c.ref],
                        "weight": c.weight,
                        "method": norm.method,
                        "low": norm.low,
                        "high": norm.high,
                    }
                )

    # day and coarser evaluations keep their windows in dates; sub-daily ones in date-times
    bound: pl.DataType = pl.Datetime("us") if is_subdaily(grain) else pl.Date()
    ind_schema = {
        "ikey": pl.Int32(),
        "series_ikey": pl.Int32(),
        "cur_start": bound,
        "cand_lo": bound,
        "win_lo": bound,
        "ly_lo": bound,
        "ly_hi": bound,
        "base_lo": bound,
        "base_hi": bound,
        "dy_k": pl.Int32(),
        "wk_k": pl.Int32(),
        "dy_lo": pl.Datetime("us"),
        "dy_hi": pl.Datetime("us"),
        "wk_lo": pl.Datetime("us"),
        "wk_hi": pl.Datetime("us"),
        "target_due": pl.Date(),
        "baseline_date": pl.Date(),
        "where_val": pl.Float64(),
        "mid": pl.Float64(),
        "limit_value": pl.Float64(),
        "target_value": pl.Float64(),
        "baseline": pl.Float64(),
        "scale": pl.Float64(),
        "stale_s": pl.Float64(),
        "for_periods": pl.Int32(),
        "decimals": pl.Int32(),
        "hist": pl.Int32(),
        "bs_id": pl.Int32(),
        "where_op": pl.String(),
        "weight": pl.String(),
        "target_method": pl.String(),
    }
    return CatalogueTables(
        ind=pl.DataFrame(ind_rows, schema_overrides=ind_schema, infer_schema_length=None),
        bandsets=pl.DataFrame(bs_rows, schema=_BANDSET_SCHEMA),
        overrides=pl.DataFrame(
            ov_rows,
            schema={"ikey": pl.Int32(), "level": pl.String(), "area_key": pl.Int32(), "bs_id": pl.Int32()},
        ),
        scales=pl.DataFrame(
            scale_rows,
            schema={
                "ikey": pl.Int32(),
                "step": pl.Int32(),
                "upto": pl.Float64(),
                "label_zh": pl.String(),
                "label_en": pl.String(),
            },
        ),
        inputs=pl.DataFrame(
            input_rows,
            schema={
                "ikey": pl.Int32(),
                "slot": pl.Int32(),
                "input_ikey": pl.Int32(),
                "name": pl.String(),
                "layer": pl.Int32(),
            },
        ),
        index=pl.DataFrame(
            idx_rows,
            schema={
                "index_id": pl.String(),
                "name_zh": pl.String(),
                "name_en": pl.String(),
                "aggregation": pl.String(),
                "colour_by": pl.String(),
                "cap_on_red": pl.Float64(),
                "min_coverage": pl.Float64(),
                "bs_id": pl.Int32(),
                "depth": pl.Int32(),
                "lvl_city": pl.Boolean(),
                "lvl_district": pl.Boolean(),
                "lvl_street": pl.Boolean(),
            },
        ),
        components=pl.DataFrame(
            comp_rows,
            schema={
                "index_id": pl.String(),
                "ref": pl.String(),
                "ref_index": pl.Boolean(),
                "ikey": pl.Int32(),
                "weight": pl.Float64(),
                "method": pl.String(),
                "low": pl.Float64(),
                "high": pl.Float64(),
            },
        ),
        derived_layers=[[by_id[i] for i in layer] for layer in layers_ids],
        index_layers=[[index_by_id[i] for i in layer] for layer in idx_layers],
        measures=measures,
        keys=keys,
        grain=grain,
    )
