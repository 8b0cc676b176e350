"""Labels an analyst reads must be honest (issue: analyst correctness): the language asked for, no band
for a cell without a value, and changes counted in the unit they are in."""

from __future__ import annotations

from datetime import date

import polars as pl
from typer.testing import CliRunner

import citykpi
from citykpi.cli import app
from citykpi.render.format import fmt_change
from tests.golden_support import SampleCity

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
