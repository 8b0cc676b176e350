"""The five real public datasets, each with a small catalogue of its own, through ingest and
``citykpi quality``; every quality figure checked against an independent plain-SQL (or Polars)
computation on the raw file.

* china-aqi-10cities-daily — ten cities as top-level areas; coverage per city and year, and the robust
  outliers of each city's AQI per year;
* crea-china-aqi-2020 — a composite area key (province + city), a constant period; coverage of 2020
  per city (the engine's formula), completeness;
* eurostat-urb-cpop1 — labels recoded into indicators and a sex breakdown, ':' recorded as missing,
  duplicate labels rejected; missing tokens counted and the disaggregation mismatches listed;
* la-open-sdg — imported with ``catalogue import open-sdg`` and ingested with ``--feed auto``; missing
  values, years present per indicator, and the import report;
* nyc311-feb2023 — closure within 24 h per agency, requests closed before they were opened filtered out.
"""

from __future__ import annotations

import csv
import re
import shutil
from collections import Counter
from datetime import date, datetime
from pathlib import Path

import duckdb
import polars as pl
import pytest
import yaml

from citykpi.catalogue import load_catalogue
from citykpi.engine.evaluate import evaluate
from citykpi.quality import assess
from citykpi.warehouse import IngestOptions, Warehouse, load_areas
from citykpi.warehouse.ingest.feeds import ingest_feed
from tests.real_data import REAL, needs_real_data

pytestmark = needs_real_data

CATS = Path(__file__).parent / "data" / "quality_real"
AQI = REAL / "china-aqi-10cities-daily" / "master_daily.csv"
CREA = REAL / "crea-china-aqi-2020" / "aqi2020.csv"
EURO = REAL / "eurostat-urb-cpop1" / "urb_cpop1_1_Data.csv"
LA = REAL / "la-open-sdg"
NYC = REAL / "nyc311-feb2023" / "test_sample3.csv"
#: Batches are judged as if they had been loaded at this moment (the tests do not read the clock).
LOADED = datetime(2026, 1, 1)
NOW = datetime(2026, 6, 1)


def _raw(path: Path) -> duckdb.DuckDBPyConnection:
    """A plain DuckDB connection with the file as table ``raw`` (every column text)."""
    con = duckdb.connect()
    con.execute(f"CREATE TABLE raw AS SELECT * FROM read_csv('{path}', all_varchar = true)")
    return con


def _areas_csv(path: Path, rows: list[tuple[str, str, str | None]]) -> Path:
    """An areas file: (id, level, parent)."""
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "name", "name_en", "level", "parent"])
        for aid, level, parent in rows:
            w.writerow([aid, aid, aid, level, parent or ""])
    return path


def _warehouse(tmp: Path, areas: Path, catalogue: Path, files: list[Path], feed: str = "auto") -> Warehouse:
    wh = Warehouse.open(tmp / "q.duckdb")
    load_areas(wh, areas)
    report = ingest_feed(wh, load_catalogue(catalogue), files, feed, IngestOptions(now=NOW))
    assert all(f.status in ("loaded", "rejected") for f in report.files), report.to_dict()
    wh.con.execute("UPDATE batches SET finished_at = ?", [LOADED])
    return wh


# --- china-aqi-10cities-daily: coverage per city and year, outliers -------------------------------------


@pytest.fixture(scope="module")
def aqi(tmp_path_factory: pytest.TempPathFactory) -> Warehouse:
    tmp = tmp_path_factory.mktemp("aqi")
    cities = _raw(AQI).execute("SELECT DISTINCT city FROM raw ORDER BY 1").fetchall()
    areas = _areas_csv(tmp / "areas.csv", [(c, "city", None) for (c,) in cities])
    return _warehouse(tmp, areas, CATS / "aqi.yaml", [AQI])


@pytest.mark.parametrize("year", [2022, 2023, 2024, 2025])
def test_aqi_coverage_per_city_and_year(aqi: Warehouse, year: int) -> None:
    cat = load_catalogue(CATS / "aqi.yaml")
    r = assess(aqi, cat, as_of=date(year, 12, 31), since=date(year, 1, 1), by="area", now=NOW)
    got = {
        row["area_id"]: (row["periods"], row["present"])
        for row in r.series.filter(pl.col("indicator_id") == "env.air.aqi").to_dicts()
    }
    days = (date(year + 1, 1, 1) - date(year, 1, 1)).days
    plain = (
        _raw(AQI)
        .execute(
            f"""SELECT city, count(DISTINCT CAST(date AS DATE)) FROM raw
            WHERE year(CAST(date AS DATE)) = {year} AND TRY_CAST(AQI AS DOUBLE) IS NOT NULL GROUP BY city"""
        )
        .fetchall()
    )
    assert got == {c: (days, n) for c, n in plain}
    # the league by area: both indicators, the same coverage (2025 stops on 20 September)
    for row in r.groups.to_dicts():
        assert row["completeness"] == pytest.approx(dict(plain)[row["group"]] / days * 100)
    if year == 2025:
        assert {n for _, n in plain} == {263}


def test_aqi_robust_outliers_per_city_and_year_match_plain_sql(aqi: Warehouse) -> None:
    cat = load_catalogue(CATS / "aqi.yaml")
    r = assess(aqi, cat, as_of=date(2023, 12, 31), since=date(2023, 1, 1), now=NOW)
    got = {
        row["area_id"]: row["outliers"]
        for row in r.series.filter(pl.col("indicator_id") == "env.air.aqi").to_dicts()
    }
    plain = (
        _raw(AQI)
        .execute(
            """WITH v AS (SELECT city, CAST(AQI AS DOUBLE) AS x FROM raw WHERE year(CAST(date AS DATE)) = 2023),
        m AS (SELECT city, median(x) AS med FROM v GROUP BY city),
        d AS (SELECT v.city, v.x, abs(v.x - m.med) AS dev FROM v JOIN m USING (city)),
        mad AS (SELECT city, median(dev) AS mad FROM d GROUP BY city)
        SELECT d.city, count(*) FILTER (WHERE 0.6745 * d.dev / mad.mad > 3.5) FROM d JOIN mad USING (city)
        GROUP BY d.city"""
        )
        .fetchall()
    )
    assert got == dict(plain)
    assert sum(got.values()) > 0  # the smog episodes are there
    flagged = r.outliers.filter(pl.col("indicator_id") == "env.air.aqi")
    assert flagged.height == sum(got.values())


# --- crea-china-aqi-2020: a composite key and a constant period ----------------------------------------


@pytest.fixture(scope="module")
def crea(tmp_path_factory: pytest.TempPathFactory) -> Warehouse:
    tmp = tmp_path_factory.mktemp("crea")
    pairs = _raw(CREA).execute("SELECT DISTINCT province_en, location_name FROM raw ORDER BY 1, 2").fetchall()
    provinces = sorted({p for p, _ in pairs})
    rows = [(p, "city", None) for p in provinces] + [(f"{p}/{c}", "district", p) for p, c in pairs]
    return _warehouse(tmp, _areas_csv(tmp / "areas.csv", rows), CATS / "crea.yaml", [CREA])


def test_crea_composite_keys_keep_same_named_cities_apart(crea: Warehouse) -> None:
    rows = crea.con.execute(
        "SELECT sum(rows_read), sum(rows_loaded), sum(rows_rejected) FROM batches"
    ).fetchall()
    assert rows == [(366 * 8, 366 * 8, 0)]  # Bozhou, Yichun, Suzhou… twice each, in different provinces
    r = assess(
        crea, load_catalogue(CATS / "crea.yaml"), as_of=date(2020, 12, 31), since=date(2020, 1, 1), now=NOW
    )
    s = r.summary
    assert (s["expected"], s["present"], s["absent"], s["rejected"]) == (366 * 8, 366 * 8, 0, 0)
    assert s["completeness"] == 100.0


def test_crea_coverage_of_2020_per_city_matches_plain_sql(crea: Warehouse) -> None:
    sc = evaluate(
        crea, load_catalogue(CATS / "crea.yaml"), as_of=date(2020, 12, 31), grain="year", persist=False
    )
    got = {
        r["area_id"]: r["value"]
        for r in sc.cells.filter(pl.col("indicator_id") == "crea.coverage").to_dicts()
    }
    cols = [
        "excellent",
        "good",
        "mildly_polluted",
        "moderately_polluted",
        "heavily_polluted",
        "severely_polluted",
        "sandstorm",
    ]
    total = " + ".join(f"CAST(days_{c} AS DOUBLE)" for c in cols)
    plain = (
        _raw(CREA)
        .execute(f"SELECT province_en || '/' || location_name, ({total}) / 366 * 100 FROM raw")
        .fetchall()
    )
    assert len(plain) == 366
    for area, value in plain:
        assert got[area] == pytest.approx(value), area
    assert sum(v < 300 / 366 * 100 for _, v in plain) == 8  # SOURCE.md: 8 cities have fewer than 300 days


# --- eurostat-urb-cpop1: missing tokens, disaggregation mismatches, duplicate labels --------------------

TOTAL = "Population on the 1st of January, total"
YOUNG = "Population on the 1st of January, 0-4 years, total"


@pytest.fixture(scope="module")
def euro(tmp_path_factory: pytest.TempPathFactory) -> Warehouse:
    tmp = tmp_path_factory.mktemp("euro")
    labels = _raw(EURO).execute("SELECT DISTINCT CITIES FROM raw ORDER BY 1").fetchall()
    areas = _areas_csv(tmp / "areas.csv", [(c, "city", None) for (c,) in labels])  # 1,052 top-level areas
    copy = tmp / "urb_cpop1_1_Data.csv"
    shutil.copyfile(EURO, copy)
    return _warehouse(tmp, areas, CATS / "eurostat.yaml", [copy])


#: The raw rows whose (year, label, indicator) appears once: duplicates are rejected, every copy.
UNIQUE = """CREATE TEMP TABLE u AS SELECT * FROM raw
    QUALIFY count(*) OVER (PARTITION BY TIME, CITIES, INDIC_UR) = 1"""


def test_eurostat_missing_tokens_completeness_and_rejects(euro: Warehouse) -> None:
    r = assess(
        euro,
        load_catalogue(CATS / "eurostat.yaml"),
        as_of=date(2017, 12, 31),
        since=date(2008, 1, 1),
        by="indicator",
        now=NOW,
    )
    con = _raw(EURO)
    con.execute(UNIQUE)
    labels = con.execute("SELECT count(DISTINCT CITIES) FROM raw").fetchall()[0][0]
    for iid, label in (("pop.total", TOTAL), ("pop.young", YOUNG)):
        tokens, values = con.execute(
            f"SELECT count(*) FILTER (WHERE Value = ':'), count(*) FILTER (WHERE TRY_CAST(Value AS DOUBLE) IS NOT NULL) "
            f"FROM u WHERE INDIC_UR = '{label}'"
        ).fetchall()[0]
        row = r.groups.filter(pl.col("group") == iid).row(0, named=True)
        assert (row["expected"], row["present"], row["missing_tokens"]) == (labels * 10, values, tokens), iid
        assert row["absent"] == labels * 10 - values - tokens
    # every ':' in the file is stored (breakdowns too), none rejected
    all_tokens = con.execute("SELECT count(*) FROM u WHERE Value = ':'").fetchall()[0][0]
    assert euro.con.execute("SELECT count(*) FROM observations_missing").fetchall()[0][0] == all_tokens
    dup_rows = (
        con.execute("SELECT count(*) FROM raw").fetchall()[0][0]
        - con.execute("SELECT count(*) FROM u").fetchall()[0][0]
    )
    assert dup_rows > 0
    assert r.rejects.group_by("code").agg(pl.col("rows").sum()).rows() == [("IN501", dup_rows)]


def test_eurostat_disaggregation_mismatches_are_listed(euro: Warehouse) -> None:
    r = assess(
        euro,
        load_catalogue(CATS / "eurostat.yaml"),
        as_of=date(2017, 12, 31),
        since=date(2008, 1, 1),
        now=NOW,
    )
    got = sorted(
        (row["area_id"], row["period"].year, row["total"], row["expected"])
        for row in r.violations.filter(pl.col("rule_id") == "population_by_sex").to_dicts()
    )
    con = _raw(EURO)
    con.execute(UNIQUE)
    plain = con.execute(
        f"""WITH p AS (
          SELECT CITIES, CAST(TIME AS INTEGER) AS y,
            max(TRY_CAST(Value AS DOUBLE)) FILTER (WHERE INDIC_UR = '{TOTAL}') AS t,
            max(TRY_CAST(Value AS DOUBLE)) FILTER (WHERE INDIC_UR = 'Population on the 1st of January, male') AS m,
            max(TRY_CAST(Value AS DOUBLE)) FILTER (WHERE INDIC_UR = 'Population on the 1st of January, female') AS f
          FROM u GROUP BY ALL)
        SELECT CITIES, y, t, m + f FROM p WHERE t IS NOT NULL AND m IS NOT NULL AND f IS NOT NULL AND t <> m + f
        ORDER BY ALL"""
    ).fetchall()
    assert got == [tuple(x) for x in plain]
    assert len(got) > 400  # e.g. Bristol 2008: 426,100 ≠ 213,100 + 213,100
    checked = con.execute(
        f"""SELECT count(*) FROM (SELECT CITIES, TIME FROM u
            WHERE TRY_CAST(Value AS DOUBLE) IS NOT NULL AND INDIC_UR IN ('{TOTAL}',
              'Population on the 1st of January, male', 'Population on the 1st of January, female')
            GROUP BY ALL HAVING count(*) = 3)"""
    ).fetchall()[0][0]
    rule = r.rules.row(0, named=True)
    assert (rule["checked"], rule["violations"]) == (checked, len(plain))


# --- la-open-sdg: the import, missing values, years present ---------------------------------------------


@pytest.fixture(scope="module")
def la(tmp_path_factory: pytest.TempPathFactory) -> tuple[Warehouse, Path]:
    from citykpi.catalogue.opensdg import import_open_sdg, write_import

    tmp = tmp_path_factory.mktemp("la")
    out = write_import(import_open_sdg(LA), tmp / "la")
    wh = Warehouse.open(tmp / "la.duckdb")
    load_areas(wh, out / "areas.csv")
    report = ingest_feed(
        wh, load_catalogue(out / "indicators"), [LA / "data"], "auto", IngestOptions(now=NOW)
    )
    assert [f.path.rsplit("/", 1)[-1] for f in report.files if f.status == "rejected"] == [
        "indicator_5-a-2.csv"
    ]
    wh.con.execute("UPDATE batches SET finished_at = ?", [LOADED])
    return wh, out


def _la_rows() -> list[tuple[str, str, tuple[str, ...], str, str]]:
    """Every data row of the LA files as (file id, first year, breakdown cells, units, value), by Python."""
    out = []
    for path in sorted((LA / "data").glob("indicator_*.csv")):
        sid = path.stem.removeprefix("indicator_")
        with path.open(encoding="utf-8-sig", newline="") as fh:
            rows = [r for r in csv.reader(fh) if r]
        head, body = rows[0], rows[1:]
        dims = [i for i, h in enumerate(head) if h not in ("Year", "Value", "Units")]
        for r in body:
            year = r[head.index("Year")].strip()
            first = year[:4]
            if not first.isdigit():
                continue
            units = r[head.index("Units")].strip() if "Units" in head else ""
            out.append((sid, first, tuple(r[i].strip() for i in dims), units, r[head.index("Value")].strip()))
    return out


def test_la_import_report(la: tuple[Warehouse, Path], tmp_path: Path) -> None:
    _, out = la
    text = (out / "import-report.md").read_text(encoding="utf-8")
    assert "## Data files without metadata (0)" in text and "## Metadata without a data file (0)" in text
    assert "- 5-a-2: no row has a Year" in text
    # a repository with a stray data file and a metadata file without data: both listed
    copy = tmp_path / "repo"
    shutil.copytree(LA, copy)
    (copy / "meta" / "1-1-1.md").unlink()
    (copy / "data" / "indicator_1-2-1.csv").unlink()
    from citykpi.catalogue.opensdg import import_open_sdg

    report = import_open_sdg(copy)
    assert (report.data_without_meta, report.meta_without_data) == (("indicator_1-1-1.csv",), ("1-2-1.md",))


def test_la_missing_values_and_years_present_match_the_files(la: tuple[Warehouse, Path]) -> None:
    wh, out = la
    cat = load_catalogue(out / "indicators")
    r = assess(wh, cat, as_of=date(2023, 12, 31), since=date(1984, 1, 1), by="indicator", now=NOW)
    rows = _la_rows()
    # a (file, year, breakdown, units) written twice is rejected, every copy (IN501)
    keys = Counter((sid, y, d, u) for sid, y, d, u, _ in rows)
    kept = [x for x in rows if keys[x[:4]] == 1]
    assert r.rejects["rows"].sum() == len(rows) - len(kept)
    headline = [x for x in kept if not any(x[2])]
    tokens = sum(1 for x in headline if x[4] == "")
    assert r.summary["missing_tokens"] == tokens
    assert wh.con.execute("SELECT count(*) FROM observations_missing").fetchall()[0][0] == sum(
        1 for x in kept if x[4] == ""
    )
    assert wh.con.execute("SELECT count(*) FROM observations_dims").fetchall()[0][0] == sum(
        1 for x in kept if any(x[2]) and x[4] != ""
    )
    # years present per data file (its series together): the headline rows with a value, each a distinct
    # (series, year) once the duplicates are out
    feeds = {f.id: f for f in cat.feeds}
    by_file: Counter[str] = Counter()
    for row in r.series.to_dicts():
        by_file[feeds[row["feed"]].files[0].removeprefix("indicator_").removesuffix(".csv")] += row["present"]
    counted = Counter(sid for sid, _y, _d, _u, value in headline if value != "")
    assert +by_file == +counted
    assert r.summary["expected"] == len(r.series) * 40  # 1984–2023 for every series


def _la_coverage(sid: str) -> str:
    """The area an LA indicator is published for: its metadata's geographical coverage, as an id."""
    text = (LA / "meta" / f"{sid}.md").read_text(encoding="utf-8-sig").split("---")[1]
    coverage = " ".join(str(yaml.safe_load(text).get("national_geographical_coverage") or "").split())
    return re.sub(r"[^0-9a-z]+", "_", (coverage or "Unknown coverage").lower()).strip("_")


def test_la_completeness_counts_each_series_where_it_is_published(la: tuple[Warehouse, Path]) -> None:
    """Each series is expected once a year for the one area its metadata names (its feed's ``set``),
    not in all eleven coverage areas: completeness is years with a value over years judged."""
    wh, out = la
    cat = load_catalogue(out / "indicators")
    r = assess(wh, cat, as_of=date(2021, 12, 31), since=date(2010, 1, 1), now=NOW)
    years = [str(y) for y in range(2010, 2022)]
    rows = _la_rows()
    keys = Counter((sid, y, d, u) for sid, y, d, u, _ in rows)
    # series per file: one per Units value when a file has several, else one; a headline cell counts when
    # written once (duplicates are rejected, every copy) with a number
    units: dict[str, set[str]] = {}
    for sid, _y, _d, u, _v in rows:
        units.setdefault(sid, set()).add(u)
    n_series = {sid: len(us - {""}) if len(us - {""}) > 1 else 1 for sid, us in units.items()}
    present: Counter[str] = Counter()
    for sid, y, d, u, v in rows:
        if y in years and not any(d) and keys[(sid, y, d, u)] == 1 and v and _number(v):
            present[sid] += 1
    feeds = {f.id: f for f in cat.feeds}
    got_present: Counter[str] = Counter()
    got_periods: Counter[str] = Counter()
    for row in r.series.to_dicts():
        sid = feeds[row["feed"]].files[0].removeprefix("indicator_").removesuffix(".csv")
        assert row["area_id"] == _la_coverage(sid), row
        got_present[sid] += row["present"]
        got_periods[sid] += row["periods"]
    assert len(r.series) == sum(n_series.values()) == len(cat.indicators)  # one area per series
    assert +got_present == +present
    assert dict(got_periods) == {sid: n * len(years) for sid, n in n_series.items()}
    expected = sum(n_series.values()) * len(years)
    assert (r.summary["expected"], r.summary["present"]) == (expected, sum(present.values()))
    assert r.summary["completeness"] == pytest.approx(sum(present.values()) / expected * 100)
    assert 40 < r.summary["completeness"] < 45  # 42.8 %; 2.1 % when every series was expected in all 11 areas


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


# --- nyc311: closure timeliness per agency ---------------------------------------------------------------


def test_nyc311_closure_timeliness_per_agency_matches_plain_sql(tmp_path: Path) -> None:
    areas = _areas_csv(
        tmp_path / "areas.csv",
        [("NYC", "city", None)]
        + [
            (b, "district", "NYC")
            for b in ("BROOKLYN", "BRONX", "QUEENS", "MANHATTAN", "STATEN ISLAND", "Unspecified")
        ],
    )
    wh = _warehouse(tmp_path, areas, CATS / "nyc.yaml", [NYC])
    r = assess(
        wh, load_catalogue(CATS / "nyc.yaml"), as_of=date(2023, 2, 28), since=date(2023, 2, 28), now=NOW
    )
    got = (
        r.records.group_by("provider")
        .agg(pl.col("records", "excluded", "on_time", "late", "missing", "pending").sum())
        .sort("provider")
        .rows()
    )
    fmt = "%m/%d/%Y %I:%M:%S %p"
    plain = (
        _raw(NYC)
        .execute(
            f"""WITH t AS (SELECT Agency AS a, strptime("Created Date", '{fmt}') AS c,
                              try_strptime("Closed Date", '{fmt}') AS d FROM raw),
        k AS (SELECT *, d IS NULL OR d >= c AS keep FROM t)
        SELECT a, count(*), count(*) FILTER (WHERE NOT keep),
          count(*) FILTER (WHERE keep AND d <= c + INTERVAL 24 HOUR),
          count(*) FILTER (WHERE keep AND d > c + INTERVAL 24 HOUR),
          count(*) FILTER (WHERE keep AND d IS NULL), 0
        FROM k GROUP BY a ORDER BY a"""
        )
        .fetchall()
    )
    assert got == [tuple(x) for x in plain]
    assert sum(x[2] for x in plain) == 2  # SOURCE.md: two requests closed before they were created
    league = {row["group"]: row["timeliness"] for row in r.groups.to_dicts()}
    for agency, _n, _x, on_time, late, missing, _p in plain:
        assert league[agency] == pytest.approx(on_time / (on_time + late + missing) * 100), agency
