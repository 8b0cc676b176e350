"""Renderings of a catalogue review (``citykpi check --against``): text, json, github and junit.

Strings only (no Rich), one line per fact so that CI logs and grep read them whole. Each is *added* to
the check's own rendering of the new catalogue (``render.diagnostics``): the check part is unchanged.

- text: the definition diff, entity by entity, each changed field ``old → new``; then, with a
  warehouse, the status transitions with their counts and the cells that change status (cells of
  added or removed indicators are summed up per indicator).
- json: the key ``against`` in check's document, with its own ``schema_version``
  (:data:`REVIEW_JSON_SCHEMA_VERSION`; docs/catalogue.md, "Reviewing a change").
- github: ``::notice`` annotations at each added or changed entity's file:line in the new catalogue,
  one per indicator whose cells change status, and a summary; a removed entity has no line to point at.
- junit: a second test suite ``catalogue diff`` with one test case per entity that changed or whose
  statuses change; they pass unless ``fail_on_change``.
"""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from typing import Any

import polars as pl

from citykpi.catalogue.diff import ENTITIES, CatalogueDiff, EntityChange, FieldChange, Plain
from citykpi.catalogue.loader import CheckResult
from citykpi.engine.recolour import ColourChanges
from citykpi.errors import Location
from citykpi.render.diagnostics import _gh_escape
from citykpi.render.format import safe_text
from citykpi.review import Review

#: Version of the ``against`` object in ``check --against --format json``.
REVIEW_JSON_SCHEMA_VERSION = 1
#: How many cells the text lists before it points at --format json.
TEXT_CELLS = 200
#: How many cells one GitHub annotation or JUnit case spells out.
NOTE_CELLS = 10

_PLURAL = {
    "indicator": "indicators",
    "index": "indices",
    "group": "groups",
    "source": "sources",
    "feed": "feeds",
    "rule": "consistency rules",
    "domain": "domains",
    "incident": "incidents",
}


def show_value(value: Plain) -> str:
    """A field value as a reader writes it: ``—`` for none, ``[a, b]`` for lists, numbers as given."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(show_value(v) for v in value) + "]"
    if isinstance(value, float):
        return f"{value:.10g}"
    if isinstance(value, str):
        return value if value.strip() == value and value else json.dumps(value, ensure_ascii=False)
    return str(value)


def _number(value: float | None, unit: str | None = None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    text = f"{value:.6g}"
    return f"{text} {unit}" if unit else text


def _status(status: str | None) -> str:
    return status if status is not None else "—"


def _where(loc: Location | None) -> str:
    return str(loc) if loc is not None else ""


def field_line(f: FieldChange) -> str:
    """``thresholds.red: 150 → 120``."""
    return f"{f.field}: {show_value(f.old)} → {show_value(f.new)}"


def _counts_text(diff: CatalogueDiff) -> str:
    parts = []
    for entity, counts in diff.counts().items():
        shown = [f"{n} {kind}" for kind, n in counts.items() if n]
        if shown:
            parts.append(f"{_PLURAL[entity]}: {', '.join(shown)}")
    return "; ".join(parts) if parts else "no definition changed"


def _values(row: dict[str, Any]) -> str:
    """``142 µg/m³`` when the value is the same on both sides, else ``0.142 mg/m³ → 142 µg/m³``."""
    old = _number(row["value_from"], row["unit_from"])
    new = _number(row["value_to"], row["unit_to"])
    return new if old == new else f"{old} → {new}"


def _cell_line(row: dict[str, Any]) -> str:
    values = _values(row)
    return (
        f"{row['change']:<9} {row['indicator_id']}  {row['area_id']} ({row['level']})  "
        f"{_status(row['status_from'])} → {_status(row['status_to'])}  {values}"
    )


def _one_sided(cells: pl.DataFrame) -> list[str]:
    """``gone env.x: 41 cells (green 30, blue 11)`` per indicator whose cells exist on one side only."""
    lines = []
    for change, status_col in (("gone", "status_from"), ("new", "status_to")):
        part = cells.filter(pl.col("change") == change)
        for ident in sorted(set(part["indicator_id"].to_list())):
            mine = part.filter(pl.col("indicator_id") == ident)
            per = (
                mine.group_by(status_col)
                .agg(pl.len().alias("n"))
                .sort(["n", status_col], descending=[True, False])
            )
            spread = ", ".join(f"{s} {n}" for s, n in per.iter_rows())
            lines.append(
                f"{change:<9} {ident}: {mine.height} cell{'s' if mine.height != 1 else ''} ({spread})"
            )
    return lines


def _colour_lines(colours: ColourChanges) -> list[str]:
    both = colours.cells.filter(~pl.col("change").is_in(["new", "gone"]))
    head = (
        f"Status changes as of {colours.as_of.isoformat()} ({colours.grain}): "
        f"{colours.cells.height} of {colours.cells_compared} cells, {colours.indices.height} index scores"
    )
    lines = [head]
    if colours.empty:
        lines.append("  no cell changes status")
        return lines
    if colours.transitions.height:
        moves = " · ".join(f"{_status(a)} → {_status(b)} {n}" for a, b, n in colours.transitions.iter_rows())
        lines.append(f"  transitions: {moves}")
    for row in both.head(TEXT_CELLS).iter_rows(named=True):
        lines.append("  " + safe_text(_cell_line(row), one_line=True))
    if both.height > TEXT_CELLS:
        lines.append(f"  … {both.height - TEXT_CELLS} more cells: --format json lists every one")
    lines.extend("  " + safe_text(line, one_line=True) for line in _one_sided(colours.cells))
    for row in colours.indices.iter_rows(named=True):
        lines.append(
            safe_text(
                f"  {row['change']:<9} {row['index_id']}  {row['area_id']} ({row['level']})  "
                f"{_status(row['status_from'])} → {_status(row['status_to'])}  "
                f"score {_number(row['value_from'])} → {_number(row['value_to'])}",
                one_line=True,
            )
        )
    return lines


def _old_problem_lines(review: Review) -> list[str]:
    errors = review.old.errors
    lines = [
        f"  the catalogue at {review.label} has {len(errors)} error{'s' if len(errors) != 1 else ''}: "
        "nothing sound to compare with, so no definition diff is shown"
    ]
    lines.extend(f"    {safe_text(d, one_line=True)}" for d in errors[:NOTE_CELLS])
    if len(errors) > NOTE_CELLS:
        lines.append(f"    … {len(errors) - NOTE_CELLS} more (`citykpi check` on that catalogue lists them)")
    return lines


def _title(review: Review) -> str:
    rev = f" ({review.revision[:12]})" if review.revision else ""
    return f"Definition diff against {review.label}{rev}"


def review_text(review: Review) -> str:
    """The review as plain lines (after check's own text)."""
    lines = [safe_text(_title(review), one_line=True) + ":"]
    diff = review.definitions
    if review.old.errors:
        lines.extend(_old_problem_lines(review))
    elif diff is None:
        lines.append("  the catalogue has errors: no definition diff until they are fixed")
    else:
        lines[0] += f" {_counts_text(diff)}"
        for c in diff.changes:
            where = _where(c.new_location) if c.change != "removed" else f"(was {_where(c.old_location)})"
            lines.append(safe_text(f"  {c.change:<8} {c.entity} {c.id}  {where}", one_line=True))
            lines.extend(f"      {safe_text(field_line(f), one_line=True)}" for f in c.fields)
    if review.colours is not None:
        lines.extend(_colour_lines(review.colours))
    return "\n".join(lines) + "\n"


# --- json -----------------------------------------------------------------------------------


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def _rows(frame: pl.DataFrame) -> list[dict[str, Any]]:
    return [{k: _clean(v) for k, v in row.items()} for row in frame.iter_rows(named=True)]


def _loc_dict(loc: Location | None) -> dict[str, Any] | None:
    return {"file": loc.file, "line": loc.line, "column": loc.column} if loc is not None else None


def _change_dict(c: EntityChange) -> dict[str, Any]:
    return {
        "entity": c.entity,
        "id": c.id,
        "change": c.change,
        "location": _loc_dict(c.new_location),
        "old_location": _loc_dict(c.old_location),
        "fields": [{"field": f.field, "old": f.old, "new": f.new} for f in c.fields],
    }


def review_dict(review: Review) -> dict[str, Any]:
    """The review as JSON-ready data (the ``against`` object, schema_version 1)."""
    diff, colours = review.definitions, review.colours
    return {
        "schema_version": REVIEW_JSON_SCHEMA_VERSION,
        "label": review.label,
        "revision": review.revision,
        "old": {
            "ok": review.old.ok(),
            "counts": dict(review.old.counts),
            "files": list(review.old.files),
            "errors": [d.to_dict() for d in review.old.errors],
        },
        "changed": review.changed,
        "definitions": None
        if diff is None
        else {
            "old_hash": diff.old_hash,
            "new_hash": diff.new_hash,
            "counts": diff.counts(),
            "changes": [_change_dict(c) for c in diff.changes],
        },
        "colours": None
        if colours is None
        else {
            "as_of": colours.as_of.isoformat(),
            "grain": colours.grain,
            "cells_compared": colours.cells_compared,
            "transitions": _rows(colours.transitions),
            "cells": _rows(colours.cells),
            "indices": _rows(colours.indices),
        },
    }


def review_json(check_json: str, review: Review) -> str:
    """check's JSON document with the review under ``against``."""
    doc = json.loads(check_json)
    doc["against"] = review_dict(review)
    return json.dumps(doc, ensure_ascii=False, indent=2) + "\n"


# --- github ---------------------------------------------------------------------------------


def _notice(title: str, message: str, loc: Location | None = None) -> str:
    props = []
    if loc is not None:
        props.append(f"file={_gh_escape(safe_text(loc.file), prop=True)}")
        if loc.line is not None:
            props.append(f"line={loc.line}")
    props.append(f"title={_gh_escape(safe_text(title, one_line=True), prop=True)}")
    return f"::notice {','.join(props)}::{_gh_escape(safe_text(message))}"


def _entity_locations(check: CheckResult) -> dict[tuple[str, str], Location | None]:
    cat = check.catalogue
    if cat is None:
        return {}
    groups: list[tuple[str, Iterable[Any]]] = [
        ("indicator", cat.indicators),
        ("index", cat.indices),
        ("group", cat.groups),
        ("source", cat.sources),
        ("domain", cat.domains),
        ("incident", cat.incidents),
    ]
    return {(entity, e.id): e.loc for entity, items in groups for e in items}


def _cells_note(cells: pl.DataFrame) -> str:
    """The first cells as ``area old → new (value)``; an added or removed entity's by status instead."""
    kinds = set(cells["change"].to_list())
    if kinds <= {"gone"} or kinds <= {"new"}:
        side = "status_from" if kinds == {"gone"} else "status_to"
        per = cells.group_by(side).agg(pl.len().alias("n")).sort(["n", side], descending=[True, False])
        what = "no longer evaluated" if kinds == {"gone"} else "newly evaluated"
        return f"{what}: " + ", ".join(f"{status} {n}" for status, n in per.iter_rows())
    rows = list(cells.head(NOTE_CELLS).iter_rows(named=True))
    parts = [
        f"{r['area_id']} {_status(r['status_from'])} → {_status(r['status_to'])} ({_values(r)})" for r in rows
    ]
    more = f"; … {cells.height - len(rows)} more" if cells.height > len(rows) else ""
    return "; ".join(parts) + more


def _recoloured(colours: ColourChanges | None) -> dict[tuple[str, str], pl.DataFrame]:
    """(entity, id) → its cells (or index scores) that change status."""
    if colours is None:
        return {}
    out: dict[tuple[str, str], pl.DataFrame] = {}
    for (ident,), part in colours.cells.group_by(["indicator_id"], maintain_order=True):
        out[("indicator", str(ident))] = part
    indices = colours.indices.rename({"index_id": "indicator_id"}).with_columns(
        pl.lit(None, pl.String).alias("unit_from"), pl.lit(None, pl.String).alias("unit_to")
    )
    for (ident,), part in indices.group_by(["indicator_id"], maintain_order=True):
        out[("index", str(ident))] = part
    return out


def review_github(review: Review) -> str:
    """GitHub workflow commands: a notice per changed entity and per indicator whose statuses change."""
    lines: list[str] = []
    diff = review.definitions
    if review.old.errors:
        lines.append(
            _notice(
                "citykpi diff",
                f"the catalogue at {review.label} has {len(review.old.errors)} errors: no definition diff",
            )
        )
    if diff is not None:
        for c in diff.changes:
            title = f"citykpi diff: {c.change} {c.entity} {c.id}"
            if c.change == "removed":
                lines.append(_notice(title, f"was at {_where(c.old_location)}"))
            elif c.change == "added":
                lines.append(_notice(title, f"new {c.entity}", c.new_location))
            else:
                lines.append(_notice(title, "; ".join(field_line(f) for f in c.fields), c.new_location))
    locations = _entity_locations(review.check)
    for (entity, ident), cells in _recoloured(review.colours).items():
        n = cells.height
        what = "cells" if entity == "indicator" else "index scores"
        lines.append(
            _notice(
                f"citykpi colours: {ident}",
                f"{n} {what if n != 1 else what[:-1]} change status: {_cells_note(cells)}",
                locations.get((entity, ident)),
            )
        )
    if diff is not None:
        summary = _counts_text(diff)
        if review.colours is not None:
            summary += f"; {review.colours.cells.height} cells change status as of {review.colours.as_of}"
        lines.append(_notice(f"citykpi diff against {review.label}", summary))
    return "".join(line + "\n" for line in lines)


# --- junit ----------------------------------------------------------------------------------


def review_junit(check_junit: str, review: Review, *, fail_on_change: bool = False) -> str:
    """check's JUnit report with a test suite ``catalogue diff``: a case per changed or recoloured entity."""
    root = ET.fromstring(check_junit)
    suite = ET.SubElement(root, "testsuite", name="catalogue diff")
    diff = review.definitions
    by_entity: dict[tuple[str, str], list[str]] = {}
    if diff is not None:
        for c in diff.changes:
            where = _where(c.new_location) if c.change != "removed" else f"was at {_where(c.old_location)}"
            text = [f"{c.change} {c.entity} {c.id} {where}".rstrip(), *(field_line(f) for f in c.fields)]
            by_entity[(c.entity, c.id)] = text
    for key, cells in _recoloured(review.colours).items():
        text = by_entity.setdefault(key, [f"{key[0]} {key[1]}: definition unchanged"])
        text.append(f"{cells.height} change status: {_cells_note(cells)}")
    order = {e: i for i, e in enumerate(ENTITIES)}
    failures = 0
    for (entity, ident), text in sorted(by_entity.items(), key=lambda kv: (order[kv[0][0]], kv[0][1])):
        case = ET.SubElement(
            suite, "testcase", classname=f"citykpi.diff.{entity}", name=safe_text(ident, one_line=True)
        )
        body = safe_text("\n".join(text))
        if fail_on_change:
            failures += 1
            ET.SubElement(
                case, "failure", message=safe_text(text[0], one_line=True), type="changed"
            ).text = body
        else:
            ET.SubElement(case, "system-out").text = body
    if review.old.errors:
        case = ET.SubElement(
            suite, "testcase", classname="citykpi.diff", name=safe_text(review.label, one_line=True)
        )
        ET.SubElement(case, "system-out").text = safe_text(
            "\n".join(
                [f"the catalogue at {review.label} has errors: no definition diff"]
                + [str(d) for d in review.old.errors]
            )
        )
    tests = len(suite)
    suite.set("tests", str(tests))
    suite.set("failures", str(failures))
    suite.set("errors", "0")
    root.set("tests", str(int(root.get("tests", "0")) + tests))
    root.set("failures", str(int(root.get("failures", "0")) + failures))
    ET.indent(root, space="  ")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
