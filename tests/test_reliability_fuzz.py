"""Property: any CSV the csv module can write (odd unicode, quotes, newlines, separators) ingests exactly.

Random rows, some clean and some with a hostile field (arbitrary text behind a marker that can never
be valid), written with a random delimiter: the clean rows are stored exactly (value for value), each
hostile row is rejected with a reason, loaded + rejected = rows, and nothing raises. A fixed budget
keeps the default run fast (the expression parser has its own fuzzers in test_expressions.py).
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
from datetime import date, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from citykpi.catalogue import load_catalogue
from citykpi.warehouse import Warehouse, ingest
from tests.reliability_support import areas_template

AREAS = ["500000", "500103", "500112"]
INDICATORS = {"env.air.aqi": (0.0, 500.0), "water.supply.pressure_ok": (0.0, 100.0)}
FIELDS = ("indicator_id", "area_id", "period", "value")

#: Arbitrary text: every unicode category but surrogates, including NUL, quotes, separators, newlines.
odd_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)


@st.composite
def rows(draw: st.DrawFn) -> tuple[list[dict[str, str]], list[tuple[str, str, date, float]], int]:
    """(rows as written, the clean records among them, number of hostile rows)."""
    n = draw(st.integers(min_value=1, max_value=25))
    keys = draw(
        st.lists(
            st.tuples(st.sampled_from(sorted(INDICATORS)), st.sampled_from(AREAS), st.integers(0, 400)),
            min_size=n,
            max_size=n,
            unique=True,
        )
    )
    out: list[dict[str, str]] = []
    clean: list[tuple[str, str, date, float]] = []
    hostile = 0
    for indicator, area, day in keys:
        lo, hi = INDICATORS[indicator]
        value = draw(st.floats(min_value=lo, max_value=hi, allow_nan=False))
        period = date(2025, 1, 1) + timedelta(days=day)
        row = {"indicator_id": indicator, "area_id": area, "period": period.isoformat(), "value": repr(value)}
        bad = draw(st.sampled_from([None, None, *FIELDS]))
        if bad is None:
            clean.append((indicator, area, period, value))
        else:
            row[bad] = "~" + draw(odd_text)  # '~' makes the cell invalid whatever follows
            hostile += 1
        out.append(row)
    return out, clean, hostile


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, Path]:
    """A database with the tiny city's areas (no observations); and the catalogue folder."""
    return areas_template(tmp_path_factory.mktemp("fuzz"))


@settings(
    max_examples=int(os.environ.get("CITYKPI_FUZZ_EXAMPLES", "40")),  # the CI budget; raise it locally
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=rows(), delimiter=st.sampled_from([",", ";", "\t", "|"]), bom=st.booleans(), crlf=st.booleans())
def test_csv_ingest_is_exact_or_rejects_with_reasons(
    template: tuple[bytes, Path],
    data: tuple[list[dict[str, str]], list[tuple[str, str, date, float]], int],
    delimiter: str,
    bom: bool,
    crlf: bool,
) -> None:
    written, clean, hostile = data
    text = io.StringIO()
    writer = csv.DictWriter(
        text, fieldnames=FIELDS, delimiter=delimiter, lineterminator="\r\n" if crlf else "\n"
    )
    writer.writeheader()
    writer.writerows(written)
    catalogue = load_catalogue(template[1])
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fuzz.csv"
        path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.getvalue().encode("utf-8"))
        db = Path(tmp) / "w.duckdb"
        db.write_bytes(template[0])
        with Warehouse.open(db) as wh:
            result = ingest(wh, catalogue, [path]).files[0]
            event(f"file {result.status}" + (" whole" if result.message else ""))
            if result.status == "rejected" and result.message:  # refused whole: must say why, store nothing
                assert result.rows_loaded == 0
                assert wh.con.execute("SELECT count(*) FROM observations").fetchall()[0][0] == 0
                return
            stored = wh.con.execute(
                "SELECT k.indicator_id, a.area_id, CAST(o.period AS DATE), o.value FROM observations o "
                "JOIN indicator_keys k USING (indicator_key) JOIN areas a USING (area_key)"
            ).fetchall()
            reasons = wh.con.execute("SELECT reason FROM rejects").fetchall()
    assert sorted(stored) == sorted(clean)
    assert result.rows_loaded == len(clean) and result.rows_rejected == hostile == len(reasons)
    assert result.rows_loaded + result.rows_rejected == len(written)
