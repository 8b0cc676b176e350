"""Terminal renderer: snapshots at a fixed width, colourless, wide characters aligned."""

from __future__ import annotations

import io
import re
from dataclasses import replace
from datetime import date

import polars as pl
import pytest
from rich.cells import cell_len
from rich.console import Console

from citykpi.catalogue.model import (
    BandSet,
    Indicator,
    Override,
    Rollup,
    ScaleStep,
    Target,
    Text,
    Thresholds,
)
from citykpi.engine.scorecard import Scorecard
from citykpi.render import terminal, views
from citykpi.render.format import fmt_change, fmt_value, sparkline
from tests.scorecard_fixtures import make_scorecard
from tests.snapshot import assert_snapshot


def console() -> Console:
    """The snapshot console: fixed width, no colour, recorded."""
    return Console(width=120, force_terminal=False, no_color=True, record=True)


def aqi_indicator() -> Indicator:
    """A catalogue model of AQI with its own six-step scale and a target."""
    steps = [
        ("优", "Excellent", 50.0, "green"),
        ("良", "Good", 100.0, "blue"),
        ("轻度污染", "Lightly polluted", 150.0, "yellow"),
        ("中度污染", "Moderately polluted", 200.0, "orange"),
        ("重度污染", "Heavily polluted", 300.0, "red"),
        ("严重污染", "Severely polluted", None, "red"),
    ]
    return Indicator(
        id="env.air.aqi",
        name=Text("空气质量指数", "Air quality index"),
        kind="vital_sign",
        domain="environment",
        unit="index",
        levels=("city", "district"),
        frequency="daily",
        direction="lower_is_better",
        thresholds=Thresholds(
            bands=BandSet(cuts={"blue": 50, "yellow": 100, "orange": 150, "red": 200}),
            for_periods=2,
            overrides=(Override(bands=BandSet(cuts={"red": 180}), area="500103"),),
        ),
        rollup=Rollup(time="mean", area="weighted_mean", weight="population"),
        description="Daily AQI (HJ 633-2012).",
        owner="市生态环境局",
        scale=tuple(ScaleStep(Text(zh, en), colour, upto) for zh, en, upto, colour in steps),
        target=Target(value=80, due=date(2026, 12, 31), baseline=95, baseline_date=date(2026, 1, 1)),
    )


def test_scorecard_zh_snapshot() -> None:
    c = console()
    terminal.print_scorecard(c, make_scorecard(), lang="zh")
    text = c.export_text()
    assert "■ 红" in text and "○ 过期" in text and "· 无数据" in text
    assert_snapshot("scorecard_zh.txt", text)


def test_scorecard_en_snapshot_with_explanations() -> None:
    c = console()
    terminal.print_scorecard(c, make_scorecard(), lang="en", explain=True)
    text = c.export_text()
    assert "■ RED" in text and "NO DATA" in text and "Summary: 1 ■ RED · 2 ◆ ORANGE" in text
    assert "▲ +11.1%" in text and "▼ -6.4 pp" in text
    assert_snapshot("scorecard_en_explain.txt", text)


@pytest.mark.parametrize(
    ("width", "headers"),
    [
        (160, ["Indicator", "Area", "Value", "Status", "Change", "YoY", "Target", "Trend", "Outlook"]),
        (100, ["Indicator", "Area", "Value", "Status", "Change", "Outlook"]),
        (80, ["Indicator", "Area", "Value", "Status", "Change"]),
    ],
)
def test_narrow_terminals_give_up_trend_then_yoy_then_target(width: int, headers: list[str]) -> None:
    """At 80 columns the names stay readable: optional columns go instead of names folding mid-word
    (trend, then year on year, then the target, then the outlook of a cell heading for a worse colour)."""
    c = Console(width=width, force_terminal=False, no_color=True, record=True)
    terminal.print_scorecard(c, make_scorecard(), lang="en")
    text = c.export_text()
    header_line = next(line for line in text.splitlines() if line.strip().startswith("Indicator"))
    assert header_line.split() == headers
    assert "Good-air days" in text and max(len(line.rstrip()) for line in text.splitlines()) <= width


def test_scorecard_grouped_by_area_with_limit() -> None:
    c = console()
    terminal.print_scorecard(c, make_scorecard(), lang="en", group_by="area", limit=2)
    text = c.export_text()
    assert "… 2 more" in text
    assert text.index("Chongqing") < text.index("Yuzhong District") < text.index("Yubei District")
    assert_snapshot("scorecard_en_by_area.txt", text)


def test_varying_fields_do_not_change_the_snapshot() -> None:
    a, b = console(), console()
    terminal.print_scorecard(a, make_scorecard(run_id=7), lang="zh")
    terminal.print_scorecard(b, make_scorecard(run_id=123), lang="zh")
    from tests.snapshot import normalise

    first, second = a.export_text(), b.export_text()
    assert "run 123" in second
    assert normalise(first) == normalise(second)


def test_wide_characters_align_with_ascii_names() -> None:
    # One indicator with a Chinese name, one with an English name: the status column starts at the
    # same terminal cell on every row.
    sc = make_scorecard(rename={"env.air.good_days": "Good-air days (ASCII name)"})
    c = console()
    terminal.print_scorecard(c, sc.filter(domains=["environment"]), lang="zh")
    offsets = set()
    for line in c.export_text().splitlines():
        m = re.search(r"[●▲■◆○] ", line)
        if m and ("index" in line or "days" in line):
            offsets.add(cell_len(line[: m.start()]))
    assert len(offsets) == 1, offsets


def test_no_color_still_shows_labels(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    out = io.StringIO()
    c = Console(file=out, width=120, force_terminal=True, color_system="standard")
    terminal.print_scorecard(c, make_scorecard(), lang="en")
    styled = out.getvalue()
    assert "\x1b[1m" in styled  # bold survives
    assert "\x1b[31" not in styled and "\x1b[1;31" not in styled  # no red foreground
    assert "■ RED" in styled


def test_colour_is_used_on_a_terminal() -> None:
    out = io.StringIO()
    c = Console(file=out, width=120, force_terminal=True, color_system="standard")
    terminal.print_scorecard(c, make_scorecard(), lang="en")
    assert "\x1b[1;31m■ RED" in out.getvalue()


def test_empty_scorecard() -> None:
    sc = make_scorecard()
    empty = Scorecard(as_of=sc.as_of, grain="day", cells=sc.cells.head(0))
    c = console()
    terminal.print_scorecard(c, empty, lang="en")
    text = c.export_text()
    assert "(no cells)" in text and "(0 cells)" in text


def test_indicator_detail_snapshot() -> None:
    sc = make_scorecard()
    c = console()
    terminal.print_indicator(c, aqi_indicator(), sc.cells, sc.history, lang="zh")
    text = c.export_text()
    for expected in (
        "空气质量指数 · env.air.aqi",
        "Air quality index",
        "轻度污染",
        "override",
        "persistence",
        "█",
    ):
        assert expected in text
    assert_snapshot("indicator_aqi.txt", text)


def test_indicator_detail_without_history() -> None:
    sc = make_scorecard()
    c = console()
    terminal.print_indicator(c, aqi_indicator(), sc.cells.head(0), sc.history.head(0), lang="en")
    assert "(no history)" in c.export_text()


def test_alerts_snapshot() -> None:
    sc = make_scorecard()
    previous = replace(
        sc,
        cells=sc.cells.with_columns(
            pl.when(pl.col("indicator_id") == "env.air.aqi")
            .then(pl.col("severity"))
            .otherwise(pl.lit(0, dtype=pl.Int8))
            .alias("severity")
        ),
    )
    frame = views.alerts(sc, previous, min_colour="orange")
    assert frame.height == 3
    assert frame.filter(pl.col("is_new")).height == 2  # AQI Yuzhong was red already
    c = console()
    terminal.print_alerts(c, frame, lang="en", as_of=sc.as_of)
    text = c.export_text()
    assert "3 alerts ≥ ORANGE, 2 new" in text and "3 days" in text
    assert_snapshot("alerts_en.txt", text)
    # an 80-column terminal gets a two-line list: names and reasons whole, never folded into a column
    narrow = Console(width=80, force_terminal=False, no_color=True, record=True)
    terminal.print_alerts(narrow, frame, lang="en", as_of=sc.as_of)
    lines = narrow.export_text().splitlines()[1:]
    assert len(lines) == 6 and all(len(line.rstrip()) <= 80 for line in lines)
    heads, reasons = lines[0::2], lines[1::2]
    assert all(h.split()[1] in ("RED", "ORANGE") and " · " in h for h in heads)
    assert all(r.startswith("    ") and r.strip() for r in reasons)


def test_league_and_diff_and_runs_snapshot() -> None:
    sc = make_scorecard()
    c = console()
    terminal.print_league(
        c, views.league_table(sc, "env.air.aqi", direction="lower_is_better"), title="AQI", lang="zh"
    )
    terminal.print_league(c, views.league_table(sc, "index.operation"), title="运维指数", lang="zh")
    before = replace(
        sc,
        cells=sc.cells.with_columns(
            pl.lit("green").alias("status"), pl.lit(0, dtype=pl.Int8).alias("severity")
        ),
    )
    terminal.print_diff(
        c, views.diff_scorecards(before, sc), lang="en", label_from="run 1", label_to="run 2", names=sc.cells
    )
    runs = pl.DataFrame(
        {
            "run_id": [1, 2],
            "created_at": [None, None],
            "as_of": [date(2026, 11, 23), date(2026, 11, 24)],
            "grain": ["day", "day"],
            "cells": [12, 12],
            "counts": ['{"red": 1, "green": 3}', '{"orange": 2, "no_data": 1}'],
        }
    )
    terminal.print_runs(c, runs)
    text = c.export_text()
    assert "1 newly red" in text and "2O 1N" in text
    assert_snapshot("league_diff_runs.txt", text)


def test_format_helpers() -> None:
    assert sparkline([1, 2, None, 8]) == "▁▂ █"
    assert sparkline([5, 5]) == "▄▄"
    assert sparkline([]) == ""
    assert fmt_change(3.21, "percent") == "▲ +3.2%"
    assert fmt_change(-1.5, "points") == "▼ -1.5 pp"
    assert fmt_change(0.0, "percent") == "= 0.0%"
    assert fmt_change(None, "percent") == ""
    assert fmt_value(12345.0, "t") == "12,345 t"
    assert fmt_value(98.5, "%") == "98.5%"
    assert fmt_value(None, "%") == "—"
