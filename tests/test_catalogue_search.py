"""`citykpi catalogue search` and names in place of ids (issue: analyst correctness, finding things)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from citykpi.catalogue import load_catalogue
from citykpi.catalogue.search import resolve_indicator, search
from citykpi.cli import app
from tests.golden_support import SampleCity

ROOT = Path(__file__).resolve().parent.parent
CATALOGUE = ROOT / "indicators"
runner = CliRunner(env={"COLUMNS": "120", "NO_COLOR": "1"})


def test_chinese_and_english_queries_rank_by_where_they_match() -> None:
    cat = load_catalogue(CATALOGUE)
    gas = [h.indicator.id for h in search(cat, "燃气", limit=None)]
    assert gas and all(
        cat.by_id[i].name.zh.find("燃气") >= 0 or "燃气" in cat.by_id[i].description for i in gas
    )
    assert gas[0].startswith("gas.")
    leak = search(cat, "gas leak")
    assert leak[0].indicator.id == "gas.leak.lel"  # both words, in the English name
    assert all("gas" in h.indicator.name.en.lower() or "gas" in h.indicator.id for h in leak)
    assert search(cat, "env.air.aqi")[0].indicator.id == "env.air.aqi"  # the exact id first
    assert search(cat, "zzz-nothing") == []


def test_every_term_must_match() -> None:
    cat = load_catalogue(CATALOGUE)
    both = {h.indicator.id for h in search(cat, "hotline rate", limit=None)}
    hotline = {h.indicator.id for h in search(cat, "hotline", limit=None)}
    assert both and both < hotline


def test_a_name_resolves_to_its_indicator_only_when_it_names_one() -> None:
    cat = load_catalogue(CATALOGUE)
    assert resolve_indicator(cat, "env.air.aqi") == "env.air.aqi"
    assert resolve_indicator(cat, "空气质量指数") == "env.air.aqi"
    assert resolve_indicator(cat, "Air quality index") == "env.air.aqi"
    assert resolve_indicator(cat, "hotline") is None  # several
    assert resolve_indicator(cat, "zzz-nothing") is None


def test_search_command_formats_and_exit_codes() -> None:
    base = ["--catalogue", str(CATALOGUE), "catalogue", "search"]
    text = runner.invoke(app, [*base, "gas leak", "--lang", "en"])
    assert text.exit_code == 0 and "gas.leak.lel" in text.stdout and "Gas leak concentration" in text.stdout
    rows = json.loads(runner.invoke(app, [*base, "燃气", "--format", "json"]).stdout)
    assert rows[0]["id"].startswith("gas.") and rows[0]["score"] >= rows[-1]["score"]
    assert "matched" in rows[0]
    none = runner.invoke(app, [*base, "zzz-nothing"])
    assert none.exit_code == 1 and "no indicator matches" in none.stdout


def test_show_and_rank_accept_a_name(sample_city: SampleCity) -> None:
    base = ["--db", str(sample_city.db), "--catalogue", str(sample_city.catalogue)]
    shown = runner.invoke(app, [*base, "show", "空气质量指数", "--to", "2025-12-31", "--lang", "en"])
    assert shown.exit_code == 0, shown.output
    assert "env.air.aqi" in shown.stdout
    ranked = runner.invoke(
        app, [*base, "rank", "Air quality index", "--date", "2025-12-31", "--format", "csv"]
    )
    assert ranked.exit_code == 0, ranked.output
    assert ranked.stdout.startswith("rank,area_id")
    several = runner.invoke(app, [*base, "rank", "hotline", "--date", "2025-12-31"])
    assert several.exit_code == 2
