"""Where an export may be written: the one rule behind every ``--output`` and every report of ``run``.

:func:`check_output_target` is called before anything is computed or written. It refuses, with a
one-line message naming the path and the reason:

1. an empty path (``--output ""``);
2. a protected file: the database, its ``.wal`` and ``.lock``, a catalogue file (or a new YAML file
   inside the catalogue folder, which would join the catalogue), an input file of the same command.
   Files are compared by resolved path and by ``(st_dev, st_ino)``, so ``./x/../w.duckdb``, a symlink
   and a hard link to a protected file are all caught;
3. a symbolic link (name the real file instead: the rename would replace the link, not its target);
4. anything but a regular file: a folder, a character or block device, a FIFO, a socket;
5. a DuckDB database, even with ``--force``;
6. an existing, non-empty regular file that is not a previous export of the same kind, unless
   ``force``. A previous export is recognised by its name ending in the kind's extension
   (:data:`EXTENSIONS`) and by a sniff of its first 64 KiB: Parquet starts with ``PAR1``, xlsx with
   the zip header ``PK\\x03\\x04``; every text kind is UTF-8 without NUL bytes, JSON starts with
   ``{`` or ``[``, JSONL with ``{``, HTML and JUnit XML with ``<``; a CSV export's first line is a
   header of snake_case column names, one of them an ``…_id`` (``indicator_id``, ``area_id``,
   ``run_id``…), so a hand-written table such as an areas file is not taken for one.

``-`` (stdout) never reaches this module: the ``--output`` option turns it into "no file".
"""

from __future__ import annotations

import codecs
import os
import re
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from citykpi.errors import UsageError

#: File names each kind of export may have, for "a previous export of the same kind".
EXTENSIONS: dict[str, tuple[str, ...]] = {
    "csv": (".csv",),
    "parquet": (".parquet", ".pq"),
    "json": (".json",),
    "jsonl": (".jsonl", ".ndjson"),
    "markdown": (".md", ".markdown"),
    "md": (".md", ".markdown"),
    "html": (".html", ".htm"),
    "xlsx": (".xlsx",),
    "junit": (".xml",),
    "text": (".txt", ".log"),
    "github": (".txt", ".log"),
}
#: First bytes of the binary kinds.
_MAGIC: dict[str, bytes] = {"parquet": b"PAR1", "xlsx": b"PK\x03\x04"}
#: What a text kind starts with (after a BOM and white space); absent: any text.
_TEXT_START: dict[str, tuple[str, ...]] = {
    "json": ("{", "["),
    "jsonl": ("{",),
    "html": ("<",),
    "junit": ("<",),
}
#: The header line of every CSV citykpi writes: snake_case names, at least two.
_CSV_HEADER = re.compile(r"[a-z][a-z0-9_]*(,[a-z][a-z0-9_]*)+")
_SNIFF_BYTES = 64 * 1024
#: ``Protected.suffixes`` for a folder every file of which is an input.
_ANY_SUFFIX = ("*",)
#: A catalogue is read from these files of its folder.
CATALOGUE_SUFFIXES = (".yaml", ".yml")


class OutputTargetError(UsageError):
    """An output path that may not be written (exit 2): protected, not a regular file, or foreign."""


#: What to do when the output names a file citykpi reads (the database, the catalogue, an input).
_PROTECTED_HINT = "name another file for the output: an export never replaces what citykpi reads"


@dataclass(frozen=True)
class Protected:
    """A file no export may replace, or a folder whose files with ``suffixes`` are read as input.

    Attributes:
        path: the file or folder.
        what: how the message names it ("the database", "a catalogue file", …).
        suffixes: for a folder: a target inside it (at any depth) with one of these suffixes is
            refused, existing or not (a new YAML file in the catalogue folder joins the catalogue).
    """

    path: Path
    what: str
    suffixes: tuple[str, ...] = ()


def protected_files(
    *,
    database: Path | None = None,
    catalogues: Iterable[Path] = (),
    inputs: Iterable[Path] = (),
    input_folders: Iterable[tuple[Path, tuple[str, ...]]] = (),
) -> tuple[Protected, ...]:
    """The files a command's exports may never replace.

    Args:
        database: the warehouse file; its ``.wal`` and ``.lock`` are protected with it.
        catalogues: catalogue files or folders (a folder's YAML files at any depth).
        inputs: other files (or folders) the command reads, e.g. the areas file of ``run``.
        input_folders: folders whose files with the given suffixes the command reads (inboxes).
    """
    out: list[Protected] = []
    if database is not None:
        out += [
            Protected(database, "the database"),
            Protected(database.with_name(database.name + ".wal"), "the database's write-ahead log"),
            Protected(database.with_name(database.name + ".lock"), "the database's lock file"),
        ]
    for catalogue in catalogues:
        if catalogue.is_dir():
            out.append(
                Protected(catalogue, "the catalogue folder, whose YAML files are read", CATALOGUE_SUFFIXES)
            )
        else:
            out.append(Protected(catalogue, "the catalogue file"))
    for path in inputs:
        if path.is_dir():
            out.append(Protected(path, "an input folder of this command", _ANY_SUFFIX))
        else:
            out.append(Protected(path, "an input file of this command"))
    out += [
        Protected(folder, "an input folder of this command", suffixes) for folder, suffixes in input_folders
    ]
    return tuple(out)


def _files_under(folder: Path, suffixes: tuple[str, ...]) -> Iterable[Path]:
    """Files under ``folder`` with one of ``suffixes`` (``*``: any), hidden folders skipped as the
    catalogue loader skips them."""
    for root, dirs, names in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in names:
            if "*" in suffixes or Path(name).suffix.lower() in suffixes:
                yield Path(root) / name


def check_output_target(
    path: Path | str, *, protected: Sequence[Protected] = (), force: bool = False, kind: str
) -> None:
    """Refuse an output path that may not be written (see the module docstring for the rules).

    Args:
        path: the destination, as given.
        protected: from :func:`protected_files`.
        force: replace an existing regular file that is not a previous export of ``kind``.
        kind: the format written (a key of :data:`EXTENSIONS`).

    Raises:
        OutputTargetError: one line naming the path and the reason.
    """
    text = os.fspath(path)
    if text == "":
        raise OutputTargetError("--output is empty; name a file, or - for stdout")
    target = Path(text)
    try:
        st: os.stat_result | None = os.lstat(target)
    except FileNotFoundError:
        st = None
    except NotADirectoryError:
        raise OutputTargetError(f"cannot write {target}: a folder on its path is a file") from None
    except OSError as exc:
        raise OutputTargetError(f"cannot write {target}: {exc.strerror or exc}") from None
    refuse_protected(target, protected)
    if st is None:
        return
    problem = not_a_regular_file(st)
    if problem is not None:
        raise OutputTargetError(f"will not write {target}: {problem}")
    head = _head(target)
    if head[8:12] == b"DUCK":
        raise OutputTargetError(f"will not write {target}: it is a DuckDB database", hint=_PROTECTED_HINT)
    if st.st_size == 0 or force:
        return
    if not is_previous_export(target, kind, head):
        names = " or ".join(f"*{ext}" for ext in EXTENSIONS.get(kind, ()))
        raise OutputTargetError(
            f"will not replace {target}: it exists and is not a previous {kind} export "
            f"({names or 'no file name'} with {kind} content); pass --force to replace it"
        )


def not_a_regular_file(st: os.stat_result) -> str | None:
    """Why a file of this ``lstat`` may not be replaced by an export; None for a regular file."""
    mode = st.st_mode
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISLNK(mode):
        return "it is a symbolic link; name the real file instead"
    if stat.S_ISDIR(mode):
        return "it is a folder; name a file in it"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "it is a device; only regular files are written (or - for stdout)"
    if stat.S_ISFIFO(mode):
        return "it is a named pipe (FIFO); only regular files are written (or - for stdout)"
    if stat.S_ISSOCK(mode):
        return "it is a socket; only regular files are written"
    return "it is not a regular file"


def is_previous_export(path: Path, kind: str, head: bytes | None = None) -> bool:
    """True when ``path`` looks like an export of ``kind``: its extension and its first bytes."""
    if path.suffix.lower() not in EXTENSIONS.get(kind, ()):
        return False
    head = _head(path) if head is None else head
    if kind in _MAGIC:
        return head.startswith(_MAGIC[kind])
    if b"\0" in head:
        return False
    try:  # a multi-byte character cut at the end of the sniff is fine
        text = codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return False
    starts = _TEXT_START.get(kind)
    text = text.lstrip("\ufeff \t\r\n")
    if kind == "csv" and text:
        header = text.splitlines()[0]
        return bool(_CSV_HEADER.fullmatch(header)) and any(c.endswith("_id") for c in header.split(","))
    return starts is None or not text or text.startswith(starts)


def _head(path: Path) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read(_SNIFF_BYTES)
    except OSError as exc:
        raise OutputTargetError(f"cannot read {path} to check it: {exc.strerror or exc}") from None


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def refuse_protected(target: Path, protected: Sequence[Protected]) -> None:
    """Rule 2 alone: refuse a target that is (or would land among) the protected files."""
    real = Path(os.path.realpath(target))
    try:
        st: os.stat_result | None = os.stat(target)
    except OSError:
        st = None
    ident = None if st is None else (st.st_dev, st.st_ino)
    # another name for the same file (a hard link) exists only when the file has more than one link
    linked = st is not None and st.st_nlink > 1
    for p in protected:
        p_real = Path(os.path.realpath(p.path))
        if p.suffixes:  # a folder whose files (with these suffixes) are read
            inside = real != p_real and real.is_relative_to(p_real)
            if inside and ("*" in p.suffixes or real.suffix.lower() in p.suffixes):
                raise OutputTargetError(
                    f"will not write {target}: it is in {p.path}, {p.what}", hint=_PROTECTED_HINT
                )
            if linked and p_real.is_dir():
                for f in _files_under(p_real, p.suffixes):
                    if _identity(f) == ident:
                        raise OutputTargetError(
                            f"will not write {target}: it is a hard link to {f}, in {p.path}, {p.what}",
                            hint=_PROTECTED_HINT,
                        )
            continue
        if real == p_real or (linked and ident == _identity(p.path)):
            named = "" if os.path.normpath(target) == os.path.normpath(p.path) else f" ({p.path})"
            raise OutputTargetError(f"will not write {target}: it is {p.what}{named}", hint=_PROTECTED_HINT)


__all__ = [
    "CATALOGUE_SUFFIXES",
    "EXTENSIONS",
    "OutputTargetError",
    "Protected",
    "check_output_target",
    "is_previous_export",
    "not_a_regular_file",
    "protected_files",
    "refuse_protected",
]
