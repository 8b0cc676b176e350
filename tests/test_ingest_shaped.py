"""What real tables need at ingest: constant fields, composite area keys, missing-value tokens,
dimensions (disaggregated rows kept beside the headline series) and recodes — every count by hand."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from citykpi.catalogue.model import Catalogue, SourceTable
from citykpi.cli import app
from citykpi.errors import UsageError
from citykpi.warehouse import IngestOptions, Warehouse, ingest, load_areas
from tests._warehouse_support import checksum, indicator, write

NOW = datetime(2025, 1, 1)
AREAS = (
    "id,name,name_en,level,parent\n"
    "DE,德国,Germany,city,\nFR,法国,France,city,\n"
    "DE/Berlin,柏林,Berlin,district,DE\nDE/Bonn,波恩,Bonn,district,DE\nFR/Paris,巴黎,Paris,district,FR\n"
)


def _catalogue() -> Catalogue:
    pop = indicator("pop.total", unit="persons", valid_range=(0, None))
    return Catalogue(indicators=(pop, indicator("pop.young", unit="persons")))


@pytest.fixture
def wh(tmp_path: Path) -> Warehouse:
    w = Warehouse.open(tmp_path / "w.duckdb")
    load_areas(w, write(tmp_path / "areas.csv", AREAS))
    return w


def _opts(**kw: object) -> IngestOptions:
    return IngestOptions(**{"now": NOW, **kw})  # type: ignore[arg-type]


def _rows(wh: Warehouse, sql: str) -> list[tuple[object, ...]]:
    return wh.con.execute(sql).fetchall()


def test_constants_and_composite_area_key(wh: Warehouse, tmp_path: Path) -> None:
    # no period and no indicator column; the area is unique only within its country
    text = "country,city,v\nDE,Berlin,3\nDE, Bonn ,2\nFR,Paris,7\nFR,,1\n"
    f = ingest(
        wh,
        _catalogue(),
        [write(tmp_path / "c.csv", text)],
        _opts(
            mapping={"area_id": "country+city", "value": "v"},
            constants={"period": "2020", "indicator_id": "pop.total"},
        ),
    ).files[0]
    assert (f.rows_read, f.rows_loaded, f.rows_rejected) == (4, 3, 1)
    got = _rows(
        wh,
        "SELECT a.area_id, o.period, o.value FROM observations o JOIN areas a USING (area_key) ORDER BY 1",
    )
    assert got == [
        ("DE/Berlin", datetime(2020, 1, 1), 3.0),
        ("DE/Bonn", datetime(2020, 1, 1), 2.0),  # parts are trimmed before they are joined
        ("FR/Paris", datetime(2020, 1, 1), 7.0),
    ]
    # an empty part leaves no key: the reject names both columns
    assert _rows(wh, "SELECT row_number, column_name, value, reason FROM rejects") == [
        (4, "country+city", None, "missing area id")
    ]


def test_missing_tokens_are_recorded_not_rejected(wh: Warehouse, tmp_path: Path) -> None:
    text = (
        "indicator_id,area_id,period,value\n"
        "pop.total,DE/Berlin,2020,3\n"
        "pop.total,DE/Bonn,2020,:\n"
        "pop.total,FR/Paris,2020, .. \n"
        "pop.total,DE/Berlin,2021,NA\n"
        "pop.total,DE/Bonn,2021,\n"
        "pop.total,FR/Paris,2021,abc\n"
        "pop.total,XX,2021,:\n"
    )
    f = ingest(
        wh,
        _catalogue(),
        [write(tmp_path / "m.csv", text)],
        _opts(missing=(":", "..", "-", "NA", "")),
    ).files[0]
    # 1 value + 4 missing tokens loaded; a non-token is still unparseable, an unknown area still rejected
    assert (f.rows_read, f.rows_loaded, f.rows_rejected) == (7, 5, 2)
    assert _rows(wh, "SELECT count(*) FROM observations") == [(1,)]
    got = _rows(
        wh,
        """SELECT a.area_id, year(m.period), m.token, m.dims FROM observations_missing m
           JOIN areas a USING (area_key) ORDER BY 2, 1""",
    )
    assert got == [
        ("DE/Bonn", 2020, ":", ""),
        ("FR/Paris", 2020, "..", ""),
        ("DE/Berlin", 2021, "NA", ""),
        ("DE/Bonn", 2021, "", ""),
    ]
    assert _rows(wh, "SELECT row_number, reason FROM rejects ORDER BY 1") == [
        (6, "unparseable number"),
        (7, "unknown area id (load it with `citykpi areas load`)"),
    ]


def test_without_the_empty_token_an_empty_cell_is_still_a_missing_value(
    wh: Warehouse, tmp_path: Path
) -> None:
    text = "indicator_id,area_id,period,value\npop.total,DE/Bonn,2020,:\npop.total,DE/Berlin,2020,\n"
    f = ingest(wh, _catalogue(), [write(tmp_path / "m.csv", text)], _opts(missing=(":",))).files[0]
    assert (f.rows_loaded, f.rows_rejected) == (1, 1)
    assert _rows(wh, "SELECT reason FROM rejects") == [("missing value",)]


SEXES = (
    "indicator_id,area_id,period,sex,age,value\n"
    "pop.total,DE/Berlin,2020,,,10\n"
    "pop.total,DE/Berlin,2020,male,,4\n"
    "pop.total,DE/Berlin,2020,female,,6\n"
    "pop.total,DE/Berlin,2020,male,0-4,1\n"
    "pop.total,DE/Bonn,2020,female,,:\n"
)


def test_dimensions_go_beside_the_headline_series(wh: Warehouse, tmp_path: Path) -> None:
    opts = _opts(dimensions={"sex": "sex", "age": "age"}, missing=(":",))
    f = ingest(wh, _catalogue(), [write(tmp_path / "d.csv", SEXES)], opts).files[0]
    assert (f.rows_read, f.rows_loaded, f.rows_rejected) == (5, 5, 0)
    assert _rows(wh, "SELECT value, dims FROM observations_dims ORDER BY value") == [
        (1.0, "age=0-4;sex=male"),  # canonical: names sorted
        (4.0, "sex=male"),
        (6.0, "sex=female"),
    ]
    assert _rows(wh, "SELECT value FROM observations") == [(10.0,)]
    assert _rows(wh, "SELECT dims, token FROM observations_missing") == [("sex=female", ":")]


def test_dimension_duplicates_and_the_duplicate_policy(wh: Warehouse, tmp_path: Path) -> None:
    cat = _catalogue()
    opts = _opts(dimensions={"sex": "sex", "age": "age"})
    dup = SEXES.replace(",:\n", ",5\n") + "pop.total,DE/Berlin,2020,male,,4.5\n"
    f = ingest(wh, cat, [write(tmp_path / "dup.csv", dup)], opts).files[0]
    # both copies of (Berlin, 2020, sex=male) are rejected, as for headline rows
    assert (f.rows_read, f.rows_loaded, f.rows_rejected) == (6, 4, 2)
    assert _rows(wh, "SELECT row_number, value, reason FROM rejects ORDER BY 1") == [
        (2, "rows 2, 6", "duplicate within the file (same indicator, area and period)"),
        (6, "rows 2, 6", "duplicate within the file (same indicator, area and period)"),
    ]
    again = write(
        tmp_path / "again.csv",
        "indicator_id,area_id,period,sex,age,value\npop.total,DE/Berlin,2020,female,,6.5\n",
    )
    f2 = ingest(wh, cat, [again], opts).files[0]
    assert (f2.status, f2.rows_rejected) == ("rejected", 1)
    assert _rows(wh, "SELECT value, reason FROM rejects WHERE batch_id = 2") == [
        ("batch 1", "duplicate of a stored observation (use --on-duplicate replace or keep)")
    ]
    kept = ingest(wh, cat, [again], _opts(dimensions=opts.dimensions, on_duplicate="keep", force=True)).files[
        0
    ]
    assert (kept.rows_loaded, kept.rows_skipped) == (0, 1)
    repl = ingest(
        wh, cat, [again], _opts(dimensions=opts.dimensions, on_duplicate="replace", force=True)
    ).files[0]
    assert (repl.rows_loaded, repl.rows_replaced) == (1, 1)
    assert _rows(wh, "SELECT value FROM observations_dims WHERE dims = 'sex=female' AND area_key = 3") == [
        (6.5,)
    ]


def test_strict_rejects_the_side_records_too_and_dry_run_keeps_nothing(wh: Warehouse, tmp_path: Path) -> None:
    bad = SEXES + "pop.total,ZZ,2020,,,1\n"
    path = write(tmp_path / "s.csv", bad)
    before = checksum(wh)
    opts = _opts(dimensions={"sex": "sex", "age": "age"}, missing=(":",))
    dry = ingest(wh, _catalogue(), [path], _opts(**{**opts.__dict__, "dry_run": True})).files[0]
    assert (dry.status, dry.rows_loaded, dry.rows_rejected) == ("dry_run", 5, 1)
    assert checksum(wh) == before
    f = ingest(wh, _catalogue(), [path], _opts(**{**opts.__dict__, "strict": True})).files[0]
    assert (f.status, f.rows_loaded) == ("rejected", 0)
    for table in ("observations", "observations_dims", "observations_missing"):
        assert _rows(wh, f"SELECT count(*) FROM {table}") == [(0,)], table


EUROSTAT = (
    "TIME,CITIES,INDIC_UR,Value,Flag and Footnotes\n"
    '2020,Berlin,"Population on the 1st of January, total",10,\n'
    '2020,Berlin,"Population on the 1st of January, male",4,\n'
    '2020,Berlin,"Population on the 1st of January, female",6,e\n'
    '2020,Berlin,"Population on the 1st of January, 0-4 years, total",:,\n'
    '2020,Berlin,"Population on the 1st of January, 65 years and over",3,\n'
)
RECODE = {
    "INDIC_UR": {
        "Population on the 1st of January, total": {"indicator_id": "pop.total"},
        "Population on the 1st of January, male": {"indicator_id": "pop.total", "sex": "male"},
        "Population on the 1st of January, female": {"indicator_id": "pop.total", "sex": "female"},
        "Population on the 1st of January, 0-4 years, total": {"indicator_id": "pop.young"},
    }
}


def test_recode_turns_labels_into_indicators_and_dimensions(wh: Warehouse, tmp_path: Path) -> None:
    opts = _opts(
        mapping={"indicator_id": "INDIC_UR", "area_id": "CITIES", "period": "TIME", "value": "Value"},
        constants={},
        recode=RECODE,
        dimensions={"sex": ""},
        missing=(":",),
        date_formats={"period": "%Y"},
    )
    # CITIES are labels, the areas ids are country/city: map the label through a constant prefix
    opts = _opts(**{**opts.__dict__, "mapping": {**opts.mapping, "area_id": "country+CITIES"}})
    text = "country," + EUROSTAT.replace("\n2020", "\nDE,2020")
    f = ingest(wh, _catalogue(), [write(tmp_path / "e.csv", text)], opts).files[0]
    assert (f.rows_read, f.rows_loaded, f.rows_rejected) == (5, 4, 1)
    assert _rows(wh, "SELECT value FROM observations") == [(10.0,)]
    assert _rows(wh, "SELECT dims, value FROM observations_dims ORDER BY 1") == [
        ("sex=female", 6.0),
        ("sex=male", 4.0),
    ]
    assert _rows(wh, "SELECT token FROM observations_missing") == [(":",)]
    # a label no recode names stays as it is: an unknown indicator, quoted as written
    assert _rows(wh, "SELECT row_number, column_name, value, reason FROM rejects") == [
        (
            5,
            "INDIC_UR (recoded)",
            "Population on the 1st of January, 65 years and over",
            "unknown indicator id (not in the catalogue)",
        )
    ]


def test_wide_with_constant_period_and_tokens(wh: Warehouse, tmp_path: Path) -> None:
    text = "area,pop.total,pop.young\nDE/Berlin,10,-\nFR/Paris,:,2\n"
    f = ingest(
        wh,
        _catalogue(),
        [write(tmp_path / "w.csv", text)],
        _opts(fmt="wide", mapping={"area_id": "area"}, constants={"period": "2019"}, missing=(":", "-")),
    ).files[0]
    assert (f.rows_read, f.rows_loaded, f.rows_rejected) == (4, 4, 0)
    assert _rows(wh, "SELECT value, year(period) FROM observations ORDER BY 1") == [(2.0, 2019), (10.0, 2019)]
    assert _rows(wh, "SELECT token FROM observations_missing ORDER BY 1") == [("-",), (":",)]


CASES = SourceTable(
    id="cases",
    columns={"key": "text", "opened": "timestamp", "closed": "timestamp", "area": "text", "kind": "text"},
    time_column="opened",
    area_column="area",
    key="key",
)


def test_source_tokens_constants_and_composite_keys(wh: Warehouse, tmp_path: Path) -> None:
    cat = Catalogue(indicators=(), sources=(CASES,))
    text = "id,country,city,opened,closed\n1,DE,Berlin,2024-01-01 10:00,N/A\n2,FR,Paris,2024-01-02,2024-01-03\n3,DE,,2024-01-02,N/A\n"
    f = ingest(
        wh,
        cat,
        [write(tmp_path / "cases.csv", text)],
        _opts(
            fmt="source",
            source="cases",
            mapping={"key": "id", "area": "country+city"},
            constants={"kind": "noise"},
            missing=("N/A",),
        ),
    ).files[0]
    assert (f.rows_read, f.rows_loaded, f.rows_rejected) == (3, 2, 1)
    assert _rows(wh, "SELECT key, closed, area, kind FROM src_cases ORDER BY 1") == [
        ("1", None, "DE/Berlin", "noise"),
        ("2", datetime(2024, 1, 3), "FR/Paris", "noise"),
    ]
    assert _rows(wh, "SELECT column_name, reason FROM rejects") == [("country+city", "missing area id")]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (IngestOptions(fmt="source", source="cases", constants={"nope": "x"}), "declares no column 'nope'"),
        (
            IngestOptions(fmt="source", source="cases", dimensions={"sex": "s"}),
            "--dim goes with --format long",
        ),
        (IngestOptions(dimensions={"Sex": "s"}), "a dimension is a lower-case word"),
        (IngestOptions(dimensions={"period": "s"}), "a dimension is a lower-case word"),
    ],
)
def test_option_errors(wh: Warehouse, tmp_path: Path, options: IngestOptions, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        ingest(
            wh, Catalogue(indicators=(), sources=(CASES,)), [write(tmp_path / "x.csv", "a,b\n1,2\n")], options
        )


def test_missing_columns_of_a_reshaped_file_reject_it(wh: Warehouse, tmp_path: Path) -> None:
    path = write(tmp_path / "x.csv", "indicator_id,area_id,period,value\npop.total,DE/Bonn,2020,1\n")
    for opts, message in (
        (_opts(dimensions={"sex": "gender"}), "dimension sex=gender: no column 'gender'"),
        (_opts(recode={"LABEL": {"a": {"indicator_id": "pop.total"}}}), "recode: no column 'LABEL'"),
        (_opts(mapping={"area_id": "country+city"}), "--map area_id=country+city: no column"),
    ):
        f = ingest(wh, _catalogue(), [path], opts).files[0]
        assert f.status == "rejected" and message in f.message, (f.message, message)


def test_cli_set_missing_dim(tmp_path: Path) -> None:
    cat = tmp_path / "cat.yaml"
    cat.write_text(
        "indicators:\n"
        "  - {id: pop.total, name: {zh: 人口, en: Population}, kind: kpi, domain: population, unit: persons,\n"
        "     levels: [city, district], frequency: yearly, direction: higher_is_better, description: d}\n",
        encoding="utf-8",
    )
    db = tmp_path / "c.duckdb"
    runner = CliRunner()
    base = ["--db", str(db), "--catalogue", str(cat)]
    assert runner.invoke(app, [*base, "areas", "load", str(write(tmp_path / "a.csv", AREAS))]).exit_code == 0
    data = write(tmp_path / "d.csv", "area,sex,v\nDE/Berlin,,10\nDE/Berlin,male,4\nDE/Bonn,,:\n")
    result = runner.invoke(
        app,
        [
            *base,
            "ingest",
            str(data),
            "--map",
            "area_id=area",
            "--map",
            "value=v",
            "--set",
            "indicator_id=pop.total",
            "--set",
            "period=2020",
            "--missing",
            ":",
            "--dim",
            "sex=sex",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "3 loaded, 0 rejected" in result.output
    bad = runner.invoke(app, [*base, "ingest", str(data), "--set", "colour=red"])
    assert bad.exit_code == 2 and "unknown field 'colour'" in bad.output


def test_a_key_given_a_value_and_a_token_is_a_duplicate(wh: Warehouse, tmp_path: Path) -> None:
    text = (
        "indicator_id,area_id,period,sex,value\n"
        "pop.total,DE/Berlin,2020,,10\n"  # 1: the headline…
        "pop.total,DE/Berlin,2020,,:\n"  # 2: …and a token for the same cell: both rejected
        "pop.total,DE/Berlin,2020,male,4\n"  # 3: a breakdown of that cell is not a duplicate of it
        "pop.total,DE/Bonn,2020,,5\n"  # 4, 5: a plain duplicate of a headline cell…
        "pop.total,DE/Bonn,2020,,6\n"
        "pop.total,DE/Bonn,2020,female,3\n"  # 6: …does not drag its breakdown along
    )
    opts = _opts(dimensions={"sex": "sex"}, missing=(":",))
    f = ingest(wh, _catalogue(), [write(tmp_path / "x.csv", text)], opts).files[0]
    assert (f.rows_read, f.rows_loaded, f.rows_rejected) == (6, 2, 4)
    assert _rows(wh, "SELECT row_number, value FROM rejects ORDER BY 1") == [
        (1, "rows 1, 2"),
        (2, "rows 1, 2"),
        (4, "rows 4, 5"),
        (5, "rows 4, 5"),
    ]
    assert _rows(wh, "SELECT count(*) FROM observations") == [(0,)]
    assert _rows(wh, "SELECT count(*) FROM observations_missing") == [(0,)]
    assert _rows(wh, "SELECT dims, value FROM observations_dims ORDER BY 1") == [
        ("sex=female", 3.0),
        ("sex=male", 4.0),
    ]
