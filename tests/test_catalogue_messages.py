"""Each catalogue diagnostic, once, from inline YAML: its rule code, line and message."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from citykpi.catalogue import check_catalogue
from citykpi.catalogue.diagnostics import RULES, Diagnostic

BASE = {
    "id": "env.air.pm25",
    "name": "{zh: 细颗粒物浓度, en: PM2.5 concentration}",
    "kind": "vital_sign",
    "domain": "environment",
    "unit": "µg/m³",
    "description": "Daily mean PM2.5.",
    "levels": "[city, district]",
    "frequency": "daily",
    "direction": "lower_is_better",
    "thresholds": "{blue: 35, yellow: 75, orange: 115, red: 150}",
}


def ind(extra: str = "", **fields: str | None) -> str:
    """One indicator entry (list item) from BASE with fields replaced or removed (None)."""
    merged = {**BASE, **fields}
    lines = [
        f"{'- ' if i == 0 else '  '}{k}: {v}"
        for i, (k, v) in enumerate((k, v) for k, v in merged.items() if v is not None)
    ]
    return (
        "\n".join(lines)
        + ("\n" + textwrap.indent(textwrap.dedent(extra).strip("\n"), "  ") if extra else "")
        + "\n"
    )


def doc(*indicators: str, tail: str = "") -> str:
    body = "".join(textwrap.indent(i, "  ") for i in indicators)
    return "indicators:\n" + body + textwrap.dedent(tail)


SRC = """
sources:
  - id: cases
    time_column: created_at
    area_column: street_id
    columns: {case_id: text, created_at: timestamp, due_at: timestamp, closed_at: timestamp,
              street_id: text, category: text, satisfied: boolean}
"""


#: One consistency rule (id r) after one indicator, on line 14: ``RULE.format("kind: …, …")``.
RULE = "\nconsistency:\n  - {{id: r, {}}}\n"


def measure(
    num: str = "count_if(closed_at <= due_at)", den: str = "count(*)", filt: str = "category = 'x'"
) -> str:
    return ind(
        f"""
        value:
          measure: {{source: cases, numerator: "{num}", denominator: "{den}", filter: "{filt}"}}
        """,
        id="case.ontime",
        unit="'%'",
        rollup="{time: last, area: recompute}",
    )


def index(comps: str = "[{ref: env.air.pm25}]", extra: str = "") -> str:
    return (
        "indices:\n  - id: index.env\n    name: {zh: 环境指数, en: Environment index}\n"
        f"    description: Air.\n    components: {comps}\n{extra}"
    )


# (rule, YAML text, line, words the message must contain)
CASES: list[tuple[str, str, int, str]] = [
    (
        "CK001",
        "indicators:\n  - id: a.b\n    description: Note: broken\n",
        3,
        "mapping values are not allowed",
    ),
    ("CK002", doc(ind(unit="'%'") + "  unit: count\n"), 12, "duplicate key 'unit' (first at line 6)"),
    ("CK003", "indicators:\n\t- id: a.b\n", 2, "a tab is used for indentation"),
    ("CK004", "x: " + "[" * 80 + "]" * 80 + "\n", 1, "nested deeper than 64 levels"),
    (
        "CK005",
        "x: !!python/object/apply:os.system [ls]\n",
        1,
        "the YAML tag !!python/object/apply:os.system is not allowed",
    ),
    ("CK010", doc(ind("tresholds: {red: 1}")), 12, "unknown key 'tresholds' in indicator env.air.pm25"),
    ("CK011", doc(ind(unit=None)), 2, "indicator env.air.pm25 is missing the required key 'unit'"),
    ("CK012", doc(ind(levels="3")), 8, "'levels' of indicator env.air.pm25 must be a list, not a number"),
    (
        "CK012",
        doc(ind(thresholds="{red: high}")),
        11,
        "red of thresholds of indicator env.air.pm25 must be a number, not text",
    ),
    (
        "CK013",
        doc(ind(max_staleness="2 days")),
        12,
        "max_staleness of indicator env.air.pm25 must be a duration like 30m, 6h, 2d or 1w",
    ),
    ("CK014", "schema_version: 9\nindicators: []\n", 1, "schema_version 9 is not supported"),
    ("CK020", doc(ind(), ind()), 12, "duplicate indicator id 'env.air.pm25' (first defined at"),
    ("CK021", doc(ind(id="PM25")), 2, "'PM25' is not a valid indicator id"),
    (
        "CK030",
        doc(ind(thresholds="{yellow: 75, red: 50}")),
        11,
        "red starts at 50 but must be above yellow (75) for lower_is_better",
    ),
    (
        "CK031",
        doc(ind(direction="band", thresholds="{green: [1, 5], yellow: [2, 6]}")),
        11,
        "the yellow range [2, 6] must contain the green range [1, 5]",
    ),
    (
        "CK032",
        doc(ind("scale:\n- {label: A, upto: 50, colour: red}\n- {label: B, colour: green}", thresholds=None)),
        12,
        "must not get better from low to high values",
    ),
    ("CK033", doc(ind(thresholds="{green: 10, red: 50}")), 11, "green needs no cut point"),
    (
        "CK034",
        doc(ind("scale:\n- {label: A, upto: 50, colour: green}\n- {label: B, colour: red}")),
        11,
        "has both a scale and threshold cut points",
    ),
    (
        "CK034",
        doc(
            ind(
                "scale:\n- {label: A, upto: 50, colour: green}\n- {label: B, colour: red}",
                thresholds="{inclusive: true}",
            )
        ),
        11,
        "has a scale, which fixes the edges itself",
    ),
    (
        "CK035",
        doc(ind(valid_range="[10, 0]")),
        12,
        "valid_range of indicator env.air.pm25 [10, 0] has its low end above its high end",
    ),
    (
        "CK040",
        doc(ind("value: {from: env.air.pm10}", id="env.air.days")),
        12,
        "refers to unknown indicator 'env.air.pm10'",
    ),
    (
        "CK040",
        SRC.lstrip("\n") + doc(measure(num="sum(minutes)")),
        20,
        "refers to unknown column of source cases 'minutes'",
    ),
    (
        "CK041",
        doc(ind("value: {from: a.b}", id="a.c"), ind("value: {from: a.c}", id="a.b")),
        2,
        "derived indicators form a cycle: a.b → a.c → a.b",
    ),
    (
        "CK042",
        doc(
            ind(),
            ind("value: {ratio: {numerator: env.air.pm25, denominator: index.env}}", id="a.r", unit="ratio"),
        )
        + index(),
        22,
        "refers to index 'index.env' where an indicator is needed",
    ),
    (
        "CK042",
        doc(
            ind("value: {formula: 'a', inputs: {a: x.y}}", id="x.f"),
            ind(id="x.y"),
            ind("value: {from: x.f}", id="x.g"),
        ),
        33,
        "takes the raw series of x.f, but x.f is a formula value with no raw series",
    ),
    (
        "CK050",
        doc(ind()) + index("[{ref: env.air.pm25, weight: -1}]"),
        16,
        "has weight -1; weights must be positive",
    ),
    (
        "CK051",
        doc(ind()) + index(extra="    normalise: {method: goalposts, low: 0}\n"),
        17,
        "needs both low (score 0) and high (score 100)",
    ),
    ("CK052", doc(ind()) + index("[env.air.pm25, env.air.pm25]"), 16, "lists component env.air.pm25 twice"),
    (
        "CK053",
        doc(ind()) + index(extra="    normalise: z_score\n"),
        17,
        "scores areas against each other (z_score), but its bands colour the score",
    ),
    ("CK060", doc(ind(target="{value: 30}")), 12, "the target of indicator env.air.pm25 has no due date"),
    (
        "CK061",
        doc(ind(target="{value: 30, due: 2025-01-01, baseline_date: 2025-02-01}")),
        12,
        "baseline_date 2025-02-01 on or after its due date 2025-01-01",
    ),
    (
        "CK062",
        doc(ind(thresholds="{basis: percent_of_target, red: 120}")),
        11,
        "is judged as percent_of_target but has no target",
    ),
    (
        "CK063",
        doc(ind(thresholds="{basis: percent_of_limit, red: 100}")),
        11,
        "is judged as percent_of_limit but thresholds.limit is missing",
    ),
    ("CK064", doc(ind(rollup="{area: weighted_mean}")), 12, "rolls up as weighted_mean but names no weight"),
    (
        "CK065",
        doc(ind(rollup="{time: count_where}")),
        12,
        "rolls up as count_where but has no where condition",
    ),
    (
        "CK066",
        doc(ind(rollup="{area: ratio_of_sums}")),
        12,
        "rolls up as ratio_of_sums but its value has no numerator/denominator parts",
    ),
    (
        "CK067",
        doc(ind(rollup="{area: recompute}")),
        12,
        "an observed value has no raw data to recompute from",
    ),
    ("CK070", SRC.lstrip("\n") + doc(measure(num="sum(read_csv('x'))")), 20, "unknown function 'read_csv'"),
    (
        "CK070",
        doc(ind(rollup="{time: count_where, where: value ~ 3}")),
        12,
        "where of indicator env.air.pm25: unexpected character '~' at column 7",
    ),
    (
        "CK070",
        SRC.lstrip("\n") + doc(measure(num="count_if(category)")),
        20,
        "uses column 'category' (text) as a condition; it must be boolean",
    ),
    (
        "CK071",
        doc(ind("value: {formula: \"a + 'x'\", inputs: {a: x.y}}", id="x.f"), ind(id="x.y")),
        12,
        "formula of indicator x.f: '+' needs a number, but 'x' is text at column 5",
    ),
    (
        "CK071",
        SRC.lstrip("\n") + doc(measure(filt="closed_at <= 'soon'")),
        20,
        "filter of indicator case.ontime: 'soon' is not a valid date (YYYY-MM-DD or YYYY-MM-DD HH:MM[:SS]) at column 14",
    ),
    (
        "CK071",
        SRC.lstrip("\n") + doc(measure(num="sum(category)")),
        20,
        "numerator of indicator case.ontime: sum() needs a number, but 'category' is text at column 5",
    ),
    ("CK080", doc(ind(unit="ug/m3")), 6, "unknown unit 'ug/m3' in indicator env.air.pm25"),
    ("CK081", doc(ind(levels="[city, county]")), 8, "unknown level 'county' in indicator env.air.pm25"),
    ("CK082", doc(ind(frequency="daly")), 9, "unknown frequency 'daly' in indicator env.air.pm25"),
    ("CK083", doc(ind(kind="metric")), 4, "unknown kind 'metric' in indicator env.air.pm25"),
    (
        "CK084",
        doc(ind(thresholds="{red: 150, overrides: [{level: street, red: 200}]}")),
        11,
        "override for level street of indicator env.air.pm25, which is reported at city, district only",
    ),
    (
        "CK068",
        doc(ind(thresholds="{basis: change_base_period, red: 10}")),
        11,
        "indicator env.air.pm25 is judged as change_base_period but has no base_period",
    ),
    (
        "CK090",
        doc(ind(), tail=RULE.format("kind: sum, total: env.air.pm25, parts: [env.air.pm10, env.air.no2]")),
        14,
        "consistency rule r: parts 'env.air.pm10' is not an indicator of the catalogue",
    ),
    (
        "CK091",
        doc(ind(), tail=RULE.format("kind: disaggregation, indicator: env.air.pm25, dimension: sex")),
        14,
        "consistency rule r breaks env.air.pm25 down by 'sex', which no feed of env.air.pm25 carries",
    ),
    (
        "CK092",
        doc(ind(), tail=RULE.format("kind: sum, total: env.air.pm25")),
        14,
        "consistency rule r of kind sum needs 'parts'",
    ),
    ("CK100", doc(ind(description=None)), 2, "indicator env.air.pm25 has no description"),
    (
        "CK101",
        doc(ind(thresholds=None)),
        2,
        "has no thresholds: its cells are shown as unscored, never coloured",
    ),
    ("CK102", "# nothing yet\n", 1, "the file is empty"),
    (
        "CK103",
        doc(
            ind("value: {formula: 'a * 2', inputs: {a: x.y, b: x.z}}", id="x.f"), ind(id="x.y"), ind(id="x.z")
        ),
        12,
        "input 'b' of indicator x.f is not used in its formula",
    ),
    ("CK104", doc(ind(name="PM2.5")), 3, "'name' of indicator env.air.pm25 has no Chinese (zh) form"),
    (
        "CK105",
        doc(ind(max_staleness="2h")),
        12,
        "max_staleness of indicator env.air.pm25 is shorter than one daily period",
    ),
    ("CK106", doc(ind()) + SRC, 14, "source cases is declared but no measure uses it"),
    (
        "CK108",
        doc(ind("value: {observed: {with_parts: true, scale: 100}}")),
        12,
        "'scale' in the observed value of indicator env.air.pm25 is deprecated: write 'factor'",
    ),
    (
        "CK109",
        doc(ind(), tail="domains:\n  - {id: watr, forecast: true}\n"),
        13,
        "settings for domain 'watr', which no indicator is in",
    ),
    (
        "CK110",
        doc(
            ind(), tail="incidents:\n  - {id: x, start: 2025-01-01, end: 2025-01-02, indicators: [nope.*]}\n"
        ),
        13,
        "incident x names indicators 'nope.*', which match no indicator",
    ),
]


def _check(tmp_path: Path, text: str) -> list[Diagnostic]:
    path = tmp_path / "cat.yaml"
    path.write_text(text, encoding="utf-8")
    return list(check_catalogue(path).diagnostics)


@pytest.mark.parametrize(
    ("rule", "text", "line", "words"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)]
)
def test_message(tmp_path: Path, rule: str, text: str, line: int, words: str) -> None:
    diags = _check(tmp_path, text)
    hits = [d for d in diags if d.rule == rule]
    assert hits, [str(d) for d in diags]
    assert any(words in d.message for d in hits), [d.message for d in hits]
    assert any(d.location.line == line for d in hits), [str(d) for d in hits]
    assert all(d.severity == RULES[rule].severity for d in hits)


def test_every_rule_has_a_message_test() -> None:
    covered = {c[0] for c in CASES} | {"CK006", "CK107"}  # the last two: see test_catalogue_loader
    assert covered == set(RULES)


def test_unknown_key_suggests_the_closest_key(tmp_path: Path) -> None:
    (d,) = [d for d in _check(tmp_path, doc(ind("tresholds: {red: 1}"))) if d.rule == "CK010"]
    assert d.hint == "did you mean 'thresholds'?"


def test_comma_in_flow_name_gets_a_quoting_hint(tmp_path: Path) -> None:
    diags = _check(tmp_path, doc(ind(name="{zh: 每万人, en: Cases per 10,000 residents}")))
    (d,) = [d for d in diags if d.rule == "CK010"]
    assert "quote" in (d.hint or "")


def test_all_problems_in_one_pass(tmp_path: Path) -> None:
    text = doc(ind(unit="ug/m3", frequency="daly", levels="[county]", thresholds="{yellow: 75, red: 50}"))
    rules = {d.rule for d in _check(tmp_path, text)}
    assert {"CK080", "CK082", "CK081"} <= rules


def test_diagnostic_locations_have_columns(tmp_path: Path) -> None:
    (d,) = [d for d in _check(tmp_path, doc(ind(unit="ug/m3"))) if d.rule == "CK080"]
    assert (d.location.line, d.location.column) == (6, 11)
    assert str(d.location).endswith("cat.yaml:6:11")
