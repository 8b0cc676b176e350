"""docs/api.md's examples run as written, in order, in a fresh folder (the public API is what it says)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

import citykpi
from citykpi.sample.generate import generate

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "api.md"


def _examples() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)


def test_every_public_name_is_importable_and_documented() -> None:
    text = DOC.read_text(encoding="utf-8")
    for name in citykpi.__all__:
        assert getattr(citykpi, name) is not None
    for name in ("load_catalogue", "open_warehouse", "ingest", "evaluate", "Scorecard", "load_areas"):
        assert name in citykpi.__all__ and f"`{name}" in text, name
    assert (ROOT / "citykpi" / "py.typed").exists()
    with pytest.raises(AttributeError):
        _ = citykpi.no_such_name  # type: ignore[attr-defined]


def test_the_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    examples = _examples()
    assert len(examples) >= 5
    shutil.copytree(ROOT / "indicators", tmp_path / "indicators")
    generate(tmp_path / "sample", days=40, catalogue_path=tmp_path / "indicators")
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    for n, code in enumerate(examples, start=1):
        exec(compile(code, f"docs/api.md example {n}", "exec"), namespace)
    card = namespace["card"]
    assert isinstance(card, citykpi.Scorecard) and card.cells.height > 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        [f"scorecard.{f}" for f in ("csv", "parquet", "json", "jsonl", "markdown", "html", "xlsx", "junit")]
        + ["quality.json"]
    )
    assert isinstance(namespace["quality"], citykpi.QualityReport)
