"""Evaluation runs inside DuckDB's sandbox: no file access, configuration locked.

The expression whitelist is the first guard (a catalogue cannot even say ``read_csv``); the sandbox
is the second: even SQL that slipped past the compiler could not read ``/etc/passwd``.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import pytest

from citykpi.catalogue import load_catalogue
from citykpi.engine import plan as plan_module
from citykpi.engine.evaluate import evaluate
from citykpi.errors import CatalogueError, EngineError
from citykpi.warehouse import IngestOptions, Warehouse, ingest, load_areas

CORPUS = Path(__file__).parent / "corpus" / "catalogue"

CATALOGUE = """\
schema_version: 1
sources:
  - id: cases
    time_column: created_at
    area_column: area_id
    key: case_id
    columns: {case_id: text, created_at: timestamp, closed_at: timestamp, area_id: text}
indicators:
  - id: case.closed_share
    name: {zh: 办结率, en: Share closed}
    kind: kpi
    domain: case_handling
    unit: "%"
    levels: [city, district]
    frequency: daily
    direction: higher_is_better
    thresholds: {yellow: 90, red: 80}
    value:
      measure: {source: cases, numerator: "count_if(closed_at IS NOT NULL)", denominator: "count(*)", factor: 100}
    rollup: {time: sum, area: recompute}
  - id: env.air.aqi
    name: {zh: 空气质量指数, en: AQI}
    kind: vital_sign
    domain: environment
    unit: index
    levels: [city, district]
    frequency: daily
    direction: lower_is_better
    thresholds: {yellow: 100, red: 200}
    rollup: {time: mean, area: mean}
"""

AREAS = "id,name,name_en,level,parent\nC,城,City,city,\nD1,一区,D1,district,C\nD2,二区,D2,district,C\n"

#: Statements a hostile evaluation could try; each must fail on the evaluation connection.
FORBIDDEN = [
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM read_text('/etc/passwd')",
    "COPY (SELECT 1) TO '{tmp}/leak.csv'",
    "ATTACH '{tmp}/other.duckdb' AS other",
    "INSTALL httpfs",
    "SET enable_external_access = true",
    "SET lock_configuration = false",
    "SET allowed_directories = ['/']",
]


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A database with three areas, AQI observations and raw case records; returns (db, catalogue)."""
    tmp_path = tmp_path_factory.mktemp("city")
    (tmp_path / "cat").mkdir()
    (tmp_path / "cat" / "c.yaml").write_text(CATALOGUE, encoding="utf-8")
    (tmp_path / "areas.csv").write_text(AREAS, encoding="utf-8")
    (tmp_path / "obs.csv").write_text(
        "indicator_id,area_id,period,value\nenv.air.aqi,D1,2025-06-30,80\nenv.air.aqi,D2,2025-06-30,120\n",
        encoding="utf-8",
    )
    (tmp_path / "cases.csv").write_text(
        "case_id,created_at,closed_at,area_id\n"
        "1,2025-06-30 09:00:00,2025-06-30 10:00:00,D1\n"
        "2,2025-06-30 09:00:00,,D1\n"
        "3,2025-06-30 11:00:00,2025-06-30 12:00:00,D2\n",
        encoding="utf-8",
    )
    cat = load_catalogue(tmp_path / "cat")
    db = tmp_path / "w.duckdb"
    with Warehouse.open(db) as wh:
        load_areas(wh, tmp_path / "areas.csv")
        assert ingest(wh, cat, [tmp_path / "obs.csv"]).rows_loaded == 2
        assert (
            ingest(wh, cat, [tmp_path / "cases.csv"], IngestOptions(fmt="source", source="cases")).rows_loaded
            == 3
        )
    return db, tmp_path / "cat"


def _values(db: Path, cat: Path, **kw: object) -> dict[tuple[str, str], float | None]:
    with Warehouse.open(db) as wh:
        sc = evaluate(wh, load_catalogue(cat), as_of=date(2025, 6, 30), **kw)  # type: ignore[arg-type]
        return {(r["indicator_id"], r["area_id"]): r["value"] for r in sc.cells.to_dicts()}


def test_sandbox_keeps_frames_temp_tables_and_source_tables_working(city: tuple[Path, Path]) -> None:
    db, cat = city
    guarded = _values(db, cat)
    assert guarded == _values(db, cat, sandbox=False)
    assert guarded[("case.closed_share", "D1")] == pytest.approx(50.0)
    assert guarded[("case.closed_share", "C")] == pytest.approx(200 / 3)
    assert guarded[("env.air.aqi", "C")] == pytest.approx(100.0)


@pytest.mark.parametrize("sql", FORBIDDEN)
def test_evaluation_connection_cannot_touch_files_or_settings(
    city: tuple[Path, Path], tmp_path: Path, sql: str
) -> None:
    db, cat = city
    with Warehouse.open(db) as wh:
        evaluate(wh, load_catalogue(cat), as_of=date(2025, 6, 30))
        with pytest.raises(
            EngineError, match=r"disabled by configuration|locked|Cannot enable|Permission"
        ) as err:
            wh.con.execute(sql.format(tmp=tmp_path))
        assert isinstance(err.value.__cause__, duckdb.Error)  # the backend translated DuckDB's own error
        # a second evaluation on the same (sandboxed) connection still works
        evaluate(wh, load_catalogue(cat), as_of=date(2025, 6, 30), persist=False)
    assert not (tmp_path / "leak.csv").exists() and not (tmp_path / "other.duckdb").exists()


def test_sql_slipped_past_the_compiler_cannot_read_etc_passwd(
    city: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Simulate a compiler bug that pastes a file read into the plan: the sandbox stops it."""
    db, cat = city
    original = plan_module.compile_plan

    def leaky(*args: object, **kwargs: object) -> object:
        tables, plan = original(*args, **kwargs)  # type: ignore[arg-type]
        plan.add("leak", "CREATE OR REPLACE TEMP TABLE leak AS SELECT * FROM read_csv('/etc/passwd')")
        return tables, plan

    monkeypatch.setattr(plan_module, "compile_plan", leaky)
    with Warehouse.open(db) as wh, pytest.raises(EngineError, match="disabled by configuration"):
        evaluate(wh, load_catalogue(cat), as_of=date(2025, 6, 30))


@pytest.mark.parametrize("name", ["expression_read_csv", "expression_copy_filter", "expression_statement"])
def test_catalogue_cannot_ask_for_file_reads(name: str) -> None:
    """The first guard: such expressions do not parse, so nothing is evaluated."""
    with pytest.raises(CatalogueError):
        load_catalogue(CORPUS / f"{name}.yaml")


def test_cli_evaluate_runs_sandboxed(city: tuple[Path, Path]) -> None:
    from typer.testing import CliRunner

    from citykpi.cli import app

    db, cat = city
    result = CliRunner().invoke(
        app,
        ["--db", str(db), "--catalogue", str(cat), "evaluate", "--date", "2025-06-30", "--format", "json"],
    )
    assert result.exit_code == 0, result.output
    assert '"case.closed_share"' in result.stdout


BROKEN_CATALOGUES = [
    "yaml_alias_bomb",
    "yaml_custom_tag",
    "yaml_deep_nesting",
    "expression_read_csv",
    "expression_copy_filter",
    "expression_statement",
    "not_utf8",
    "schema_version_2",
]


#: Every broken catalogue through evaluate; three of them also through ingest and run (same loader).
_CASES = [("evaluate", n) for n in BROKEN_CATALOGUES] + [
    (c, n) for c in ("ingest", "run") for n in ("yaml_alias_bomb", "yaml_custom_tag", "expression_read_csv")
]


@pytest.mark.parametrize(("command", "name"), _CASES)
def test_broken_catalogue_is_refused_before_any_data_is_touched(
    city: tuple[Path, Path], tmp_path: Path, name: str, command: str
) -> None:
    """A hostile or broken catalogue: exit 3 with the problem, and the database content is unchanged."""
    from typer.testing import CliRunner

    from citykpi.cli import app
    from tests.reliability_support import content_digest

    db, _good = city
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / f"{name}.yaml").write_bytes((CORPUS / f"{name}.yaml").read_bytes())
    before = content_digest(db)
    args = {
        "evaluate": ["evaluate", "--date", "2025-06-30"],
        "ingest": ["ingest", str(db.parent / "obs.csv")],
        "run": ["run", "--config", str(tmp_path / "citykpi.toml"), "--date", "2025-06-30"],
    }[command]
    (tmp_path / "citykpi.toml").write_text(
        f'database = "{db}"\ncatalogue = "{bad}"\ninbox = ["{tmp_path}"]\n[outputs]\nfolder = "{tmp_path}/out"\n',
        encoding="utf-8",
    )
    result = CliRunner().invoke(app, ["--db", str(db), "--catalogue", str(bad), *args])
    assert result.exit_code == 3, result.output
    assert "\nError: " in "\n" + result.stderr and "Traceback" not in result.output  # run logs a line first
    assert content_digest(db) == before
    out = tmp_path / "out"
    assert not out.exists() or [p.name for p in out.iterdir()] == ["runs"]  # no scorecard file
    if command == "run":  # only the run report, which says the job failed
        import json

        report = json.loads((out / "runs" / "run-2025-06-30-day.json").read_text(encoding="utf-8"))
        assert (report["health"]["status"], report["exit_code"], report["run_id"]) == ("failed", 3, None)
