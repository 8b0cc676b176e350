"""League tables are honest (issue: analyst correctness): an index's change is its score against the
previous period, areas without a colour are listed last and never ranked, and an empty table says why."""

from __future__ import annotations

import math
import re
from dataclasses import replace
from datetime import date

import polars as pl
import pytest
from rich.cells import cell_len
from typer.testing import CliRunner

from citykpi.catalogue.model import SEVERITY
from citykpi.cli import app
from citykpi.engine.funnel import Z95, Z998, byar, wilson
from citykpi.engine.scorecard import CELL_SCHEMA, PARTS_SCHEMA, Scorecard
from citykpi.render.views import funnel_text, league_note, league_table
from citykpi.warehouse import run_query
from tests.golden_support import SampleCity
from tests.scorecard_fixtures import make_scorecard


def test_an_index_changes_against_its_previous_score() -> None:
    now = make_scorecard()
    before = replace(now, indices=now.indices.with_columns(pl.col("score") - 2.5))
    table = league_table(now, "index.operation", level="district", previous=before)
    assert table["change_previous"].to_list() == [2.5, 2.5]
    assert set(table["change_unit"].to_list()) == {"points"}
    alone = league_table(now, "index.operation", level="district")  # nothing to compare with
    assert alone["change_previous"].null_count() == alone.height


def test_areas_without_a_colour_are_listed_last_and_not_ranked() -> None:
    table = league_table(
        make_scorecard(), "water.supply.pressure_ok", level="district", direction="higher_is_better"
    )
    # Yuzhong is stale and Yubei has no data: neither outranks anything, and neither gets a number
    assert table["status"].to_list() == ["stale", "no_data"]
    assert table["rank"].to_list() == [None, None]
    ranked = league_table(make_scorecard(), "env.air.aqi", level="district", direction="lower_is_better")
    assert ranked["rank"].to_list() == [1, 2]


def _rank(city: SampleCity, *args: str) -> tuple[int, str, str]:
    runner = CliRunner(env={"COLUMNS": "120", "NO_COLOR": "1"})
    r = runner.invoke(app, ["--db", str(city.db), "--catalogue", str(city.catalogue), "rank", *args])
    return r.exit_code, r.stdout, r.stderr


def test_an_empty_level_says_why(sample_city: SampleCity) -> None:
    code, out, _ = _rank(
        sample_city, "env.air.aqi", "--level", "street", "--date", "2025-12-31", "--lang", "en"
    )
    assert code == 0
    assert out.strip() == "no street-level areas to rank: env.air.aqi is reported at city, district only"
    code, out, err = _rank(
        sample_city, "env.air.aqi", "--level", "street", "--date", "2025-12-31", "--format", "csv"
    )
    assert code == 0 and out.startswith("rank,area_id") and "reported at city, district only" in err


def test_the_index_league_has_a_change_column(sample_city: SampleCity) -> None:
    code, out, _ = _rank(sample_city, "index.operation", "--date", "2025-12-31", "--format", "csv")
    assert code == 0
    frame = pl.read_csv(out.encode())
    assert frame.height == 40 and frame["change_previous"].null_count() < frame.height


# --- ties, intervals and the funnel (rates built from small counts) ---------------------------------


def _rate_card(rows: list[tuple[str, str, float | None, float | None]], unit: str = "%") -> Scorecard:
    """A district-level scorecard of one rate: (area id, status, numerator, denominator) per area."""
    factor = 100.0 if unit == "%" else 10_000.0
    cells = []
    for area_id, status, n, d in rows:
        value = None if n is None or d is None else n / d * factor
        cells.append(
            {
                "indicator_id": "x.rate",
                "area_id": area_id,
                "level": "district",
                "unit": unit,
                "value": value,
                "status": status,
                "severity": SEVERITY.get(status),
                "change_unit": "points",
            }
        )
    frame = pl.DataFrame(cells).select(
        [
            pl.col(k).cast(t) if k in cells[0] else pl.lit(None, dtype=t).alias(k)
            for k, t in CELL_SCHEMA.items()
        ]
    )
    parts = pl.DataFrame(
        {
            "indicator_id": ["x.rate"] * len(rows),
            "area_id": [r[0] for r in rows],
            "numerator": [r[2] for r in rows],
            "denominator": [r[3] for r in rows],
            "factor": [factor] * len(rows),
        },
        schema=dict(PARTS_SCHEMA),
    )
    return Scorecard(as_of=date(2025, 12, 31), grain="month", cells=frame, parts=parts)


def test_wilson_and_byar_bounds_match_known_values() -> None:
    frame = pl.DataFrame({"n": [0.0, 8.0, 10.0, 0.0], "d": [10.0, 10.0, 1.0, 1.0]})
    lo, hi = wilson(pl.col("n"), pl.col("d"), Z95)
    w = frame.head(2).select(lo.alias("lo"), hi.alias("hi"))
    # Wilson 95 %: 0 of 10 → 0–0.2775, 8 of 10 → 0.4902–0.9433 (Newcombe 1998, table I)
    assert w["lo"].to_list() == pytest.approx([0.0, 0.4902], abs=5e-5)
    assert w["hi"].to_list() == pytest.approx([0.2775, 0.9433], abs=5e-5)
    lo, hi = byar(pl.col("n"), pl.col("d"), Z95)
    b = frame.tail(2).select(lo.alias("lo"), hi.alias("hi"))
    # Byar, by hand: 10 (1 − 1/90 − 1.96/(3√10))³ and 11 (1 − 1/99 + 1.96/(3√11))³; n = 0 → 0 and 1 (…)³
    by_hand_lo = 10 * (1 - 1 / 90 - Z95 / (3 * math.sqrt(10))) ** 3
    by_hand_hi = 11 * (1 - 1 / 99 + Z95 / (3 * math.sqrt(11))) ** 3
    assert b["lo"].to_list() == pytest.approx([by_hand_lo, 0.0], rel=1e-12)
    assert b["hi"].to_list()[0] == pytest.approx(by_hand_hi, rel=1e-12)
    # … within 0.2 % of the exact (Garwood) limits 4.795–18.390 and, for n = 0, 0–3.689
    assert by_hand_lo == pytest.approx(4.795, rel=2e-3) and by_hand_hi == pytest.approx(18.390, rel=2e-3)
    assert b["hi"].to_list()[1] == pytest.approx(3.689, rel=1e-2)


def test_funnel_flags_match_the_limits_computed_by_hand() -> None:
    # four districts; overall θ = 1014 / 1159. The funnel's limits θ ± z √(θ(1−θ)/d), by hand:
    #   A 9/9 = 100 %    d = 9:    95 % limits 65.9–100+  → within (a perfect score from 9 cases)
    #   B 900/1000 = 90 % d = 1000: 95 % 85.4–89.5, 99.8 % 84.3–90.7 → above the 95 % limit only
    #   C 45/50 = 90 %   d = 50:   95 % 78.3–96.7 → within (the same 90 % as B, but 50 cases)
    #   D 60/100 = 60 %  d = 100:  99.8 % 77.3–97.7 → below the 99.8 % limit
    card = _rate_card(
        [("A", "green", 9, 9), ("B", "green", 900, 1000), ("C", "green", 45, 50), ("D", "red", 60, 100)]
    )
    table = league_table(card, "x.rate", level="district", direction="higher_is_better")
    flags = dict(zip(table["area_id"], table["funnel"], strict=True))
    assert flags == {"A": "within", "B": "above_95", "C": "within", "D": "below_998"}
    theta = 1014 / 1159
    for area, n, d in (("A", 9, 9), ("B", 900, 1000), ("C", 45, 50), ("D", 60, 100)):
        p = n / d
        half95 = Z95 * math.sqrt(theta * (1 - theta) / d)
        half998 = Z998 * math.sqrt(theta * (1 - theta) / d)
        expected = (
            "within"
            if abs(p - theta) <= half95
            else ("above" if p > theta else "below") + ("_998" if abs(p - theta) > half998 else "_95")
        )
        assert flags[area] == expected, area
    assert table["overall"].to_list() == pytest.approx([theta * 100] * 4)
    row = table.filter(pl.col("area_id") == "A").row(0, named=True)
    # Wilson 95 % of 9/9: 70.1 %–100 %
    assert (row["ci_low"], row["ci_high"]) == (pytest.approx(70.085, abs=1e-3), pytest.approx(100.0))
    assert (row["numerator"], row["denominator"]) == (9.0, 9.0)


def test_ties_share_a_rank_and_rank_ranges_follow_the_intervals() -> None:
    card = _rate_card(
        [
            ("A", "green", 9, 9),  # 100 % of 9: could be anywhere from 1st to last
            ("B", "green", 990, 1000),  # 99.0 % of 1000: 98.2–99.5
            ("C", "green", 99, 100),  # 99 % of 100: ties B on the value (same rank)
            ("D", "yellow", 800, 1000),  # 80 %, yellow: ranked after every green area
            ("E", "no_data", None, None),
        ]
    )
    table = league_table(card, "x.rate", level="district", direction="higher_is_better")
    assert table["area_id"].to_list() == ["A", "B", "C", "D", "E"]
    assert table["rank"].to_list() == [1, 2, 2, 4, None]
    # intervals (Wilson 95 %): A 70.1–100, B 98.2–99.5, C 94.6–99.8, D 77.4–82.4
    # A: nothing surely ahead, D (77.4–82.4) overlaps A → 1–4; B: A, C overlap, D surely behind → 1–3;
    # D: B and C surely ahead, A not → 3–4
    assert table["rank_low"].to_list() == [1, 1, 1, 3, None]
    assert table["rank_high"].to_list() == [4, 3, 3, 4, None]
    assert table.filter(pl.col("area_id") == "E")["funnel"].to_list() == [None]


def test_a_value_the_parts_do_not_make_gets_no_interval() -> None:
    card = _rate_card([("A", "green", 9, 10), ("B", "green", 8, 10), ("C", "green", 7, 10)])
    # a roll-up by mean keeps summed parts that do not give its value: no interval for such a row
    card = replace(
        card,
        cells=card.cells.with_columns(
            pl.when(pl.col("area_id") == "C").then(75.0).otherwise(pl.col("value")).alias("value")
        ),
    )
    table = league_table(card, "x.rate", level="district", direction="higher_is_better")
    assert table.filter(pl.col("area_id") == "C")["ci_low"].to_list() == [None]
    assert table.filter(pl.col("area_id") != "C")["ci_low"].null_count() == 0
    # a unit not built from counts has no interval at all
    per_area = _rate_card([("A", "green", 9, 10), ("B", "green", 8, 10)])
    per_area = replace(per_area, cells=per_area.cells.with_columns(pl.lit("minutes").alias("unit")))
    table = league_table(per_area, "x.rate", level="district", direction="higher_is_better")
    assert table["ci_low"].null_count() == table.height and table["rank_low"].null_count() == table.height
    assert league_note(table) is None


def test_a_per_10k_rate_uses_the_poisson_interval() -> None:
    card = _rate_card([("A", "green", 10, 20_000), ("B", "green", 400, 200_000)], unit="per 10k")
    table = league_table(card, "x.rate", level="district", direction="lower_is_better")
    a = table.filter(pl.col("area_id") == "A").row(0, named=True)
    assert a["value"] == pytest.approx(5.0)
    # Byar 95 % for 10 cases: 4.7876–18.390 cases, over 2 (×10k) residents
    assert a["ci_low"] == pytest.approx(10 * (1 - 1 / 90 - Z95 / (3 * math.sqrt(10))) ** 3 / 2, rel=1e-9)
    assert a["ci_high"] == pytest.approx(11 * (1 - 1 / 99 + Z95 / (3 * math.sqrt(11))) ** 3 / 2, rel=1e-9)
    assert a["funnel"] == "below_998"  # 5 per 10k against an overall 410 / 22 = 18.6: far below (better)
    assert funnel_text(a["funnel"], "lower_is_better", "en") == "better 99.8%"
    note = league_note(table, lang="en")
    assert note is not None and "Byar" in note and "overall 18.6 per 10k" in note


def test_an_all_noise_table_says_it_is_no_ranking() -> None:
    card = _rate_card([("A", "green", 9, 10), ("B", "green", 8, 10), ("C", "green", 7, 10)])
    table = league_table(card, "x.rate", level="district", direction="higher_is_better")
    assert set(table["funnel"].to_list()) == {"within"}
    assert table["rank_low"].to_list() == [1, 1, 1] and table["rank_high"].to_list() == [3, 3, 3]
    note = league_note(table, lang="en")
    assert note is not None and "not a ranking" in note
    assert "不应作为排名发布" in (league_note(table, lang="zh") or "")


def test_rank_of_a_street_rate_carries_intervals_in_every_format(sample_city: SampleCity) -> None:
    args = ("case.hotline.on_time_rate", "--level", "street", "--period", "month", "--date", "2025-12-31")
    code, out, err = _rank(sample_city, *args, "--format", "csv")
    assert code == 0, err
    frame = pl.read_csv(out.encode())
    assert {
        "numerator",
        "denominator",
        "ci_low",
        "ci_high",
        "overall",
        "funnel",
        "rank_low",
        "rank_high",
    } <= set(frame.columns)
    ranked = frame.filter(pl.col("rank").is_not_null())
    assert ranked.height > 100 and ranked["funnel"].null_count() == 0
    # every interval holds its value, every rank range its rank
    assert (ranked["ci_low"] <= ranked["value"] + 1e-9).all() and (
        ranked["value"] <= ranked["ci_high"] + 1e-9
    ).all()
    assert ((ranked["rank_low"] <= ranked["rank"]) & (ranked["rank"] <= ranked["rank_high"])).all()
    # the parts are the raw cases: closed on time / closed, counted by hand in plain SQL for one street
    area = ranked["area_id"][0]
    counted = run_query(
        sample_city.db,
        "SELECT count_if(closed_at <= due_at) AS n, count_if(closed_at IS NOT NULL) AS d "
        f"FROM src_hotline_cases c JOIN areas a ON a.area_key = c.area_key WHERE a.area_id = '{area}' "
        "AND created_at >= TIMESTAMP '2025-12-01' AND created_at < TIMESTAMP '2026-01-01'",
    ).row(0, named=True)
    row = ranked.row(0, named=True)
    assert (row["numerator"], row["denominator"]) == (counted["n"], counted["d"])
    assert err.startswith("note: ") and "95% 区间" in err and "漏斗" in err  # beside a file: on stderr
    for fmt in ("json", "jsonl", "markdown"):
        code, out, _ = _rank(sample_city, *args, "--format", fmt)
        assert code == 0 and "ci_low" in out and "funnel" in out, fmt
    code, out, _ = _rank(sample_city, *args, "--lang", "en")
    assert code == 0 and "95% interval" in out and "Rank range" in out and "noise" in out
    assert "ranks are not distinguishable" in " ".join(out.split())


def _table_rows(out: str, area_head: str) -> list[tuple[str, str]]:
    """(area name, last cell) per row of a printed league table: the area column read from where its
    heading starts, its wrapped lines joined; the last cell is the funnel flag."""
    lines = out.splitlines()
    head = next(n for n, line in enumerate(lines) if area_head in line)
    start = lines[head].index(area_head)
    rows: list[list[str]] = []
    for line in lines[head + 2 :]:
        if not line.strip():
            break
        rank = line[:start].strip()
        cells = re.split(r"\s{2,}", line[start:].strip())
        if rank:
            rows.append([cells[0], cells[-1]])
        else:
            rows[-1][0] += ("" if area_head == "区域" else " ") + cells[0]  # a wrapped name goes on
    return [(a, f) for a, f in rows]


@pytest.mark.parametrize("columns", [80, 60])
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_a_narrow_terminal_keeps_area_names_and_funnel_flags_readable(
    sample_city: SampleCity, columns: int, lang: str
) -> None:
    """Cron and pipes print at 80 columns (or fewer): the area names and the funnel flags are never cut;
    the rank range, the interval and the change are left out first, and the table says so."""
    args = ("case.hotline.on_time_rate", "--level", "street", "--period", "month", "--date", "2025-12-31")
    runner = CliRunner(env={"COLUMNS": str(columns), "NO_COLOR": "1"})
    base = ["--db", str(sample_city.db), "--catalogue", str(sample_city.catalogue), "rank", *args]
    printed = runner.invoke(app, [*base, "--lang", lang])
    assert printed.exit_code == 0, printed.output
    out = printed.stdout
    assert "…" not in out  # nothing truncated
    csv = pl.read_csv(runner.invoke(app, [*base, "--format", "csv"]).stdout.encode())
    expected = [
        (row[f"area_name_{lang}"], funnel_text(row["funnel"], "higher_is_better", lang))
        for row in csv.iter_rows(named=True)
    ]
    rows = _table_rows(out, "Area" if lang == "en" else "区域")
    assert rows == expected
    table_lines = [line.rstrip() for line in out.splitlines() if line.startswith(" ")]
    assert max(cell_len(line) for line in table_lines) <= columns
    left = "Left out at this width: " if lang == "en" else "终端较窄，未显示："
    assert left in out
    if lang == "en" and columns == 80:
        assert "Left out at this width: rank range, 95% interval;" in out
        assert "Change" in out and "Funnel" in out
