"""`citykpi areas load`: validate the area hierarchy and replace the registry atomically.

Area keys are stable: a reload reuses the key of every id already known, and new ids get keys
that were never used before (``meta.area_key_seq``), so stored observations never point at a
different area after a reload.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
import yaml

from citykpi.backend import Connection, EngineError
from citykpi.catalogue.model import LEVELS
from citykpi.errors import DataError, Location
from citykpi.sqlutil import ident
from citykpi.warehouse import readers, schema
from citykpi.warehouse.connection import Warehouse

MAX_PROBLEMS = 20
_FIELDS = ("id", "name", "name_en", "level", "parent", "population", "groups")


@dataclass(frozen=True)
class AreaRow:
    """One area as read from the file, with where it was found."""

    id: str
    name: str
    name_en: str
    level: str
    parent: str | None
    population: float | None
    groups: tuple[str, ...]
    loc: Location


@dataclass(frozen=True)
class AreasReport:
    """What `areas load` did."""

    path: str
    total: int
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    kept: int = 0
    by_level: dict[str, int] = field(default_factory=dict)
    orphaned_observations: int = 0
    #: Top-level areas (no parent): one city, or several (e.g. countries).
    roots: int = 1


def load_areas(wh: Warehouse, path: str | Path, *, force: bool = False) -> AreasReport:
    """Validate an areas file (CSV, Parquet or YAML) and replace the area registry in one transaction.

    Args:
        wh: an open, writable warehouse.
        path: the areas file: id, name, name_en, level, parent, population (optional), groups (optional).
        force: allow removing areas that observations or source rows still reference.

    Raises:
        DataError: the file is unreadable or the hierarchy is invalid (every problem with file:row).
    """
    path = Path(path)
    rows = read_area_rows(wh.con, path)
    validate_hierarchy(rows, str(path))
    report = _replace(wh, rows, str(path), force=force)
    wh.con.complete()  # leave no unread result behind for the caller's next con.sql()
    return report


# --- reading -------------------------------------------------------------------------------------


def read_area_rows(con: Connection, path: Path) -> list[AreaRow]:
    """Read the area rows of a CSV, Parquet or YAML file (no hierarchy checks yet)."""
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    if path.suffix.lower() in (".yaml", ".yml"):
        records = _yaml_records(path)
    else:
        table = readers.open_table(con, path)
        try:
            records = _table_records(con, table)
        finally:
            table.cleanup()
    problems: list[str] = []
    out: list[AreaRow] = []
    for loc, rec in records:
        try:
            out.append(_to_row(rec, loc))
        except ValueError as exc:
            problems.append(f"{loc}: {exc}")
    _raise_if(problems, path)
    if not out:
        raise DataError(f"{path}: no areas in the file", hint="add at least the city (level city, no parent)")
    return out


def _yaml_records(path: Path) -> list[tuple[Location, dict[str, Any]]]:
    class _Loader(yaml.SafeLoader):
        pass

    def _mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
        mapping = loader.construct_mapping(node, deep=True)
        mapping["__line__"] = node.start_mark.line + 1
        return mapping

    _Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)
    try:
        with path.open(encoding="utf-8-sig") as fh:
            doc = yaml.load(fh, Loader=_Loader)
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not valid YAML: {exc}") from None
    items = doc.get("areas") if isinstance(doc, dict) else doc
    if not isinstance(items, list):
        raise DataError(f"{path}: expected a list of areas (or a mapping with key 'areas')")
    out: list[tuple[Location, dict[str, Any]]] = []
    for i, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            raise DataError(f"{path}: area #{i} is not a mapping")
        line = item.pop("__line__", None)
        out.append((Location(str(path), line), item))
    return out


def _table_records(con: Connection, table: readers.TableFile) -> list[tuple[Location, dict[str, Any]]]:
    cols = {f: readers.find_column(table.columns, f) for f in _FIELDS}
    missing = [f for f in ("id", "level") if cols[f] is None]
    if missing:
        raise DataError(
            f"{table.path}: missing column(s) {', '.join(missing)}; found {', '.join(table.columns)}",
            hint="areas files need columns id, name, name_en, level, parent[, population, groups]",
        )
    select = ", ".join(
        f"{ident(c)}::VARCHAR AS {f}" if c else f"NULL::VARCHAR AS {f}" for f, c in cols.items()
    )
    try:
        frame = con.frame(f"SELECT {readers.ROW}, {select} FROM ({table.sql}) ORDER BY {readers.ROW}")
    except EngineError as exc:
        raise DataError(f"{table.path}: cannot read the file: {str(exc).splitlines()[0]}") from None
    return [
        (Location(str(table.path), int(rec.pop(readers.ROW))), rec) for rec in frame.iter_rows(named=True)
    ]


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _to_row(rec: dict[str, Any], loc: Location) -> AreaRow:
    area_id = _text(rec.get("id"))
    if not area_id:
        raise ValueError("missing area id")
    level = _text(rec.get("level")).lower()
    parent = _text(rec.get("parent")) or None
    pop_raw = rec.get("population")
    population: float | None = None
    if pop_raw is not None and _text(pop_raw) != "":
        try:
            population = float(str(pop_raw).replace(",", "").strip())
        except ValueError:
            raise ValueError(f"area {area_id!r}: population {pop_raw!r} is not a number") from None
        if not math.isfinite(population) or population < 0:
            raise ValueError(f"area {area_id!r}: population {pop_raw!r} must be a finite number >= 0")
    groups_raw = rec.get("groups")
    if isinstance(groups_raw, list):
        groups = tuple(_text(g) for g in groups_raw if _text(g))
    else:
        groups = tuple(g.strip() for g in _text(groups_raw).split(";") if g.strip())
    return AreaRow(
        id=area_id,
        name=_text(rec.get("name")),
        name_en=_text(rec.get("name_en")),
        level=level,
        parent=parent,
        population=population,
        groups=groups,
        loc=loc,
    )


# --- validation ----------------------------------------------------------------------------------


def validate_hierarchy(rows: list[AreaRow], path: str) -> None:
    """Check ids unique, levels known, at least one root (level city), parents exist one level up, no cycles.

    Several roots are allowed: an areas file of many countries (each a top-level area, its cities
    one level down) needs no invented common root. Each root is rolled up to on its own.
    """
    problems: list[str] = []
    by_id: dict[str, AreaRow] = {}
    for row in rows:
        if row.id in by_id:
            problems.append(f"{row.loc}: duplicate area id {row.id!r} (first at {by_id[row.id].loc})")
        else:
            by_id[row.id] = row
        if row.level not in LEVELS:
            problems.append(
                f"{row.loc}: area {row.id!r} has unknown level {row.level!r}; use one of {', '.join(LEVELS)}"
            )
    roots = [r for r in rows if r.parent is None]
    for r in roots:
        if r.level in LEVELS and r.level != LEVELS[0]:
            problems.append(
                f"{r.loc}: area {r.id!r} (level {r.level}) has no parent; only the city may have none"
            )
    if not any(r.level == LEVELS[0] for r in roots):
        # Several roots are fine (countries with their cities, no invented common root); none is not.
        problems.append(f"{path}: no root area (level city, no parent); every area names a parent")
    unique = [r for r in rows if by_id[r.id] is r]  # a duplicate is reported once, above
    for row in unique:
        if row.parent is None:
            continue
        parent = by_id.get(row.parent)
        if parent is None:
            problems.append(
                f"{row.loc}: area {row.id!r} names parent {row.parent!r}, which is not in the file"
            )
            continue
        if (
            row.level in LEVELS
            and parent.level in LEVELS
            and LEVELS.index(parent.level) != LEVELS.index(row.level) - 1
        ):
            problems.append(
                f"{row.loc}: area {row.id!r} (level {row.level}) has parent {row.parent!r} of level "
                f"{parent.level}; a parent sits exactly one level up (city → district → street)"
            )
    for row in unique:  # cycles (only possible when levels are also wrong, but report them plainly)
        seen = {row.id}
        cur = row
        while cur.parent is not None and cur.parent in by_id:
            if cur.parent in seen:
                problems.append(f"{row.loc}: area {row.id!r} is part of a parent cycle ({' → '.join(seen)})")
                break
            seen.add(cur.parent)
            cur = by_id[cur.parent]
    _raise_if(problems, path)


def _raise_if(problems: list[str], path: str | Path) -> None:
    if not problems:
        return
    shown = problems[:MAX_PROBLEMS]
    more = f"\n  … and {len(problems) - MAX_PROBLEMS} more" if len(problems) > MAX_PROBLEMS else ""
    raise DataError(
        f"{path}: {len(problems)} problem(s) in the areas file; nothing was loaded:\n  "
        + "\n  ".join(shown)
        + more,
        hint="fix the rows above and run `citykpi areas load` again",
    )


# --- replacing -------------------------------------------------------------------------------------


def _referenced_keys(con: Connection) -> set[int]:
    tables = [
        "observations",
        "observations_superseded",
        "observations_dims",
        "observations_missing",
        "run_cells",
    ]
    tables += sorted(t for t in schema.table_names(con) if t.startswith("src_"))
    union = " UNION ".join(f"SELECT DISTINCT area_key FROM {ident(t)}" for t in tables)
    return {int(r[0]) for r in con.execute(union).fetchall() if r[0] is not None}


def _replace(wh: Warehouse, rows: list[AreaRow], path: str, *, force: bool) -> AreasReport:
    con = wh.con
    con.execute("BEGIN TRANSACTION")
    try:
        old = {str(i): int(k) for i, k in con.execute("SELECT area_id, area_key FROM areas").fetchall()}
        seq_rows = con.execute("SELECT value FROM meta WHERE key = 'area_key_seq'").fetchall()
        seq = max([int(seq_rows[0][0]) if seq_rows else 0, *old.values(), 0])
        new_ids = {r.id for r in rows}
        removed = sorted(set(old) - new_ids)
        orphaned = 0
        if removed:
            referenced = _referenced_keys(con)
            still = [a for a in removed if old[a] in referenced]
            if still and not force:
                raise DataError(
                    f"{path}: {len(still)} area(s) missing from the new file still have data: "
                    + ", ".join(still[:10])
                    + (" …" if len(still) > 10 else ""),
                    hint="keep them in the file, or pass --force to drop them (their data stays, unlinked)",
                )
            if still:
                gone = [old[a] for a in still]
                orphaned = int(
                    con.execute(
                        "SELECT count(*) FROM observations WHERE list_contains(?, area_key)", [gone]
                    ).fetchall()[0][0]
                )
        keys: dict[str, int] = {}
        for r in rows:
            if r.id in old:
                keys[r.id] = old[r.id]
            else:
                seq += 1
                keys[r.id] = seq
        frame = pl.DataFrame(
            {
                "area_key": [keys[r.id] for r in rows],
                "area_id": [r.id for r in rows],
                "name": [r.name for r in rows],
                "name_en": [r.name_en for r in rows],
                "level": [r.level for r in rows],
                "parent_key": [keys[r.parent] if r.parent else None for r in rows],
                "population": [r.population for r in rows],
                "groups": [list(r.groups) for r in rows],
            },
            schema={
                "area_key": pl.Int32,
                "area_id": pl.String,
                "name": pl.String,
                "name_en": pl.String,
                "level": pl.String,
                "parent_key": pl.Int32,
                "population": pl.Float64,
                "groups": pl.List(pl.String),
            },
        )
        with con.registered("_areas_new", frame):
            con.execute("DELETE FROM areas")
            con.execute("INSERT INTO areas SELECT * FROM _areas_new ORDER BY area_key")
        con.execute("INSERT OR REPLACE INTO meta VALUES ('area_key_seq', ?)", [str(seq)])
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    by_level: dict[str, int] = {}
    for r in rows:
        by_level[r.level] = by_level.get(r.level, 0) + 1
    return AreasReport(
        path=path,
        total=len(rows),
        added=tuple(sorted(new_ids - set(old))),
        removed=tuple(removed),
        kept=len(new_ids & set(old)),
        by_level=by_level,
        orphaned_observations=orphaned,
        roots=sum(r.parent is None for r in rows),
    )
