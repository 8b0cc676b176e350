"""Scorecard exports: csv, parquet, json, jsonl, markdown, junit — written atomically (xlsx: render/xlsx.py).

The formats are registered (name, extension, text or binary, what they write) in
:mod:`citykpi.render.exporters`, which also dispatches ``render_text`` and ``write_scorecard``.

Every export is deterministic: rows in the canonical order (domain, indicator, level, area), no
timestamps or run ids inside the files (only the as-of date), so re-running a day gives
byte-identical files. Text that a spreadsheet could take for a formula (a cell starting with
``= + - @``, tab or CR) is prefixed with ``'`` in csv and xlsx; xlsx never contains formulas.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any

import polars as pl

from citykpi.catalogue.model import SEVERITY
from citykpi.engine.scorecard import CELL_SCHEMA, INDEX_SCHEMA, Scorecard
from citykpi.errors import ExportError, UsageError
from citykpi.render.format import (
    counts_line,
    domain_name,
    fmt_cell_value,
    fmt_change,
    fmt_number,
    fmt_percent,
    fmt_target,
    pick,
    sort_cells,
    sort_indices,
    status_text,
    word,
)
from citykpi.render.outlook import fmt_outlook, fmt_target_forecast
from citykpi.render.targets import not_a_regular_file

#: Identifier and version of the JSON document (docs/scorecard-json.md).
JSON_SCHEMA_ID = "citykpi.scorecard"
JSON_SCHEMA_VERSION = 1

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise(text: str) -> str:
    """Prefix ``'`` to text a spreadsheet would read as a formula (starts with = + - @ tab CR)."""
    return "'" + text if text.startswith(_FORMULA_START) else text


# --- atomic writes ------------------------------------------------------------------------------


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def remove_stale_temp_files(path: Path) -> list[Path]:
    """Remove the temporary files that writes of ``path`` by processes now gone left behind.

    :func:`atomic_write` names its temporary file ``.NAME.PID.XXXXXXXX.tmp``; a process killed
    mid-write leaves one. Only files of that exact shape, for this NAME, whose PID no longer runs
    are removed (a PID reused by a live process keeps its file: the safe side).
    """
    folder = path.parent if str(path.parent) else Path(".")
    prefix = f".{path.name}."
    removed = []
    with contextlib.suppress(OSError):
        for entry in os.scandir(folder):
            name = entry.name
            if not (name.startswith(prefix) and name.endswith(".tmp")):
                continue
            pid, _, rest = name[len(prefix) : -len(".tmp")].partition(".")
            if not (pid.isdigit() and len(rest) == 8 and entry.is_file(follow_symlinks=False)):
                continue
            if not _pid_alive(int(pid)):
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)
                    removed.append(Path(entry.path))
    return removed


def atomic_write(path: Path, write: Callable[[Path], None]) -> Path:
    """Write ``path`` through ``write(tmp)`` on a temporary file in the same folder, fsync, rename.

    Only a regular file is replaced: a symbolic link, folder, device, FIFO or socket at ``path`` is an
    :class:`ExportError` (the commands refuse them earlier, with the rest of the rules of
    :mod:`citykpi.render.targets`). On any failure the temporary file is removed and an existing
    ``path`` is left untouched.
    Temporary files that killed writers of the same ``path`` left behind are removed first.
    OSErrors become :class:`ExportError`; other exceptions propagate unchanged.
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise ExportError(f"cannot write {path}: folder {folder} does not exist", hint="create it first")
    try:  # the rename would replace a link, a device or a FIFO by a regular file
        problem = not_a_regular_file(os.lstat(path))
    except OSError:
        problem = None
    if problem is not None:
        raise ExportError(f"cannot write {path}: {problem}")
    remove_stale_temp_files(path)
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise ExportError(f"cannot write {path}: {exc.strerror or exc}") from exc
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        # mkstemp creates 0600; give the export the usual permissions (umask applies).
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise ExportError(f"cannot write {path}: {exc.strerror or exc}") from exc
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    with contextlib.suppress(OSError):  # make the rename durable; not all filesystems allow it
        dfd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    return path


# --- the formats -------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """A JSON-safe value: dates as ISO strings, NaN/inf as null."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    return value


def _records(frame: pl.DataFrame) -> list[dict[str, Any]]:
    return [{k: _plain(v) for k, v in row.items()} for row in frame.iter_rows(named=True)]


def _cells(scorecard: Scorecard) -> pl.DataFrame:
    return sort_cells(scorecard.cells.select(list(CELL_SCHEMA)))


def _indices(scorecard: Scorecard) -> pl.DataFrame:
    return sort_indices(scorecard.indices.select(list(INDEX_SCHEMA)))


def _worst_status(scorecard: Scorecard) -> str | None:
    worst = scorecard.worst_severity()
    return None if worst is None else next(c for c, s in SEVERITY.items() if s == worst)


def to_json_document(scorecard: Scorecard) -> dict[str, Any]:
    """The JSON document of a scorecard (schema ``citykpi.scorecard`` v1, docs/scorecard-json.md)."""
    return {
        "schema": JSON_SCHEMA_ID,
        "schema_version": JSON_SCHEMA_VERSION,
        "as_of": scorecard.as_of.isoformat(),
        "grain": scorecard.grain,
        "catalogue_hash": scorecard.catalogue_hash,
        "counts": scorecard.counts(),
        "worst_status": _worst_status(scorecard),
        "cells": _records(_cells(scorecard)),
        "indices": _records(_indices(scorecard)),
    }


def render_json(scorecard: Scorecard) -> str:
    """The scorecard as one JSON document."""
    return json.dumps(to_json_document(scorecard), ensure_ascii=False, indent=2, allow_nan=False) + "\n"


def render_jsonl(scorecard: Scorecard) -> str:
    """One JSON object per cell per line, each with ``as_of`` and ``grain`` first."""
    head = {"as_of": scorecard.as_of.isoformat(), "grain": scorecard.grain}
    lines = [
        json.dumps({**head, **rec}, ensure_ascii=False, allow_nan=False)
        for rec in _records(_cells(scorecard))
    ]
    return "".join(line + "\n" for line in lines)


def _neutralised(frame: pl.DataFrame) -> pl.DataFrame:
    exprs = []
    for name, dtype in frame.schema.items():
        if dtype == pl.String:
            exprs.append(
                pl.when(pl.col(name).str.contains(r"^[=+\-@\t\r]"))
                .then(pl.lit("'") + pl.col(name))
                .otherwise(pl.col(name))
                .alias(name)
            )
    return frame.with_columns(exprs) if exprs else frame


def frame_csv(frame: pl.DataFrame) -> str:
    """Any frame as CSV with formula-like text neutralised, as in the scorecard CSV (``citykpi query``)."""
    return _neutralised(frame).write_csv()


def render_csv(scorecard: Scorecard) -> str:
    """The cells as CSV (UTF-8, header row, ISO dates), formula-like text neutralised."""
    return _neutralised(_cells(scorecard)).write_csv(date_format="%Y-%m-%d")


def _md(text: object) -> str:
    """Escape text for a Markdown table cell (pipes, HTML, newlines)."""
    s = "" if text is None else str(text)
    s = s.replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")
    return s.replace("\r", " ").replace("\n", " ")


def render_markdown(scorecard: Scorecard, *, lang: str = "zh") -> str:
    """A Markdown report: summary, one table per domain, the indices."""
    out = [
        f"# {word('scorecard', lang)} {word('as_of', lang)} {scorecard.as_of.isoformat()} ({scorecard.grain})",
        "",
    ]
    out += [f"**{word('summary', lang)}:** {_md(counts_line(scorecard.counts(), lang))}", ""]
    cells = _cells(scorecard)
    heads = [word(k, lang) for k in ("indicator", "area", "value", "status", "change", "yoy", "target")]
    forecasts = (
        cells.height
        and cells.select(pl.col("forecast_status").is_not_null() | pl.col("target_forecast").is_not_null())
        .to_series()
        .any()
    )
    if forecasts:  # a column only when some cell forecasts: scorecards without forecasts read as before
        heads.append(word("outlook", lang))
    for (domain,), group in cells.group_by("domain", maintain_order=True):
        title = domain_name(str(domain), lang)
        out += [f"## {_md(title)}", "", "| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
        for row in group.iter_rows(named=True):
            value = fmt_cell_value(row, lang=lang)
            out.append(
                "| "
                + " | ".join(
                    _md(x)
                    for x in (
                        pick(row, "name", lang) or row["indicator_id"],
                        pick(row, "area_name", lang) or row["area_id"],
                        value,
                        status_text(row["status"], lang),
                        fmt_change(row["change_previous"], row["change_unit"], lang, row.get("unit")),
                        fmt_change(row["change_last_year"], row["change_unit"], lang, row.get("unit")),
                        fmt_target(row["attainment"], row["expected_progress"], row["target_status"], lang),
                        *([_outlook(row, lang)] if forecasts else []),
                    )
                )
                + " |"
            )
        out.append("")
    indices = _indices(scorecard)
    if indices.height:
        heads = [word(k, lang) for k in ("index", "area", "score", "status", "coverage", "rank")]
        out += [f"## {word('indices', lang)}", "", "| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
        for row in indices.iter_rows(named=True):
            score = fmt_number(row["score"]) + (f" ({word('capped', lang)})" if row["capped"] else "")
            out.append(
                "| "
                + " | ".join(
                    _md(x)
                    for x in (
                        pick(row, "name", lang) or row["index_id"],
                        pick(row, "area_name", lang) or row["area_id"],
                        score,
                        status_text(row["status"], lang),
                        fmt_percent(row["coverage"]),
                        "" if row["rank"] is None else row["rank"],
                    )
                )
                + " |"
            )
        out.append("")
    return "\n".join(out)


def _outlook(row: dict[str, Any], lang: str) -> str:
    """Where the cell's trend is heading and where its target will end up, in one line."""
    return "; ".join(t for t in (fmt_outlook(row, lang), fmt_target_forecast(row, lang)) if t)


def junit_fail_on(fail_on: str) -> str:
    """The colour a JUnit report marks as failures for an exit-code ``fail_on``: the same colour, or
    red when nothing fails the exit code (``never``), so the report stays useful."""
    return fail_on if fail_on != "never" else "red"


def render_junit(scorecard: Scorecard, *, fail_on: str = "red") -> str:
    """JUnit XML: one test case per indicator × area; failure when at or above ``fail_on``.

    Cells without a colour (stale, unscored, no_data, not_applicable) are reported as skipped.
    """
    if fail_on != "never" and fail_on not in SEVERITY:
        raise UsageError(f"unknown --fail-on {fail_on!r}; use never, {', '.join(SEVERITY)}")
    floor = None if fail_on == "never" else SEVERITY[fail_on]
    cells = _cells(scorecard)
    suites = ET.Element("testsuites", name=f"citykpi scorecard {scorecard.as_of.isoformat()}")
    total_tests = total_failures = total_skipped = 0
    for (domain,), group in cells.group_by("domain", maintain_order=True):
        suite = ET.SubElement(suites, "testsuite", name=str(domain))
        tests = failures = skipped = 0
        for row in group.iter_rows(named=True):
            tests += 1
            case = ET.SubElement(
                suite,
                "testcase",
                classname=f"{row['domain']}.{row['indicator_id']}",
                name=f"{row['indicator_id']}@{row['area_id']}",
            )
            ET.SubElement(case, "properties")
            for key in (
                "status",
                "value",
                "unit",
                "level",
                "area_name_zh",
                "name_zh",
                "forecast_status",
                "forecast_date",
                "target_forecast",
            ):
                val = row[key]
                if val is not None:
                    ET.SubElement(case[0], "property", name=key, value=str(val))
            sev = row["severity"]
            message = row["explanation"] or row["status"]
            if sev is None:
                skipped += 1
                ET.SubElement(case, "skipped", message=f"{row['status']}: {message}")
            elif floor is not None and sev >= floor:
                failures += 1
                fail = ET.SubElement(case, "failure", message=message, type=row["status"])
                fail.text = f"{row['indicator_id']} at {row['area_id']} is {row['status']} (fail-on {fail_on}): {message}"
        suite.set("tests", str(tests))
        suite.set("failures", str(failures))
        suite.set("errors", "0")
        suite.set("skipped", str(skipped))
        total_tests += tests
        total_failures += failures
        total_skipped += skipped
    suites.set("tests", str(total_tests))
    suites.set("failures", str(total_failures))
    suites.set("errors", "0")
    suites.set("skipped", str(total_skipped))
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


# --- binary formats ------------------------------------------------------------------------------


def parquet_bytes_of(frame: pl.DataFrame) -> bytes:
    """A frame as Parquet (zstd, with statistics).

    Encoded in memory and written by Python: a full or read-only disk is then a plain OSError
    (Polars reports a failed file write as a ComputeError with varying text).
    """
    buffer = io.BytesIO()
    frame.write_parquet(buffer, compression="zstd", statistics=True)
    return buffer.getvalue()


def parquet_bytes(scorecard: Scorecard) -> bytes:
    """The cells as Parquet."""
    return parquet_bytes_of(_cells(scorecard))


__all__ = [
    "atomic_write",
    "frame_csv",
    "junit_fail_on",
    "neutralise",
    "parquet_bytes",
    "render_csv",
    "render_json",
    "render_jsonl",
    "render_junit",
    "render_markdown",
    "to_json_document",
]
