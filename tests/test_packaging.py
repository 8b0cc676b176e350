"""The package as users install it: every runtime import is a declared dependency, and the wheel works alone."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: import name → distribution name, where they differ
_DIST = {"yaml": "pyyaml", "chinese_calendar": "chinesecalendar"}
#: needed at run time without being imported by name (DuckDB ↔ Polars frames travel as Arrow)
_IMPLICIT = {"pyarrow"}
#: imported only by modules of an optional feature: import name → extra that installs it
_OPTIONAL = {"sqlglot": "engines", "pyspark": "spark", "py4j": "spark"}


def _declared() -> set[str]:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    names = set()
    for req in meta["project"]["dependencies"]:
        name = req.split(";")[0]
        for sep in "<>=!~[ ":
            name = name.split(sep)[0]
        names.add(name.strip().lower())
    return names


def _imported() -> set[str]:
    found: set[str] = set()
    for path in (ROOT / "citykpi").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return {m for m in found if m not in sys.stdlib_module_names and m not in ("citykpi", "__future__")}


def test_every_runtime_import_is_a_dependency() -> None:
    declared = _declared()
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "optional-dependencies"
    ]
    for module, extra in _OPTIONAL.items():
        installed_by = "pyspark" if module == "py4j" else module  # py4j comes with PySpark
        assert any(r.startswith(installed_by) for r in extras[extra]), (module, extra)
    assert any(r.startswith("sqlglot") for r in extras["spark"])  # the Spark backend translates with it
    missing = sorted({_DIST.get(m, m) for m in _imported() if m not in _OPTIONAL} - declared)
    assert not missing, f"imported by citykpi but not in [project] dependencies: {missing}"
    assert declared >= _IMPLICIT


def test_duckdb_is_imported_only_by_the_backend() -> None:
    outside = []
    for path in (ROOT / "citykpi").rglob("*.py"):
        rel = path.relative_to(ROOT / "citykpi").as_posix()
        if rel.startswith(("backend/", "sample/")):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            if any(n.split(".")[0] == "duckdb" for n in names):
                outside.append(rel)
    assert not outside, f"duckdb imported outside citykpi/backend: {outside}"


def _run(args: list[str], cwd: Path, env: dict[str, str]) -> str:
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"{args} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


@pytest.mark.wheel
def test_the_wheel_alone_runs_the_whole_job(tmp_path: Path) -> None:
    """Build the wheel, install it without extras in a clean venv, run check → areas → ingest → evaluate → exports."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env["CITYKPI_CACHE_DIR"] = str(tmp_path / "cache")
    dist = tmp_path / "dist"
    _run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(dist), str(ROOT)],
        tmp_path,
        env,
    )
    wheel = next(dist.glob("citykpi-*.whl"))
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], tmp_path, env)
    py = venv / "bin" / "python"
    _run(
        [str(py), "-m", "pip", "install", "--quiet", "-c", str(ROOT / "constraints.txt"), str(wheel)],
        tmp_path,
        env,
    )
    extras = _run([str(py), "-m", "pip", "list", "--format=freeze"], tmp_path, env).lower()
    assert "pytest" not in extras and "hypothesis" not in extras  # no dev extras crept in

    work = tmp_path / "work"
    work.mkdir()
    shutil.copytree(ROOT / "indicators", work / "indicators")
    _run([str(py), "-m", "citykpi.sample", "--out", "data", "--days", "40"], work, env)
    cli = [str(venv / "bin" / "citykpi"), "--db", "city.duckdb", "--catalogue", "indicators"]
    _run([*cli, "check"], work, env)
    _run([*cli, "areas", "load", "data/areas.csv"], work, env)
    _run([*cli, "ingest", "--format", "long", "data/kpi_periodic.csv"], work, env)
    _run([*cli, "ingest", "--format", "long", "data/observations_daily.parquet"], work, env)
    _run([*cli, "evaluate", "--level", "city"], work, env)
    for fmt in ("csv", "parquet", "json", "jsonl", "markdown", "html", "xlsx", "junit"):
        out = work / f"scorecard.{fmt}"
        proc = subprocess.run(
            [*cli, "evaluate", "--level", "district", "--format", fmt, "--output", str(out)],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert proc.returncode in (0, 1), f"{fmt}: exit {proc.returncode}\n{proc.stderr}"  # 1 = a red cell
        assert out.stat().st_size > 0, fmt
