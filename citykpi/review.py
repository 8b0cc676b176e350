"""The review of a catalogue change (``citykpi check PATH --against REV [--db FILE]``).

One call, :func:`review_catalogue`: the usual check of PATH; the old catalogue (another folder, or PATH
at a git revision, :mod:`citykpi.catalogue.revision`) checked the same way; their definition diff
(:mod:`citykpi.catalogue.diff`); and, with a warehouse, the statuses the change would alter
(:mod:`citykpi.engine.recolour`), evaluated without recording a run on a database opened read-only.

Both catalogues are read with ``check_catalogue``, which never uses the catalogue cache, so a revision
copied to a temporary folder neither reads nor leaves cache entries (their content hashes differ when
their files do, and agree when they are the same catalogue).

When the old catalogue has errors there is nothing sound to compare with: the review says so (its errors
are in :attr:`Review.old`) and shows no diff, and the exit code still follows the new catalogue alone —
a pull request that repairs a broken catalogue must be able to pass.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime
from pathlib import Path

from citykpi.catalogue.diff import CatalogueDiff, EntityChange, diff_catalogues
from citykpi.catalogue.loader import CheckResult, check_catalogue
from citykpi.catalogue.revision import OldCatalogue, old_catalogue
from citykpi.engine.recolour import ColourChanges, colour_changes
from citykpi.errors import Location


@dataclass(frozen=True)
class Review:
    """What ``check --against`` found: both checks, the definition diff and the colour changes."""

    check: CheckResult  # the new catalogue (PATH)
    old: CheckResult  # the catalogue compared against, file names as a reader knows them
    label: str  # how the old catalogue is named: "main:indicators" or a folder
    revision: str | None  # the commit, when --against was a git revision
    definitions: CatalogueDiff | None  # None when either catalogue has errors
    colours: ColourChanges | None  # None without a warehouse, or when a catalogue has errors

    @property
    def changed(self) -> bool:
        """True when a definition or a status differs."""
        return bool(
            (self.definitions is not None and not self.definitions.empty)
            or (self.colours is not None and not self.colours.empty)
        )


def _relabel(loc: Location | None, old: OldCatalogue) -> Location | None:
    return replace(loc, file=old.display(loc.file)) if loc is not None else None


def _old_result(result: CheckResult, old: OldCatalogue) -> CheckResult:
    """The old check with its file names as a reader knows them (not the temporary folder)."""
    diagnostics = tuple(
        replace(d, location=_relabel(d.location, old) or d.location) for d in result.diagnostics
    )
    return replace(
        result, diagnostics=diagnostics, files=tuple(old.display(f) for f in result.files), catalogue=None
    )


def _relabel_diff(diff: CatalogueDiff, old: OldCatalogue) -> CatalogueDiff:
    changes: list[EntityChange] = [
        replace(c, old_location=_relabel(c.old_location, old)) for c in diff.changes
    ]
    return replace(diff, changes=tuple(changes))


def review_catalogue(
    path: str | Path,
    against: str,
    *,
    db: str | Path | None = None,
    as_of: date | None = None,
    grain: str = "day",
    wait: float = 0.0,
    at: datetime | None = None,
) -> Review:
    """Check the catalogue at ``path`` and compare it with ``against``.

    Args:
        path: the catalogue folder or file (the new side).
        against: another catalogue folder or file, or a git revision of the repository holding ``path``.
        db: a warehouse to evaluate both catalogues on (read-only; no run is recorded).
        as_of: the evaluation date; default the newest observation.
        grain: 15min, hour, day, week, month, quarter or year.
        wait: seconds to wait for a database another process is writing.
        at: an instant instead of ``as_of`` (naive city time).

    Returns:
        A :class:`Review`.

    Raises:
        UsageError: ``against`` is neither a folder nor a revision (exit 2).
        CatalogueError: ``path`` does not exist, git is missing, or the catalogue is absent at the
            revision (exit 3).
        WarehouseError: the database cannot be opened (exit 3).
    """
    from citykpi.warehouse.connection import Warehouse

    check = check_catalogue(path)
    with old_catalogue(path, against) as where:
        raw_old = check_catalogue(where.path)
    definitions: CatalogueDiff | None = None
    colours: ColourChanges | None = None
    if raw_old.catalogue is not None and check.catalogue is not None:
        definitions = _relabel_diff(diff_catalogues(raw_old.catalogue, check.catalogue), where)
        if db is not None:
            with Warehouse.open(db, read_only=True, create=False, wait=wait) as wh:
                colours = colour_changes(
                    wh, raw_old.catalogue, check.catalogue, as_of=as_of, grain=grain, at=at
                )
    return Review(
        check=check,
        old=_old_result(raw_old, where),
        label=where.label,
        revision=where.revision,
        definitions=definitions,
        colours=colours,
    )


__all__ = ["Review", "review_catalogue"]
