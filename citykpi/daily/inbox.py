"""Inbox folders of the daily job: which files are ready, which wait, which are not data.

An inbox is read like ``citykpi ingest`` reads files (format, column mapping, date formats,
encoding), with a file-name pattern on top. Each run looks at the regular files directly in the
folder (never in ``done/`` or ``rejected/``, never through a symbolic link) and sorts them:

- *ready*: the name matches the pattern and the file stood still between two looks ``settle``
  seconds apart;
- *waiting* (left for the next run): a temporary name (``x.csv.part``, ``x.csv.tmp``, ``~x.csv``…),
  or a file whose size or modification time changed between the two looks (still being copied);
- *ignored* (with a note): a name that does not match the pattern (``notes.txt``, ``README``), or a
  FIFO, device or socket.

Hidden files (``.name``) are skipped without a note. A processed file is moved to ``done/`` or
``rejected/`` by one ``rename`` in the same file system, so it is in exactly one place at any
moment, even if the job is killed.
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
import stat
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from citykpi.warehouse.ingest import IngestOptions

#: File names an inbox reads unless ``pattern`` says otherwise (``.txt`` is left out: notes).
DEFAULT_PATTERNS: tuple[str, ...] = ("*.csv", "*.tsv", "*.parquet", "*.pq")
#: Names of files still being written by common tools (curl, rsync, browsers, WinSCP, editors).
TEMPORARY_PATTERNS: tuple[str, ...] = (
    "*.part",
    "*.partial",
    "*.tmp",
    "*.temp",
    "*.crdownload",
    "*.download",
    "*.filepart",
    "*.swp",
    "~*",
)
#: Sub-folders a run moves processed files to.
DONE, REJECTED = "done", "rejected"


@dataclass(frozen=True)
class Inbox:
    """A folder of data files and how to read them (the options of ``citykpi ingest``)."""

    path: Path
    format: str = "long"
    source: str | None = None
    on_duplicate: str = "reject"
    strict: bool = False
    mapping: Mapping[str, str] = field(default_factory=dict)
    wide: Mapping[str, str] = field(default_factory=dict)
    date_formats: Mapping[str, str] = field(default_factory=dict)
    encoding: str = "auto"
    patterns: tuple[str, ...] = DEFAULT_PATTERNS

    def options(self) -> IngestOptions:
        """The ingest options of this inbox's files."""
        return IngestOptions(
            fmt=self.format,  # type: ignore[arg-type]  # checked when the config is read
            source=self.source,
            mapping=self.mapping,
            wide=self.wide,
            on_duplicate=self.on_duplicate,  # type: ignore[arg-type]
            strict=self.strict,
            date_formats=self.date_formats,
            encoding=self.encoding,
        )

    def matches(self, name: str) -> bool:
        """True when a file name matches one of the inbox's patterns (case-insensitive)."""
        return any(fnmatch.fnmatchcase(name.lower(), p.lower()) for p in self.patterns)


@dataclass(frozen=True)
class InboxScan:
    """What one look at an inbox found."""

    inbox: Inbox
    ready: tuple[Path, ...] = ()
    waiting: tuple[tuple[Path, str], ...] = ()  # left for the next run, and why
    ignored: tuple[tuple[Path, str], ...] = ()  # not data for this inbox, and why
    links: tuple[Path, ...] = ()  # symbolic links, never followed


def is_temporary(name: str) -> bool:
    """True for the name of a file another program is still writing (``x.csv.part``, ``~x.csv``)."""
    lower = name.lower()
    return any(fnmatch.fnmatchcase(lower, p) for p in TEMPORARY_PATTERNS)


def _look(paths: list[Path]) -> dict[Path, tuple[int, int] | None]:
    out: dict[Path, tuple[int, int] | None] = {}
    for p in paths:
        try:
            st = p.lstat()
            out[p] = (st.st_size, st.st_mtime_ns)
        except OSError:
            out[p] = None
    return out


def scan_inbox(
    inbox: Inbox, *, settle: float = 0.0, sleep: Callable[[float], None] = time.sleep
) -> InboxScan:
    """Sort the files directly in ``inbox.path`` into ready, waiting and ignored (see the module).

    ``settle``: seconds between the two looks at the candidates' sizes (0: one look; the file's
    name alone tells whether it is still being written).

    Raises:
        FileNotFoundError / NotADirectoryError: the inbox folder is missing (the caller says what to do).
    """
    if not inbox.path.is_dir():
        raise NotADirectoryError(str(inbox.path))
    candidates: list[Path] = []
    waiting: list[tuple[Path, str]] = []
    ignored: list[tuple[Path, str]] = []
    links: list[Path] = []
    for entry in sorted(inbox.path.iterdir()):
        name = entry.name
        if name.startswith("."):
            continue
        try:
            mode = entry.lstat().st_mode
        except OSError:  # gone since the listing
            continue
        if stat.S_ISDIR(mode):
            continue
        if stat.S_ISLNK(mode):
            if inbox.matches(name) or is_temporary(name):
                links.append(entry)
            continue
        if not stat.S_ISREG(mode):
            ignored.append((entry, "not a regular file (a FIFO, device or socket)"))
        elif is_temporary(name):
            waiting.append((entry, "a temporary name: another program is still writing it"))
        elif not inbox.matches(name):
            ignored.append(
                (entry, f"its name does not match the inbox's pattern {', '.join(inbox.patterns)}")
            )
        else:
            candidates.append(entry)
    ready = candidates
    if candidates and settle > 0:
        first = _look(candidates)
        sleep(settle)
        second = _look(candidates)
        ready = []
        for p in candidates:
            if first[p] is None or second[p] is None:
                continue  # gone: nothing to read
            if first[p] != second[p]:
                waiting.append((p, f"still being written: its size or time changed within {settle:g} s"))
            else:
                ready.append(p)
    return InboxScan(inbox, tuple(ready), tuple(waiting), tuple(ignored), tuple(links))


def archive(path: Path, folder: Path) -> Path:
    """Move ``path`` into ``folder`` (created) by one rename, never over an earlier file of that name.

    Raises:
        OSError: the folder cannot be created or the file moved (a read-only inbox).
    """
    folder.mkdir(exist_ok=True)
    target = folder / path.name
    n = 1
    while os.path.lexists(target):
        target = folder / f"{path.stem}.{n}{path.suffix}"
        n += 1
    os.rename(path, target)  # atomic: the file is in the inbox or in the folder, never both or neither
    for d in (folder, path.parent):  # make the move durable
        with contextlib.suppress(OSError):
            fd = os.open(d, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
    return target
