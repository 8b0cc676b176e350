"""What one ``ingest`` call is asked to do and what it reports: formats, options, results, paths."""

from __future__ import annotations

import contextlib
import glob
import os
import re
import stat
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

from citykpi.errors import UsageError
from citykpi.warehouse import readers

Format = Literal["long", "wide", "source"]
DuplicatePolicy = Literal["reject", "replace", "keep", "resend"]
Progress = Callable[[str, int, int], None]

FORMATS: tuple[str, ...] = ("long", "wide", "source")
DUPLICATE_POLICIES: tuple[str, ...] = ("reject", "replace", "keep", "resend")
LONG_FIELDS: tuple[str, ...] = ("indicator_id", "area_id", "period", "value", "numerator", "denominator")
#: Other header names accepted for the long-format fields (matched loosely, see readers.normalise_name).
ALIASES: Mapping[str, tuple[str, ...]] = {
    "indicator_id": ("indicator", "indicator_code"),
    "area_id": ("area", "area_code"),
    "period": ("date", "time", "timestamp"),
    "value": ("val",),
}
#: Date/time formats tried (after ISO) for text periods and source timestamps without a declared format.
DEFAULT_DATE_FORMATS: tuple[str, ...] = (
    "%Y/%m/%d",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
    "%Y-%m-%d %H:%M",
    "%Y年%m月%d日",
    "%Y-%m",
    "%Y%m%d",
    "%Y",
)
DATA_SUFFIXES = readers.CSV_SUFFIXES + readers.PARQUET_SUFFIXES
#: ``--map area_id=country+city``: the field is the columns' values joined with :data:`KEY_SEPARATOR`.
COMPOSITE = "+"
KEY_SEPARATOR = "/"
#: A dimension's name (``--dim sex=Gender``, a feed's ``dimensions``).
DIMENSION_RE = re.compile(r"^[a-z][a-z0-9_]*$")
#: Missing-value tokens real tables use (Eurostat ``:``, ONS ``..``, ``-``, ``NA``, an empty cell).
COMMON_MISSING: tuple[str, ...] = (":", "..", "-", "NA", "")
#: Text encodings a CSV may be declared in (``--encoding``); ``auto`` tells UTF-8 from GB18030 itself.
ENCODINGS: tuple[str, ...] = ("auto", "utf-8", "gb18030")
#: Observations before this are refused: '0000-01-01', '0201-05-01' or '-infinity' are typos, not history.
EARLIEST_PERIOD = datetime(1900, 1, 1)


@dataclass(frozen=True)
class IngestOptions:
    """How to read and load the files of one ``ingest`` call.

    ``mapping``: for long format, field → file column (fields: indicator_id, area_id, period, value,
    numerator, denominator); for wide, area_id / period → file column; for sources, declared
    column → file column. ``wide``: file column → indicator id (wide format only; default: every
    column named like a catalogue indicator). ``date_formats``: column → strptime format, for the
    period (key ``period``) or a source's date/timestamp columns. ``now``: the cut-off for
    "period in the future" (default: the clock). ``encoding``: a CSV's declared text encoding
    (``auto``: UTF-8 or GB18030 as detected; ``utf-8`` refuses a file that is not; ``gb18030``
    reads it as GB18030 even when its bytes also happen to be valid UTF-8). The clock is read as the
    city's wall-clock time when the catalogue declares a time zone; a period may lie later than it by
    ``future_tolerance`` (a sensor's clock may run a little ahead). ``require_offset``: every time
    stamp of a realtime or hourly indicator must carry a UTC offset. ``on_duplicate`` ``resend``: a
    record identical to a stored one is skipped, one that differs from it is rejected (IN503) — for
    feeds that re-send their latest readings.
    """

    fmt: Format = "long"
    source: str | None = None
    mapping: Mapping[str, str] = field(default_factory=dict)
    wide: Mapping[str, str] = field(default_factory=dict)
    on_duplicate: DuplicatePolicy = "reject"
    strict: bool = False
    dry_run: bool = False
    force: bool = False
    date_formats: Mapping[str, str] = field(default_factory=dict)
    now: datetime | None = None
    encoding: str = "auto"
    #: Try DuckDB's typed CSV reader first (falls back to the text read whenever it cannot be used);
    #: off only to compare the two paths in tests.
    typed_csv: bool = True
    #: What real tables need (``--set``, ``--missing``, ``--dim``, a feed's ``recode``): field → constant
    #: text for every row; value cells that mean "no value" (recorded as missing, not rejected);
    #: dimension → file column (a disaggregated row, e.g. sex=female, is stored apart from the
    #: headline series); file column → its value → the fields that value stands for.
    constants: Mapping[str, str] = field(default_factory=dict)
    missing: tuple[str, ...] = ()
    dimensions: Mapping[str, str] = field(default_factory=dict)
    recode: Mapping[str, Mapping[str, Mapping[str, str]]] = field(default_factory=dict)
    #: The catalogue feed these options come from (``--feed``), recorded with each batch.
    feed: str | None = None
    #: Real-time feeds: how far past the clock a reading may lie, and whether a time stamp of a
    #: realtime or hourly indicator must carry a UTC offset.
    future_tolerance: timedelta = timedelta(minutes=5)
    require_offset: bool = False

    @property
    def shaped(self) -> bool:
        """True when rows are reshaped on the way in (constants, composite keys, recodes, dimensions,
        missing tokens): such files are read as text, never by the typed fast paths."""
        composite = any(COMPOSITE in v for v in self.mapping.values())
        return bool(self.constants or self.missing or self.dimensions or self.recode or composite)


@dataclass(frozen=True)
class FileResult:
    """What happened to one file. Counts are records: rows (long, source) or non-empty cells (wide)."""

    path: str
    sha256: str
    status: str  # loaded | unchanged | rejected | dry_run
    rows_read: int = 0
    rows_loaded: int = 0
    rows_rejected: int = 0
    rows_skipped: int = 0  # duplicates of stored data skipped (--on-duplicate keep)
    rows_replaced: int = 0  # stored rows superseded (--on-duplicate replace)
    batch_id: int | None = None
    target: str = ""
    rejects: Mapping[str, int] = field(default_factory=dict)  # reason -> count
    message: str = ""  # why a whole file was rejected, or which batch it matches when unchanged

    @property
    def has_rejects(self) -> bool:
        """True when the file was refused or some of its records were rejected."""
        return self.status == "rejected" or self.rows_rejected > 0


@dataclass(frozen=True)
class IngestReport:
    """Per-file results of one ``ingest`` call."""

    files: tuple[FileResult, ...]
    dry_run: bool = False

    @property
    def rows_loaded(self) -> int:
        """Records loaded over all files."""
        return sum(f.rows_loaded for f in self.files)

    @property
    def rows_rejected(self) -> int:
        """Records rejected over all files."""
        return sum(f.rows_rejected for f in self.files)

    @property
    def has_rejects(self) -> bool:
        """True when any record or whole file was rejected (the CLI exits 1)."""
        return any(f.has_rejects for f in self.files)

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready dict."""
        return {"dry_run": self.dry_run, "files": [asdict(f) for f in self.files]}


# --- options helpers ---------------------------------------------------------------------------------


def parse_map(
    pairs: Iterable[str], fmt: str, *, option: str = "--map", example: str = "area_id=district_code"
) -> tuple[dict[str, str], dict[str, str]]:
    """Split ``--map KEY=VALUE`` pairs into (mapping, wide mapping) for ``fmt``.

    long/source: FIELD=COLUMN. wide: area_id=COLUMN and period=COLUMN, every other pair is
    COLUMN=INDICATOR_ID. ``option`` and ``example`` name the option in errors (e.g. --date-format).
    """
    mapping: dict[str, str] = {}
    wide: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key or not value:
            raise UsageError(f"{option} {pair!r}: expected NAME=VALUE, e.g. {option} {example}")
        if fmt == "wide" and key not in ("area_id", "period"):
            wide[key] = value
        else:
            if fmt == "long" and key not in LONG_FIELDS:
                raise UsageError(
                    f"--map {pair!r}: unknown field {key!r}; use one of {', '.join(LONG_FIELDS)}"
                )
            mapping[key] = value
    return mapping, wide


def parse_set(pairs: Iterable[str], fmt: str) -> dict[str, str]:
    """``--set FIELD=VALUE`` pairs → field → constant text (long: one of the long fields; wide: area_id
    or period; source: a declared column, checked against the source later)."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(f"--set {pair!r}: expected FIELD=VALUE, e.g. --set period=2020")
        allowed = {"long": LONG_FIELDS, "wide": ("area_id", "period")}.get(fmt)
        if allowed is not None and key not in allowed:
            raise UsageError(f"--set {pair!r}: unknown field {key!r}; use one of {', '.join(allowed)}")
        out[key] = value.strip()
    return out


def expand_paths(paths: Iterable[str | Path]) -> list[Path]:
    """Files, directories (recursively: .csv .tsv .txt .parquet .pq) and globs, in a stable order.

    Symbolic links: a file named here (or matched by a glob) may be a link, and is read only if it
    leads to a regular file; a folder is scanned without following any link inside it, to a file or a
    folder. FIFOs, devices and sockets are never read (named: a usage error; in a folder: skipped).
    """
    out: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            out.extend(_folder_files(p))
        elif p.is_file():
            out.append(p)
        elif glob.has_magic(str(raw)):
            matched = sorted(Path(m) for m in glob.glob(str(raw), recursive=True) if Path(m).is_file())
            if not matched:
                raise UsageError(f"no files match {raw}")
            out.extend(matched)
        else:
            raise UsageError(f"{raw}: {_not_a_file(p)}")
    seen: set[Path] = set()
    unique = []
    for f in out:
        key = f.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(f)
    return unique


def _folder_files(folder: Path) -> list[Path]:
    """The regular data files under ``folder``, sorted, reached without following a symbolic link."""
    found: list[Path] = []
    for top, dirs, names in os.walk(folder, followlinks=False):
        dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(top, d))]
        for name in names:
            f = Path(top, name)
            if f.suffix.lower() not in DATA_SUFFIXES:
                continue
            with contextlib.suppress(OSError):  # gone since the listing: nothing to read
                if stat.S_ISREG(f.lstat().st_mode):
                    found.append(f)
    return sorted(found)


def _not_a_file(path: Path) -> str:
    """Why ``path`` (neither a regular file nor a folder) is not read: missing, or what it is."""
    try:
        mode = path.lstat().st_mode
    except OSError:
        return "no such file or directory"
    if stat.S_ISLNK(mode):
        try:
            mode = path.stat().st_mode
        except OSError:
            return "a symbolic link to a missing file"
        return f"a symbolic link to {_kind(mode)}, not to a regular file; ingest reads regular files only"
    return f"not a regular file ({_kind(mode)}); ingest reads regular files only"


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISDIR, "a folder"),
    ):
        if test(mode):
            return name
    return "a special file"
