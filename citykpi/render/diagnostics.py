"""Plain-text renderings of ``citykpi check`` results (json, github, junit) and catalogue listings.

Strings only — no Rich (the Rich text view is ``render.terminal.print_diagnostics``). Messages quote
the catalogue, so the text, github and junit renderings show its control characters as ``\\x1b``
(see ``safe_text``): CI logs are terminals too, and XML 1.0 cannot hold them. JSON keeps them exact
(its encoder escapes them).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from citykpi.catalogue.diagnostics import RULES, Diagnostic
from citykpi.catalogue.loader import CheckResult
from citykpi.render.format import safe_text

#: Version of the JSON document written by ``citykpi check --format json``.
JSON_SCHEMA_VERSION = 1


def diagnostics_json(result: CheckResult, *, strict: bool = False) -> str:
    """The check result as a JSON document with ``schema_version``, counts and diagnostics."""
    used = sorted({d.rule for d in result.diagnostics})
    doc: dict[str, Any] = {
        "schema_version": JSON_SCHEMA_VERSION,
        "ok": result.ok(strict),
        "strict": strict,
        "counts": dict(result.counts),
        "files": list(result.files),
        "content_hash": result.catalogue.content_hash if result.catalogue else None,
        "diagnostics": [d.to_dict() for d in result.diagnostics],
        "rules": {code: {"name": RULES[code].name, "description": RULES[code].description} for code in used},
    }
    return json.dumps(doc, ensure_ascii=False, indent=2) + "\n"


def _gh_escape(text: str, *, prop: bool = False) -> str:
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    if prop:
        text = text.replace(":", "%3A").replace(",", "%2C")
    return text


def diagnostics_github(result: CheckResult) -> str:
    """GitHub Actions workflow commands: one ``::error``/``::warning`` line per diagnostic."""
    lines: list[str] = []
    for d in result.diagnostics:
        level = "error" if d.severity == "error" else "warning"
        props = [f"file={_gh_escape(safe_text(d.location.file), prop=True)}"]
        if d.location.line is not None:
            props.append(f"line={d.location.line}")
        if d.location.column is not None:
            props.append(f"col={d.location.column}")
        props.append(f"title={_gh_escape(f'{d.rule} {d.name}', prop=True)}")
        message = safe_text(d.message + (f" (hint: {d.hint})" if d.hint else ""))
        lines.append(f"::{level} {','.join(props)}::{_gh_escape(message)}")
    return "".join(line + "\n" for line in lines)


def diagnostics_junit(result: CheckResult, *, strict: bool = False) -> str:
    """A JUnit XML report: one test case per catalogue file, a failure per error (and warning if strict)."""
    by_file: dict[str, list[Diagnostic]] = {f: [] for f in result.files}
    for d in result.diagnostics:
        by_file.setdefault(d.location.file, []).append(d)
    cases: list[str] = []
    failures = 0
    for file, diags in by_file.items():
        bad = [d for d in diags if d.severity == "error" or strict]
        body = ""
        if bad:
            failures += 1
            text = safe_text("\n".join(str(d) for d in diags))
            first = bad[0]
            message = safe_text(f"{first.rule} {first.message}")
            body = (
                f"<failure message={quoteattr(message)} type={quoteattr(first.rule)}>{escape(text)}</failure>"
            )
        elif diags:
            body = f"<system-out>{escape(safe_text(chr(10).join(str(d) for d in diags)))}</system-out>"
        name = quoteattr(safe_text(file, one_line=True))
        cases.append(f'    <testcase classname="citykpi.check" name={name}>{body}</testcase>')
    header = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<testsuites name="citykpi check" tests="{len(by_file)}" failures="{failures}">\n'
        f'  <testsuite name="catalogue" tests="{len(by_file)}" failures="{failures}" errors="0">\n'
    )
    return header + "".join(c + "\n" for c in cases) + "  </testsuite>\n</testsuites>\n"


def diagnostics_text(result: CheckResult) -> str:
    """A plain one-line-per-diagnostic text with a summary line (for files and pipes)."""
    lines = [safe_text(d) for d in result.diagnostics]
    lines.append(summary_line(result))
    return "\n".join(lines) + "\n"


def summary_line(result: CheckResult) -> str:
    """'3 errors, 1 warning in 12 files (150 indicators, 5 indices, 2 groups, 1 source)'."""
    c = result.counts

    def n(count: int, word: str) -> str:
        return f"{count} {word}{'' if count == 1 else 's'}"

    things = ", ".join(
        [
            n(c.get("indicators", 0), "indicator"),
            n(c.get("indices", 0), "index").replace("indexs", "indices"),
            n(c.get("groups", 0), "group"),
            n(c.get("sources", 0), "source"),
        ]
        # feeds and consistency rules are named only where a catalogue declares some
        + ([n(c["feeds"], "feed")] if c.get("feeds") else [])
        + ([n(c["consistency"], "consistency rule")] if c.get("consistency") else [])
    )
    head = "catalogue is sound" if not result.errors else n(len(result.errors), "error")
    if result.warnings:
        head += ("; " if not result.errors else ", ") + n(len(result.warnings), "warning")
    return f"{head} — {n(c.get('files', 0), 'file')} ({things})"


def rows_json(rows: Sequence[Mapping[str, Any]]) -> str:
    """Catalogue listing rows as a JSON array."""
    return json.dumps(list(rows), ensure_ascii=False, indent=2, default=str) + "\n"


def rows_csv(rows: Sequence[Mapping[str, Any]]) -> str:
    """Catalogue listing rows as CSV with a header (lists joined with ';')."""
    buf = io.StringIO()
    if not rows:
        return ""
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ";".join(v) if isinstance(v, list | tuple) else v for k, v in row.items()})
    return buf.getvalue()
