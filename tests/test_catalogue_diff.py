"""The definition diff (citykpi/catalogue/diff.py): every kind of entity, field by field, under YAML names."""

from __future__ import annotations

from pathlib import Path

import pytest

from citykpi.catalogue import check_catalogue, load_catalogue
from citykpi.catalogue.diff import diff_catalogues, entity_fields
from citykpi.catalogue.model import Catalogue

ROOT = Path(__file__).resolve().parents[1]

HEAD = """\
schema_version: 1
sources:
  - id: hotline_cases
    time_column: created_at
    area_column: street_id
    columns: {created_at: timestamp, street_id: text, closed_at: timestamp}
groups:
  - id: core
    name: {zh: 核心区, en: Core}
    areas: ["500103", "500104"]
indices:
  - id: index.env
    name: {zh: 环境指数, en: Environment index}
    components:
      - {ref: env.a, weight: 2}
      - {ref: env.b, weight: 1}
indicators:
"""
A = """\
  - id: env.a
    name: {zh: 甲, en: A}
    kind: vital_sign
    domain: environment
    unit: index
    description: A.
    levels: [city, district]
    frequency: daily
    direction: lower_is_better
    thresholds: {yellow: 100, red: 200}
    rollup: {time: mean, area: mean}
"""
B = """\
  - id: env.b
    name: {zh: 乙, en: B}
    kind: kpi
    domain: environment
    unit: "%"
    description: B.
    levels: [city]
    frequency: monthly
    direction: higher_is_better
    thresholds: {yellow: 95, red: 90}
    value: {formula: "a * 2", inputs: {a: env.a}}
"""


def _catalogue(tmp_path: Path, text: str, name: str) -> Catalogue:
    path = tmp_path / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    result = check_catalogue(path)
    assert result.catalogue is not None, result.diagnostics
    return result.catalogue


def _fields(tmp_path: Path, old: str, new: str) -> dict[tuple[str, str], list[tuple[str, object, object]]]:
    diff = diff_catalogues(_catalogue(tmp_path, old, "old"), _catalogue(tmp_path, new, "new"))
    return {(c.entity, c.id): [(f.field, f.old, f.new) for f in c.fields] for c in diff.changes}


BASE = HEAD + A + B


@pytest.mark.parametrize(
    ("old", "new", "entity", "expected"),
    [
        ("red: 200}", "red: 180}", ("indicator", "env.a"), [("thresholds.red", 200, 180)]),
        (
            "thresholds: {yellow: 100, red: 200}",
            "thresholds: {yellow: 100, red: 200, overrides: [{level: district, red: 150}]}",
            ("indicator", "env.a"),
            [
                ("thresholds.overrides[level=district].yellow", None, 100),
                ("thresholds.overrides[level=district].red", None, 150),
                ("thresholds.overrides[level=district].inclusive", None, False),
            ],
        ),
        ('"a * 2"', '"a * 3"', ("indicator", "env.b"), [("value.formula", "a * 2", "a * 3")]),
        (
            'value: {formula: "a * 2", inputs: {a: env.a}}',
            "value: observed",
            ("indicator", "env.b"),
            [
                ("value", "formula", "observed"),
                ("value.with_parts", None, False),
                ("value.factor", None, 1),
                ("value.formula", "a * 2", None),
                ("value.inputs.a", "env.a", None),
            ],
        ),
        ("area: mean}", "area: max}", ("indicator", "env.a"), [("rollup.area", "mean", "max")]),
        (
            "levels: [city, district]",
            "levels: [city]",
            ("indicator", "env.a"),
            [("levels", ["city", "district"], ["city"])],
        ),
        (
            "direction: higher_is_better\n    thresholds: {yellow: 95, red: 90}",
            "direction: lower_is_better\n    thresholds: {yellow: 90, red: 95}",
            ("indicator", "env.b"),
            [
                ("direction", "higher_is_better", "lower_is_better"),
                ("thresholds.yellow", 95, 90),
                ("thresholds.red", 90, 95),
            ],
        ),
        ("{zh: 甲, en: A}", "{zh: 甲, en: Alpha}", ("indicator", "env.a"), [("name.en", "A", "Alpha")]),
        (
            "{ref: env.a, weight: 2}",
            "{ref: env.a, weight: 3}",
            ("index", "index.env"),
            [("components[env.a].weight", 2, 3)],
        ),
        (
            "      - {ref: env.b, weight: 1}\n",
            "",
            ("index", "index.env"),
            [("components[env.b].weight", 1, None)],
        ),
        (
            'areas: ["500103", "500104"]',
            'areas: ["500103"]',
            ("group", "core"),
            [("areas", ["500103", "500104"], ["500103"])],
        ),
        (
            "street_id: text, closed_at: timestamp}",
            "street_id: text, closed_at: date}",
            ("source", "hotline_cases"),
            [("columns.closed_at", "timestamp", "date")],
        ),
    ],
)
def test_each_kind_of_field(
    tmp_path: Path, old: str, new: str, entity: tuple[str, str], expected: list
) -> None:
    assert old in BASE
    fields = _fields(tmp_path, BASE, BASE.replace(old, new, 1))
    assert fields == {entity: expected}


def test_added_and_removed_entities_carry_their_locations(tmp_path: Path) -> None:
    old = _catalogue(tmp_path, HEAD.replace("      - {ref: env.b, weight: 1}\n", "") + A, "old")
    new = _catalogue(
        tmp_path,
        HEAD.replace("      - {ref: env.b, weight: 1}\n", "").replace("- {ref: env.a", "- {ref: env.b")
        + B.replace('value: {formula: "a * 2", inputs: {a: env.a}}\n', ""),
        "new",
    )
    diff = diff_catalogues(old, new)
    summary = [(c.entity, c.id, c.change) for c in diff.changes]
    assert ("indicator", "env.a", "removed") in summary and ("indicator", "env.b", "added") in summary
    removed = next(c for c in diff.changes if c.change == "removed")
    assert removed.old_location is not None and removed.old_location.file.endswith("old.yaml")
    assert removed.new_location is None and removed.location == removed.old_location
    assert diff.counts()["indicator"] == {"added": 1, "removed": 1, "changed": 0}


def test_the_sample_catalogue_equals_itself_and_every_field_is_plain() -> None:
    catalogue = load_catalogue(ROOT / "indicators")
    assert diff_catalogues(catalogue, catalogue).empty
    for entity in (*catalogue.indicators, *catalogue.indices, *catalogue.groups, *catalogue.sources):
        for name, value in entity_fields(entity).items():
            assert isinstance(value, str | int | float | bool | list | type(None)), (entity.id, name)
            assert "loc" not in name.split(".")


def test_an_own_scale_is_compared_by_its_steps_not_by_the_cuts_it_implies() -> None:
    aqi = load_catalogue(ROOT / "indicators").indicator("env.air.aqi")
    fields = entity_fields(aqi)
    assert fields["scale[2].upto"] == 150 and fields["scale[2].colour"] == "yellow"
    assert "thresholds.yellow" not in fields
