"""Labels an analyst reads must be honest (issue: analyst correctness): the language asked for, no band
for a cell without a value, and changes counted in the unit they are in."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

import citykpi
from citykpi.cli import app
from citykpi.engine.scorecard import Scorecard
from citykpi.render.format import fmt_change, fmt_target
from tests.golden_support import SampleCity
from tests.scorecard_fixtures import make_scorecard

DAY = "2025-12-31"


def _run(city: SampleCity, *args: str) -> str:
    runner = CliRunner(env={"COLUMNS": "200", "NO_COLOR": "1"})
    r = runner.invoke(app, ["--db", str(city.db), "--catalogue", str(city.catalogue), *args])
    assert r.exit_code == 0, r.output
    return r.stdout


def test_english_scorecard_names_the_bands_of_a_scale_in_english(sample_city: SampleCity) -> None:
    args = ("evaluate", "--date", DAY, "--no-record", "--indicator", "env.air.aqi", "--level", "city")
    english = _run(sample_city, *args, "--lang", "en")
    chinese = _run(sample_city, *args, "--lang", "zh")
    zh_labels = ("优", "良", "轻度污染", "中度污染", "重度污染", "严重污染")
    en_labels = (
        "Excellent",
        "Good",
        "Lightly polluted",
        "Moderately",
        "Heavily polluted",
        "Severely polluted",
    )
    assert not any(label in english for label in zh_labels), english
    assert any(label in english for label in en_labels), english
    assert any(label in chinese for label in zh_labels), chinese


def test_a_cell_without_a_value_has_no_band_label(sample_city: SampleCity) -> None:
    catalogue = citykpi.load_catalogue(sample_city.catalogue)
    with citykpi.open_warehouse(sample_city.db, read_only=True) as wh:
        # long after the sample city's last day: nothing within any look-back window
        card = citykpi.evaluate(wh, catalogue, as_of=date(2027, 6, 30), persist=False)
    aqi = card.cells.filter(pl.col("indicator_id") == "env.air.aqi")
    assert aqi.height > 0 and aqi["value"].null_count() == aqi.height
    assert aqi["band_label"].null_count() == aqi.height
    assert aqi["band_label_en"].null_count() == aqi.height
    shown = _run(sample_city, "show", "env.air.aqi", "--to", "2027-06-30", "--lang", "en")
    lines = shown.splitlines()
    status = "\n".join(
        lines[[line.strip() for line in lines].index("Status") :]
    )  # the cells, after the bands
    assert "Chongqing" in status and "polluted" not in status and "污染" not in status, status


def test_points_are_percentage_points_only_for_percentages() -> None:
    assert fmt_change(-1.5, "points", unit="%") == "▼ -1.5 pp"
    assert fmt_change(1.6, "points", unit="per 10k") == "▲ +1.6 per 10k"
    assert fmt_change(0.4, "points", unit="‰") == "▲ +0.4 ‰"
    assert fmt_change(3.21, "percent", unit="per 10k") == "▲ +3.2%"


def test_a_rate_per_100k_changes_in_its_own_unit(sample_city: SampleCity) -> None:
    out = _run(
        sample_city, "evaluate", "--date", DAY, "--no-record", "--indicator", "ps.fire.rate_per_100k",
        "--lang", "en", "--level", "city",
    )  # fmt: skip
    line = next(line for line in out.splitlines() if "per 100k" in line and "Chongqing" in line)
    assert " pp" not in line and line.count("per 100k") >= 2, line


def test_a_date_past_the_newest_data_is_warned_about(sample_city: SampleCity) -> None:
    runner = CliRunner(env={"COLUMNS": "120", "NO_COLOR": "1"})
    base = ["--db", str(sample_city.db), "--catalogue", str(sample_city.catalogue)]
    for command in (["evaluate", "--no-record"], ["alerts"], ["rank", "env.air.aqi"]):
        late = runner.invoke(app, [*base, *command, "--date", "2026-02-01"])
        assert late.exit_code == 0, late.output
        assert "2026-02-01 is after the newest data (2025-12-31)" in late.stderr, command
        on_time = runner.invoke(app, [*base, *command, "--date", DAY])
        assert on_time.exit_code == 0 and "newest data" not in on_time.stderr, command


def test_help_examples_use_dates_the_sample_city_has() -> None:
    """Every date in a command's example lies within the bundled sample city (its last 430 days)."""
    import re
    from datetime import timedelta

    last = date(2025, 12, 31)
    runner = CliRunner(env={"COLUMNS": "200"})
    commands = (["evaluate"], ["show"], ["alerts"], ["rank"], ["diff"], ["run"], ["runs", "list"], ["check"])
    seen = []
    for args in commands:
        r = runner.invoke(app, [*args, "--help"])
        for found in re.findall(r"\d{4}-\d{2}-\d{2}", r.stdout):
            seen.append(found)
            assert last - timedelta(days=429) <= date.fromisoformat(found) <= last, (args, found)
    assert len(seen) >= 5


@pytest.mark.parametrize(
    ("attainment", "expected", "status", "text"),
    [
        (0.998, 1.0, "missed", "99.8% (exp. 100%) missed"),  # not '100% (exp. 100%) missed'
        (0.9999, 1.0, "missed", "99.99% (exp. 100%) missed"),
        (0.99999999, 1.0, "missed", "99.999999% (exp. 100%) missed"),
        (1.0, 1.0, "achieved", "100% (exp. 100%) achieved"),
        (1.0002, 1.0, "achieved", "100% (exp. 100%) achieved"),  # past the goal it reached: no noise
        (0.873, 0.9, "behind", "87% (exp. 90%) behind"),
        (0.4996, 0.5004, "behind", "49.96% (exp. 50.04%) behind"),  # behind: the two read apart
        (0.5004, 0.4996, "on_track", "50% (exp. 50%) on track"),  # ahead of what it reached: consistent
        (0.9996, 0.5, "on_track", "99.96% (exp. 50%) on track"),  # not yet the whole goal
        (0.5, 0.9996, "behind", "50% (exp. 99.96%) behind"),  # the deadline has not come yet
        (1.0004, 1.0, "missed", "100.04% (exp. 100%) missed"),  # a budget overspent by a hair
    ],
)
def test_target_progress_never_rounds_into_its_status(
    attainment: float, expected: float, status: str, text: str
) -> None:
    assert fmt_target(attainment, expected, status, "en") == text


def _missed_by_a_hair() -> Scorecard:
    """The fixture scorecard whose good-air-days targets are missed by 0.2 % and 0.01 %."""
    sc = make_scorecard()
    target = pl.col("target_value").is_not_null()
    cells = sc.cells.with_columns(
        pl.when(target & (pl.col("area_id") == pl.col("area_id").filter(target).first()))
        .then(0.998)
        .when(target)
        .then(0.9999)
        .otherwise(pl.col("attainment"))
        .alias("attainment"),
        pl.when(target).then(1.0).otherwise(pl.col("expected_progress")).alias("expected_progress"),
        pl.when(target).then(pl.lit("missed")).otherwise(pl.col("target_status")).alias("target_status"),
    )
    assert cells.filter(target).height >= 2
    return replace(sc, cells=cells)


def test_progress_agrees_with_its_status_in_every_view(tmp_path: Path) -> None:
    import openpyxl
    from rich.console import Console

    from citykpi.render.exports import render_markdown
    from citykpi.render.html import render_html
    from citykpi.render.terminal import print_scorecard
    from citykpi.render.xlsx import xlsx_writer

    sc = _missed_by_a_hair()
    console = Console(width=200, record=True, color_system=None)
    print_scorecard(console, sc, lang="zh")
    terminal = console.export_text()
    for view in (terminal, render_markdown(sc, lang="zh")):
        assert "99.8% (应达 100%) 未完成" in view and "99.99% (应达 100%) 未完成" in view
        assert "100% (应达 100%) 未完成" not in view
    html = render_html(sc, lang="en")
    assert "99.8% (exp. 100%) missed" in html and "99.99% (exp. 100%) missed" in html
    assert 'aria-label="99.8%"' in html and 'aria-label="99.99%"' in html
    xlsx_writer(sc, "en")(tmp_path / "s.xlsx")
    wb = openpyxl.load_workbook(tmp_path / "s.xlsx")
    formats = set()
    for ws in wb.worksheets:
        head = [c.value for c in ws[1]]
        if "Attainment" not in head and "attainment" not in head:
            continue
        col = head.index("Attainment" if "Attainment" in head else "attainment")
        for row in ws.iter_rows(min_row=2):
            cell = row[col]
            if cell.value in (0.998, 0.9999):
                formats.add((cell.value, cell.number_format))
    assert formats == {(0.998, "0.0%"), (0.9999, "0.00%")}


#: Fractions to the millionth (closer than the extra digits can tell apart is float noise, not progress).
_MILLIONTHS = st.integers(min_value=0, max_value=1_500_000).map(lambda n: n / 1e6)


@given(attainment=_MILLIONTHS, expected=_MILLIONTHS.filter(lambda x: x <= 1.0))
def test_progress_as_printed_agrees_with_the_status_the_engine_gives(
    attainment: float, expected: float
) -> None:
    """The engine's rule (a target to reach): achieved from 1, missed when the time is up, on track when at
    or above the expected progress, else behind. Read back, the printed percentages say the same."""
    if attainment >= 1:
        status = "achieved"
    elif expected >= 1:
        status = "missed"
    elif attainment >= expected:
        status = "on_track"
    else:
        status = "behind"
    text = fmt_target(attainment, expected, status, "en")
    shown, exp_shown = (float(t.strip("(%)")) for t in text.split()[0:3:2])
    if status != "achieved":
        assert shown < 100, text
    if status in ("behind", "on_track"):
        assert exp_shown < 100, text
    if status == "behind":
        assert shown < exp_shown, text
    if status == "on_track":
        assert shown >= exp_shown, text
