"""One YAML document → a ``ParsedFile``: the file-level keys and the entity lists."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from citykpi.catalogue.parser.early import _domain, _incident
from citykpi.catalogue.parser.entities import _group, _index, _source
from citykpi.catalogue.parser.indicator import _indicator
from citykpi.catalogue.parser.quality import _feed, _rule
from citykpi.catalogue.parser.reader import FILE_KEYS, SCHEMA_VERSIONS, ParsedFile, _Reader
from citykpi.catalogue.yamlsafe import YMap
from citykpi.errors import Location


def parse_document(data: Any, file: str) -> ParsedFile:
    """Turn one loaded YAML document into model objects and diagnostics.

    Args:
        data: the document from :mod:`citykpi.catalogue.yamlsafe` (``None`` for an empty file).
        file: the file name used in locations.

    Returns:
        A :class:`ParsedFile`; it never raises for a bad document.
    """
    out = ParsedFile(file)
    r = _Reader(out)
    where = Location(file, 1, 1)
    if data is None:
        r.report("CK102", "the file is empty", where)
        return out
    doc = r.mapping(data, where, "a catalogue file")
    if doc is None:
        return out
    r.keys(doc, FILE_KEYS, (), "a catalogue file")
    if "schema_version" in doc:
        version = r.integer(doc, "schema_version", "the file", 1)
        if version not in SCHEMA_VERSIONS:
            r.report(
                "CK014",
                f"schema_version {version} is not supported (this citykpi reads {', '.join(map(str, SCHEMA_VERSIONS))})",
                doc.value_loc("schema_version"),
                "upgrade citykpi or write the file for schema_version 1",
            )
        else:
            out.schema_version = version
    sections: tuple[tuple[str, Callable[[_Reader, YMap], None]], ...] = (
        ("indicators", _indicator),
        ("indices", _index),
        ("groups", _group),
        ("sources", _source),
        ("feeds", _feed),
        ("consistency", _rule),
        ("domains", _domain),
        ("incidents", _incident),
    )
    found = False
    for key, parse_one in sections:
        if key not in doc or doc[key] is None:
            continue
        seq = r.sequence(doc[key], doc.value_loc(key), f"'{key}'")
        if seq is None:
            continue
        for i, item in enumerate(seq):
            found = True
            m = r.mapping(item, seq.item_loc(i), f"each entry of '{key}'")
            if m is not None:
                parse_one(r, m)
    if not found and not r.errors:
        r.report(
            "CK102",
            "the file defines no indicators, indices, groups, sources, feeds, consistency rules, domains or incidents",
            where,
        )
    return out
