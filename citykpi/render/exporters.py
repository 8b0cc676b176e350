"""The one exporter registry: every output format, what it can write, and how.

A format is an :class:`Exporter`: its name (what ``--format`` takes), the file extension, whether it
is binary (binary formats need ``--output``), how it writes a scorecard and, for the *table formats*,
how it writes any table (a Polars frame). Every CLI command that prints a table offers the table
formats, so ``citykpi alerts --format csv`` works like ``citykpi evaluate --format csv``; ``evaluate``
also offers the scorecard-only formats (html, xlsx, junit).

The formats themselves are implemented in :mod:`citykpi.render.exports` (scorecards) and here (any
frame); every file is written atomically (temporary file + rename, :func:`exports.atomic_write`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from citykpi.engine.scorecard import Scorecard
from citykpi.errors import UsageError
from citykpi.render import exports
from citykpi.render.diagnostics import rows_json
from citykpi.render.xlsx import xlsx_writer

#: The terminal rendering (Rich tables on stdout): a ``--format`` value, but not a file format.
TERMINAL = "table"

ScorecardWriter = Callable[[Scorecard, str, str], "str | bytes"]
"""Renders a scorecard: ``(scorecard, lang, fail_on) -> text or bytes``."""
StreamWriter = Callable[[Scorecard, str], Callable[[Path], None]]
"""Writes a scorecard straight into the temporary file: ``(scorecard, lang) -> write(tmp)``."""
FrameWriter = Callable[[pl.DataFrame], "str | bytes"]
"""Renders any table: ``frame -> text or bytes``."""


@dataclass(frozen=True)
class Exporter:
    """One output format.

    Attributes:
        name: the ``--format`` value.
        extension: the file extension, with its dot.
        binary: True when the format is bytes (it needs a file: ``--output``).
        scorecard: renders a scorecard (None when ``stream`` writes it).
        stream: writes a scorecard into the file row by row (xlsx: flat memory at city scale).
        frame: renders any frame; None when the format is for scorecards only.
        history: True when it draws the scorecard's history (sparklines); the others never read it,
            so an evaluation for them can skip reading it back.
    """

    name: str
    extension: str
    binary: bool
    scorecard: ScorecardWriter | None = None
    stream: StreamWriter | None = None
    frame: FrameWriter | None = None
    history: bool = False

    @property
    def table(self) -> bool:
        """True for a table format: it writes any frame, so every table command offers it."""
        return self.frame is not None


# --- frames (alerts, league tables, diffs, runs, rejects, …) -------------------------------------


def frame_json(frame: pl.DataFrame) -> str:
    """A frame as a JSON array of row objects (dates and timestamps as text)."""
    return rows_json(frame.to_dicts())


def frame_jsonl(frame: pl.DataFrame) -> str:
    """A frame as one JSON object per row per line."""
    return "".join(
        json.dumps(row, ensure_ascii=False, default=str) + "\n" for row in frame.iter_rows(named=True)
    )


def _md(value: object) -> str:
    """Escape a value for a Markdown table cell (pipes, HTML, newlines)."""
    text = "" if value is None else str(value)
    text = text.replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")
    return text.replace("\r", " ").replace("\n", " ")


def frame_markdown(frame: pl.DataFrame) -> str:
    """A frame as one Markdown table (a header row even when there are no rows)."""
    lines = ["| " + " | ".join(_md(c) for c in frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(_md(v) for v in row) + " |" for row in frame.iter_rows()]
    return "\n".join(lines) + "\n"


def frame_parquet(frame: pl.DataFrame) -> bytes:
    """A frame as Parquet (zstd, with statistics)."""
    return exports.parquet_bytes_of(frame)


# --- the registry ----------------------------------------------------------------------------------


def _html(scorecard: Scorecard, lang: str, _fail_on: str) -> str:
    from citykpi.render.html import render_html

    return render_html(scorecard, lang=lang)


_REGISTRY: tuple[Exporter, ...] = (
    Exporter("csv", ".csv", False, lambda sc, _l, _f: exports.render_csv(sc), frame=exports.frame_csv),
    Exporter("parquet", ".parquet", True, lambda sc, _l, _f: exports.parquet_bytes(sc), frame=frame_parquet),
    Exporter("json", ".json", False, lambda sc, _l, _f: exports.render_json(sc), frame=frame_json),
    Exporter("jsonl", ".jsonl", False, lambda sc, _l, _f: exports.render_jsonl(sc), frame=frame_jsonl),
    Exporter(
        "markdown",
        ".md",
        False,
        lambda sc, lang, _f: exports.render_markdown(sc, lang=lang),
        frame=frame_markdown,
    ),
    Exporter("html", ".html", False, _html, history=True),
    Exporter("xlsx", ".xlsx", True, stream=xlsx_writer),
    Exporter("junit", ".xml", False, lambda sc, _l, fail_on: exports.render_junit(sc, fail_on=fail_on)),
)

#: Every export format by name, in the order shown in ``--help``.
EXPORTERS: Mapping[str, Exporter] = {e.name: e for e in _REGISTRY}
#: Export formats (file formats), in the order shown in ``--help``.
FORMATS: tuple[str, ...] = tuple(EXPORTERS)
#: Formats that are text (may go to stdout); the others need ``--output``.
TEXT_FORMATS: tuple[str, ...] = tuple(e.name for e in _REGISTRY if not e.binary)
#: File extension of each format.
EXTENSIONS: Mapping[str, str] = {e.name: e.extension for e in _REGISTRY}
#: The formats that write any table: what every command that prints a table offers after ``table``.
TABLE_FORMATS: tuple[str, ...] = tuple(e.name for e in _REGISTRY if e.table)


def exporter(fmt: str) -> Exporter:
    """The exporter of ``fmt``, or a usage error naming the formats."""
    try:
        return EXPORTERS[fmt]
    except KeyError:
        raise UsageError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}") from None


# --- scorecards ---------------------------------------------------------------------------------------


def render_text(scorecard: Scorecard, fmt: str, *, lang: str = "zh", fail_on: str = "red") -> str:
    """A text export (csv, json, jsonl, markdown, html, junit) as a string."""
    ex = exporter(fmt)
    if ex.binary or ex.scorecard is None:
        raise UsageError(f"format {fmt} is binary; write it to a file with --output")
    text = ex.scorecard(scorecard, lang, fail_on)
    assert isinstance(text, str)
    return text


def write_scorecard(
    scorecard: Scorecard,
    fmt: str,
    path: Path | str,
    *,
    lang: str = "zh",
    fail_on: str = "red",
) -> Path:
    """Write ``scorecard`` as ``fmt`` to ``path`` atomically.

    Args:
        scorecard: the evaluated scorecard.
        fmt: one of :data:`FORMATS`.
        path: destination file; its folder must exist. Replaced atomically if present.
        lang: language of names and labels in human-facing formats (markdown, html, xlsx).
        fail_on: junit only — the colour at or above which a test case fails.

    Returns:
        The path written.
    """
    ex = exporter(fmt)
    if ex.stream is not None:
        writer = ex.stream(scorecard, lang)
    else:
        render = ex.scorecard
        assert render is not None
        writer = _writer(ex, lambda: render(scorecard, lang, fail_on))
    return exports.atomic_write(Path(path), writer)


# --- any frame ------------------------------------------------------------------------------------------


def _frame_exporter(fmt: str) -> tuple[Exporter, FrameWriter]:
    ex = exporter(fmt)
    if ex.frame is None:
        raise UsageError(f"format {fmt} is for scorecards only; use one of {', '.join(TABLE_FORMATS)}")
    return ex, ex.frame


def render_frame(frame: pl.DataFrame, fmt: str) -> str:
    """``frame`` in the text table format ``fmt`` (csv, json, jsonl, markdown)."""
    ex, render = _frame_exporter(fmt)
    if ex.binary:
        raise UsageError(f"format {fmt} is binary; write it to a file with --output")
    text = render(frame)
    assert isinstance(text, str)
    return text


def write_frame(frame: pl.DataFrame, fmt: str, path: Path | str) -> Path:
    """Write ``frame`` as the table format ``fmt`` to ``path`` atomically; its folder must exist."""
    ex, render = _frame_exporter(fmt)
    return exports.atomic_write(Path(path), _writer(ex, lambda: render(frame)))


def _writer(ex: Exporter, render: Callable[[], str | bytes]) -> Callable[[Path], None]:
    """The temporary-file writer of one export. Text is rendered now (a bad option fails before any
    file is touched); binary formats encode inside the write, so an OSError there becomes an
    ExportError and leaves the old file as it was."""
    text = None if ex.binary else render()

    def write(tmp: Path) -> None:
        data = text if text is not None else render()
        tmp.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)

    return write


def draws_history(fmt: str) -> bool:
    """True when ``fmt`` draws the scorecard's history (sparklines): ``table`` (the terminal) and html."""
    return fmt == "table" or (fmt in EXPORTERS and EXPORTERS[fmt].history)


__all__ = [
    "EXPORTERS",
    "EXTENSIONS",
    "FORMATS",
    "TABLE_FORMATS",
    "TERMINAL",
    "TEXT_FORMATS",
    "Exporter",
    "draws_history",
    "exporter",
    "frame_json",
    "frame_jsonl",
    "frame_markdown",
    "frame_parquet",
    "render_frame",
    "render_text",
    "write_frame",
    "write_scorecard",
]
