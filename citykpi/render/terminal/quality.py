"""``citykpi quality`` at the terminal: the summary line, the coloured league table, the consistency
rules and their first violations, and the rejects by code."""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl
from rich import box
from rich.console import Console
from rich.table import Table

from citykpi.render.format import pick
from citykpi.render.quality import TITLES
from citykpi.render.terminal.common import plain, print_prose, status_cell

if TYPE_CHECKING:
    from citykpi.quality.report import QualityReport

#: Header of the group column per ``--by``.
_GROUP: dict[str, dict[str, str]] = {
    "en": {"owner": "provider", "source": "feed", "indicator": "indicator", "area": "area"},
    "zh": {"owner": "提供部门", "source": "数据源", "indicator": "指标", "area": "区域"},
}
_WORDS: dict[str, dict[str, str]] = {
    "en": {
        "rank": "rank",
        "expected": "expected",
        "violations": "violations",
        "checked": "checked",
        "incomplete": "incomplete",
        "rule": "rule",
        "kind": "kind",
        "rows": "rows",
        "code": "code",
        "reason": "reason",
        "none": "Nothing to judge: no observed indicator has data in the judged periods.",
        "more": "more",
    },
    "zh": {
        "rank": "排名",
        "expected": "应报",
        "violations": "不一致",
        "checked": "已核",
        "incomplete": "不全",
        "rule": "规则",
        "kind": "类型",
        "rows": "行数",
        "code": "代码",
        "reason": "原因",
        "none": "无可评估数据：所评估的期间内没有观测数据。",
        "more": "其余",
    },
}


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}%"


def print_quality(
    console: Console, report: QualityReport, *, lang: str = "zh", limit: int | None = 20
) -> None:
    """Print the report: summary, league table (at most ``limit`` groups), rules, violations, rejects."""
    t = TITLES.get(lang, TITLES["en"])
    w = _WORDS.get(lang, _WORDS["en"])
    s = report.summary
    since = f" ({report.since.isoformat()} …)" if report.since else ""
    head = f"{t['title']} {t['as_of']} {report.as_of.isoformat()}{since} · " + " · ".join(
        f"{t[d]} {_pct(s.get(d))}"  # type: ignore[arg-type]
        for d in ("completeness", "accuracy", "consistency", "timeliness")
    )
    console.rule(plain(head, "bold", one_line=True), align="left")
    groups = report.groups
    if not groups.height:
        print_prose(console, w["none"])
        return
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, title=plain(t["groups"], "bold"), title_justify="left")
    table.add_column(w["rank"], justify="right")
    table.add_column(_GROUP.get(lang, _GROUP["en"])[report.by])
    for d in ("completeness", "accuracy", "consistency", "timeliness", "score"):
        table.add_column(t[d], justify="right", no_wrap=True)
    table.add_column("", no_wrap=True)
    shown = groups if limit is None else groups.head(limit)
    for row in shown.iter_rows(named=True):
        name = pick(row, "name", lang) if row["name_zh"] or row["name_en"] else ""
        label = f"{row['group']} {name}".strip() if name and name != row["group"] else row["group"]
        table.add_row(
            "" if row["rank"] is None else str(row["rank"]),
            plain(label),
            _pct(row["completeness"]),
            _pct(row["accuracy"]),
            _pct(row["consistency"]),
            _pct(row["timeliness"]),
            _pct(row["score"]),
            status_cell(row["status"], lang),
        )
    console.print(table)
    if limit is not None and groups.height > limit:
        print_prose(console, f"… {groups.height - limit} {w['more']} (--limit, or --format csv)")
    if report.rules.height:
        rules = Table(
            box=box.SIMPLE_HEAD, pad_edge=False, title=plain(t["rules"], "bold"), title_justify="left"
        )
        for head, justify in (
            (w["rule"], "left"),
            (w["kind"], "left"),
            (w["checked"], "right"),
            (w["violations"], "right"),
            (w["incomplete"], "right"),
        ):
            rules.add_column(head, justify=justify)  # type: ignore[arg-type]
        for row in report.rules.iter_rows(named=True):
            rules.add_row(
                plain(row["rule_id"]),
                row["kind"],
                str(row["checked"]),
                plain(str(row["violations"]), "bold red" if row["violations"] else ""),
                str(row["incomplete"]),
            )
        console.print(rules)
    bad = report.violations
    if bad.height:
        print_prose(console, plain(t["violations"], "bold"))
        for row in bad.head(limit or bad.height).iter_rows(named=True):
            where = f"{row['area_id']} {row['period'].isoformat() if row['period'] else ''}"
            scope = f" [{row['breakdown']}]" if row["breakdown"] else ""
            console.print(
                plain(
                    f"  {row['rule_id']} {where}{scope}: {row['total']:g} ≠ {row['expected']:g} "
                    f"(Δ {row['difference']:g}) ← {row['values']}",
                    one_line=True,
                )
            )
        if limit is not None and bad.height > limit:
            print_prose(console, f"  … {bad.height - limit} {w['more']} (--table violations --format csv)")
    if report.rejects.height:
        by_code = (
            report.rejects.group_by("code", "reason")
            .agg(pl.col("rows").sum())
            .sort("rows", "code", descending=[True, False])
        )
        rej = Table(
            box=box.SIMPLE_HEAD, pad_edge=False, title=plain(t["rejects"], "bold"), title_justify="left"
        )
        rej.add_column(w["code"])
        rej.add_column(w["rows"], justify="right")
        rej.add_column(w["reason"])
        for row in by_code.iter_rows(named=True):
            rej.add_row(row["code"] or "—", str(row["rows"]), plain(row["reason"]))
        console.print(rej)
