"""The data-quality report (:class:`citykpi.quality.QualityReport`) in every export format.

``json`` is the whole report as one document (``citykpi.quality`` v1); ``markdown``, ``html`` and
``xlsx`` are reports of every table (the league table first); ``junit`` has a test case per group
(failing at ``fail_on``) and per consistency rule (failing on any violation); the table formats
``csv``, ``parquet`` and ``jsonl`` write one table (``table``: groups by default). Every file is written
atomically and deterministically (no clock inside, rows in a fixed order): the figures themselves
depend on the moment arrivals are judged at, which is not written.
"""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from datetime import date, datetime, time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from citykpi.catalogue.model import SEVERITY
from citykpi.errors import UsageError
from citykpi.render import exporters, exports
from citykpi.render.exports import _plain, _records
from citykpi.render.format import STATUS_HEX, STATUS_INK, safe_text, status_label

if TYPE_CHECKING:
    from citykpi.quality.report import QualityReport

#: Titles of the tables, by language.
TITLES: Mapping[str, Mapping[str, str]] = {
    "en": {
        "groups": "League table",
        "series": "Series",
        "rules": "Consistency rules",
        "violations": "Violations",
        "rejects": "Rejected rows",
        "records": "Raw records",
        "outliers": "Values judged inaccurate",
        "title": "Data quality",
        "as_of": "as of",
        "completeness": "complete",
        "accuracy": "accurate",
        "consistency": "consistent",
        "timeliness": "timely",
        "score": "score",
    },
    "zh": {
        "groups": "排行榜",
        "series": "数据序列",
        "rules": "一致性规则",
        "violations": "不一致之处",
        "rejects": "拒收记录",
        "records": "原始记录",
        "outliers": "可疑数值",
        "title": "数据质量",
        "as_of": "截至",
        "completeness": "完整",
        "accuracy": "准确",
        "consistency": "一致",
        "timeliness": "时效",
        "score": "得分",
    },
}
#: Rows a human-facing report lists per table (the json and table formats have every row).
LIST_LIMIT = 500


def to_json_document(report: QualityReport) -> dict[str, Any]:
    """The whole report as one JSON-ready document (schema ``citykpi.quality`` v1, docs/quality.md)."""
    from citykpi.quality.report import BANDS, JSON_SCHEMA_ID, JSON_SCHEMA_VERSION, TABLES

    return {
        "schema": JSON_SCHEMA_ID,
        "schema_version": JSON_SCHEMA_VERSION,
        "as_of": report.as_of.isoformat(),
        "since": report.since.isoformat() if report.since else None,
        "by": report.by,
        "bands": dict(BANDS),
        "summary": {k: _plain(v) for k, v in report.summary.items()},
        **{name: _records(report.table(name)) for name in TABLES},
    }


def render_json(report: QualityReport) -> str:
    """The report as one JSON document."""
    return json.dumps(to_json_document(report), ensure_ascii=False, indent=2, allow_nan=False) + "\n"


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.1f}" if abs(value) < 1e15 else str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def _md_cell(value: Any) -> str:
    text = _fmt(value).replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")
    return text.replace("\r", " ").replace("\n", " ")


def _figures(report: QualityReport, lang: str, fmt: Callable[[object], str]) -> str:
    """'完整 99.6 · 准确 98.6 · 一致 — · 时效 3.5 · 得分 67.2': the summary's four dimensions and score."""
    t = TITLES.get(lang, TITLES["en"])
    s = report.summary
    return " · ".join(
        f"{fmt(t[d])} {fmt(s.get(d)) or '—'}"
        for d in ("completeness", "accuracy", "consistency", "timeliness", "score")
    )


def render_markdown(report: QualityReport, *, lang: str = "zh") -> str:
    """A Markdown report: the summary, then every non-empty table (at most :data:`LIST_LIMIT` rows)."""
    from citykpi.quality.report import TABLES

    t = TITLES.get(lang, TITLES["en"])
    lines = [
        f"# {t['title']} {t['as_of']} {report.as_of.isoformat()}",
        "",
        f"{_figures(report, lang, _fmt)} ({status_label(str(report.summary.get('status')), lang)})",
    ]
    for name in TABLES:
        frame = report.table(name)
        if not frame.height:
            continue
        lines += ["", f"## {t[name]}", ""]
        shown = frame.head(LIST_LIMIT)
        lines.append("| " + " | ".join(shown.columns) + " |")
        lines.append("|" + "---|" * len(shown.columns))
        lines += ["| " + " | ".join(_md_cell(v) for v in row) + " |" for row in shown.iter_rows()]
        if frame.height > LIST_LIMIT:
            lines.append(f"\n… {frame.height - LIST_LIMIT} more rows (the json format has every row)")
    return "\n".join(lines) + "\n"


def _e(text: object) -> str:
    import html

    return html.escape(safe_text(_fmt(text)))


def _chip(status: str | None, lang: str) -> str:
    st = status or "no_data"
    return (
        f'<span class="chip" style="background:{STATUS_HEX.get(st, "#ccc")};color:{STATUS_INK.get(st, "#000")}">'
        f"{_e(status_label(st, lang))}</span>"
    )


def render_html(report: QualityReport, *, lang: str = "zh") -> str:
    """A self-contained HTML page: the summary, the coloured league table and every other table."""
    from citykpi.quality.report import TABLES

    t = TITLES.get(lang, TITLES["en"])
    s = report.summary
    title = f"{t['title']} {t['as_of']} {report.as_of.isoformat()}"
    out = [
        "<!DOCTYPE html>",
        f'<html lang="{"zh-CN" if lang == "zh" else "en"}"><head><meta charset="utf-8">',
        f"<title>{_e(title)}</title>",
        "<style>body{font-family:system-ui,sans-serif;margin:1.5rem;color:#1f2328}"
        "table{border-collapse:collapse;margin:.5rem 0 1.5rem}th,td{border:1px solid #d8dce0;padding:2px 6px;"
        "font-size:13px;text-align:left}th{background:#f6f8fa}td.n{text-align:right}"
        ".chip{padding:1px 6px;border-radius:3px;font-weight:600}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        f"<p>{_figures(report, lang, _e)} {_chip(str(s.get('status')), lang)}</p>",
    ]
    for name in TABLES:
        frame = report.table(name)
        if not frame.height:
            continue
        out.append(f'<h2 id="{name}">{_e(t[name])}</h2><table><thead><tr>')
        out += [f"<th>{_e(c)}</th>" for c in frame.columns]
        out.append("</tr></thead><tbody>")
        for row in frame.head(LIST_LIMIT).iter_rows(named=True):
            cells = []
            for col, value in row.items():
                if col == "status":
                    cells.append(f"<td>{_chip(value, lang)}</td>")
                elif isinstance(value, int | float) and not isinstance(value, bool):
                    cells.append(f'<td class="n">{_e(value)}</td>')
                else:
                    cells.append(f"<td>{_e(value)}</td>")
            out.append("<tr>" + "".join(cells) + "</tr>")
        out.append("</tbody></table>")
        if frame.height > LIST_LIMIT:
            out.append(f"<p>… {frame.height - LIST_LIMIT} more rows (the json format has every row)</p>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def render_junit(report: QualityReport, *, fail_on: str = "red") -> str:
    """JUnit XML: a test case per group (failure at or above ``fail_on``, skipped without a score) and
    per consistency rule (failure on any violation, listing the first ones)."""
    if fail_on != "never" and fail_on not in SEVERITY:
        raise UsageError(f"unknown --fail-on {fail_on!r}; use never, {', '.join(SEVERITY)}")
    floor = None if fail_on == "never" else SEVERITY[fail_on]
    suites = ET.Element("testsuites", name=f"citykpi quality {report.as_of.isoformat()}")
    totals = [0, 0, 0]

    def suite(name: str) -> ET.Element:
        return ET.SubElement(suites, "testsuite", name=name)

    def close(el: ET.Element, tests: int, failures: int, skipped: int) -> None:
        el.set("tests", str(tests))
        el.set("failures", str(failures))
        el.set("errors", "0")
        el.set("skipped", str(skipped))
        totals[0] += tests
        totals[1] += failures
        totals[2] += skipped

    groups = suite(f"quality by {report.by}")
    tests = failures = skipped = 0
    for row in report.groups.iter_rows(named=True):
        tests += 1
        case = ET.SubElement(
            groups, "testcase", classname=f"citykpi.quality.{report.by}", name=str(row["group"])
        )
        figures = ", ".join(
            f"{d} {_fmt(row[d]) or '—'}" for d in ("completeness", "accuracy", "consistency", "timeliness")
        )
        if row["severity"] is None:
            skipped += 1
            ET.SubElement(case, "skipped", message="nothing could be judged")
        elif floor is not None and row["severity"] >= floor:
            failures += 1
            fail = ET.SubElement(
                case, "failure", message=f"{row['status']}: score {_fmt(row['score'])}", type=row["status"]
            )
            fail.text = f"{row['group']}: {figures}"
    close(groups, tests, failures, skipped)
    rules = suite("consistency rules")
    tests = failures = 0
    for row in report.rules.iter_rows(named=True):
        tests += 1
        case = ET.SubElement(
            rules, "testcase", classname=f"citykpi.quality.rule.{row['kind']}", name=str(row["rule_id"])
        )
        if row["violations"]:
            failures += 1
            mine = report.violations.filter(pl.col("rule_id") == row["rule_id"]).head(20)
            fail = ET.SubElement(
                case,
                "failure",
                message=f"{row['violations']} of {row['checked']} checks fail",
                type="violation",
            )
            fail.text = "\n".join(
                f"{r['area_id']} {_fmt(r['period'])} {r['breakdown'] or ''}: {_fmt(r['total'])} ≠ {_fmt(r['expected'])} ({r['values']})"
                for r in mine.iter_rows(named=True)
            )
    close(rules, tests, failures, 0)
    suites.set("tests", str(totals[0]))
    suites.set("failures", str(totals[1]))
    suites.set("errors", "0")
    suites.set("skipped", str(totals[2]))
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


def _xlsx_writer(report: QualityReport, lang: str) -> Callable[[Path], None]:
    import xlsxwriter

    from citykpi.quality.report import TABLES

    t = TITLES.get(lang, TITLES["en"])

    def write(tmp: Path) -> None:
        wb = xlsxwriter.Workbook(
            str(tmp),
            {
                "strings_to_formulas": False,
                "strings_to_numbers": False,
                "strings_to_urls": False,
                "constant_memory": True,
            },
        )
        wb.set_properties(
            {
                "title": f"citykpi quality {report.as_of.isoformat()}",
                "created": datetime.combine(report.as_of, time()),
            }
        )
        header = wb.add_format({"bold": True, "bottom": 1, "bg_color": "#f1f3f4"})
        status_fmt = {
            s: wb.add_format({"bg_color": STATUS_HEX[s], "font_color": STATUS_INK[s]}) for s in STATUS_HEX
        }
        for name in TABLES:
            frame = report.table(name)
            ws = wb.add_worksheet(t[name][:31])
            for c, col in enumerate(frame.columns):
                ws.write_string(0, c, col, header)
            for r, row in enumerate(frame.iter_rows(named=True), start=1):
                for c, (col, value) in enumerate(row.items()):
                    if value is None or (
                        isinstance(value, float) and (math.isnan(value) or math.isinf(value))
                    ):
                        continue
                    if col == "status":
                        ws.write_string(r, c, status_label(value, lang), status_fmt.get(value))
                    elif isinstance(value, bool):
                        ws.write_boolean(r, c, value)
                    elif isinstance(value, int | float):
                        ws.write_number(r, c, value)
                    else:
                        ws.write_string(r, c, exports.neutralise(_fmt(value)))
            ws.freeze_panes(1, 0)
        try:
            wb.close()
        except xlsxwriter.exceptions.FileCreateError as exc:
            raise OSError(str(exc)) from None

    return write


#: Formats that write the whole report; the others write one table.
REPORT_FORMATS: tuple[str, ...] = ("json", "markdown", "html", "xlsx", "junit")


def render_text(
    report: QualityReport, fmt: str, *, lang: str = "zh", table: str = "groups", fail_on: str = "red"
) -> str:
    """A text format of the report (json, markdown, html, junit, or a table as csv/jsonl)."""
    if fmt == "json":
        return render_json(report)
    if fmt == "markdown":
        return render_markdown(report, lang=lang)
    if fmt == "html":
        return render_html(report, lang=lang)
    if fmt == "junit":
        return render_junit(report, fail_on=fail_on)
    return exporters.render_frame(_table(report, table), fmt)


def _table(report: QualityReport, table: str) -> pl.DataFrame:
    from citykpi.quality.report import TABLES

    if table not in TABLES:
        raise UsageError(f"unknown --table {table!r}; use one of {', '.join(TABLES)}")
    return report.table(table)


def write_report(
    report: QualityReport,
    fmt: str,
    path: str | Path,
    *,
    lang: str = "zh",
    table: str = "groups",
    fail_on: str = "red",
) -> Path:
    """Write the report as ``fmt`` to ``path`` atomically (a failure leaves no file and the old one as it was)."""
    exporters.exporter(fmt)  # a usage error naming the formats when unknown
    if fmt == "xlsx":
        return exports.atomic_write(Path(path), _xlsx_writer(report, lang))
    if fmt in REPORT_FORMATS:
        text = render_text(report, fmt, lang=lang, fail_on=fail_on)  # rendered before any file is touched

        def write(tmp: Path) -> None:
            tmp.write_text(text, encoding="utf-8")

        return exports.atomic_write(Path(path), write)
    return exporters.write_frame(_table(report, table), fmt, path)
