"""CI for catalogue authors (docs/ci.md): the shipped schema and modelines, the schema/parser key parity,
the GitHub Action and example workflow against SchemaStore's schemas, and the pre-commit hooks."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from citykpi.catalogue import check_catalogue, parser
from citykpi.catalogue.jsonschema import SCHEMA_FILE, SCHEMA_ID, catalogue_schema
from citykpi.catalogue.parser.reader import RENAMED_VALUE_KEYS
from citykpi.cli import app

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()
MODELINE = re.compile(r"^# yaml-language-server: \$schema=(\S+)$")


def catalogue_files() -> list[Path]:
    """Every catalogue YAML file of the repository (the deliberately broken test corpus aside)."""
    return sorted([*ROOT.glob("indicators/**/*.y*ml"), *ROOT.glob("examples/*/indicators/**/*.y*ml")])


# --- schema identity, --output and the shipped file ---------------------------------------------


def test_schema_id_names_the_schema_version() -> None:
    assert f"https://citykpi.org/schema/catalogue/v{max(parser.SCHEMA_VERSIONS)}.json" == SCHEMA_ID
    assert catalogue_schema()["$id"] == SCHEMA_ID


def test_the_committed_schema_equals_citykpi_schema() -> None:
    result = runner.invoke(app, ["schema"])
    assert result.exit_code == 0, result.output
    assert (ROOT / SCHEMA_FILE).read_text(encoding="utf-8") == result.output, (
        f"regenerate it: citykpi schema --output {SCHEMA_FILE} --force"
    )


def test_schema_output_writes_the_file_and_refuses_a_foreign_one(tmp_path: Path) -> None:
    out = tmp_path / "s" / "catalogue.schema.json"
    result = runner.invoke(app, ["schema", "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text(encoding="utf-8"))["$id"] == SCHEMA_ID
    assert "Wrote the catalogue JSON Schema" in result.output
    again = runner.invoke(app, ["schema", "--output", str(out)])  # a previous export: replaced
    assert again.exit_code == 0, again.output
    foreign = tmp_path / "notes.txt"
    foreign.write_text("keep me\n", encoding="utf-8")
    refused = runner.invoke(app, ["schema", "--output", str(foreign)])
    assert refused.exit_code == 2
    assert foreign.read_text(encoding="utf-8") == "keep me\n"


def test_every_catalogue_file_starts_with_the_modeline() -> None:
    files = catalogue_files()
    assert len(files) >= 20
    for file in files:
        first = file.read_text(encoding="utf-8").splitlines()[0]
        m = MODELINE.match(first)
        assert m, f"{file.relative_to(ROOT)} does not start with the yaml-language-server modeline"
        assert (file.parent / m.group(1)).resolve() == (ROOT / SCHEMA_FILE).resolve(), file


def test_the_parser_reads_a_file_with_the_modeline(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(
        "# yaml-language-server: $schema=../schema/catalogue.schema.json\n"
        "schema_version: 1\ngroups:\n  - {id: g, name: {zh: 组, en: G}, areas: ['1']}\n  - {id: g2, x: 1}\n",
        encoding="utf-8",
    )
    result = check_catalogue(tmp_path)
    # positions are unchanged by the comment: the unknown key is on line 5
    assert [(d.rule, d.location.line) for d in result.diagnostics if d.rule == "CK010"] == [("CK010", 5)]


def test_vscode_settings_map_the_schema() -> None:
    settings = json.loads((ROOT / "examples/.vscode/settings.json").read_text(encoding="utf-8"))
    (path, globs), *_ = settings["yaml.schemas"].items()
    assert (ROOT / "examples" / path).resolve() == (ROOT / SCHEMA_FILE).resolve()
    assert "**/indicators/*.yaml" in globs


# --- no drift between the JSON Schema and the parser ------------------------------------------------


def closed_objects(node: Any, path: str = "#") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every object schema that refuses other keys, with its JSON pointer."""
    if isinstance(node, dict):
        if node.get("additionalProperties") is False:
            yield path, node
        for key, child in node.items():
            yield from closed_objects(child, f"{path}/{key}")
    elif isinstance(node, list):
        for i, child in enumerate(node):
            yield from closed_objects(child, f"{path}/{i}")


NAME = ("zh", "en")
OLD = tuple(RENAMED_VALUE_KEYS)  # deprecated spellings the parser still reads (CK108)
IND = "#/$defs/indicator"
VALUE = f"{IND}/properties/value/oneOf"
KINDS = {k: i + 1 for i, k in enumerate(parser.VALUE_KINDS)}
COMPONENT = "#/$defs/index/properties/components/items/oneOf/1"
#: JSON pointer of each closed object in the schema -> the keys the parser accepts there.
PARSER_KEYS: dict[str, tuple[str, ...]] = {
    "#": parser.FILE_KEYS,
    IND: parser.INDICATOR_KEYS,
    f"{IND}/properties/name/oneOf/1": NAME,
    f"{IND}/properties/scale/items": parser.SCALE_STEP_KEYS,
    f"{IND}/properties/scale/items/properties/label/oneOf/1": NAME,
    f"{IND}/properties/thresholds": parser.THRESHOLD_KEYS,
    f"{IND}/properties/thresholds/properties/overrides/items": parser.OVERRIDE_KEYS,
    f"{IND}/properties/rollup": parser.ROLLUP_KEYS,
    f"{IND}/properties/target": parser.TARGET_KEYS,
    **{f"{VALUE}/{i}": (k, *(("inputs",) if k == "formula" else ())) for k, i in KINDS.items()},
    f"{VALUE}/{KINDS['observed']}/properties/observed/oneOf/1": (*parser.OBSERVED_KEYS, *OLD),
    f"{VALUE}/{KINDS['ratio']}/properties/ratio": (*parser.RATIO_KEYS, *OLD),
    f"{VALUE}/{KINDS['formula']}/properties/formula/oneOf/1": parser.FORMULA_KEYS,
    f"{VALUE}/{KINDS['measure']}/properties/measure": (*parser.MEASURE_KEYS, *OLD),
    "#/$defs/index": parser.INDEX_KEYS,
    "#/$defs/index/properties/name/oneOf/1": NAME,
    COMPONENT: parser.COMPONENT_KEYS,
    f"{COMPONENT}/properties/normalise/oneOf/1": parser.NORMALISE_KEYS,
    "#/$defs/index/properties/normalise/oneOf/1": parser.NORMALISE_KEYS,
    "#/$defs/index/properties/bands": parser.INDEX_BAND_KEYS,
    "#/$defs/group": parser.GROUP_KEYS,
    "#/$defs/group/properties/name/oneOf/1": NAME,
    "#/$defs/source": parser.SOURCE_KEYS,
    "#/$defs/source/properties/timeliness": parser.TIMELINESS_KEYS,
    "#/$defs/feed": parser.FEED_KEYS,
    "#/$defs/rule": parser.RULE_KEYS,
    f"{IND}/properties/forecast/oneOf/1": parser.FORECAST_KEYS,
    "#/$defs/domain": parser.DOMAIN_KEYS,
    "#/$defs/domain/properties/forecast/oneOf/1": parser.FORECAST_KEYS,
    "#/$defs/incident": parser.INCIDENT_KEYS,
}
#: Entities whose required keys the parser declares in one table.
PARSER_REQUIRED = {
    IND: parser.INDICATOR_REQUIRED,
    "#/$defs/index": parser.INDEX_REQUIRED,
    "#/$defs/group": parser.GROUP_REQUIRED,
    "#/$defs/source": parser.SOURCE_REQUIRED,
    "#/$defs/feed": parser.FEED_REQUIRED,
    "#/$defs/rule": parser.RULE_REQUIRED,
    "#/$defs/domain": parser.DOMAIN_REQUIRED,
    "#/$defs/incident": parser.INCIDENT_REQUIRED,
}


def key_drift(schema: dict[str, Any]) -> list[str]:
    """Every difference between the keys the schema and the parser accept, one line each."""
    found = dict(closed_objects(schema))
    problems = [f"{p}: a closed object the parser table does not know" for p in found if p not in PARSER_KEYS]
    problems += [
        f"{p}: in the parser table but not a closed object of the schema"
        for p in PARSER_KEYS
        if p not in found
    ]
    for path, node in found.items():
        if path not in PARSER_KEYS:
            continue
        schema_keys, parser_keys = set(node["properties"]), set(PARSER_KEYS[path])
        if schema_keys != parser_keys:
            problems.append(
                f"{path}: schema only {sorted(schema_keys - parser_keys)}, parser only {sorted(parser_keys - schema_keys)}"
            )
        if path in PARSER_REQUIRED and set(node.get("required", ())) != set(PARSER_REQUIRED[path]):
            problems.append(f"{path}: required {node.get('required')} vs {PARSER_REQUIRED[path]}")
    return problems


def test_the_schema_and_the_parser_accept_the_same_keys() -> None:
    assert key_drift(catalogue_schema()) == []


def test_a_key_on_one_side_only_is_found(monkeypatch: pytest.MonkeyPatch) -> None:
    schema = catalogue_schema()
    schema["$defs"]["source"]["properties"]["encoding"] = {"type": "string"}
    assert key_drift(schema) == ["#/$defs/source: schema only ['encoding'], parser only []"]
    monkeypatch.setitem(PARSER_KEYS, f"{IND}/properties/rollup", (*parser.ROLLUP_KEYS, "unit"))
    drift = key_drift(catalogue_schema())
    assert drift == [f"{IND}/properties/rollup: schema only [], parser only ['unit']"]


def test_a_new_closed_object_in_the_schema_is_found() -> None:
    schema = catalogue_schema()
    schema["$defs"]["group"]["properties"]["meta"] = {
        "type": "object",
        "properties": {},
        "additionalProperties": False,
    }
    assert key_drift(schema) == [
        "#/$defs/group/properties/meta: a closed object the parser table does not know",
        "#/$defs/group: schema only ['meta'], parser only []",
    ]


# --- the GitHub Action and the example workflow --------------------------------------------------


def check_jsonschema(schema: str, file: Path) -> subprocess.CompletedProcess[str]:
    """check-jsonschema with a schema it vendors (SchemaStore's), so no download happens."""
    exe = Path(sys.executable).with_name("check-jsonschema")
    if not exe.exists():
        pytest.skip("check-jsonschema is not installed (pip install -e '.[dev]')")
    return subprocess.run(
        [str(exe), "--builtin-schema", f"vendor.{schema}", str(file)],
        capture_output=True,
        text=True,
        check=False,
        env={
            "PATH": "/usr/bin:/bin",
            "HTTPS_PROXY": "http://127.0.0.1:9",
            "HTTP_PROXY": "http://127.0.0.1:9",
        },
    )


@pytest.mark.parametrize(
    ("schema", "file"),
    [("github-actions", "action.yml"), ("github-workflows", "examples/github-workflow.yml")],
)
def test_action_and_workflow_match_the_published_schemas(schema: str, file: str) -> None:
    done = check_jsonschema(schema, ROOT / file)
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_step_without_run_or_uses_is_refused(tmp_path: Path) -> None:
    text = (ROOT / "action.yml").read_text(encoding="utf-8")
    broken = tmp_path / "action.yml"
    broken.write_text(
        text.replace("      run: python -m pip install", "      command: python -m pip install"),
        encoding="utf-8",
    )
    assert broken.read_text(encoding="utf-8") != text
    done = check_jsonschema("github-actions", broken)
    assert done.returncode == 1, done.stdout + done.stderr
    bad_flow = tmp_path / "workflow.yml"
    bad_flow.write_text(
        (ROOT / "examples/github-workflow.yml").read_text(encoding="utf-8").replace("runs-on:", "runs_on:"),
        encoding="utf-8",
    )
    assert check_jsonschema("github-workflows", bad_flow).returncode == 1


def test_the_action_runs_check_with_github_annotations() -> None:
    text = (ROOT / "action.yml").read_text(encoding="utf-8")
    assert 'pip install "$GITHUB_ACTION_PATH"' in text
    assert 'args=(check "$CATALOGUE" --format github)' in text
    assert 'test "$TESTS" --format github' in text


def test_the_docs_workflow_equals_the_example_file() -> None:
    docs = (ROOT / "docs/ci.md").read_text(encoding="utf-8")
    example = (ROOT / "examples/github-workflow.yml").read_text(encoding="utf-8")
    blocks = re.findall(r"```yaml\n(.*?)```", docs, flags=re.S)
    assert example in blocks
