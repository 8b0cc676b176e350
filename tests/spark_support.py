"""Support for the Spark conformance suite: availability, the rule-kind catalogue and its data, and
differences reported by cell and column — or, on request, by the first statement that diverges.

The rule-kind catalogue is docs/catalogue.md's examples (``tests/test_catalogue_docs.py`` proves
they form one sound catalogue using every threshold basis, value kind, roll-up, target method,
normalisation and aggregation), so a rule kind documented there is evaluated on both engines. Its
data is generated here, deterministically, for a small area tree that holds every area id the
examples name.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from citykpi.catalogue.model import GRAIN_OF_FREQUENCY, Catalogue, Indicator, Observed
from citykpi.engine.calendar import shift, trunc
from citykpi.engine.scorecard import Scorecard
from citykpi.warehouse.ingest import IngestOptions

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "catalogue.md"
#: Spark for tests: two local cores, as on the project's machines.
MASTER = "local[2]"
#: The last day of the rule-kind data.
END = date(2025, 12, 31)

_BLOCK = re.compile(r"```yaml\n(.*?)```", re.DOTALL)
_TOP_KEYS = ("schema_version:", "indicators:", "indices:", "groups:", "sources:")


# --- availability -------------------------------------------------------------------------------------


def spark_unavailable() -> str | None:
    """Why the Spark backend cannot run here (no PySpark, no Java 17+), or None when it can."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        return "PySpark is not installed (pip install 'citykpi[spark]'; `make install` does)"
    from citykpi.backend.spark import MIN_JAVA, java_version

    found = java_version()
    if found is None or found < MIN_JAVA:
        return f"Java {MIN_JAVA}+ is not installed (found {found}); `make java` installs it"
    return None


def require_spark() -> None:
    """Skip loudly when Spark cannot run here; under CI (``CI`` set) fail instead: CI must run it."""
    reason = spark_unavailable()
    if reason is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"the Spark conformance suite must run in CI, but {reason}")
    pytest.skip(f"SPARK CONFORMANCE SUITE NOT RUN: {reason}")


# --- the rule-kind catalogue ------------------------------------------------------------------------------


def doc_blocks() -> list[str]:
    """docs/catalogue.md's YAML examples that are catalogue files."""
    return [b for b in _BLOCK.findall(DOC.read_text(encoding="utf-8")) if b.startswith(_TOP_KEYS)]


def write_rule_catalogue(folder: Path) -> Path:
    """The documented examples as one catalogue folder (``folder``, created)."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, block in enumerate(doc_blocks()):
        (folder / f"example_{i:02d}.yaml").write_text(block, encoding="utf-8")
    return folder


#: The rule-kind areas: every area id the examples name (overrides, the group), two streets each in
#: three districts. (id, parent, level, population)
_DISTRICTS = (
    "500101",
    "500103",
    "500104",
    "500105",
    "500106",
    "500107",
    "500108",
    "500109",
    "500112",
    "500113",
)
_STREETS = {"500101": 2, "500103": 2, "500105": 3}


def rule_areas() -> pl.DataFrame:
    """The area tree of the rule-kind warehouse (areas.csv columns)."""
    rows: list[dict[str, Any]] = [
        {
            "id": "500000",
            "name": "市",
            "name_en": "City",
            "level": "city",
            "parent": None,
            "population": 3200.0,
        }
    ]
    for n, d in enumerate(_DISTRICTS):
        rows.append(
            {
                "id": d,
                "name": f"区{n}",
                "name_en": f"District {n}",
                "level": "district",
                "parent": "500000",
                "population": 50.0 + 17 * n,
            }
        )
        for s in range(_STREETS.get(d, 0)):
            rows.append(
                {
                    "id": f"{d}{s + 1:03d}",
                    "name": f"街道{d}{s}",
                    "name_en": f"Street {d}-{s}",
                    "level": "street",
                    "parent": d,
                    "population": 5.0 + 3 * s + n,
                }
            )
    return pl.DataFrame(rows).with_columns(pl.lit("").alias("groups"))


def _u(*parts: object) -> float:
    """A deterministic number in [0, 1) from the parts (no randomness, no seed state)."""
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _range(ind: Indicator) -> tuple[float, float]:
    """Values worth generating: around the cuts, so that every colour turns up."""
    t = ind.thresholds
    if t.basis == "percent_of_target" and ind.target is not None:
        return ind.target.value * 0.5, ind.target.value * 1.2
    if t.basis == "percent_of_limit" and t.limit:
        return t.limit * 0.3, t.limit * 1.2
    if t.basis in ("change_previous", "change_last_year"):
        return 80.0, 120.0
    points = [*t.bands.cuts.values(), *(x for r in t.bands.ranges.values() for x in r)]
    points += [s.upto for s in ind.scale if s.upto is not None]
    if ind.rollup.where is not None:
        points.append(ind.rollup.where.value)
    if not points:
        return 0.0, 100.0
    lo, hi = min(points), max(points)
    span = max(hi - lo, abs(hi) * 0.5, 1.0)
    return lo - span * 0.4, hi + span * 0.4


def _periods(ind: Indicator, end: date) -> list[datetime]:
    """The periods an indicator has data for: recent ones and the same season a year before."""
    grain = GRAIN_OF_FREQUENCY[ind.frequency]
    midnight = datetime.combine(end, datetime.min.time())
    if ind.frequency in ("realtime", "hourly"):
        return [midnight - timedelta(hours=h) for h in range(0, 72, 5)] + [
            midnight - timedelta(days=364, hours=h) for h in range(0, 24, 6)
        ]
    if grain == "day":
        days = [*range(0, 40), *range(356, 372)]
        return [midnight - timedelta(days=d) for d in days]
    count = {"week": 60, "month": 27, "quarter": 10, "year": 4}[grain]
    start = trunc(grain, end)
    return [datetime.combine(shift(grain, start, -n), datetime.min.time()) for n in range(count)]


def _observed_areas(ind: Indicator, areas: pl.DataFrame) -> list[str]:
    """Areas with data of their own: the lowest declared level, and the city for every other indicator."""
    levels = [lv for lv in ("street", "district", "city") if lv in ind.levels]
    lowest = levels[0] if levels else "city"
    ids = areas.filter(pl.col("level") == lowest)["id"].to_list()
    if lowest != "city" and _u(ind.id, "own-city") < 0.5:
        ids.append("500000")
    return ids


def rule_observations(catalogue: Catalogue, areas: pl.DataFrame, end: date = END) -> pl.DataFrame:
    """Long-format observations (indicator_id, area_id, period, value, numerator, denominator) for every
    observed indicator of ``catalogue`` that a value kind reads (observed, and the inputs of the rest).

    Values have two decimals (so that rounding to one meets ties); a few series end early (stale), one
    value in 40 is missing, and the series of ``doc.judge.higher`` is left empty (no data).
    """
    rows: list[tuple[str, str, datetime, float | None, float | None, float | None]] = []
    for ind in catalogue.indicators:
        if not isinstance(ind.value, Observed) or ind.id == "doc.judge.higher":
            continue
        lo, hi = _range(ind)
        for area in _observed_areas(ind, areas):
            stale = _u(ind.id, area, "stale") < 0.15
            for period in _periods(ind, end):
                if stale and period >= datetime.combine(end - timedelta(days=4), datetime.min.time()):
                    continue
                if _u(ind.id, area, period, "gap") < 0.025:
                    continue
                x = round(lo + (hi - lo) * _u(ind.id, area, period), 2)
                if ind.value.with_parts:
                    den = round(100 + 50 * _u(ind.id, area, period, "den"), 2)
                    num = round(den * (0.6 + 0.4 * _u(ind.id, area, period, "num")), 2)
                    rows.append((ind.id, area, period, None, num, den))
                else:
                    rows.append((ind.id, area, period, x, None, None))
    return pl.DataFrame(
        rows,
        schema={
            "indicator_id": pl.String,
            "area_id": pl.String,
            "period": pl.Datetime("us"),
            "value": pl.Float64,
            "numerator": pl.Float64,
            "denominator": pl.Float64,
        },
        orient="row",
    )


def rule_sources(catalogue: Catalogue, areas: pl.DataFrame, end: date = END) -> dict[str, pl.DataFrame]:
    """Rows of every raw source table the catalogue declares, typed as the declared columns (as text)."""
    streets = areas.filter(pl.col("level") == "street")["id"].to_list()
    categories = ("噪声", "占道", "其他")
    out: dict[str, pl.DataFrame] = {}
    for src in catalogue.sources:
        rows: list[dict[str, str | None]] = []
        for n in range(900):
            back = (n % 45) if n % 5 else 360 + n % 10  # recent weeks, and some a year back
            created = datetime.combine(end - timedelta(days=back), datetime.min.time()) + timedelta(
                minutes=int(1439 * _u(src.id, n, "t"))
            )
            row: dict[str, str | None] = {}
            for col, kind in src.columns.items():
                if col == src.time_column:
                    row[col] = created.isoformat(sep=" ")
                elif col == src.area_column:
                    row[col] = streets[n % len(streets)]
                elif col == src.key:
                    row[col] = f"{src.id}-{n:05d}"
                elif kind == "timestamp":
                    hours = 6 + 120 * _u(src.id, n, col)
                    late = created + timedelta(hours=hours)
                    row[col] = None if _u(src.id, n, col, "null") < 0.1 else late.isoformat(sep=" ")
                elif kind == "double":
                    row[col] = f"{round(40 * _u(src.id, n, col), 2)}"
                elif kind == "boolean":
                    row[col] = "true" if _u(src.id, n, col) < 0.02 else "false"
                elif kind == "integer":
                    row[col] = str(int(100 * _u(src.id, n, col)))
                elif kind == "date":
                    row[col] = created.date().isoformat()
                else:
                    row[col] = categories[int(3 * _u(src.id, n, col))]
            rows.append(row)
        out[src.id] = pl.DataFrame(rows, schema={c: pl.String for c in src.columns})
    return out


@dataclass(frozen=True)
class DataFile:
    """A file to ingest and how."""

    path: Path
    options: IngestOptions


def write_rule_data(catalogue: Catalogue, folder: Path, end: date = END) -> tuple[Path, list[DataFile]]:
    """Write the rule-kind areas, observations and source files; returns (areas file, data files in order)."""
    folder.mkdir(parents=True, exist_ok=True)
    areas = rule_areas()
    areas_csv = folder / "areas.csv"
    areas.write_csv(areas_csv)
    obs = rule_observations(catalogue, areas, end)
    periodic = obs.filter(pl.col("period").dt.hour() == 0)
    hourly = obs.filter(pl.col("period").dt.hour() != 0)
    files: list[DataFile] = []
    for name, frame in (("observations.csv", periodic), ("hourly.parquet", hourly)):
        path = folder / name
        if name.endswith(".csv"):
            frame.with_columns(pl.col("period").dt.strftime("%Y-%m-%d %H:%M:%S")).write_csv(path)
        else:
            frame.write_parquet(path)
        files.append(DataFile(path, IngestOptions(fmt="long")))
    for source_id, frame in rule_sources(catalogue, areas, end).items():
        path = folder / f"{source_id}.csv"
        frame.write_csv(path)
        files.append(DataFile(path, IngestOptions(fmt="source", source=source_id)))
    return areas_csv, files


def replacement_file(catalogue: Catalogue, folder: Path, end: date = END) -> Path:
    """Corrected values for the last three days of a few daily series (ingested with ``replace``)."""
    areas = rule_areas()
    obs = rule_observations(catalogue, areas, end)
    last = obs.filter(
        (pl.col("period") >= datetime.combine(end - timedelta(days=2), datetime.min.time()))
        & pl.col("value").is_not_null()
    )
    ids = sorted(set(last["indicator_id"].to_list()))[::3]
    fixed = last.filter(pl.col("indicator_id").is_in(ids)).with_columns((pl.col("value") * 1.5).round(2))
    path = folder / "corrections.csv"
    fixed.with_columns(pl.col("period").dt.strftime("%Y-%m-%d %H:%M:%S")).write_csv(path)
    return path


# --- comparing --------------------------------------------------------------------------------------------

#: Relative tolerance for floating-point values (the acceptance: 1e-9).
REL = 1e-9


def _same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return math.isclose(a, b, rel_tol=REL, abs_tol=1e-12)
    return a == b


def frame_differences(a: pl.DataFrame, b: pl.DataFrame, keys: Sequence[str], what: str) -> list[str]:
    """Every difference between two frames with the same rows, as ``what key=…: column a≠b`` lines."""
    if a.columns != b.columns:
        return [f"{what}: columns differ: {a.columns} vs {b.columns}"]
    if a.height != b.height:
        return [f"{what}: {a.height} rows on DuckDB, {b.height} on Spark"]
    a, b = a.sort(keys, nulls_last=True), b.sort(keys, nulls_last=True)
    out: list[str] = []
    for col in a.columns:
        for i, (x, y) in enumerate(zip(a[col].to_list(), b[col].to_list(), strict=True)):
            if not _same(x, y):
                key = ", ".join(f"{k}={a[k][i]}" for k in keys)
                out.append(f"{what} {key}: {col} DuckDB {x!r} ≠ Spark {y!r}")
    return out


def scorecard_differences(a: Scorecard, b: Scorecard) -> list[str]:
    """Cells, indices and history of two scorecards of the same request, compared value by value."""
    diffs = frame_differences(a.cells, b.cells, ["indicator_id", "area_id"], "cell")
    diffs += frame_differences(a.indices, b.indices, ["index_id", "area_id"], "index")
    history = ["indicator_id", "area_id", "period_start"]
    if a.history.height or b.history.height:
        diffs += frame_differences(a.history, b.history, history, "history")
    return diffs


def report(diffs: Sequence[str], limit: int = 40) -> str:
    """A failure message: the first ``limit`` differences and how many there were."""
    head = "\n".join(diffs[:limit])
    more = f"\n… and {len(diffs) - limit} more" if len(diffs) > limit else ""
    return f"{len(diffs)} difference(s) between DuckDB and Spark:\n{head}{more}"


def statement_tables(sql: str) -> Iterator[str]:
    """The session tables a canonical statement writes (CREATE … TABLE / INSERT INTO / UPDATE)."""
    m = re.match(r"\s*(?:CREATE OR REPLACE TEMP TABLE|INSERT INTO|UPDATE)\s+([A-Za-z_][A-Za-z0-9_]*)", sql)
    if m:
        yield m.group(1)


def first_divergence(duck: Any, spark: Any, catalogue: Catalogue, **request: Any) -> str:
    """Run the plan of ``request`` statement by statement on both warehouses and name the first statement
    after which a session table differs (with its first differing rows), for a failure message."""
    from citykpi.engine.execute import _translator
    from citykpi.engine.gather import Request, gather
    from citykpi.engine.plan import compile_evaluation
    from citykpi.sqlutil import ident

    runs = []
    for wh in (duck, spark):
        plan = compile_evaluation(gather(wh, catalogue, Request(**request)))
        con = wh.engine()
        runs.append((wh, con, _translator(wh.backend, con), plan))
    for wh, con, tr, plan in runs:
        for name, frame in plan.frames.items():
            if wh.backend.frames_as_views:
                con.register(name, frame)
            else:
                with con.registered("_ck_frame", frame):
                    for st in tr(wh.backend.temp_table_sql(ident(name), "SELECT * FROM _ck_frame")):
                        con.execute(st)
    steps = runs[0][3].statements
    for n, (name, sql) in enumerate(steps):
        for _wh, con, tr, plan in runs:
            for st in tr(plan.statements[n][1]):
                con.execute(st)
        for table in statement_tables(sql):
            a = runs[0][1].frame(f"SELECT * FROM {table}")
            b = runs[1][1].frame(f"SELECT * FROM {table}")
            diffs = frame_differences(a, b.select(a.columns), list(a.columns), table)
            if diffs:
                return f"first diverging statement: {name!r} (table {table})\n" + report(diffs, 10)
    return "every statement gave the same session tables (the difference is in an output query)"


def strip_times(text: str) -> str:
    """Output with wall-clock times replaced (run and batch times differ between the two builds)."""
    return re.sub(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?", "<TIME>", text)


def as_mapping(frame: pl.DataFrame) -> Mapping[str, list[Any]]:
    """A frame as {column: values} (for messages)."""
    return {c: frame[c].to_list() for c in frame.columns}
