"""Catalogue unit tests (`citykpi test`), in the spirit of Prometheus' `promtool test rules`.

A test file is YAML::

    catalogue: ../indicators          # optional, relative to the file; default: the --catalogue
    areas:                            # inline area hierarchy
      - {id: C, level: city, population: 100}
      - {id: D1, level: district, parent: C, population: 60}
    tests:
      - name: an AQI episode turns red
        as_of: 2025-12-31
        period: day                   # optional (default day)
        series:                       # one value per period ending at `end` (null = missing)
          - {indicator: env.air.aqi, area: D1, end: 2025-12-31, values: [50, 250, 260]}
        observations:                 # or single observations
          - {indicator: env.air.aqi, area: C, period: 2025-12-31, value: 40}
        sources:                      # raw source rows, by source id
          hotline_cases: [{case_id: a, created_at: 2025-12-01 10:00, street_id: D1, …}]
        expect:
          - {indicator: env.air.aqi, area: D1, status: red, value: 260}
          - {indicator: env.air.aqi, area: C, status: green, value: 40, tolerance: 0.01}

Every test runs in a fresh temporary warehouse; nothing touches the user's database. The report
lists each failure with expected vs actual and the indicators that no test covers.
"""

from __future__ import annotations

import json
import math
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl

from citykpi.catalogue.loader import load_catalogue
from citykpi.catalogue.model import GRAIN_OF_FREQUENCY, Catalogue
from citykpi.catalogue.yamlsafe import YSeq, safe_load
from citykpi.engine.calendar import shift
from citykpi.engine.evaluate import evaluate
from citykpi.errors import CatalogueError, DataError, Location
from citykpi.sqlutil import ident
from citykpi.warehouse.areas import load_areas
from citykpi.warehouse.connection import Warehouse
from citykpi.warehouse.ingest.append import append_observations
from citykpi.warehouse.schema import SOURCE_SQL_TYPES, frequency_class, source_table_ddl, source_table_name

_EXPECT_FIELDS = ("status", "value", "band_label", "target_status", "streak")


@dataclass(frozen=True)
class Failure:
    """One expectation that did not hold: what was expected, what came out, and where it is written."""

    message: str
    #: 1-based line of the expectation in the test file (None when unknown).
    line: int | None = None
    indicator: str = ""
    area: str = ""
    #: The field compared (status, value, …); empty when the cell itself is missing.
    field: str = ""
    expected: Any = None
    actual: Any = None

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class CaseResult:
    """The outcome of one test case."""

    file: str
    name: str
    failures: tuple[Failure, ...]
    checked: int
    #: 1-based line where the case starts in its file (None when unknown).
    line: int | None = None

    @property
    def passed(self) -> bool:
        """True when every expectation held."""
        return not self.failures


@dataclass(frozen=True)
class TestReport:
    """All test cases run, and the catalogue indicators no test expects anything of."""

    __test__ = False  # not a pytest class

    cases: tuple[CaseResult, ...]
    uncovered: tuple[str, ...] = ()
    files: tuple[str, ...] = field(default_factory=tuple)

    @property
    def failed(self) -> tuple[CaseResult, ...]:
        """The failing cases."""
        return tuple(c for c in self.cases if not c.passed)

    def to_json(self) -> str:
        """The report as JSON (schema_version 1)."""
        return json.dumps(
            {
                "schema_version": 1,
                "passed": sum(c.passed for c in self.cases),
                "failed": len(self.failed),
                "cases": [
                    {
                        "file": c.file,
                        "name": c.name,
                        "line": c.line,
                        "passed": c.passed,
                        "failures": [f.message for f in c.failures],
                        "details": [
                            {
                                "line": f.line,
                                "indicator": f.indicator,
                                "area": f.area,
                                "field": f.field,
                                "expected": f.expected,
                                "actual": f.actual,
                            }
                            for f in c.failures
                        ],
                    }
                    for c in self.cases
                ],
                "uncovered": list(self.uncovered),
            },
            ensure_ascii=False,
            indent=2,
            default=str,
        )


def test_files(path: Path) -> list[Path]:
    """The test files under ``path`` (a file, or ``*_test.yaml``/``*.test.yaml`` in a folder)."""
    if path.is_file():
        return [path]
    if not path.exists():
        raise DataError(f"no test file or folder at {path}", hint="pass the path of your catalogue tests")
    return sorted(p for p in path.rglob("*.y*ml") if p.stem.endswith(("_test", ".test")))


def run_tests(path: str | Path, *, catalogue_path: str | Path | None = None) -> TestReport:
    """Run the catalogue unit tests found at ``path``.

    Args:
        path: a test file or a folder of ``*_test.yaml`` files.
        catalogue_path: catalogue used when a file does not name its own.

    Returns:
        The report: per-case failures and the uncovered indicators.
    """
    files = test_files(Path(path))
    if not files:
        raise DataError(f"no *_test.yaml files under {path}", hint="name test files like air_test.yaml")
    cases: list[CaseResult] = []
    covered: set[str] = set()
    catalogues: dict[Path, Catalogue] = {}
    for f in files:
        doc = safe_load(f.read_text(encoding="utf-8"), str(f))
        if not isinstance(doc, Mapping) or not isinstance(doc.get("tests"), list):
            raise CatalogueError("a test file needs a `tests:` list", location=Location(str(f)))
        cat_path = (f.parent / str(doc["catalogue"])) if doc.get("catalogue") else catalogue_path
        if cat_path is None:
            raise CatalogueError(
                "no catalogue: give `catalogue:` in the file or --catalogue", location=Location(str(f))
            )
        key = Path(cat_path).resolve()
        if key not in catalogues:
            catalogues[key] = load_catalogue(cat_path)
        catalogue = catalogues[key]
        tests = doc["tests"]
        for n, case in enumerate(tests, start=1):
            if not isinstance(case, Mapping):
                raise CatalogueError(
                    f"test {n} must be a mapping (name:, as_of:, series:, expect:)", location=Location(str(f))
                )
            name = str(case.get("name") or f"test {n}")
            failures, checked, ids = _run_case(f, doc.get("areas") or [], case, catalogue)
            covered |= ids
            line = tests.item_loc(n - 1).line if isinstance(tests, YSeq) else None
            cases.append(CaseResult(str(f), name, tuple(failures), checked, line))
    all_ids = {i.id for c in catalogues.values() for i in c.indicators}
    return TestReport(tuple(cases), tuple(sorted(all_ids - covered)), tuple(str(f) for f in files))


def _day(value: Any, where: str) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise DataError(f"{where}: {value!r} is not a date (YYYY-MM-DD)") from None


def _moment(value: Any, where: str) -> datetime:
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime.combine(value, datetime.min.time())
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        raise DataError(f"{where}: {value!r} is not a date or timestamp") from None


def _run_case(
    file: Path, areas: list[Any], case: Mapping[str, Any], catalogue: Catalogue
) -> tuple[list[Failure], int, set[str]]:
    where = f"{file}: test {case.get('name')!r}"
    as_of = _day(case.get("as_of"), where)
    grain = str(case.get("period", "day"))
    with tempfile.TemporaryDirectory(prefix="citykpi-test-") as tmp:
        areas_yaml = Path(tmp) / "areas.yaml"
        areas_yaml.write_text(json.dumps(areas, default=str), encoding="utf-8")  # JSON is YAML
        with Warehouse.open(Path(tmp) / "test.duckdb") as wh:
            load_areas(wh, areas_yaml)
            wh.register_indicators(i.id for i in catalogue.indicators)
            _load_observations(wh, catalogue, case, where)
            _load_sources(wh, catalogue, case, where)
            scorecard = evaluate(wh, catalogue, as_of=as_of, grain=grain, persist=False, history_levels=())
    cells = {(r["indicator_id"], r["area_id"]): r for r in scorecard.cells.iter_rows(named=True)}
    indices = {(r["index_id"], r["area_id"]): r for r in scorecard.indices.iter_rows(named=True)}
    failures: list[Failure] = []
    ids: set[str] = set()
    expects = case.get("expect") or []
    for i, exp in enumerate(expects):
        line = expects.item_loc(i).line if isinstance(expects, YSeq) else None
        ref = str(exp.get("indicator") or exp.get("index") or "")
        area = str(exp.get("area", ""))
        ids.add(ref)
        got = cells.get((ref, area)) or indices.get((ref, area))
        if got is None:
            failures.append(
                Failure(
                    f"{ref} × {area}: no such cell (is the area at a level the indicator declares?)",
                    line,
                    ref,
                    area,
                )
            )
            continue
        if "index" in exp and "value" not in exp and "score" in exp:
            exp = {**exp, "value": exp["score"]}
        actual_value = got.get("value", got.get("score"))
        for fld in _EXPECT_FIELDS:
            if fld not in exp:
                continue
            want = exp[fld]
            have = actual_value if fld == "value" else got.get(fld)
            if fld == "value" and want is not None:
                tol = float(exp.get("tolerance", 1e-9))
                ok = have is not None and math.isclose(float(have), float(want), rel_tol=tol, abs_tol=tol)
            else:
                ok = have == want
            if not ok:
                message = f"{ref} × {area}: expected {fld} {want!r}, got {have!r}" + (
                    f" ({got.get('explanation')})" if got.get("explanation") else ""
                )
                failures.append(Failure(message, line, ref, area, fld, want, have))
    return failures, len(case.get("expect") or []), ids


def _need(entry: Any, key: str, where: str, what: str) -> Any:
    """``entry[key]`` of an observations/series entry, or a DataError saying what the entry lacks."""
    if not isinstance(entry, Mapping) or entry.get(key) is None:
        raise DataError(
            f"{where}: each {what} entry needs `{key}:`",
            hint="e.g. - {indicator: env.air.aqi, area: D1, period: 2025-12-31, value: 50}"
            if what == "observations"
            else "e.g. - {indicator: env.air.aqi, area: D1, end: 2025-12-31, values: [50, 250]}",
        )
    return entry[key]


def _load_observations(wh: Warehouse, catalogue: Catalogue, case: Mapping[str, Any], where: str) -> None:
    keys = wh.indicator_keys()
    area_keys = dict(wh.con.execute("SELECT area_id, area_key FROM areas").fetchall())
    rows: list[tuple[int, int, datetime, float | None, int]] = []

    def add(ind: str, area: str, period: datetime, value: Any) -> None:
        if ind not in keys:
            raise DataError(f"{where}: unknown indicator {ind!r}")
        if area not in area_keys:
            raise DataError(f"{where}: unknown area {area!r}; add it under `areas:`")
        fc = frequency_class(catalogue.by_id[ind].frequency) if ind in catalogue.by_id else 0
        rows.append((keys[ind], area_keys[area], period, None if value is None else float(value), fc))

    for o in case.get("observations") or []:
        ind, area, period = (_need(o, k, where, "observations") for k in ("indicator", "area", "period"))
        add(str(ind), str(area), _moment(period, where), o.get("value"))
    for s in case.get("series") or []:
        ind, area = (str(_need(s, k, where, "series")) for k in ("indicator", "area"))
        if ind not in catalogue.by_id:
            raise DataError(f"{where}: unknown indicator {ind!r}")
        grain = GRAIN_OF_FREQUENCY[catalogue.by_id[ind].frequency]
        values = list(s.get("values") or [])
        end = _day(s.get("end", case.get("as_of")), where)
        for n, v in enumerate(values):
            period = (
                shift(grain, end, n - len(values) + 1)
                if grain != "day"
                else end - timedelta(days=len(values) - 1 - n)
            )
            if v is not None:
                add(ind, area, datetime.combine(period, datetime.min.time()), v)
    if not rows:
        return
    frame = pl.DataFrame(
        rows,
        schema={
            "indicator_key": pl.Int32,
            "area_key": pl.Int32,
            "period": pl.Datetime("us"),
            "value": pl.Float64,
            "fc": pl.Int8,
        },
        orient="row",
    )
    frame = frame.rename({"indicator_key": "ik", "area_key": "ak"}).with_columns(
        pl.lit(None, pl.Float64).alias("numerator"), pl.lit(None, pl.Float64).alias("denominator")
    )
    wh.tables.begin_ingest(wh.con)  # where the warehouse keeps its rows elsewhere (Spark), stage them
    try:
        with wh.con.registered("_test_obs", frame):
            wh.con.execute(
                "INSERT INTO batches (batch_id, kind, path, status, finished_at) VALUES (1, 'test', 'test', 'loaded', now())"
            )
            append_observations(wh.con, "_test_obs", 1)
        wh.tables.publish(wh.con, "observations", 1)
    finally:
        wh.tables.end_ingest(wh.con)


def _load_sources(wh: Warehouse, catalogue: Catalogue, case: Mapping[str, Any], where: str) -> None:
    declared = {s.id: s for s in catalogue.sources}
    area_keys = dict(wh.con.execute("SELECT area_id, area_key FROM areas").fetchall())
    for source_id, records in (case.get("sources") or {}).items():
        src = declared.get(str(source_id))
        if src is None:
            raise DataError(f"{where}: unknown source {source_id!r}")
        wh.con.execute(source_table_ddl(src))
        cols = list(src.columns)
        frame = pl.DataFrame(
            [{c: (None if r.get(c) is None else str(r.get(c))) for c in cols} for r in records],
            schema={c: pl.String for c in cols},
        ).with_columns(
            pl.col(src.area_column)
            .replace_strict(area_keys, default=None, return_dtype=pl.Int32)
            .alias("_area_key")
        )
        wh.con.execute(  # the rows' batch (a warehouse that publishes rows shows committed batches only)
            "INSERT INTO batches (batch_id, kind, path, status, finished_at) SELECT 1, 'test', 'test', 'loaded', now() "
            "WHERE NOT EXISTS (SELECT 1 FROM batches WHERE batch_id = 1)"
        )
        wh.tables.begin_ingest(wh.con)
        try:
            with wh.con.registered("_test_src", frame):
                casts = ", ".join(_cast(c, src.columns[c]) for c in cols)
                wh.con.execute(
                    f"INSERT INTO {ident(source_table_name(src.id))} SELECT {casts}, _area_key, 1 FROM _test_src"
                )
            wh.tables.publish(wh.con, source_table_name(src.id), 1, day=ident(src.time_column))
        finally:
            wh.tables.end_ingest(wh.con)


def _cast(column: str, kind: str) -> str:
    return f"CAST({ident(column)} AS {SOURCE_SQL_TYPES[kind]})"


def summary_lines(report: TestReport) -> Iterable[str]:
    """Plain-text report lines (failures with expected vs actual, then uncovered indicators)."""
    for c in report.cases:
        mark = "PASS" if c.passed else "FAIL"
        yield f"{mark} {c.file} :: {c.name} ({c.checked} expectations)"
        for failure in c.failures:
            yield f"    - {failure.message}"
    passed = sum(c.passed for c in report.cases)
    yield f"{passed} passed, {len(report.failed)} failed"
    if report.uncovered:
        shown = ", ".join(report.uncovered[:20]) + (" …" if len(report.uncovered) > 20 else "")
        yield f"{len(report.uncovered)} indicator(s) not covered by any test: {shown}"
