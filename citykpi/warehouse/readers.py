"""Reading untrusted data files through DuckDB: CSV (sniffed, UTF-8/BOM/GB18030) and Parquet.

A CSV is opened as text (``all_varchar``), so a bad cell can become a reject with its row number
instead of a failed load. Because parsing text twice dominates the cost of a clean file,
:func:`typed_csv` can also read it with DuckDB's typed reader (same dialect, explicit column
types); that read refuses the whole file at the first cell it cannot convert, and the caller then
falls back to the text path. Parquet keeps its own types and is cast only where needed.
Nothing here loads a whole file into Python: hashing and transcoding stream in chunks.
"""

from __future__ import annotations

import codecs
import contextlib
import hashlib
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from citykpi.backend import Connection, EngineError
from citykpi.errors import DataError, WarehouseError
from citykpi.sqlutil import ident, literal

CHUNK = 1 << 20
#: Options of the text read of a CSV; typed_csv sniffs with the same ones, so both split the file alike.
#: skip = 0: otherwise the sniffer may start the file at a wider (ragged) row and silently drop every
#: line above it.
_TEXT_READ = "all_varchar = true, sample_size = 20480, null_padding = false, skip = 0"
PARQUET_SUFFIXES = (".parquet", ".pq")
CSV_SUFFIXES = (".csv", ".tsv", ".txt")
#: Name of the 1-based data-row column every reader adds.
ROW = "_row"


@dataclass(frozen=True)
class FileScan:
    """What one streaming pass over a file found: its sha256, size and (for text) encoding."""

    sha256: str
    size: int
    encoding: str | None  # 'utf-8', 'utf-8-sig', 'gb18030'; None for binary formats


@dataclass
class TableFile:
    """A data file opened as a DuckDB relation: ``sql`` is a subquery with ``_row`` and the file's columns."""

    path: Path
    kind: str  # 'csv' | 'parquet'
    sql: str
    columns: dict[str, str]  # file column -> DuckDB type (VARCHAR for every CSV column read as text)
    encoding: str | None = None
    temp_files: list[Path] = field(default_factory=list)
    #: The file DuckDB reads: ``path`` itself, or its UTF-8 copy when the original is GB18030.
    read_path: Path | None = None
    #: Read by :func:`typed_csv`: a cell that reached the table converted cleanly.
    typed: bool = False

    def cleanup(self) -> None:
        """Remove temporary transcoded copies."""
        for p in self.temp_files:
            with contextlib.suppress(OSError):
                p.unlink()
        self.temp_files.clear()


def file_kind(path: Path) -> str:
    """'parquet' or 'csv', from the suffix and, for unknown suffixes, the magic bytes."""
    suffix = path.suffix.lower()
    if suffix in PARQUET_SUFFIXES:
        return "parquet"
    if suffix in CSV_SUFFIXES:
        return "csv"
    with path.open("rb") as fh:
        head = fh.read(4)
    return "parquet" if head == b"PAR1" else "csv"


def _chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            yield chunk


def scan_file(path: Path, *, text: bool) -> FileScan:
    """Hash the file and, when ``text``, detect its encoding, in one streaming pass (plus one for GB18030)."""
    digest = hashlib.sha256()
    size = 0
    utf8 = codecs.getincrementaldecoder("utf-8")("strict")
    utf8_ok = text
    first = b""
    for chunk in _chunks(path):
        digest.update(chunk)
        if size == 0:
            first = chunk[:3]
        size += len(chunk)
        # An ASCII chunk is valid UTF-8 on its own (a fast C check), unless it has to complete a
        # character the previous chunk began: only then, or for other text, run the decoder.
        if utf8_ok and not (chunk.isascii() and not utf8.getstate()[0]):
            try:
                utf8.decode(chunk)
            except UnicodeDecodeError:
                utf8_ok = False
    if not text:
        return FileScan(digest.hexdigest(), size, None)
    if utf8_ok:
        try:
            utf8.decode(b"", final=True)
        except UnicodeDecodeError:
            utf8_ok = False
    if utf8_ok:
        return FileScan(digest.hexdigest(), size, "utf-8-sig" if first == codecs.BOM_UTF8 else "utf-8")
    bad = _gb18030_error(path)
    if bad is not None:
        raise DataError(
            f"{path}: text is neither UTF-8 nor GB18030/GBK (bad byte at offset {bad.start} of a chunk)",
            hint="re-save the file as UTF-8 (Excel: Save As → CSV UTF-8)",
        )
    return FileScan(digest.hexdigest(), size, "gb18030")


def _gb18030_error(path: Path) -> UnicodeDecodeError | None:
    """Why the file is not GB18030 text (the first bad byte), or None when it decodes."""
    gb = codecs.getincrementaldecoder("gb18030")("strict")
    try:
        for chunk in _chunks(path):
            gb.decode(chunk)
        gb.decode(b"", final=True)
    except UnicodeDecodeError as exc:
        return exc
    return None


def declared_encoding(path: Path, scan: FileScan, declared: str) -> FileScan:
    """The scan of a CSV whose encoding is declared (``utf-8`` or ``gb18030``) rather than detected.

    Raises:
        DataError: the file is not in the declared encoding.
    """
    if declared == "utf-8":
        if scan.encoding not in ("utf-8", "utf-8-sig"):
            raise DataError(
                f"{path}: the text is not UTF-8, as declared (it reads as {scan.encoding})",
                hint="re-save it as UTF-8, or declare encoding = gb18030 (or auto)",
            )
        return scan
    if scan.encoding == "utf-8-sig":
        raise DataError(
            f"{path}: the file starts with a UTF-8 byte-order mark, but GB18030 is declared",
            hint="declare encoding = utf-8 (or auto) for this file",
        )
    # valid UTF-8 bytes that are meant as GB18030: check they decode so
    bad = _gb18030_error(path) if scan.encoding == "utf-8" else None
    if bad is not None:
        raise DataError(
            f"{path}: the text is not GB18030, as declared (bad byte at offset {bad.start} of a chunk)",
            hint="declare encoding = utf-8 (or auto) for this file",
        )
    return FileScan(scan.sha256, scan.size, "gb18030")


def transcode_to_utf8(path: Path, encoding: str, directory: str | None = None) -> Path:
    """Stream ``path`` from ``encoding`` into a UTF-8 temp file and return its path (caller deletes it)."""
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    fd, name = tempfile.mkstemp(prefix="citykpi-", suffix=".csv", dir=directory)
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in _chunks(path):
                out.write(decoder.decode(chunk).encode("utf-8"))
            out.write(decoder.decode(b"", final=True).encode("utf-8"))
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    return Path(name)


def open_table(con: Connection, path: Path, scan: FileScan | None = None) -> TableFile:
    """Open a CSV or Parquet file as a relation with a 1-based ``_row`` column.

    Raises:
        DataError: empty, unreadable or malformed file.
    """
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: the file is empty")
    kind = file_kind(path)
    temp: list[Path] = []
    encoding: str | None = None
    if kind == "parquet":
        sql = (
            f"SELECT * EXCLUDE (file_row_number), file_row_number + 1 AS {ROW} "
            f"FROM read_parquet({literal(str(path))}, file_row_number = true)"
        )
    else:
        scan = scan or scan_file(path, text=True)
        encoding = scan.encoding
        target = path
        if encoding == "gb18030":
            try:
                target = transcode_to_utf8(path, "gb18030")
            except OSError as exc:  # the temporary folder is full or read-only: not the file's fault
                raise WarehouseError(
                    f"cannot write a temporary UTF-8 copy of {path} in {tempfile.gettempdir()}: "
                    f"{exc.strerror or exc}",
                    hint="free space in the temporary folder (or point TMPDIR elsewhere) and ingest again",
                ) from None
            temp.append(target)
        sql = (
            f"SELECT *, row_number() OVER () AS {ROW} "
            f"FROM read_csv({literal(str(target))}, auto_detect = true, {_TEXT_READ})"
        )
    table = TableFile(path, kind, sql, {}, encoding, temp, target if kind == "csv" else path)
    try:
        rows = con.execute(f"DESCRIBE {sql}").fetchall()
    except EngineError as exc:
        table.cleanup()
        raise DataError(f"{path}: cannot read the file as {kind.upper()}: {_first_line(exc)}") from None
    table.columns = {str(r[0]): str(r[1]) for r in rows if r[0] != ROW}
    if kind == "csv" and len(table.columns) == 1 and re.search(r"[,;\t|]", next(iter(table.columns))):
        table.cleanup()  # no delimiter fits every line: some rows have more or fewer fields than others
        raise DataError(
            f"{path}: rows have different numbers of fields (a ragged or truncated line), so the columns "
            "cannot be told apart",
            hint="fix the file so that every line has as many fields as the header",
        )
    return table


#: What ``sniff_csv`` shows for an option it found no character for.
_SNIFF_EMPTY = "(empty)"


def typed_csv(
    con: Connection,
    table: TableFile,
    types: dict[str, str],
    name: str,
    timestamp_format: str | None = None,
) -> TableFile | None:
    """Read the CSV behind ``table`` with DuckDB's typed reader into temp table ``name``.

    The dialect (delimiter, quote, escape, newline, comment, header, skipped rows) is the one the
    sniffer finds for the text read, passed explicitly, so both reads split the file identically;
    ``types`` gives a type for some columns (the rest stay VARCHAR) and only those columns are
    kept. Rows keep the file's order (``rowid + 1`` is the data row, as ``_row`` is for the text
    read). A typed cell converts exactly as ``TRY_CAST`` of its text would (TIMESTAMP cells as
    ``try_strptime`` with ``timestamp_format`` when one is given), or the read fails.

    Returns:
        The typed table (``sql`` selects ``_row`` and the typed columns), or None when DuckDB
        refused the file (a cell it cannot convert, a ragged line): read it as text instead.
        Nothing is left behind on None.
    """
    if table.kind != "csv" or table.read_path is None or not types or not set(types) <= set(table.columns):
        return None
    source = literal(str(table.read_path))
    try:
        sniffed = con.execute(
            "SELECT Delimiter, Quote, Escape, NewLineDelimiter, Comment, SkipRows, HasHeader, "
            "list_transform(Columns, lambda c: c.name) "
            f"FROM sniff_csv({source}, {_TEXT_READ})"
        ).fetchall()
        if not sniffed:
            return None
        delim, quote, escape, newline, comment, skip, header, names = sniffed[0]
        if list(names) != list(table.columns):
            return None  # the text read saw other columns: do not guess which is which

        def opt(value: object) -> str:
            return literal("" if value == _SNIFF_EMPTY else str(value))

        columns = "{" + ", ".join(f"{literal(c)}: {literal(types.get(c, 'VARCHAR'))}" for c in names) + "}"
        reader = (
            f"read_csv({source}, auto_detect = false, delim = {opt(delim)}, quote = {opt(quote)}, "
            f"escape = {opt(escape)}, new_line = {opt(newline)}, comment = {opt(comment)}, "
            f"header = {literal(bool(header))}, skip = {int(skip)}, null_padding = false, "
            + (f"timestampformat = {literal(timestamp_format)}, " if timestamp_format else "")
            + f"columns = {columns})"
        )
        keep = ", ".join(ident(c) for c in names if c in types)
        con.execute(f"CREATE OR REPLACE TEMP TABLE {ident(name)} AS SELECT {keep} FROM {reader}")
    except (EngineError, ValueError):
        with contextlib.suppress(EngineError):
            con.execute(f"DROP TABLE IF EXISTS {ident(name)}")
        return None
    return TableFile(
        table.path,
        "csv",
        f"SELECT *, rowid + 1 AS {ROW} FROM {ident(name)}",
        {c: types[c] for c in names if c in types},
        table.encoding,
        [],
        table.read_path,
        typed=True,
    )


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def normalise_name(name: str) -> str:
    """Column-name key for loose matching: 'Unique Key' -> 'unique_key', 'PM2.5' -> 'pm2_5'."""
    return re.sub(r"[^0-9a-z\u4e00-\u9fff]+", "_", name.strip().lower()).strip("_")


def find_column(columns: dict[str, str], wanted: str) -> str | None:
    """The file column matching ``wanted`` exactly, else loosely (case, spaces, punctuation)."""
    if wanted in columns:
        return wanted
    key = normalise_name(wanted)
    for col in columns:
        if normalise_name(col) == key:
            return col
    return None


#: How many column names, and how much of each, a message about a file's header quotes.
_QUOTED_COLUMNS = 12
_QUOTED_NAME = 40


def describe_columns(columns: dict[str, str], kind: str = "csv") -> str:
    """'the file has a, b, c' for a message about missing columns, without quoting a file's content.

    A text file's header is quoted only when the file split into two or more columns. A text read
    as one column is most likely no data file at all (a note, a password file behind a symlink),
    and its one "name" is then its whole first line: that is never echoed. Parquet column names
    come from the file's schema and are always listed. Long names are cut, at most a dozen shown.
    """
    if kind == "csv" and len(columns) < 2:
        return "the file reads as a single column (no delimiter found: is it a data file?)"
    names = [n if len(n) <= _QUOTED_NAME else n[: _QUOTED_NAME - 1] + "…" for n in columns]
    more = f" and {len(names) - _QUOTED_COLUMNS} more" if len(names) > _QUOTED_COLUMNS else ""
    return f"the file has {', '.join(names[:_QUOTED_COLUMNS])}{more}"


def is_text_type(duck_type: str) -> bool:
    """True for VARCHAR-like DuckDB types."""
    return duck_type.upper() in ("VARCHAR", "TEXT", "STRING") or duck_type.upper().startswith("VARCHAR")


def is_numeric_type(duck_type: str) -> bool:
    """True for integer, decimal and floating DuckDB types."""
    t = duck_type.upper()
    return t in {
        "TINYINT",
        "SMALLINT",
        "INTEGER",
        "BIGINT",
        "HUGEINT",
        "UTINYINT",
        "USMALLINT",
        "UINTEGER",
        "UBIGINT",
        "UHUGEINT",
        "FLOAT",
        "DOUBLE",
        "REAL",
    } or t.startswith("DECIMAL")


def is_temporal_type(duck_type: str) -> bool:
    """True for DATE and TIMESTAMP types."""
    t = duck_type.upper()
    return t == "DATE" or t.startswith("TIMESTAMP")
