"""Phase 1 of an evaluation, *gather*: read from the warehouse what the compile phase needs.

The catalogue slice (filters plus everything the selection is computed from), the area registry,
the evaluation date and grain, indicator keys, the storage classes of each series, the ingest
cut-off of a replay. After this phase nothing else is read to decide *what* to compute.

Its only writes are bookkeeping a writable warehouse needs before SQL can refer to them: keys for
indicators new to the warehouse, and empty raw source tables a measure reads but no file filled yet.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from fnmatch import fnmatchcase

import polars as pl

from citykpi.catalogue.model import BUILTIN_SOURCES, GRAINS, Catalogue, Measure
from citykpi.engine.calendar import MAX_DATE, MIN_DATE, Moment, is_subdaily, supported_date, supported_instant
from citykpi.errors import EvaluationError, UsageError
from citykpi.warehouse.connection import Warehouse
from citykpi.warehouse.schema import source_table_ddl, source_table_name


@dataclass(frozen=True)
class Request:
    """What an evaluation was asked for (the options of :func:`citykpi.engine.evaluate.evaluate`)."""

    as_of: date | None = None
    grain: str = "day"
    #: an instant (naive local time in the city's zone) instead of the end of the day ``as_of``
    at: datetime | None = None
    levels: Sequence[str] | None = None
    areas: Sequence[str] | None = None
    domains: Sequence[str] | None = None
    kinds: Sequence[str] | None = None
    indicator_glob: str | None = None
    as_ingested: bool | int = False
    history_levels: Sequence[str] = ("city", "district")
    history_from: date | None = None
    parts: bool = False


@dataclass(frozen=True)
class Gathered:
    """Everything the compile phase needs, read from the catalogue and the warehouse."""

    request: Request
    catalogue: Catalogue  # the full catalogue (its hash is the run's)
    compiled: Catalogue  # the slice that is compiled
    shown: frozenset[str]  # indicator ids whose cells are reported
    as_of: date  # the day of the moment
    area_frame: pl.DataFrame
    area_keys: dict[str, int]
    areas: tuple[str, ...] | None  # the area filter with groups expanded
    area_filter: tuple[int, ...] | None
    keys: dict[str, int]
    classes: dict[int, set[int]]
    batch_cut: int | None  # replay: the last batch counted (None = all)
    max_batch: int
    #: the end of the day ``as_of``, or the instant asked for (default: the end of ``as_of``)
    moment: Moment | None = None

    def __post_init__(self) -> None:
        if self.moment is None:
            object.__setattr__(self, "moment", Moment.of_day(self.as_of))

    @property
    def when(self) -> Moment:
        """The moment evaluated (never None once constructed)."""
        assert self.moment is not None
        return self.moment


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
        domains=catalogue.domains,
        incidents=catalogue.incidents,
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


def latest_instant(wh: Warehouse) -> datetime | None:
    """Time stamp of the newest observation (the default instant of a sub-daily evaluation)."""
    row = next(iter(wh.con.execute("SELECT max(period) FROM observations").fetchall()), None)
    return row[0] if row and row[0] else None


def resolve_moment(wh: Warehouse, as_of: date | None, at: datetime | None, grain: str) -> Moment:
    """The moment an evaluation is as of: ``at``, the end of ``as_of``, or the newest data.

    Raises:
        UsageError: both given, a date for a sub-daily grain, or out of the supported range.
        EvaluationError: no observations to take a default from.
    """
    if as_of is not None and at is not None:
        raise UsageError("give either a date or an instant (--date or --at), not both")
    if at is not None:
        if at.tzinfo is not None:
            raise UsageError(
                "the instant must be a local time of the city (no UTC offset) at this point",
                hint="the command line converts --at with an offset using the catalogue's timezone",
            )
        return Moment.of_instant(supported_instant("at", at))
    if as_of is not None:
        if is_subdaily(grain):
            raise UsageError(
                f"--period {grain} evaluates an instant, not a day",
                hint=f"pass --at {as_of.isoformat()}T23:00 (or another time of that day)",
            )
        return Moment.of_day(supported_date("as_of", as_of))
    newest = latest_instant(wh) if is_subdaily(grain) else None
    day = newest.date() if newest is not None else latest_period(wh)
    if day is None:
        raise EvaluationError(
            "the warehouse has no observations yet", hint="load data with `citykpi ingest FILE…`"
        )
    if not MIN_DATE <= day <= MAX_DATE:
        raise EvaluationError(
            f"the newest observation is dated {day}, outside the supported range {MIN_DATE} … {MAX_DATE}",
            hint="pass the date to evaluate with --date",
        )
    return Moment.of_instant(newest) if newest is not None else Moment.of_day(day)


def ingest_cutoff(wh: Warehouse, as_of: date | Moment) -> int:
    """The last batch finished by the end of ``as_of`` or by the instant (what was known then)."""
    end = (
        as_of.end
        if isinstance(as_of, Moment)
        else datetime.combine(as_of + timedelta(days=1), datetime.min.time())
    )
    rows = wh.con.execute(
        "SELECT coalesce(max(batch_id), 0) FROM batches WHERE finished_at < ? AND status = 'loaded'", [end]
    ).fetchall()
    row = rows[0] if rows else None
    return int(row[0]) if row else 0


def _max_batch(wh: Warehouse) -> int:
    row = next(iter(wh.con.execute("SELECT coalesce(max(batch_id), 0) FROM batches").fetchall()), None)
    return int(row[0]) if row else 0


def ensure_sources(wh: Warehouse, catalogue: Catalogue) -> None:
    """Raw source tables used by measures exist (made by `citykpi ingest --format source`, else empty)."""
    used = {i.value.source for i in catalogue.indicators if isinstance(i.value, Measure)} - set(
        BUILTIN_SOURCES
    )
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
            ddl = source_table_ddl(src)
            if wh.read_only:
                # Nothing loaded yet: its measures have no data, like any indicator with no rows. A
                # read-only evaluation must not write, so the empty table lives in this session only.
                ddl = ddl.replace("CREATE TABLE", "CREATE TEMP TABLE", 1)
            wh.con.execute(ddl)


def gather(wh: Warehouse, catalogue: Catalogue, request: Request) -> Gathered:
    """Resolve the request against the warehouse: date, areas, catalogue slice, keys, replay cut-off.

    Raises:
        UsageError: unknown grain, area or group, or filters that match no indicator.
        EvaluationError: no observations or no areas yet.
    """
    if request.grain not in GRAINS:
        raise UsageError(f"unknown period {request.grain!r}; use one of {', '.join(GRAINS)}")
    if not wh.backend.sub_daily and (is_subdaily(request.grain) or request.at is not None):
        asked = "--at" if request.at is not None else f"--period {request.grain}"
        raise UsageError(
            f"the {wh.backend.dialect} backend evaluates days and coarser periods only, not {asked}",
            hint="evaluate sub-daily vital signs on the embedded DuckDB warehouse (docs/spark.md, Limits)",
        )
    if request.history_from is not None:
        supported_date("history_from", request.history_from)
    moment = resolve_moment(wh, request.as_of, request.at, request.grain)
    as_of = moment.day
    area_frame = wh.areas()
    if area_frame.is_empty():
        raise EvaluationError("no areas are loaded", hint="load them with `citykpi areas load areas.csv`")
    area_keys = area_keys_of(area_frame)
    areas: list[str] | None = None
    area_filter: tuple[int, ...] | None = None
    if request.areas:
        areas = expand_groups(catalogue, area_frame, request.areas)
        unknown = [a for a in areas if a not in area_keys]
        if unknown:
            raise UsageError(
                f"unknown area or group {unknown[0]!r}",
                hint="see `citykpi db info`, the areas file, or the catalogue's `groups:`",
            )
        area_filter = tuple(area_keys[a] for a in areas)
    compiled, shown = select_indicators(
        catalogue, domains=request.domains, kinds=request.kinds, indicator_glob=request.indicator_glob
    )
    if not compiled.indicators:
        raise UsageError(
            "no indicator matches the filters",
            hint="see the ids with `citykpi catalogue list` (--domain/--kind take its values; "
            "--indicator takes a glob such as 'env.air.*')",
        )
    if not wh.read_only:
        wh.register_indicators(i.id for i in catalogue.indicators)
    keys = indicator_keys_for(wh, compiled)
    batch_cut: int | None = None
    if request.as_ingested is True:
        batch_cut = ingest_cutoff(wh, moment)
    elif isinstance(request.as_ingested, int) and not isinstance(request.as_ingested, bool):
        batch_cut = request.as_ingested
    classes = series_classes(wh)
    ensure_sources(wh, compiled)
    if any(isinstance(i.value, Measure) and i.value.source in BUILTIN_SOURCES for i in compiled.indicators):
        from citykpi.engine.alerting import prepare_episode_source  # only for measures over the episodes

        episodes = prepare_episode_source(wh, catalogue, moment.last)  # on the control connection
        wh.backend.lend(wh.con, wh.path, (episodes,))
    return Gathered(
        request=request,
        catalogue=catalogue,
        compiled=compiled,
        shown=frozenset(shown),
        as_of=as_of,
        moment=moment,
        area_frame=area_frame,
        area_keys=area_keys,
        areas=tuple(areas) if areas is not None else None,
        area_filter=area_filter,
        keys=keys,
        classes=classes,
        batch_cut=batch_cut,
        max_batch=batch_cut if batch_cut is not None else _max_batch(wh),
    )
