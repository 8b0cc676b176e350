"""The Spark backend as a new user meets it: the demo's commands with ``--backend spark`` print what
they print on DuckDB, every other command works on a Spark warehouse, and a machine without PySpark
or Java gets a clear error (exit 3) naming what to install.

The sample city is built twice through the CLI, from the sample's own manifest commands: into a
DuckDB file and into a Spark warehouse folder. The demo's commands then run on both, at a fixed
terminal width, and must print the same text (wall-clock times aside) and write the same CSV (numbers
within 1e-9 relative).
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from citykpi.cli import app
from citykpi.errors import EngineUnavailableError
from tests.golden_support import ENV, SampleCity
from tests.spark_support import MASTER, require_spark, strip_times

ROOT = Path(__file__).resolve().parents[1]
DAY = "2025-12-31"


@dataclass
class Cities:
    """The sample city behind both backends, as global options."""

    duck: list[str]
    spark: list[str]
    workdir: Path


def _cli(args: list[str], cwd: Path) -> Any:
    here = Path.cwd()
    os.chdir(cwd)  # files are named relative to the work folder, as a user would type them
    try:
        return CliRunner(env=ENV).invoke(app, args)
    finally:
        os.chdir(here)


@pytest.fixture(scope="module")
def cities(sample_city: SampleCity, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cities]:
    require_spark()
    from citykpi.backend.spark import stop_session

    work = tmp_path_factory.mktemp("spark-cli")
    (work / "data").symlink_to(sample_city.data, target_is_directory=True)
    common = ["--catalogue", str(sample_city.catalogue)]
    duck = ["--db", str(work / "demo.duckdb"), *common]
    spark = [
        "--backend",
        "spark",
        "--warehouse",
        str(work / "demo-warehouse"),
        "--spark-master",
        MASTER,
        *common,
    ]
    manifest = json.loads((sample_city.data / "manifest.json").read_text(encoding="utf-8"))
    for entry in manifest["files"]:
        words = shlex.split(entry["command"].replace("sample_data/generated/", "data/"))
        assert words[0] == "citykpi"
        for options in (duck, spark):
            result = _cli([*options, *words[1:]], work)
            assert result.exit_code == 0, (words, result.output)
    yield Cities(duck, spark, work)
    stop_session()


def _demo_commands(workdir: Path) -> list[list[str]]:
    """The demo's own commands after ingest (``citykpi.demo.demo_steps``): the scorecard, alerts, early
    warning, a series, the stale cells with reasons, both league tables, the HTML and xlsx reports."""
    from citykpi.demo import demo_steps

    manifest = {"end": DAY, "files": []}
    sub_daily = {
        "--at",
        "hour",
        "15min",
    }  # sub-daily grains are not on the Spark backend (docs/spark.md, Limits)
    steps = [
        s[1:]
        for s in demo_steps(manifest, workdir / "out")
        if s[0] == "citykpi" and s[1] != "check" and not sub_daily & set(s)
    ]
    assert any("--early" in s for s in steps) and any("--format" in s for s in steps)
    return steps


def _with_output(args: list[str], name: str) -> list[str]:
    """``args`` with its ``--output`` file renamed for one backend."""
    if "--output" not in args:
        return args
    i = args.index("--output") + 1
    path = Path(args[i])
    return [*args[:i], str(path.with_name(f"{name}-{path.name}")), *args[i + 1 :]]


@pytest.mark.spark
@pytest.mark.slow  # the sample city ingested twice and a dozen Spark evaluations: `make test-all`
def test_the_demo_prints_the_same_scorecard_on_spark(cities: Cities) -> None:
    (cities.workdir / "out").mkdir(exist_ok=True)
    printed = []
    for args in _demo_commands(cities.workdir):
        a = _cli([*cities.duck, *_with_output(args, "duck")], cities.workdir)
        b = _cli([*cities.spark, *_with_output(args, "spark")], cities.workdir)
        assert a.exit_code == b.exit_code, (args, a.output, b.output)
        assert a.exit_code in (0, 1), (args, a.output)
        assert strip_times(b.stdout) == strip_times(a.stdout), args
        printed.append(a.stdout)
        if "html" in args:
            html = [Path(_with_output(args, n)[-1]).read_text(encoding="utf-8") for n in ("duck", "spark")]
            assert strip_times(html[1]) == strip_times(html[0])
    assert sum("■" in text for text in printed) >= 4  # the scorecards and league tables are there


@pytest.mark.spark
@pytest.mark.slow  # the sample city ingested twice and a dozen Spark evaluations: `make test-all`
def test_quality_scores_the_same_data_alike(cities: Cities) -> None:
    """``citykpi quality`` reads a Spark warehouse's published tables on the driver (DuckDB): same table."""
    args = ["quality", "--date", DAY, "--format", "csv"]
    a = _cli([*cities.duck, *args], cities.workdir)
    b = _cli([*cities.spark, *args], cities.workdir)
    assert a.exit_code == b.exit_code, (a.output, b.output)
    assert b.stdout == a.stdout and a.stdout.count("\n") > 5


def _same_field(a: str, b: str) -> bool:
    """Two CSV fields alike: the same text, or numbers within 1e-9 relative (the suite's tolerance)."""
    if a == b:
        return True
    try:
        x, y = float(a), float(b)
    except ValueError:
        return False
    return abs(x - y) <= 1e-9 * max(abs(x), abs(y))


@pytest.mark.spark
@pytest.mark.slow  # the sample city ingested twice and a dozen Spark evaluations: `make test-all`
def test_the_csv_export_is_the_same(cities: Cities) -> None:
    """Same rows, columns and text; numbers within 1e-9 relative (a difference that cancels catastrophically,
    e.g. a target's remaining gap, may differ in its last printed digits)."""
    import csv
    import io

    outs = []
    for options, name in ((cities.duck, "duck.csv"), (cities.spark, "spark.csv")):
        out = cities.workdir / name
        result = _cli(
            [*options, "evaluate", "--date", DAY, "--format", "csv", "--output", str(out)], cities.workdir
        )
        assert result.exit_code == 0, result.output
        outs.append(list(csv.reader(io.StringIO(out.read_text(encoding="utf-8")))))
    a, b = outs
    assert len(a) == len(b) > 10_000 and a[0] == b[0]
    diffs = [
        (n, a[0][i], x, y)
        for n, (ra, rb) in enumerate(zip(a, b, strict=True))
        for i, (x, y) in enumerate(zip(ra, rb, strict=True))
        if not _same_field(x, y)
    ]
    assert not diffs, diffs[:10]


@pytest.mark.spark
@pytest.mark.slow  # the sample city ingested twice and a dozen Spark evaluations: `make test-all`
def test_runs_diff_and_db_info_read_the_same_warehouse_facts(cities: Cities) -> None:
    for args in (["runs", "list"], ["diff"], ["db", "rejects"]):
        a = _cli([*cities.duck, *args], cities.workdir)
        b = _cli([*cities.spark, *args], cities.workdir)
        assert a.exit_code == b.exit_code, (args, a.output, b.output)
        assert strip_times(b.stdout) == strip_times(a.stdout), args
    info = _cli([*cities.spark, "db", "info", "--format", "json"], cities.workdir)
    assert info.exit_code == 0, info.output
    facts = json.loads(info.stdout)
    assert facts["tables"]["observations"] > 100_000 and facts["areas"] == 1059
    query = _cli([*cities.spark, "query", "SELECT count(*) AS n FROM observations"], cities.workdir)
    assert query.exit_code == 0 and str(facts["tables"]["observations"]) in query.stdout


@pytest.mark.spark
@pytest.mark.slow  # the sample city ingested twice and a dozen Spark evaluations: `make test-all`
def test_catalogue_tests_pass_alike_on_spark(cities: Cities) -> None:
    args = ["test", str(ROOT / "tests" / "catalogue_tests"), "--format", "json"]
    a = _cli([*cities.duck, *args], cities.workdir)
    b = _cli([*cities.spark, *args], cities.workdir)
    assert a.exit_code == b.exit_code == 0, (a.output, b.output)
    assert json.loads(a.stdout)["cases"] == json.loads(b.stdout)["cases"]


@pytest.mark.spark
@pytest.mark.slow  # the sample city ingested twice and a dozen Spark evaluations: `make test-all`
def test_a_second_writer_waits_for_the_warehouse_lock(cities: Cities) -> None:
    """The control file's lock is the warehouse's: a writer meets a busy warehouse as on DuckDB."""
    from citykpi.backend.spark import SparkBackend
    from citykpi.warehouse import Warehouse

    folder = cities.spark[cities.spark.index("--warehouse") + 1]
    with Warehouse.open(folder, backend=SparkBackend(MASTER)):
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "citykpi",
                "--backend",
                "spark",
                "--warehouse",
                folder,
                "areas",
                "load",
                "--wait",
                "1",
                "data/areas.csv",
            ],
            cwd=cities.workdir,
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, **ENV},
        )
    assert proc.returncode == 3, proc.stderr
    assert "busy" in proc.stderr and "--wait" in proc.stderr


# --- without PySpark or Java ---------------------------------------------------------------------------


def test_the_spark_backend_asks_for_java_17(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    pytest.importorskip("pyspark")
    from citykpi.backend import spark

    monkeypatch.setattr(spark, "java_version", lambda java=None: None)
    result = CliRunner(env=ENV).invoke(
        app, ["--backend", "spark", "--warehouse", str(tmp_path / "w"), "areas", "load", "x.csv"]
    )
    assert result.exit_code == 3
    assert "needs Java 17 or newer; no Java was found" in result.stderr
    assert "openjdk-17-jre-headless" in result.stderr
    monkeypatch.setattr(spark, "java_version", lambda java=None: 11)
    with pytest.raises(EngineUnavailableError, match="Java 11 was found"):
        spark.require_java()


def test_java_is_found_through_java_home_and_parsed(tmp_path: Path) -> None:
    from citykpi.backend.spark import java_version

    fake = tmp_path / "java"
    for text, major in (
        ('openjdk version "17.0.15" 2025-04-15', 17),
        ('java version "1.8.0_392"', 8),
        ('openjdk version "21" 2023-09-19', 21),
    ):
        fake.write_text(f"#!/bin/sh\necho '{text}' >&2\n", encoding="utf-8")
        fake.chmod(0o755)
        assert java_version(str(fake)) == major
    assert java_version(str(tmp_path / "missing")) is None


def test_the_spark_backend_asks_for_pyspark(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "pyspark", None)  # as if not installed
    monkeypatch.setitem(sys.modules, "pyspark.sql", None)
    result = CliRunner(env=ENV).invoke(
        app, ["--backend", "spark", "--warehouse", str(tmp_path / "w"), "runs", "list"]
    )
    assert result.exit_code == 3
    assert "needs PySpark" in result.stderr and "citykpi[spark]" in result.stderr


def test_db_names_a_duckdb_file_not_a_spark_warehouse(tmp_path: Path) -> None:
    result = CliRunner(env=ENV).invoke(app, ["--backend", "spark", "--db", "x.duckdb", "runs", "list"])
    assert result.exit_code == 2
    assert "--warehouse" in result.output


def test_the_plain_cli_imports_neither_pyspark_nor_sqlglot() -> None:
    code = (
        "import sys, citykpi.cli, citykpi.warehouse, citykpi.engine.evaluate; "
        "bad = [m for m in ('pyspark', 'sqlglot', 'py4j') if m in sys.modules]; "
        "sys.exit(1 if bad else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
