"""Evaluate the catalogue against the warehouse: run the compiled steps, return a Scorecard.

No printing here. The number of statements issued does not depend on the number of indicators
(only on formula/index nesting depth and the number of raw source tables); ``Plan.statements``
lists them and ``--explain`` prints them.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from fnmatch import fnmatchcase

import polars as pl

from citykpi.backend import Connection
from citykpi.catalogue.model import GRAINS, Catalogue, Measure, SourceTable
from citykpi.engine import compiler as c
from citykpi.engine.scorecard import CELL_SCHEMA, HISTORY_SCHEMA, INDEX_SCHEMA, Scorecard, empty_frame
from citykpi.errors import EvaluationError, UsageError
from citykpi.sqlutil import ident
from citykpi.warehouse.connection import Warehouse
from citykpi.warehouse.schema import source_table_name


@dataclass
class Plan:
    """The statements of one evaluation, in order: (step name, SQL)."""

    statements: list[tuple[str, str]] = field(default_factory=list)

    def add(self, name: str, sql: str | None) -> None:
        """Append a statement (``None`` is skipped)."""
        if sql:
            self.statements.append((name, sql))

    def text(self) -> str:
        """All statements as one SQL script with step comments (for ``--explain``)."""
        return "\n\n".join(f"-- {name}\n{sql};" for name, sql in self.statements)


def _closure(catalogue: Catalogue, selected: Iterable[str]) -> set[str]:
    """The selected indicator ids plus everything they are computed from."""
    out: set[str] = set()
    stack = list(selected)
    while stack:
        i = stack.pop()
        if i in out:
            continue
        out.add(i)
        stack.extend(catalogue.by_id[i].inputs)
    return out


def select_indicators(
    catalogue: Catalogue,
    *,
    domains: Sequence[str] | None = None,
    kinds: Sequence[str] | None = None,
    indicator_glob: str | None = None,
) -> tuple[Catalogue, set[str]]:
    """Restrict the catalogue to what a filtered evaluation needs.

    Returns:
        The catalogue to compile (selection plus inputs; indices only when nothing is filtered)
        and the ids whose cells are reported.
    """
    if not (domains or kinds or indicator_glob):
        return catalogue, {i.id for i in catalogue.indicators}
    shown = {
        i.id
        for i in catalogue.indicators
        if (not domains or i.domain in domains)
        and (not kinds or i.kind in kinds)
        and (not indicator_glob or fnmatchcase(i.id, indicator_glob))
    }
    needed = _closure(catalogue, shown)
    sub = Catalogue(
        indicators=tuple(i for i in catalogue.indicators if i.id in needed),
        indices=(),
        groups=catalogue.groups,
        sources=catalogue.sources,
        schema_version=catalogue.schema_version,
        files=catalogue.files,
        content_hash=catalogue.content_hash,
    )
    return sub, shown


def expand_groups(catalogue: Catalogue, area_frame: pl.DataFrame, areas: Sequence[str]) -> list[str]:
    """Area ids with named groups (catalogue ``groups:`` or the areas file's groups) replaced by their members."""
    by_catalogue = {g.id: list(g.areas) for g in catalogue.groups}
    out: list[str] = []
    for a in areas:
        if a in by_catalogue:
            out.extend(by_catalogue[a])
            continue
        members = []
        if "groups" in area_frame.columns:
            members = area_frame.filter(pl.col("groups").list.contains(a))["area_id"].to_list()
        out.extend(members or [a])
    return list(dict.fromkeys(out))


def area_keys_of(area_frame: pl.DataFrame) -> dict[str, int]:
    """area id → area_key."""
    return dict(zip(area_frame["area_id"].to_list(), area_frame["area_key"].to_list(), strict=True))


def indicator_keys_for(wh: Warehouse, catalogue: Catalogue) -> dict[str, int]:
    """Warehouse keys for the catalogue's indicators; ids the warehouse never saw (read-only) get keys
    that match no observation."""
    keys = wh.indicator_keys()
    top = max(keys.values(), default=0)
    missing = [i.id for i in catalogue.indicators if i.id not in keys]
    return {**keys, **{m: top + n for n, m in enumerate(missing, start=1)}}


def series_classes(wh: Warehouse) -> dict[int, set[int]]:
    """Series key → storage classes it has observations in (``series_classes``, kept by ingest)."""
    out: dict[int, set[int]] = {}
    for key, fc in wh.con.execute("SELECT indicator_key, freq_class FROM series_classes").fetchall():
        out.setdefault(int(key), set()).add(int(fc))
    return out


def latest_period(wh: Warehouse) -> date | None:
    """Date of the newest observation in the warehouse (the default evaluation date)."""
    row = next(iter(wh.con.execute("SELECT CAST(max(period) AS DATE) FROM observations").fetchall()), None)
    return row[0] if row and row[0] else None


def ingest_cutoff(wh: Warehouse, as_of: date) -> int:
    """The last batch finished by the end of ``as_of`` (what was known then)."""
    end = datetime.combine(as_of + timedelta(days=1), datetime.min.time())
    rows = wh.con.execute(
        "SELECT coalesce(max(batch_id), 0) FROM batches WHERE finished_at < ? AND status = 'loaded'", [end]
    ).fetchall()
    row = rows[0] if rows else None
    return int(row[0]) if row else 0


class _Runner:
    """Executes statements and counts them."""

    def __init__(self, con: Connection) -> None:
        self.con = con
        self.count = 0
        self.timings: list[tuple[str, float]] = []

    def run(self, sql: str, name: str = "") -> None:
        self.count += 1
        t = time.perf_counter()
        self.con.execute(sql)
        self.timings.append((name, round(time.perf_counter() - t, 4)))

    def load(self, name: str, frame: pl.DataFrame) -> None:
        self.count += 1
        t = time.perf_counter()
        with self.con.registered("_ck_frame", frame):
            self.con.execute(f"CREATE OR REPLACE TEMP TABLE {ident(name)} AS SELECT * FROM _ck_frame")
        self.timings.append((f"load {name}", round(time.perf_counter() - t, 4)))


def compile_plan(
    catalogue: Catalogue,
    keys: dict[str, int],
    area_keys: dict[str, int],
    *,
    as_of: date,
    grain: str,
    obs: str,
    level_filter: Sequence[str] | None,
    area_filter: Sequence[int] | None,
    classes: dict[int, set[int]],
    history_from: date | None = None,
    shown: Collection[str] | None = None,
) -> tuple[c.CatalogueTables, Plan]:
    """Compile the catalogue into catalogue tables and the ordered SQL statements."""
    tables = c.build_tables(
        catalogue, keys, grain=grain, as_of=as_of, area_keys=area_keys, history_from=history_from, shown=shown
    )
    plan = Plan()
    for i, sql in enumerate(c.area_tables_sql()):
        plan.add(f"areas {i + 1}", sql)
    plan.add(
        "buckets: observations → reporting periods",
        c.bucket_sql(tables, as_of=as_of, obs=obs, classes=classes),
    )

    def src_table(s: SourceTable) -> str:
        return ident(source_table_name(s.id))

    plan.add(
        "measures over raw source tables",
        c.measure_sql(tables, catalogue, tables.keys, as_of=as_of, source_table=src_table),
    )
    plan.add("area roll-up street → district", c.rollup_sql("street"))
    plan.add("area roll-up district → city", c.rollup_sql("district"))
    plan.add("index periods (current, history, last year)", c.k_index_sql())
    for n, layer in enumerate(tables.derived_layers, start=1):
        plan.add(f"derived values, layer {n}", c.derived_sql(n, layer, tables.keys))
    plan.add("classify", c.classify_sql())
    plan.add("cumulative sums for cumulative targets", c.cumulative_sql(tables, as_of=as_of, obs=obs))
    plan.add("cells", c.cells_sql(as_of=as_of, level_filter=level_filter, area_filter=area_filter))
    plan.add("explanations", c.explain_sql())
    plan.add("indices table", c.index_table_sql())
    for depth, _layer in enumerate(tables.index_layers, start=1):
        plan.add(f"indices, depth {depth}", c.index_sql(depth))
        plan.add(f"index colours, depth {depth}", c.index_severity_sql())
    return tables, plan


_CELLS_OUT = """
SELECT m.indicator_id, a.area_id, x.level, m.domain, m.kind, m.tier, m.unit, m.name_zh, m.name_en,
  a.name AS area_name_zh, a.name_en AS area_name_en, x.period_start, x.period_end, x.value, x.basis_value,
  x.status, x.severity, x.band_label, x.explanation, x.previous_value, x.change_previous,
  x.week_ago_value, x.change_week_ago, x.last_year_value, x.change_last_year, x.change_unit, x.streak,
  x.target_value, x.target_due, x.attainment, x.expected_progress, x.target_status, x.source
FROM t_cells2 x JOIN ck_ind m ON m.ikey = x.ikey JOIN t_area a ON a.area_key = x.area_key
ORDER BY m.domain, m.indicator_id, x.level, a.area_id"""

_INDEX_OUT = f"""
SELECT i.index_id, a.area_id, i.level, x.name_zh, x.name_en, a.name AS area_name_zh, a.name_en AS area_name_en,
  i.score,
  CASE WHEN i.score IS NULL THEN 'no_data' ELSE {c.colour_of("i.severity")} END AS status,
  i.severity, i.coverage, i.capped, i.components_used, i.components_total,
  CAST(rank() OVER (PARTITION BY i.index_id, i.level ORDER BY i.score DESC NULLS LAST) AS INTEGER) AS rank
FROM t_index i JOIN ck_index x ON x.index_id = i.index_id JOIN t_area a ON a.area_key = i.area_key
ORDER BY i.index_id, i.level, rank, a.area_id"""

_HISTORY_OUT = """
SELECT m.indicator_id, a.area_id, t.bucket AS period_start, t.v AS value
FROM t_k t JOIN t_cells2 x ON x.ikey = t.ikey AND x.area_key = t.area_key
JOIN ck_ind m ON m.ikey = t.ikey JOIN t_area a ON a.area_key = t.area_key
WHERE t.k >= 0 AND x.level IN ({levels})
ORDER BY m.indicator_id, a.area_id, t.bucket"""


def _frame(con: Connection, sql: str, schema: dict[str, pl.DataType]) -> pl.DataFrame:
    df = con.frame(sql)
    if df.is_empty():
        return empty_frame(schema)
    return df.select([pl.col(n).cast(t) for n, t in schema.items()])


def evaluate(
    wh: Warehouse,
    catalogue: Catalogue,
    *,
    as_of: date | None = None,
    grain: str = "day",
    levels: Sequence[str] | None = None,
    areas: Sequence[str] | None = None,
    domains: Sequence[str] | None = None,
    kinds: Sequence[str] | None = None,
    indicator_glob: str | None = None,
    as_ingested: bool | int = False,
    persist: bool = True,
    history_levels: Sequence[str] = ("city", "district"),
    sandbox: bool = True,
    history_from: date | None = None,
) -> Scorecard:
    """Evaluate the catalogue as of a date and return the Scorecard.

    Args:
        wh: the open warehouse (writable when ``persist``).
        catalogue: the validated catalogue.
        as_of: evaluation date; default the date of the newest observation.
        grain: day, week, month, quarter or year.
        levels, areas: restrict the reported cells (roll-ups still use all data).
        domains, kinds, indicator_glob: restrict the indicators reported (inputs are still computed).
        as_ingested: replay what was known at the end of ``as_of`` (True) or up to a batch id (int).
        persist: record the run (scorecard history) in the warehouse.
        history_levels: levels whose recent values are returned for sparklines.
        history_from: keep history back to this date (drill-downs; default: a few periods).
        sandbox: switch off DuckDB's file system access and lock its configuration before the
            compiled SQL runs (see :meth:`Warehouse.sandbox`); the connection keeps it until closed.

    Returns:
        The Scorecard (cells, indices, history) with ``meta`` holding the statement count and timing.
    """
    if grain not in GRAINS:
        raise UsageError(f"unknown period {grain!r}; use one of {', '.join(GRAINS)}")
    started = time.perf_counter()
    con = wh.con
    if as_of is None:
        as_of = latest_period(wh)
        if as_of is None:
            raise EvaluationError(
                "the warehouse has no observations yet", hint="load data with `citykpi ingest FILE…`"
            )
    area_frame = wh.areas()
    if area_frame.is_empty():
        raise EvaluationError("no areas are loaded", hint="load them with `citykpi areas load areas.csv`")
    area_keys = area_keys_of(area_frame)
    area_filter: list[int] | None = None
    if areas:
        areas = expand_groups(catalogue, area_frame, areas)
        unknown = [a for a in areas if a not in area_keys]
        if unknown:
            raise UsageError(
                f"unknown area or group {unknown[0]!r}",
                hint="see `citykpi db info`, the areas file, or the catalogue's `groups:`",
            )
        area_filter = [area_keys[a] for a in areas]
    compiled_cat, shown = select_indicators(
        catalogue, domains=domains, kinds=kinds, indicator_glob=indicator_glob
    )
    if not compiled_cat.indicators:
        raise UsageError(
            "no indicator matches the filters",
            hint="see the ids with `citykpi catalogue list` (--domain/--kind take its values; "
            "--indicator takes a glob such as 'env.air.*')",
        )

    if not wh.read_only:
        wh.register_indicators(i.id for i in catalogue.indicators)
    keys = indicator_keys_for(wh, compiled_cat)

    batch_cut: int | None = None
    if as_ingested is True:
        batch_cut = ingest_cutoff(wh, as_of)
    elif isinstance(as_ingested, int) and not isinstance(as_ingested, bool):
        batch_cut = as_ingested
    obs, obs_sql = c.observation_source(batch_cut)

    tables, plan = compile_plan(
        compiled_cat,
        keys,
        area_keys,
        as_of=as_of,
        grain=grain,
        obs=obs,
        level_filter=levels,
        area_filter=area_filter,
        classes=series_classes(wh),
        history_from=history_from,
        shown=shown,
    )
    _check_sources(wh, compiled_cat)
    if sandbox:
        wh.sandbox()
    runner = _Runner(con)
    for name, frame in tables.frames().items():
        runner.load(name, frame)
    if obs_sql:
        runner.run(obs_sql)
    for name, sql in plan.statements:
        runner.run(sql, name)

    cells = _frame(con, _CELLS_OUT, dict(CELL_SCHEMA))  # inputs of a filtered selection are hidden
    indices = _frame(con, _INDEX_OUT, dict(INDEX_SCHEMA))
    if area_filter:
        indices = indices.filter(pl.col("area_id").is_in(list(areas or ())))
    if levels:
        indices = indices.filter(pl.col("level").is_in(list(levels)))
    history = empty_frame(HISTORY_SCHEMA)
    if history_levels:
        lv = ", ".join("'" + x + "'" for x in history_levels if x in ("city", "district", "street"))
        if lv:
            history = _frame(con, _HISTORY_OUT.format(levels=lv), dict(HISTORY_SCHEMA))
    statements = runner.count + 3
    max_batch = batch_cut
    if max_batch is None:
        row = next(iter(con.execute("SELECT coalesce(max(batch_id), 0) FROM batches").fetchall()), None)
        max_batch = int(row[0]) if row else 0
    scorecard = Scorecard(
        as_of=as_of,
        grain=grain,
        cells=cells,
        indices=indices,
        history=history,
        catalogue_hash=catalogue.content_hash,
        generated_at=datetime.now().replace(microsecond=0),
        meta={
            "statements": statements,
            "seconds": round(time.perf_counter() - started, 3),
            "as_ingested_batch": batch_cut,
            "max_batch_id": max_batch,
            "indicators": len(shown),
            "timings": runner.timings,
        },
    )
    if persist and not wh.read_only:
        from citykpi.engine.runs import persist_run

        scorecard = persist_run(
            wh,
            scorecard,
            options={
                "levels": levels,
                "areas": areas,
                "domains": domains,
                "kinds": kinds,
                "indicator": indicator_glob,
                "as_ingested": batch_cut,
            },
        )
    return scorecard


def explain(wh: Warehouse, catalogue: Catalogue, *, as_of: date | None = None, grain: str = "day") -> str:
    """The SQL an evaluation would run, as one script (for ``citykpi evaluate --explain``)."""
    as_of = as_of or latest_period(wh) or date.today()
    _tables, plan = compile_plan(
        catalogue,
        indicator_keys_for(wh, catalogue),
        area_keys_of(wh.areas()),
        as_of=as_of,
        grain=grain,
        obs="observations",
        level_filter=None,
        area_filter=None,
        classes=series_classes(wh),
    )
    return plan.text()


def _check_sources(wh: Warehouse, catalogue: Catalogue) -> None:
    """Raw source tables used by measures must exist (created by `citykpi ingest --format source`)."""
    used = {i.value.source for i in catalogue.indicators if isinstance(i.value, Measure)}
    if not used:
        return
    have = {
        str(r[0])
        for r in wh.con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'"
        ).fetchall()
    }
    for s in sorted(used):
        if source_table_name(s) not in have:
            src = next(x for x in catalogue.sources if x.id == s)
            from citykpi.warehouse.schema import source_table_ddl

            if wh.read_only:
                raise EvaluationError(
                    f"raw source table for {s!r} does not exist",
                    hint=f"load it with `citykpi ingest --format source --source {s} FILE`",
                )
            wh.con.execute(source_table_ddl(src))
