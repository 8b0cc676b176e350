"""``citykpi ingest --feed ID|auto``: read files with a catalogue feed's declared mapping.

A feed (``feeds:`` in the catalogue) carries what ``--map``, ``--set``, ``--missing``, ``--dim`` and
``--date-format`` would say, plus ``recode``. Options given on the command line win over the feed's;
``--feed auto`` picks each file's feed by the feeds' ``files`` globs (the first feed, in catalogue
order, whose glob matches the file's name).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path

from citykpi.catalogue.model import Catalogue, Feed
from citykpi.errors import UsageError
from citykpi.warehouse.connection import Warehouse
from citykpi.warehouse.ingest.files import ingest
from citykpi.warehouse.ingest.options import (
    FileResult,
    IngestOptions,
    IngestReport,
    Progress,
    expand_paths,
)

#: ``--feed auto``: choose each file's feed by the feeds' ``files`` globs.
AUTO = "auto"


def feed_by_id(catalogue: Catalogue, feed_id: str) -> Feed:
    """The catalogue's feed ``feed_id`` (a usage error naming the feeds when there is none)."""
    for feed in catalogue.feeds:
        if feed.id == feed_id:
            return feed
    known = ", ".join(f.id for f in catalogue.feeds) or "none declared"
    raise UsageError(f"unknown feed {feed_id!r}; the catalogue declares: {known}", hint="or pass --feed auto")


def _recode(feed: Feed) -> dict[str, dict[str, dict[str, str]]]:
    """The feed's recodes with a plain target (``value: id``) spelt out as the field its column maps to."""
    out: dict[str, dict[str, dict[str, str]]] = {}
    for column, table in feed.recode.items():
        fields = [f for f, c in feed.columns.items() if c == column]
        values: dict[str, dict[str, str]] = {}
        for value, sets in table.items():
            spelt: dict[str, str] = {}
            for name, text in sets.items():
                if name == "":
                    for f in fields:
                        spelt[f] = text
                else:
                    spelt[name] = text
            values[value] = spelt
        out[column] = values
    return out


def options_for_feed(feed: Feed, given: IngestOptions, explicit: Iterable[str] = ()) -> IngestOptions:
    """The options that read ``feed``'s files: the feed's declarations, then what was given.

    Args:
        feed: the catalogue feed.
        given: the options of the call; their mappings are merged over the feed's (the call wins).
        explicit: names of the scalar options the caller set itself (``fmt``, ``source``), which win.
    """
    wide = dict(feed.wide)
    mapping: dict[str, str] = dict(feed.columns)
    merged = replace(
        given,
        fmt=given.fmt if "fmt" in explicit else feed.format,  # type: ignore[arg-type]
        source=given.source if "source" in explicit else feed.source,
        mapping={**mapping, **given.mapping},
        wide={**wide, **given.wide},
        date_formats={**feed.date_formats, **given.date_formats},
        constants={**feed.constants, **given.constants},
        missing=tuple(dict.fromkeys((*feed.missing, *given.missing))),
        dimensions={**feed.dimensions, **given.dimensions},
        recode={**_recode(feed), **given.recode},
        feed=feed.id,
    )
    return merged


def matching_feed(catalogue: Catalogue, path: Path) -> Feed | None:
    """The first feed whose ``files`` globs match ``path``'s name (or its path), else None."""
    for feed in catalogue.feeds:
        for pattern in feed.files:
            if fnmatch.fnmatchcase(path.name, pattern) or fnmatch.fnmatchcase(path.as_posix(), pattern):
                return feed
    return None


def ingest_feed(
    wh: Warehouse,
    catalogue: Catalogue,
    paths: Iterable[str | Path],
    feed_id: str,
    options: IngestOptions | None = None,
    *,
    explicit: Iterable[str] = (),
    progress: Progress | None = None,
) -> IngestReport:
    """Ingest ``paths`` with a feed's mapping, or with each file's own feed (``feed_id`` ``auto``).

    Returns:
        One report over every file, in the order the paths name them. With ``auto``, a file whose
        name no feed's ``files`` matches is reported rejected (nothing read), with what to do.

    Raises:
        UsageError: an unknown feed, or no files.
    """
    options = options or IngestOptions()
    files = expand_paths(paths)
    if not files:
        raise UsageError("no data files to ingest", hint="pass files, folders or globs")
    explicit = tuple(explicit)
    if feed_id != AUTO:
        feed = feed_by_id(catalogue, feed_id)
        return ingest(wh, catalogue, files, options_for_feed(feed, options, explicit), progress)
    results: dict[Path, FileResult] = {}
    groups: dict[str, list[Path]] = {}
    feeds: Mapping[str, Feed] = {f.id: f for f in catalogue.feeds}
    for path in files:
        found = matching_feed(catalogue, path)
        if found is None:
            results[path] = FileResult(
                str(path),
                "",
                "rejected",
                message=f"no feed's files match {path.name}; add it to a feed's files: or pass --feed ID",
            )
        else:
            groups.setdefault(found.id, []).append(path)
    for fid, group in groups.items():
        report = ingest(wh, catalogue, group, options_for_feed(feeds[fid], options, explicit), progress)
        for path, result in zip(group, report.files, strict=True):
            results[path] = result
    return IngestReport(tuple(results[p] for p in files), dry_run=options.dry_run)
