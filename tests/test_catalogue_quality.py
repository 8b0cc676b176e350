"""The data-quality declarations of the catalogue: feeds, consistency rules, due times, base periods,
source filters and timeliness — parsed values, every check with its line, and ingest --feed."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from citykpi.catalogue import check_catalogue, load_catalogue
from citykpi.cli import app
from citykpi.errors import UsageError
from citykpi.warehouse import IngestOptions, Warehouse, load_areas
from citykpi.warehouse.ingest.feeds import ingest_feed, options_for_feed
from tests._warehouse_support import write

HEAD = """\
indicators:
  - id: pop.total
    name: {zh: 人口, en: Population}
    kind: kpi
    domain: population
    unit: persons
    description: Population on 1 January.
    owner: 统计局
    levels: [city, district]
    frequency: yearly
    direction: higher_is_better
    thresholds: {basis: change_base_period, yellow: -1, red: -5}
    base_period: 2010
    due: "09:00 next day"
  - id: pop.young
    name: {zh: 幼儿, en: Children}
    kind: kpi
    domain: population
    unit: persons
    description: Children 0-4.
    levels: [city]
    frequency: yearly
    direction: higher_is_better
    thresholds: {yellow: 10, red: 5}
    base_period: "2010-06"
sources:
  - id: cases
    description: Requests.
    time_column: opened
    area_column: area
    key: key
    columns: {key: text, opened: timestamp, closed: timestamp, area: text, agency: text, status: text}
    filter: "status <> 'Duplicate'"
    owner: 政务局
    provider_column: agency
    timeliness: {done: closed, within: 24h}
"""
FEEDS = """\
feeds:
  - id: urb
    provider: Eurostat
    indicators: [pop.total]
    files: ["urb_*.csv"]
    columns: {indicator_id: INDIC_UR, area_id: CITIES, period: TIME, value: Value}
    date_formats: {period: "%Y"}
    missing: [":", ""]
    dimensions: [sex]
    recode:
      INDIC_UR:
        "total": pop.total
        "male": {indicator_id: pop.total, sex: male}
        "female": {indicator_id: pop.total, sex: female}
        "young": {indicator_id: pop.young}
    due: 90d
  - id: cases_feed
    format: source
    source: cases
    columns: {key: Unique Key}
consistency:
  - {id: by_sex, kind: disaggregation, indicator: pop.total, dimension: sex, values: [male, female], tolerance: 0.5}
  - {id: young_within, kind: sum, total: pop.total, parts: [pop.young, pop.total2]}
"""


ROLLUP_FROM = "{id: young_within, kind: sum, total: pop.total, parts: [pop.young, pop.total2]}"
ROLLUP_TO = '{id: young_within, kind: area_rollup, indicator: pop.total, level: city, tolerance: "1%"}'


def _check(tmp_path: Path, text: str) -> list[tuple[str, int | None, str]]:
    path = tmp_path / "cat.yaml"
    path.write_text(text, encoding="utf-8")
    return [(d.rule, d.location.line, d.message) for d in check_catalogue(path).diagnostics]


def test_declarations_parse_to_the_model(tmp_path: Path) -> None:
    text = HEAD + FEEDS.replace(ROLLUP_FROM, ROLLUP_TO)
    path = tmp_path / "cat.yaml"
    path.write_text(text, encoding="utf-8")
    result = check_catalogue(path)
    assert result.errors == (), [str(d) for d in result.errors]
    cat = result.catalogue
    assert cat is not None
    pop = cat.indicator("pop.total")
    assert (pop.due, pop.base_period) == (timedelta(hours=9), date(2010, 1, 1))
    assert cat.indicator("pop.young").base_period == date(2010, 6, 1)
    src = cat.sources[0]
    assert (src.filter, src.owner, src.provider_column) == ("status <> 'Duplicate'", "政务局", "agency")
    assert src.timeliness is not None and (src.timeliness.done, src.timeliness.within) == (
        "closed",
        timedelta(hours=24),
    )
    urb, cases = cat.feeds
    assert (urb.provider, urb.missing, urb.due, dict(urb.dimensions)) == (
        "Eurostat",
        (":", ""),
        timedelta(days=90),
        {"sex": ""},
    )
    assert urb.recode["INDIC_UR"]["total"] == {"": "pop.total"}
    assert (cases.format, cases.source) == ("source", "cases")
    rule, total = cat.consistency
    assert (rule.kind, rule.values, rule.tolerance, rule.relative) == (
        "disaggregation",
        ("male", "female"),
        0.5,
        False,
    )
    assert (total.kind, total.level, total.tolerance, total.relative, total.subject) == (
        "area_rollup",
        "city",
        1.0,
        True,
        "pop.total",
    )
    assert "2 feeds, 2 consistency rules" in _summary(result)
    # the cache round-trips the new model classes
    from citykpi.catalogue import cache

    assert cache.decode(__import__("json").dumps(cache.encode(cat))) == cat


def _summary(result: object) -> str:
    from citykpi.render.diagnostics import summary_line

    return summary_line(result)  # type: ignore[arg-type]


CASES = [
    # (YAML after HEAD, rule, line, words)
    (FEEDS, "CK090", 59, "consistency rule young_within: parts 'pop.total2' is not an indicator"),
    (
        FEEDS.replace("parts: [pop.young, pop.total2]", "parts: [pop.young]"),
        "CK092",
        59,
        "needs at least two parts",
    ),
    (
        "feeds:\n  - {id: f, indicators: [pop.totl]}\n",
        "CK040",
        38,
        "feed f refers to unknown indicator 'pop.totl'",
    ),
    ("feeds:\n  - {id: f, format: source}\n", "CK011", 38, "feed f of format source needs source"),
    (
        "feeds:\n  - {id: f, format: source, source: nope}\n",
        "CK040",
        38,
        "feed f refers to unknown source 'nope'",
    ),
    ("feeds:\n  - {id: f, columns: {colour: C}}\n", "CK013", 38, "'columns' of feed f names 'colour'"),
    ("feeds:\n  - {id: f, format: wide, set: {indicator_id: x}}\n", "CK013", 38, "names 'indicator_id'"),
    (
        "feeds:\n  - {id: f, recode: {C: {a: {colour: red}}}}\n",
        "CK013",
        38,
        "recode of feed f sets 'colour', which is neither a field nor a declared dimension",
    ),
    (
        "feeds:\n  - {id: f, recode: {C: {a: pop.total}}}\n",
        "CK013",
        38,
        "column 'C' is mapped to no field",
    ),
    (
        "feeds:\n  - {id: f, columns: {indicator_id: C}, recode: {C: {a: pop.totl}}}\n",
        "CK040",
        38,
        "recode of feed f refers to unknown indicator 'pop.totl'",
    ),
    ("feeds:\n  - {id: f, due: soon}\n", "CK013", 38, "due of feed f must be a duration"),
    ("feeds:\n  - {id: f, dimensions: {Sex: S}}\n", "CK013", 38, "dimension 'Sex' of feed f"),
    ("feeds:\n  - {id: f}\n  - {id: f}\n", "CK020", 39, "duplicate feed id 'f'"),
    ("consistency:\n  - {id: r, kind: total}\n", "CK083", 38, "unknown kind 'total'"),
    (
        "consistency:\n  - {id: r, kind: sum, total: pop.total, parts: [pop.young, pop.total], dimension: sex}\n",
        "CK092",
        38,
        "of kind sum does not use 'dimension'",
    ),
    (
        "consistency:\n  - {id: r, kind: sum, total: pop.total, parts: [pop.young, pop.total]}\n",
        "CK092",
        38,
        "the total pop.total is also one of its parts",
    ),
    (
        "consistency:\n  - {id: r, kind: area_rollup, indicator: pop.young}\n",
        "CK092",
        38,
        "pop.young is reported at city only, so no parent level has children",
    ),
    (
        "consistency:\n  - {id: r, kind: area_rollup, indicator: pop.total, level: district}\n",
        "CK092",
        38,
        "level district is not a parent level of pop.total",
    ),
    (
        "consistency:\n  - {id: r, kind: sum, tolerance: lots}\n",
        "CK013",
        38,
        "tolerance of consistency rule r",
    ),
    (
        "feeds:\n  - {id: f, indicators: [pop.total], dimensions: {age: A}}\n"
        "consistency:\n  - {id: r, kind: disaggregation, indicator: pop.total, dimension: sex}\n",
        "CK091",
        40,
        "no feed of pop.total carries (feeds: f)",
    ),
]


@pytest.mark.parametrize(
    ("tail", "rule", "line", "words"), CASES, ids=[f"{c[1]}-{i}" for i, c in enumerate(CASES)]
)
def test_feed_and_rule_messages(tmp_path: Path, tail: str, rule: str, line: int, words: str) -> None:
    found = _check(tmp_path, HEAD + tail)
    hits = [f for f in found if f[0] == rule and words in f[2]]
    assert hits, found
    assert any(h[1] == line for h in hits), hits


INDICATOR_CASES = [
    ("due: later", "CK013", "due of indicator pop.total must be a duration"),
    ("due: '25:00 next day'", "CK013", "due of indicator pop.total must be a duration"),
    ("base_period: 1850", "CK013", "base_period of indicator pop.total must be a year"),
    ("base_period: '2010-13'", "CK013", "base_period of indicator pop.total must be a year"),
    ("base_period: [2010]", "CK012", "base_period of indicator pop.total must be a year"),
]


@pytest.mark.parametrize(("line", "rule", "words"), INDICATOR_CASES)
def test_indicator_due_and_base_period_messages(tmp_path: Path, line: str, rule: str, words: str) -> None:
    text = HEAD.replace('    due: "09:00 next day"\n', f"    {line}\n").replace("    base_period: 2010\n", "")
    if "base_period" in line:
        text = text.replace('    due: "09:00 next day"\n', "")
    found = _check(tmp_path, text)
    assert any(f[0] == rule and words in f[2] and f[1] == 13 for f in found), found


SOURCE_CASES = [
    ("filter: \"state = 'x'\"", "CK040", "filter of source cases refers to unknown column 'state'"),
    ('filter: "key + 1 > 2"', "CK071", "filter of source cases"),
    ("filter: 'closed'", "CK071", "filter of source cases"),
    (
        "provider_column: agencyy",
        "CK040",
        "provider_column 'agencyy' of source cases is not a declared column",
    ),
    ("timeliness: {done: closd, within: 24h}", "CK040", "timeliness.done 'closd' of source cases"),
    ("timeliness: {done: agency, within: 24h}", "CK012", "must be a date or timestamp column"),
    ("timeliness: {done: closed}", "CK011", "needs due (a column with each record's due time) or within"),
    ("timeliness: {due: closed, within: 2h}", "CK013", "gives both due and within"),
    ("timeliness: {within: soon}", "CK013", "within of timeliness of source cases must be a duration"),
]


@pytest.mark.parametrize(("line", "rule", "words"), SOURCE_CASES)
def test_source_quality_messages(tmp_path: Path, line: str, rule: str, words: str) -> None:
    text = HEAD.replace("    filter: \"status <> 'Duplicate'\"\n", "").replace(
        "    provider_column: agency\n", ""
    )
    text = text.replace("    timeliness: {done: closed, within: 24h}\n", f"    {line}\n")
    found = _check(tmp_path, text)
    assert any(f[0] == rule and words in f[2] for f in found), found


def test_a_source_judged_for_timeliness_is_not_unused(tmp_path: Path) -> None:
    assert not [f for f in _check(tmp_path, HEAD) if f[0] == "CK106"]
    no_time = HEAD.replace("    timeliness: {done: closed, within: 24h}\n", "")
    assert [f[0] for f in _check(tmp_path, no_time) if f[0] == "CK106"] == ["CK106"]


# --- ingest --feed ----------------------------------------------------------------------------------

AREAS = "id,name,name_en,level,parent\nDE,德国,Germany,city,\nBerlin,柏林,Berlin,district,DE\n"
DATA = "TIME,CITIES,INDIC_UR,Value\n2020,Berlin,total,10\n2020,Berlin,male,4\n2020,Berlin,female,:\n2020,Berlin,young,\n"


@pytest.fixture
def feed_catalogue(tmp_path: Path) -> Path:
    folder = tmp_path / "cat"
    folder.mkdir()
    (folder / "c.yaml").write_text(HEAD + FEEDS.replace(ROLLUP_FROM, ROLLUP_TO), encoding="utf-8")
    return folder


def test_ingest_with_a_feed(tmp_path: Path, feed_catalogue: Path) -> None:
    cat = load_catalogue(feed_catalogue)
    with Warehouse.open(tmp_path / "w.duckdb") as wh:
        load_areas(wh, write(tmp_path / "a.csv", AREAS))
        report = ingest_feed(
            wh, cat, [write(tmp_path / "urb_2020.csv", DATA)], "urb", IngestOptions(now=datetime(2024, 1, 1))
        )
        f = report.files[0]
        assert (f.status, f.rows_loaded, f.rows_rejected) == ("loaded", 4, 0), f
        assert wh.con.execute("SELECT value FROM observations").fetchall() == [(10.0,)]
        assert wh.con.execute("SELECT dims, value FROM observations_dims").fetchall() == [("sex=male", 4.0)]
        assert wh.con.execute("SELECT dims, token FROM observations_missing ORDER BY 1").fetchall() == [
            ("", ""),
            ("sex=female", ":"),
        ]
        assert '"feed": "urb"' in wh.con.execute("SELECT options FROM batches").fetchall()[0][0]


def test_options_on_the_command_line_win(feed_catalogue: Path) -> None:
    feed = load_catalogue(feed_catalogue).feeds[0]
    given = IngestOptions(mapping={"area_id": "CITY"}, missing=("NA",), fmt="wide")
    merged = options_for_feed(feed, given, explicit=("fmt",))
    assert merged.mapping["area_id"] == "CITY" and merged.mapping["period"] == "TIME"
    assert merged.missing == (":", "", "NA") and merged.fmt == "wide" and merged.feed == "urb"
    assert merged.recode["INDIC_UR"]["total"] == {"indicator_id": "pop.total"}
    assert options_for_feed(feed, IngestOptions()).fmt == "long"


def test_cli_feed_auto_and_unknown_feed(tmp_path: Path, feed_catalogue: Path) -> None:
    runner = CliRunner()
    base = ["--db", str(tmp_path / "w.duckdb"), "--catalogue", str(feed_catalogue)]
    assert runner.invoke(app, [*base, "areas", "load", str(write(tmp_path / "a.csv", AREAS))]).exit_code == 0
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    write(inbox / "urb_2020.csv", DATA)
    write(inbox / "other.csv", DATA)
    result = runner.invoke(app, [*base, "ingest", str(inbox), "--feed", "auto"])
    assert result.exit_code == 1, result.output  # other.csv matches no feed
    assert "loaded    " in result.output and "urb_2020.csv: 4 loaded, 0 rejected" in result.output
    assert "no feed's files match other.csv" in result.output
    bad = runner.invoke(app, [*base, "ingest", str(inbox / "other.csv"), "--feed", "nope"])
    assert bad.exit_code == 2 and "unknown feed 'nope'; the catalogue declares: urb, cases_feed" in bad.output


def test_unknown_feed_in_the_library() -> None:
    from citykpi.catalogue.model import Catalogue
    from citykpi.warehouse.ingest.feeds import feed_by_id

    with pytest.raises(UsageError, match="none declared"):
        feed_by_id(Catalogue(indicators=()), "x")
