"""check_catalogue / load_catalogue: files, hashing, the model they build, cross-file rules, scale."""

from __future__ import annotations

import time
from datetime import date, timedelta
from pathlib import Path

import pytest

from citykpi.catalogue import CatalogueLoadError, CheckResult, check_catalogue, load_catalogue, model
from citykpi.errors import CatalogueError, ExitCode
from tests.catalogue_factory import write_catalogue

IND = """\
  - id: {id}
    name: {{zh: 指标, en: Indicator}}
    kind: kpi
    domain: {domain}
    unit: count
    description: Test.
    levels: [city]
    frequency: daily
    direction: lower_is_better
    thresholds: {{yellow: 10, red: 20}}
"""


def ind(id: str, domain: str = "test", extra: str = "") -> str:
    return IND.format(id=id, domain=domain) + extra


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_folder_is_read_recursively_and_sorted(tmp_path: Path) -> None:
    write(tmp_path, "b.yaml", "indicators:\n" + ind("t.b"))
    write(tmp_path, "a/z.yml", "indicators:\n" + ind("t.z"))
    write(tmp_path, "a/notes.txt", "not yaml")
    write(tmp_path, ".git/x.yaml", "broken: [")
    result = check_catalogue(tmp_path)
    assert result.ok()
    assert [Path(f).name for f in result.files] == ["z.yml", "b.yaml"]
    assert result.catalogue is not None
    assert [i.id for i in result.catalogue.indicators] == ["t.z", "t.b"]
    assert result.counts["files"] == 2 and result.counts["indicators"] == 2


def test_single_file(tmp_path: Path) -> None:
    path = write(tmp_path, "one.yaml", "indicators:\n" + ind("t.a"))
    cat = load_catalogue(path)
    assert cat.files == (str(path),)
    assert cat.indicator("t.a").unit == "count"


def test_content_hash_depends_on_bytes_and_relative_paths_only(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    for folder in (a, b):
        write(folder, "x.yaml", "indicators:\n" + ind("t.a"))
    h = load_catalogue(a).content_hash
    assert len(h) == 64 and h == load_catalogue(b).content_hash
    write(b, "x.yaml", "indicators:\n" + ind("t.a") + "\n")
    assert load_catalogue(b).content_hash != h
    (b / "x.yaml").rename(b / "y.yaml")
    write(b, "y.yaml", "indicators:\n" + ind("t.a"))
    assert load_catalogue(b).content_hash != h


def test_load_catalogue_raises_with_all_diagnostics(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "indicators:\n" + ind("t.a").replace("unit: count", "unit: furlongs"))
    write(
        tmp_path,
        "b.yaml",
        "indicators:\n"
        + ind("t.b").replace("daily", "daly")
        + ind("t.c", extra="    value: {from: t.nope}\n"),
    )
    with pytest.raises(CatalogueLoadError) as info:
        load_catalogue(tmp_path)
    err = info.value
    assert isinstance(err, CatalogueError) and err.exit_code == ExitCode.ERROR
    assert len(err.diagnostics) == 3
    assert "unknown unit 'furlongs'" in err.message
    assert err.message.endswith("(and 2 more; run `citykpi check`)")
    assert err.location is not None and err.location.line == 6


def test_missing_path_raises(tmp_path: Path) -> None:
    with pytest.raises(CatalogueError, match="does not exist"):
        check_catalogue(tmp_path / "nope")


def test_empty_folder_warns(tmp_path: Path) -> None:
    result = check_catalogue(tmp_path)
    assert [d.rule for d in result.diagnostics] == ["CK107"]
    assert result.ok() and not result.ok(strict=True)
    assert result.catalogue is not None and result.catalogue.indicators == ()


def test_not_utf8_file(tmp_path: Path) -> None:
    (tmp_path / "gbk.yaml").write_bytes("indicators:\n  - id: 空气\n".encode("gb18030"))
    (d,) = check_catalogue(tmp_path).errors
    assert d.rule == "CK006" and d.location.line == 2


def test_check_result_ok_and_strict() -> None:
    from citykpi.catalogue.diagnostics import diagnostic
    from citykpi.errors import Location

    warning = diagnostic("CK100", "no description", Location("f.yaml", 1, 1))
    error = diagnostic("CK080", "unknown unit", Location("f.yaml", 2, 1))
    assert CheckResult(None, (), ()).ok(strict=True)
    only_warning = CheckResult(None, (warning,), ())
    assert only_warning.ok() and not only_warning.ok(strict=True)
    both = CheckResult(None, (warning, error), ())
    assert not both.ok() and both.errors == (error,) and both.warnings == (warning,)


def test_duplicate_ids_and_references_across_files(tmp_path: Path) -> None:
    write(
        tmp_path,
        "a.yaml",
        "indicators:\n"
        + ind("t.a")
        + ind("t.r", extra="    value: {ratio: {numerator: t.a, denominator: t.b}}\n"),
    )
    write(tmp_path, "b.yaml", "indicators:\n" + ind("t.b") + ind("t.a"))
    errors = check_catalogue(tmp_path).errors
    assert [(d.rule, Path(d.location.file).name, d.location.line) for d in errors] == [
        ("CK020", "b.yaml", 12)
    ]
    assert "first defined at" in errors[0].message and "a.yaml:2" in errors[0].message


def test_index_and_indicator_share_one_namespace(tmp_path: Path) -> None:
    text = (
        "indicators:\n"
        + ind("t.a")
        + "indices:\n  - id: t.a\n    name: {zh: 指数, en: Index}\n    components: [t.a]\n"
    )
    assert [d.rule for d in check_catalogue(write(tmp_path, "a.yaml", text)).errors] == ["CK020"]


FULL = """\
schema_version: 1
indicators:
  - id: env.air.aqi
    name: {zh: 空气质量指数, en: Air quality index}
    kind: vital_sign
    domain: environment
    unit: index
    description: Daily AQI.
    owner: 市生态环境局
    tier: bottom_line
    tags: [air]
    levels: [district, city]
    frequency: daily
    max_staleness: 36h
    valid_range: [0, 500]
    direction: lower_is_better
    scale:
      - {label: {zh: 优, en: Excellent}, upto: 50, colour: green}
      - {label: {zh: 良, en: Good}, upto: 100, colour: blue}
      - {label: {zh: 轻度污染, en: Lightly polluted}, upto: 150, colour: yellow}
      - {label: {zh: 中度污染, en: Moderately polluted}, upto: 200, colour: orange}
      - {label: {zh: 重度污染, en: Heavily polluted}, upto: 300, colour: red}
      - {label: {zh: 严重污染, en: Severely polluted}, colour: red}
    thresholds:
      for_periods: 2
      overrides:
        - {area: "500105", red: 180}
    rollup: {time: mean, area: weighted_mean, weight: population}
  - id: env.air.good_days
    name: {zh: 空气质量优良天数, en: Good-air days}
    kind: kpi
    domain: environment
    unit: days
    description: Days with AQI <= 100.
    levels: [city, district]
    frequency: yearly
    direction: higher_is_better
    thresholds: {basis: percent_of_target, yellow: 100, orange: 95, red: 90, inclusive: true}
    rollup: {time: count_where, where: "value <= 100", area: recompute}
    target: {value: 329, due: 2025-12-31, baseline: 310, baseline_date: 2025-01-01, method: time_proportional}
    value: {from: env.air.aqi}
  - id: water.chlorine
    name: {zh: 余氯, en: Residual chlorine}
    kind: vital_sign
    domain: water
    unit: mg/L
    description: Residual chlorine at the works outlet.
    levels: [city]
    frequency: hourly
    direction: band
    thresholds: {green: [0.3, 2.0], yellow: [0.2, 4.0], orange: [0.1, 5]}
  - id: econ.gdp_pc
    name: {zh: 人均GDP, en: GDP per capita}
    kind: kpi
    domain: economy
    unit: CNY/person
    description: GDP over population.
    levels: [city]
    frequency: yearly
    direction: higher_is_better
    change: percent
    thresholds: {basis: change_last_year, yellow: 0, red: -3}
    value: {formula: "gdp * 100000000 / pop", inputs: {gdp: econ.gdp, pop: econ.pop}}
  - id: econ.gdp
    name: {zh: 地区生产总值, en: GDP}
    kind: kpi
    domain: economy
    unit: 100M CNY
    description: GDP.
    levels: [city]
    frequency: yearly
    direction: higher_is_better
    thresholds: {basis: percent_of_limit, limit: 35000, yellow: 95, red: 90}
  - id: econ.pop
    name: {zh: 常住人口, en: Resident population}
    kind: kpi
    domain: economy
    unit: 10k persons
    description: Population.
    levels: [city]
    frequency: yearly
    direction: higher_is_better
    thresholds: {red: 3000}
    value: {observed: {with_parts: true, factor: 100}}
    rollup: {area: ratio_of_sums}
  - id: case.ontime
    name: {zh: 按时办结率, en: On-time closure}
    kind: kpi
    domain: case_handling
    unit: "%"
    description: Cases closed by their due time.
    levels: [city, district, street]
    frequency: monthly
    direction: higher_is_better
    thresholds: {yellow: 95, red: 90, overrides: [{level: street, red: 85}]}
    rollup: {time: last, area: recompute}
    value:
      measure: {source: cases, numerator: "count_if(closed_at <= due_at)", denominator: "count(*)",
                filter: "category = '噪声'", factor: 100}
  - id: case.ratio
    name: {zh: 比例, en: Ratio}
    kind: kpi
    domain: case_handling
    unit: per 100k
    description: Cases per 100,000 residents.
    levels: [city]
    frequency: monthly
    direction: lower_is_better
    thresholds: {red: 50}
    value: {ratio: {numerator: econ.gdp, denominator: econ.pop, factor: 100000}}
indices:
  - id: index.operation
    name: {zh: 运维指数, en: Operation index}
    description: Operation.
    aggregation: geometric
    normalise: {method: goalposts, low: 0, high: 100}
    cap_on_red: 60
    min_coverage: 0.6
    bands: {blue: 90, yellow: 80, red: 60}
    components:
      - {ref: env.air.aqi, weight: 2, normalise: colour_score}
      - {ref: env.air.good_days, normalise: {method: distance_to_target}}
      - index.service
  - id: index.service
    name: {zh: 服务指数, en: Service index}
    description: Service.
    components: [case.ontime]
groups:
  - {id: central_urban, name: {zh: 中心城区, en: "Central urban area (9+2)"}, areas: ["500103", "500104"]}
sources:
  - id: cases
    description: Hotline cases.
    time_column: created_at
    area_column: street_id
    key: case_id
    columns: {case_id: text, created_at: timestamp, due_at: timestamp, closed_at: timestamp,
              street_id: text, category: text}
"""


def test_full_model(tmp_path: Path) -> None:
    result = check_catalogue(write(tmp_path, "full.yaml", FULL))
    assert result.diagnostics == (), [str(d) for d in result.diagnostics]
    cat = result.catalogue
    assert cat is not None
    aqi = cat.indicator("env.air.aqi")
    assert aqi.levels == ("city", "district")
    assert aqi.tier == "bottom_line" and aqi.owner == "市生态环境局" and aqi.tags == ("air",)
    assert aqi.max_staleness == timedelta(hours=36) and aqi.valid_range == (0, 500)
    assert aqi.thresholds.bands == model.BandSet(cuts={"blue": 50, "yellow": 100, "orange": 150, "red": 200})
    assert aqi.thresholds.for_periods == 2
    (ov,) = aqi.thresholds.overrides
    assert ov.area == "500105" and ov.bands.cuts == {"blue": 50, "yellow": 100, "orange": 150, "red": 180}
    assert aqi.scale[1].label == model.Text("良", "Good") and aqi.scale[-1].upto is None
    assert aqi.rollup == model.Rollup(time="mean", area="weighted_mean", weight="population")
    assert aqi.loc is not None and aqi.loc.line == 3
    good = cat.indicator("env.air.good_days")
    assert good.value == model.FromSeries("env.air.aqi")
    assert good.rollup.where == model.Condition("<=", 100.0)
    assert good.target == model.Target(
        329,
        date(2025, 12, 31),
        310,
        date(2025, 1, 1),
        "time_proportional",
        loc=good.target.loc if good.target else None,
    )
    assert good.thresholds.bands.inclusive is True and good.thresholds.basis == "percent_of_target"
    chlorine = cat.indicator("water.chlorine")
    assert chlorine.thresholds.bands.ranges == {
        "green": (0.3, 2.0),
        "yellow": (0.2, 4.0),
        "orange": (0.1, 5.0),
    }
    assert chlorine.staleness == timedelta(hours=3)
    gdp_pc = cat.indicator("econ.gdp_pc")
    assert gdp_pc.value == model.Formula("gdp * 100000000 / pop", {"gdp": "econ.gdp", "pop": "econ.pop"})
    assert gdp_pc.inputs == ("econ.gdp", "econ.pop") and gdp_pc.change_unit == "percent"
    assert cat.indicator("econ.gdp").thresholds.limit == 35000
    assert cat.indicator("econ.pop").value == model.Observed(with_parts=True, scale=100)
    assert cat.indicator("case.ontime").value == model.Measure(
        "cases", "count_if(closed_at <= due_at)", "count(*)", "category = '噪声'", 100
    )
    assert cat.indicator("case.ontime").thresholds.overrides[0].bands.cuts == {"yellow": 95, "red": 85}
    assert cat.indicator("case.ratio").value == model.Ratio("econ.gdp", "econ.pop", 100000)
    assert cat.indicator("case.ratio").change_unit == "points"
    op, svc = cat.indices
    assert op.aggregation == "geometric" and op.cap_on_red == 60 and op.min_coverage == 0.6
    assert op.normalise == model.Normalisation("goalposts", 0, 100)
    assert op.bands == model.BandSet(cuts={"blue": 90, "yellow": 80, "red": 60})
    assert [(c.ref, c.weight) for c in op.components] == [
        ("env.air.aqi", 2),
        ("env.air.good_days", 1),
        ("index.service", 1),
    ]
    assert op.components[0].normalise == model.Normalisation("colour_score")
    assert svc.levels == ("city", "district") and svc.bands.cuts["red"] == 50
    assert cat.groups == (
        model.AreaGroup(
            "central_urban",
            model.Text("中心城区", "Central urban area (9+2)"),
            ("500103", "500104"),
            loc=cat.groups[0].loc,
        ),
    )
    (src,) = cat.sources
    assert src.key == "case_id" and src.columns["closed_at"] == "timestamp"


def test_docs_of_full_model(tmp_path: Path) -> None:
    from citykpi.catalogue.docs import data_dictionary_html, data_dictionary_markdown, indicator_rows

    cat = load_catalogue(write(tmp_path, "full.yaml", FULL))
    md = data_dictionary_markdown(cat)
    assert md.index("## case_handling") < md.index("## economy") < md.index("## environment")
    assert "blue > 50" not in md and "良 ≤ 100 (blue)" in md
    assert "green [0.3, 2] · yellow [0.2, 4] · orange [0.1, 5] · red outside" in md
    assert "329 days by 2025-12-31 (time_proportional, baseline 310)" in md
    assert "## Indices" in md and "## Area groups" in md and "## Sources" in md
    html = data_dictionary_html(cat)
    assert "&lt;" not in html.split("<body>")[0] and "中心城区" in html
    rows = indicator_rows(cat, domain="economy")
    assert [r["id"] for r in rows] == ["econ.gdp", "econ.gdp_pc", "econ.pop"]
    assert rows[0]["bands"] == "yellow < 95 · red < 90 (percent_of_limit 35000)"


def test_json_schema_matches_the_parser() -> None:
    from citykpi.catalogue import parser
    from citykpi.catalogue.jsonschema import catalogue_schema

    schema = catalogue_schema()
    defs = schema["$defs"]
    assert set(defs["indicator"]["properties"]) == set(parser.INDICATOR_KEYS)
    assert set(defs["index"]["properties"]) == set(parser.INDEX_KEYS)
    assert set(defs["group"]["properties"]) == set(parser.GROUP_KEYS)
    assert set(defs["source"]["properties"]) == set(parser.SOURCE_KEYS)
    assert set(schema["properties"]) == set(parser.FILE_KEYS)
    assert set(defs["indicator"]["properties"]["thresholds"]["properties"]) == set(parser.THRESHOLD_KEYS)


@pytest.mark.slow
def test_check_5400_indicators(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Scale: a generated catalogue of 5,400 indicators. The time is printed, not asserted."""
    root = write_catalogue(tmp_path / "big", 5400)
    start = time.perf_counter()
    result = check_catalogue(root)
    elapsed = time.perf_counter() - start
    assert result.ok(), [str(d) for d in result.diagnostics[:5]]
    assert result.counts["indicators"] == 5400
    with capsys.disabled():
        print(f"\ncheck on 5,400 indicators in {result.counts['files']} files: {elapsed:.2f} s")


def test_generated_catalogue_is_sound_small(tmp_path: Path) -> None:
    root = write_catalogue(tmp_path / "small", 60, per_file=20)
    result = check_catalogue(root)
    assert result.ok(), [str(d) for d in result.diagnostics[:5]]
    assert result.counts["indicators"] == 60


def test_a_source_field_of_the_wrong_type_is_reported_once(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text(
        "sources:\n  - id: hot\n    columns: {t: timestamp, a: text}\n    time_column: 5\n    area_column: [a]\n",
        encoding="utf-8",
    )
    found = [(d.rule, d.location.line) for d in check_catalogue(tmp_path).diagnostics if d.rule == "CK012"]
    assert found == [("CK012", 4), ("CK012", 5)]


def test_a_green_cut_in_index_bands_is_reported_once(tmp_path: Path) -> None:
    """Index bands have no green cut: the key is refused (CK010) and not reported again as CK033."""
    (tmp_path / "c.yaml").write_text(
        FULL.replace("bands: {blue: 90, yellow: 80, red: 60}", "bands: {green: 95, blue: 90, red: 60}"),
        encoding="utf-8",
    )
    line = next(n for n, text in enumerate(FULL.splitlines(), 1) if "bands: {blue: 90, yellow: 80" in text)
    rules = [d.rule for d in check_catalogue(tmp_path).diagnostics if d.location and d.location.line == line]
    assert rules == ["CK010"]
