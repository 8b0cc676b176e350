"""YAML safety: no code runs, no file is read, nothing hangs — and the marks are right."""

from __future__ import annotations

import os
import time
from datetime import date
from pathlib import Path

import pytest

from citykpi.catalogue import check_catalogue
from citykpi.catalogue.yamlsafe import (
    MAX_BYTES,
    YMap,
    YSeq,
    load_yaml_bytes,
    load_yaml_file,
    load_yaml_text,
    safe_load,
)
from citykpi.errors import CatalogueError


def _rules(text: str) -> list[str]:
    return [d.rule for d in load_yaml_text(text).diagnostics]


@pytest.mark.parametrize(
    "payload",
    [
        "!!python/object/apply:os.system ['touch {marker}']",
        "!!python/object/new:os.system ['touch {marker}']",
        "!!python/name:os.system",
        "!!python/module:os",
        "!<tag:yaml.org,2002:python/object/apply:os.system> ['touch {marker}']",
    ],
)
def test_python_tags_are_refused_and_nothing_runs(tmp_path: Path, payload: str) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.yaml"
    path.write_text("indicators:\n  - id: " + payload.format(marker=marker) + "\n", encoding="utf-8")
    result = check_catalogue(path)
    assert [d.rule for d in result.errors] == ["CK005"]
    assert result.errors[0].location.line == 2
    assert not marker.exists()


@pytest.mark.parametrize(
    "tag", ["!include other.yaml", "!env HOME", "!!binary aGVsbG8=", "!!set {a, b}", "!!omap [a: 1]"]
)
def test_non_core_tags_are_refused(tag: str) -> None:
    assert _rules(f"x: {tag}\n") == ["CK005"]


@pytest.mark.parametrize("tag", ["!!str 1", "!!int '7'", "!!float 1", "!!bool true", "!!null ''", "! 12"])
def test_core_tags_are_fine(tag: str) -> None:
    assert load_yaml_text(f"x: {tag}\n").ok


def test_billion_laughs_is_refused_quickly() -> None:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 9):
        prev, cur = chr(96 + i), chr(97 + i)
        lines.append(f"{cur}: &{cur} [" + ",".join([f"*{prev}"] * 9) + "]")
    start = time.perf_counter()
    result = load_yaml_text("\n".join(lines) + "\n")
    assert result.data is None
    assert [d.rule for d in result.diagnostics] == ["CK004"]
    assert "alias bomb" in result.diagnostics[0].message
    assert time.perf_counter() - start < 5  # generous: a hang would take hours


def test_many_aliases_are_refused() -> None:
    text = "a: &a 1\nb: [" + ", ".join(["*a"] * 150) + "]\n"
    (d,) = load_yaml_text(text).diagnostics
    assert d.rule == "CK004" and "more than 100 aliases" in d.message


def test_recursive_alias_is_refused() -> None:
    (d,) = load_yaml_text("a: &a [1, *a]\n").diagnostics
    assert d.rule == "CK001" and "refers to itself" in d.message


@pytest.mark.parametrize("style", ["flow", "block"])
def test_deep_nesting_is_refused(style: str) -> None:
    if style == "flow":
        text = "x: " + "[" * 10_000 + "]" * 10_000 + "\n"
    else:
        text = "".join(" " * i + "a:\n" for i in range(2_000))  # 10,000 would exceed the size cap
    start = time.perf_counter()
    result = load_yaml_text(text)
    assert result.data is None
    assert [d.rule for d in result.diagnostics] == ["CK004"]
    assert "nested deeper" in result.diagnostics[0].message
    assert time.perf_counter() - start < 5


def test_64_levels_are_fine_65_are_not() -> None:
    assert load_yaml_text("[" * 64 + "]" * 64).ok
    assert _rules("[" * 65 + "]" * 65) == ["CK004"]


def test_50_mib_file_is_refused_without_reading_it(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    with path.open("wb") as fh:  # sparse: 50 MiB on paper, nothing on disk
        fh.truncate(50 * 1024 * 1024)
    start = time.perf_counter()
    result = check_catalogue(path)
    (d,) = result.errors
    assert d.rule == "CK004" and "50.0 MiB, over the 5 MiB limit" in d.message
    assert time.perf_counter() - start < 2


def test_size_limit_applies_to_bytes_and_text_too() -> None:
    big = b"#" * (MAX_BYTES + 1)
    assert [d.rule for d in load_yaml_bytes(big).diagnostics] == ["CK004"]
    assert [d.rule for d in load_yaml_text(big.decode()).diagnostics] == ["CK004"]


def test_duplicate_keys_are_reported_with_both_lines() -> None:
    result = load_yaml_text("a: 1\nb:\n  c: 1\n  c: 2\n")
    (d,) = result.diagnostics
    assert (d.rule, d.location.line, d.location.column) == ("CK002", 4, 3)
    assert "first at line 3" in d.message
    assert result.data["b"]["c"] == 1  # the first value is kept


def test_tabs_are_reported_on_their_line() -> None:
    diags = load_yaml_text("a:\n  b: 1\n\tc: 2\n").diagnostics
    assert [(d.rule, d.location.line) for d in diags] == [("CK003", 3)]


def test_tab_inside_a_value_is_fine() -> None:
    assert load_yaml_text('a: "x\ty"\n').data == {"a": "x\ty"}
    assert load_yaml_text("a: |\n  line\n  \tindented with a tab\n").data == {
        "a": "line\n\tindented with a tab\n"
    }
    assert load_yaml_text("a: [1,\n\t2]\n").data == {"a": [1, 2]}


def test_syntax_error_has_line_and_column() -> None:
    (d,) = load_yaml_text("a: [1, 2\nb: 3\n").diagnostics
    assert d.rule == "CK001" and d.location.line == 2


def test_second_document_is_refused() -> None:
    assert _rules("a: 1\n---\nb: 2\n") == ["CK001"]


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "gbk.yaml"
    path.write_bytes("a: 空气\n".encode("gb18030"))
    (d,) = load_yaml_file(path).diagnostics
    assert d.rule == "CK006" and "not UTF-8" in d.message


def test_missing_file_is_a_diagnostic(tmp_path: Path) -> None:
    (d,) = load_yaml_file(tmp_path / "nope.yaml").diagnostics
    assert d.rule == "CK006"


def test_bom_is_accepted() -> None:
    assert load_yaml_bytes("\ufeffa: 1\n".encode()).data == {"a": 1}


def test_values_and_marks() -> None:
    text = "a: 1\nb: [x, 2025-12-31, 1.5, null, true]\nno: yes\n'500105': {c: d}\n"
    data = load_yaml_text(text, "f.yaml").data
    assert isinstance(data, YMap)
    assert data == {"a": 1, "b": ["x", date(2025, 12, 31), 1.5, None, True], "no": True, "500105": {"c": "d"}}
    assert str(data.key_loc("b")) == "f.yaml:2:1"
    assert str(data.value_loc("b")) == "f.yaml:2:4"
    seq = data["b"]
    assert isinstance(seq, YSeq)
    assert str(seq.item_loc(1)) == "f.yaml:2:8"
    assert str(data["500105"].value_loc("c")) == "f.yaml:4:15"
    assert data.value_loc("missing") == data.loc


def test_keys_stay_text() -> None:
    data = load_yaml_text("1: a\nno: b\n500105: c\n").data
    assert list(data) == ["1", "no", "500105"]


def test_merge_keys() -> None:
    data = load_yaml_text("base: &b {x: 1, y: 2}\nc:\n  <<: *b\n  y: 3\n").data
    assert data["c"] == {"x": 1, "y": 3}


def test_empty_document() -> None:
    result = load_yaml_text("# only a comment\n")
    assert result.data is None and result.diagnostics == ()


def test_safe_load_raises_catalogue_error() -> None:
    assert safe_load("a: 1\n") == {"a": 1}
    with pytest.raises(CatalogueError, match="CK005"):
        safe_load("a: !!python/name:os.system\n")


def test_no_code_path_reads_environment_or_files(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP SECRET")
    text = f"a: !include {secret}\nb: ${{HOME}}\nc: {os.environ.get('HOME', '~')}\n"
    result = load_yaml_text(text)
    assert result.data is None  # the tag is refused; nothing expands variables either
    assert "TOP SECRET" not in repr(result)


@pytest.mark.parametrize(
    ("line3", "column", "label"),
    [
        ("  - id: env.air.aqi\x00", 20, "NUL (U+0000)"),
        ('  - id: "空气\x00"', 12, "NUL (U+0000)"),  # columns count characters, not UTF-8 bytes
        ("  - id: x\x1b[2J", 10, "ESC (U+001B)"),
        ("  - id: x\x07", 10, "a control character (U+0007)"),
    ],
)
def test_a_forbidden_character_is_reported_at_its_line_and_column(
    tmp_path: Path, line3: str, column: int, label: str
) -> None:
    path = tmp_path / "nul.yaml"
    path.write_bytes(f"schema_version: 1\nindicators:\n{line3}\n    kind: kpi\n".encode())
    result = load_yaml_file(path, display="nul.yaml")
    (diag,) = result.diagnostics
    assert (diag.rule, diag.location.line, diag.location.column) == ("CK001", 3, column)
    assert diag.message == f"the file holds {label}, which YAML does not allow"
    assert "position" not in diag.message and "<unicode string>" not in diag.message


def test_check_names_the_file_line_and_column_of_a_nul(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from citykpi.cli import app

    monkeypatch.chdir(tmp_path)  # a relative name: the text table wraps long paths at the terminal width
    path = tmp_path / "nul.yaml"
    path.write_bytes(b"schema_version: 1\nindicators:\n  - id: a.b\x00\n")
    result = CliRunner().invoke(app, ["check", "nul.yaml"])
    assert result.exit_code == 1
    assert "nul.yaml:3:12" in result.output and "CK001" in result.output and "NUL" in result.output
    evaluated = CliRunner().invoke(
        app, ["--catalogue", str(path), "--db", str(tmp_path / "w.duckdb"), "evaluate"]
    )
    assert evaluated.exit_code == 3
    assert evaluated.stderr.startswith(f"Error: {path}:3:12: the file holds NUL")
    assert not (tmp_path / "w.duckdb").exists()
