"""The vocabulary registries (citykpi/vocab/) are the one source: every registered basis, roll-up,
unit and value kind is in the JSON Schema, in docs/catalogue.md and accepted by ``check``."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from citykpi import vocab
from citykpi.catalogue import check_catalogue, model
from citykpi.catalogue.jsonschema import catalogue_schema
from citykpi.engine import compiler
from citykpi.vocab import docs as vocab_docs
from citykpi.vocab.bases import Basis

ROOT = Path(__file__).resolve().parents[1]

DOC = Path(__file__).resolve().parent.parent / "docs" / "catalogue.md"

HEAD = """\
  - id: {id}
    name: {{zh: 指标, en: Indicator}}
    kind: kpi
    domain: test
    unit: {unit}
    description: Test.
    levels: [city, district]
    frequency: daily
    direction: lower_is_better
"""
BASE = (
    "  - id: test.base\n    name: {zh: 基, en: Base}\n    kind: kpi\n    domain: test\n    unit: count\n"
    + (
        "    description: Base.\n    levels: [city, district]\n    frequency: daily\n"
        "    direction: lower_is_better\n    thresholds: {yellow: 10, red: 20}\n"
        "    rollup: {time: sum, area: sum}\n"
    )
)
SOURCE = """\
sources:
  - id: cases
    columns: {case_id: text, created_at: timestamp, street_id: text, closed: boolean}
    time_column: created_at
    area_column: street_id
    key: case_id
"""


def indicator(iid: str, body: str, unit: str = "count") -> str:
    return HEAD.format(id=iid, unit=unit) + "".join(f"    {line}\n" for line in body.strip().splitlines())


def check_ok(tmp_path: Path, *indicators: str, extra: str = "") -> None:
    text = "indicators:\n" + BASE + "".join(indicators) + extra
    (tmp_path / "c.yaml").write_text(text, encoding="utf-8")
    result = check_catalogue(tmp_path)
    assert result.errors == (), [f"{d.rule} {d.message}" for d in result.errors]
    assert result.catalogue is not None


def indicator_schema() -> dict:
    return catalogue_schema()["$defs"]["indicator"]["properties"]


def doc_block(name: str) -> str:
    text = DOC.read_text(encoding="utf-8")
    start = text.index(f"<!-- vocab:{name} -->")
    return text[start : text.index("<!-- /vocab -->", start)]


# --- the model's tuples are aliases of the registries ----------------------------------------


def test_model_tuples_are_derived_from_the_registries() -> None:
    assert vocab.BASES.names() == model.BASES
    assert vocab.TIME_ROLLUPS.names() == model.TIME_ROLLUPS
    assert vocab.AREA_ROLLUPS.names() == model.AREA_ROLLUPS
    assert vocab.VALUE_KINDS.names() == model.VALUE_KINDS
    assert {u.name: u.family for u in vocab.UNITS.values()} == model.UNITS
    assert set(u.family for u in vocab.UNITS.values()) <= set(vocab.units.FAMILIES)


def test_every_entry_has_a_name_and_a_one_line_summary() -> None:
    for registry in (vocab.BASES, vocab.TIME_ROLLUPS, vocab.AREA_ROLLUPS, vocab.UNITS, vocab.VALUE_KINDS):
        assert len(registry) > 0
        for name, entry in registry.items():
            assert entry.name == name
            assert entry.summary and "\n" not in entry.summary


def test_a_name_cannot_be_registered_twice() -> None:
    with pytest.raises(ValueError, match="already registered"):
        vocab.BASES.register(vocab.BASES["absolute"])


# --- docs/catalogue.md -----------------------------------------------------------------------


def test_docs_vocab_blocks_are_generated_from_the_registries() -> None:
    text = DOC.read_text(encoding="utf-8")
    names = [m.group(2) for m in vocab_docs.BLOCK_RE.finditer(text)]
    assert sorted(names) == sorted(vocab_docs.BLOCKS)
    assert vocab_docs.update_markdown(text) == text, "run: python -m citykpi.vocab.docs docs/catalogue.md"


@pytest.mark.parametrize(
    ("block", "registry"),
    [
        ("bases", vocab.BASES),
        ("time-rollups", vocab.TIME_ROLLUPS),
        ("area-rollups", vocab.AREA_ROLLUPS),
        ("units", vocab.UNITS),
        ("value-kinds", vocab.VALUE_KINDS),
    ],
)
def test_every_registered_name_is_in_the_docs(block: str, registry: vocab.Registry) -> None:
    text = doc_block(block)
    for name in registry:
        assert f"`{name}`" in text, name


# --- JSON Schema -----------------------------------------------------------------------------


def test_every_registered_name_is_in_the_schema() -> None:
    props = indicator_schema()
    assert props["thresholds"]["properties"]["basis"]["enum"] == list(vocab.BASES)
    assert props["rollup"]["properties"]["time"]["enum"] == list(vocab.TIME_ROLLUPS)
    assert props["rollup"]["properties"]["area"]["enum"] == list(vocab.AREA_ROLLUPS)
    assert props["unit"]["enum"] == list(vocab.UNITS)
    alternatives = [next(iter(o["properties"])) for o in props["value"]["oneOf"] if "properties" in o]
    assert alternatives == list(vocab.VALUE_KINDS)


@pytest.fixture
def toy_basis() -> Iterator[Basis]:
    entry = vocab.BASES.register(
        Basis(
            name="toy_double",
            summary="twice the value (a test basis)",
            requires=(),
            label=lambda unit, change_unit: " × 2",
            not_applicable_reason="the basis cannot be computed",
            sql=lambda value, target, limit, previous, last_year, change_unit: f"{value} * 2",
        )
    )
    try:
        yield entry
    finally:
        vocab.BASES.unregister(entry.name)


def test_a_basis_registered_at_run_time_is_in_the_schema_and_accepted_by_check(
    toy_basis: Basis, tmp_path: Path
) -> None:
    assert toy_basis.name in indicator_schema()["thresholds"]["properties"]["basis"]["enum"]
    assert f"`{toy_basis.name}`" in vocab_docs.render_block("bases")
    check_ok(tmp_path, indicator("test.toy", f"thresholds: {{basis: {toy_basis.name}, yellow: 10, red: 20}}"))
    assert f"WHEN '{toy_basis.name}' THEN t.v * 2" in compiler.classify_sql()  # the compiler reads it too


def test_an_unregistered_basis_is_refused(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text(
        "indicators:\n" + indicator("test.x", "thresholds: {basis: toy_double, yellow: 1, red: 2}"),
        encoding="utf-8",
    )
    assert "CK083" in {d.rule for d in check_catalogue(tmp_path).errors}


# --- check accepts every registered name -----------------------------------------------------

BASIS_EXTRA = {
    "target": "target: {value: 5, due: 2030-12-31}",
    "thresholds.limit": "",
}


@pytest.mark.parametrize("name", list(vocab.BASES))
def test_check_accepts_every_basis(name: str, tmp_path: Path) -> None:
    requires = vocab.BASES[name].requires
    limit = ", limit: 50" if "thresholds.limit" in requires else ""
    body = f"thresholds: {{basis: {name}, yellow: 10, red: 20{limit}}}\n"
    if "target" in requires:
        body += "target: {value: 5, due: 2030-12-31}\n"
    if "base_period" in requires:
        body += "base_period: 2010\n"
    check_ok(tmp_path, indicator("test.b", body))


def test_the_requirements_of_a_basis_are_checked(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text(
        "indicators:\n"
        + indicator("test.t", "thresholds: {basis: percent_of_target, yellow: 10, red: 20}")
        + indicator("test.l", "thresholds: {basis: percent_of_limit, yellow: 10, red: 20}"),
        encoding="utf-8",
    )
    rules = {d.rule for d in check_catalogue(tmp_path).errors}
    assert {"CK062", "CK063"} <= rules


@pytest.mark.parametrize("name", list(vocab.TIME_ROLLUPS))
def test_check_accepts_every_time_rollup(name: str, tmp_path: Path) -> None:
    where = ", where: 'value <= 100'" if vocab.TIME_ROLLUPS[name].needs_where else ""
    body = f"thresholds: {{yellow: 10, red: 20}}\nrollup: {{time: {name}{where}, area: sum}}"
    check_ok(tmp_path, indicator("test.t", body))


@pytest.mark.parametrize("name", list(vocab.AREA_ROLLUPS))
def test_check_accepts_every_area_rollup(name: str, tmp_path: Path) -> None:
    entry = vocab.AREA_ROLLUPS[name]
    rollup = f"time: sum, area: {name}" + (", weight: population" if entry.needs_weight else "")
    body = f"thresholds: {{yellow: 10, red: 20}}\nrollup: {{{rollup}}}\n"
    if entry.needs_parts:
        body += "value: {observed: {with_parts: true, factor: 100}}\n"
    elif name == "recompute":
        body += "value: {from: test.base}\n"
    check_ok(tmp_path, indicator("test.a", body))


def test_check_accepts_every_unit(tmp_path: Path) -> None:
    inds = [
        indicator(f"test.u{i}", "thresholds: {yellow: 10, red: 20}", unit=f'"{name}"')
        for i, name in enumerate(vocab.UNITS)
    ]
    check_ok(tmp_path, *inds)


VALUE_BODIES = {
    "observed": "value: {observed: {with_parts: false}}",
    "ratio": "value: {ratio: {numerator: test.base, denominator: test.base, factor: 100}}",
    "formula": "value: {formula: 'a + 1', inputs: {a: test.base}}",
    "measure": "value: {measure: {source: cases, numerator: 'count(*)'}}\nrollup: {time: last, area: recompute}",
    "from": "value: {from: test.base}",
}


@pytest.mark.parametrize("name", list(vocab.VALUE_KINDS))
def test_check_accepts_every_value_kind(name: str, tmp_path: Path) -> None:
    body = "thresholds: {yellow: 10, red: 20}\n" + VALUE_BODIES[name]
    check_ok(tmp_path, indicator("test.v", body), extra=SOURCE)


# --- the basis hooks reproduce the compiler's SQL and labels ---------------------------------

COMPILER_ARGS = ("t.v", "m.target_value", "m.limit_value", "p.v", "y.v", "m.change_unit")


@pytest.mark.parametrize("name", list(vocab.BASES))
def test_basis_sql_hook_is_the_compilers_expression(name: str) -> None:
    sql = vocab.BASES[name].sql(*COMPILER_ARGS)
    assert f"WHEN '{name}' THEN {sql}" in compiler.classify_sql()


def test_the_whole_basis_case_is_the_compilers() -> None:
    case = vocab.bases.basis_value_sql("m.basis", *COMPILER_ARGS)
    assert f"SELECT t.*, {case} AS bv," in compiler.classify_sql()


def test_basis_change_sql_is_the_compilers_change() -> None:
    assert vocab.bases.change_sql("t.v", "p.v", "m.change_unit") == compiler._change("t.v", "p.v")


@pytest.mark.parametrize(
    ("name", "unit", "change_unit", "label"),
    [
        ("absolute", "µg/m³", "percent", " µg/m³"),
        ("absolute", "", "percent", ""),
        ("percent_of_target", "%", "points", "% of target"),
        ("percent_of_limit", "MW", "percent", "% of limit"),
        ("change_previous", "%", "points", " pts vs previous"),
        ("change_previous", "count", "percent", "% vs previous"),
        ("change_last_year", "%", "points", " pts vs last year"),
        ("change_last_year", "count", "percent", "% vs last year"),
    ],
)
def test_basis_labels(name: str, unit: str, change_unit: str, label: str) -> None:
    assert vocab.BASES[name].label(unit, change_unit) == label


def test_the_compiler_reads_labels_and_reasons_from_the_registry() -> None:
    """Explanations quote the basis label and the not-applicable reason that the registry gives."""
    from citykpi.catalogue import load_catalogue
    from citykpi.engine.tables import build_tables

    sql = compiler.cells_sql("SELECT * FROM t_k")
    assert "m.basis_label" in sql and "m.na_reason" in sql
    catalogue = load_catalogue(ROOT / "indicators")
    keys = {i.id: n for n, i in enumerate(catalogue.indicators, start=1)}
    ind = build_tables(catalogue, keys, grain="day", as_of=date(2025, 12, 31), area_keys={"500000": 1}).ind
    by_id = {i.id: i for i in catalogue.indicators}
    seen = set()
    for row in ind.select("indicator_id", "basis", "basis_label", "na_reason").iter_rows(named=True):
        entry = vocab.BASES[row["basis"]]
        i = by_id.get(row["indicator_id"])
        if i is None:  # a hidden grain copy
            continue
        assert row["basis_label"] == entry.label(i.unit, i.change_unit)
        assert row["na_reason"] == entry.not_applicable_reason
        seen.add(row["basis"])
    assert len(seen) >= 3
