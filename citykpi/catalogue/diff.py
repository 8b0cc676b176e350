"""The definition diff of two catalogues: entities added, removed and changed, field by field.

``citykpi check --against REV`` shows it so that a reviewer sees what a pull request does to the
definitions before it is merged. Both sides are validated :class:`~citykpi.catalogue.model.Catalogue`
objects; nothing is evaluated here (the colours that would change are ``citykpi.engine.recolour``).

Every entity (indicator, index, group, source, domain settings, incident) is flattened into *fields* named as a catalogue
author writes them in YAML — ``thresholds.red``, ``target.value``, ``value.formula``,
``value.inputs.gdp``, ``rollup.area``, ``thresholds.overrides[level=street].red``,
``components[env.air.aqi].weight``, ``scale[2].upto`` — and the two sides are compared field by field.
What is compared is the parsed meaning, not the text: reordering keys, changing comments, moving an
indicator to another file or spelling out a default changes nothing. An own scale implies the
indicator's cut points, so those are not repeated as ``thresholds.<colour>`` (the ``scale[i]`` fields
show the change).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from citykpi.catalogue import model
from citykpi.errors import Location

#: The kinds of catalogue entity, in the order a diff lists them.
ENTITIES: tuple[str, ...] = ("indicator", "index", "group", "source", "domain", "incident")
#: What happened to an entity.
CHANGE_KINDS: tuple[str, ...] = ("added", "removed", "changed")

#: A plain field value: what JSON can hold (dates and durations become text).
Plain = str | int | float | bool | list[Any] | None

# model attribute → YAML key, per model class (the rest are spelt alike)
_RENAMES: Mapping[tuple[type, str], str] = {
    (model.Observed, "scale"): "factor",
    (model.Ratio, "scale"): "factor",
    (model.Measure, "scale"): "factor",
    (model.Formula, "expression"): "formula",
    (model.FromSeries, "input"): "from",
}
_SKIP = frozenset({"loc", "id"})
_VALUES = (model.Observed, model.Ratio, model.Formula, model.Measure, model.FromSeries)


@dataclass(frozen=True, slots=True)
class FieldChange:
    """One field whose value differs: ``old`` → ``new`` (None where the field is absent on that side)."""

    field: str
    old: Plain
    new: Plain


@dataclass(frozen=True, slots=True)
class EntityChange:
    """An entity added, removed or changed; ``fields`` lists the differing fields of a change."""

    entity: str  # ENTITIES
    id: str
    change: str  # CHANGE_KINDS
    fields: tuple[FieldChange, ...] = ()
    old_location: Location | None = None
    new_location: Location | None = None

    @property
    def location(self) -> Location | None:
        """Where to point a reader: the entity in the new catalogue, or where it was when removed."""
        return self.new_location or self.old_location


@dataclass(frozen=True)
class CatalogueDiff:
    """Everything that differs between an old and a new catalogue, entity by entity (sorted)."""

    changes: tuple[EntityChange, ...]
    old_hash: str = ""
    new_hash: str = ""

    @property
    def empty(self) -> bool:
        """True when the two catalogues define the same entities in the same way."""
        return not self.changes

    def counts(self) -> dict[str, dict[str, int]]:
        """entity → {added, removed, changed} → how many."""
        out = {e: dict.fromkeys(CHANGE_KINDS, 0) for e in ENTITIES}
        for c in self.changes:
            out[c.entity][c.change] += 1
        return out

    def of(self, entity: str, change: str | None = None) -> tuple[EntityChange, ...]:
        """The changes of one kind of entity (and, optionally, of one kind of change)."""
        return tuple(c for c in self.changes if c.entity == entity and (change is None or c.change == change))


def _plain(value: Any) -> Plain:
    if isinstance(value, float) and value.is_integer():
        return int(value) if abs(value) < 2**53 else value
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return duration_text(value)
    if isinstance(value, model.Condition):
        return f"value {value.op} {_plain(value.value)}"
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise TypeError(f"no plain form for {type(value).__name__}")


def duration_text(value: timedelta) -> str:
    """A duration as the catalogue writes it: ``2d``, ``3h``, ``90m`` (whole units only)."""
    seconds = int(value.total_seconds())
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _item_key(item: Any, position: int) -> str:
    """The bracketed key of one member of a list of objects, stable across reorderings where possible."""
    if isinstance(item, model.Component):
        return item.ref
    if isinstance(item, model.Override):
        return f"area={item.area}" if item.area is not None else f"level={item.level}"
    return str(position)


def _bands(bands: model.BandSet, prefix: str, out: dict[str, Plain], *, cuts: bool = True) -> None:
    if cuts:
        for colour in model.COLOURS:
            if colour in bands.cuts:
                out[f"{prefix}.{colour}"] = _plain(bands.cuts[colour])
            if colour in bands.ranges:
                out[f"{prefix}.{colour}"] = _plain(list(bands.ranges[colour]))
        out[f"{prefix}.inclusive"] = bands.inclusive


def _flatten(obj: Any, prefix: str, out: dict[str, Plain]) -> None:
    if isinstance(obj, model.BandSet):
        _bands(obj, prefix, out)
        return
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        is_value = isinstance(obj, _VALUES)
        if isinstance(obj, _VALUES):
            out[prefix] = obj.kind  # the one key under `value:`
        for f in dataclasses.fields(obj):
            if f.name in _SKIP or not f.init or (is_value and f.name == "kind"):
                continue
            if f.name == "ref" and isinstance(obj, model.Component):
                continue  # already the component's key
            value = getattr(obj, f.name)
            name = _RENAMES.get((type(obj), f.name), f.name)
            # the bands of thresholds and overrides are written at their own level in YAML
            if f.name == "bands" and isinstance(obj, model.Thresholds | model.Override):
                _bands(value, prefix, out)
                continue
            if f.name in ("level", "area") and isinstance(obj, model.Override):
                continue  # already the override's key
            _flatten(value, f"{prefix}.{name}" if prefix else name, out)
        return
    if isinstance(obj, Mapping):
        if not obj:
            out[prefix] = None
        for key in sorted(obj):
            _flatten(obj[key], f"{prefix}.{key}", out)
        return
    if isinstance(obj, tuple | list) and not obj:
        return  # an empty list is the same as none: adding to it shows each new item against nothing
    if isinstance(obj, tuple | list) and all(dataclasses.is_dataclass(v) for v in obj):
        for position, item in enumerate(obj):
            _flatten(item, f"{prefix}[{_item_key(item, position)}]", out)
        return
    out[prefix] = _plain(obj)


def entity_fields(entity: Any) -> dict[str, Plain]:
    """An entity's fields, flattened and named as in YAML (``thresholds.red`` → 100, …).

    Args:
        entity: an Indicator, CompositeIndex, AreaGroup or SourceTable.

    Returns:
        field name → plain value (numbers, text, booleans, lists, None).
    """
    out: dict[str, Plain] = {}
    _flatten(entity, "", out)
    if isinstance(entity, model.Indicator) and entity.scale:
        # the own scale implies the cut points; its steps already show every change
        for colour in (*model.COLOURS, "inclusive"):
            out.pop(f"thresholds.{colour}", None)
    return out


def compare_fields(old: Mapping[str, Plain], new: Mapping[str, Plain]) -> tuple[FieldChange, ...]:
    """The fields that differ, in the order of the new entity's fields (then fields only the old has)."""
    names = list(new) + [n for n in old if n not in new]
    return tuple(FieldChange(n, old.get(n), new.get(n)) for n in names if not _same(old.get(n), new.get(n)))


def _same(a: Plain, b: Plain) -> bool:
    # 1 and 1.0 are the same number; True is not 1
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return a == b


def _entities(catalogue: model.Catalogue) -> Iterator[tuple[str, Sequence[Any]]]:
    yield "indicator", catalogue.indicators
    yield "index", catalogue.indices
    yield "group", catalogue.groups
    yield "source", catalogue.sources
    yield "feed", catalogue.feeds
    yield "rule", catalogue.consistency
    yield "domain", catalogue.domains
    yield "incident", catalogue.incidents


def diff_catalogues(old: model.Catalogue, new: model.Catalogue) -> CatalogueDiff:
    """Compare two validated catalogues entity by entity and field by field.

    Args:
        old: the catalogue before the change (e.g. at the pull request's base).
        new: the catalogue after it.

    Returns:
        A :class:`CatalogueDiff`: per kind of entity (indicators, indices, groups, sources), sorted by id,
        the entities added, removed and changed, each change with its fields old → new.
    """
    changes: list[EntityChange] = []
    for (entity, before), (_, after) in zip(_entities(old), _entities(new), strict=True):
        was = {e.id: e for e in before}
        now = {e.id: e for e in after}
        for ident in sorted(was.keys() | now.keys()):
            a, b = was.get(ident), now.get(ident)
            if a is None and b is not None:
                changes.append(EntityChange(entity, ident, "added", new_location=b.loc))
            elif b is None and a is not None:
                changes.append(EntityChange(entity, ident, "removed", old_location=a.loc))
            elif a is not None and b is not None:
                fields = compare_fields(entity_fields(a), entity_fields(b))
                if fields:
                    changes.append(
                        EntityChange(entity, ident, "changed", fields, old_location=a.loc, new_location=b.loc)
                    )
    return CatalogueDiff(changes=tuple(changes), old_hash=old.content_hash, new_hash=new.content_hash)
