"""Smoke test of the benchmark data generator at a micro scale (no timings here)."""

from __future__ import annotations

import hashlib
import sys
from collections import Counter
from pathlib import Path

import duckdb
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

import generate


def _digest(out: Path) -> str:
    """Hash of the generated files, observations included (row order is part of the contract)."""
    h = hashlib.sha256(generate.fingerprint(out).encode())
    rows = duckdb.sql(f"SELECT * FROM read_parquet('{out / 'observations.parquet'}')").fetchall()
    h.update(repr(rows).encode())
    h.update((out / "observations.csv").read_bytes())
    return h.hexdigest()


def test_micro_scale_is_deterministic_and_sized(tmp_path: Path) -> None:
    """Two runs give identical files; counts match the scale; rows are in date order."""
    scale = generate.SCALES["micro"]
    a = generate.generate(scale, tmp_path / "a")
    b = generate.generate(scale, tmp_path / "b")
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    assert {k: v for k, v in a.items() if k != "seconds"} == {k: v for k, v in b.items() if k != "seconds"}

    out = tmp_path / "a"
    assert a["indicators"] == scale.kpis + scale.vital_signs == 20
    assert (a["kpis"], a["vital_signs"], a["indices"]) == (scale.kpis, scale.vital_signs, scale.indices)
    areas = (out / "areas.csv").read_text(encoding="utf-8").splitlines()
    assert areas[0] == "id,name,name_en,level,parent,population,groups"
    assert Counter(line.split(",")[3] for line in areas[1:]) == {"city": 1, "district": 3, "street": 6}

    ids: list[str] = []
    for f in sorted((out / "indicators").glob("*.yaml")):
        doc = yaml.safe_load(f.read_text(encoding="utf-8"))
        ids += [i["id"] for i in doc.get("indicators", [])]
    assert len(ids) == len(set(ids)) == 20

    con = duckdb.connect()
    pq = f"read_parquet('{out / 'observations.parquet'}')"
    n, unknown, disorder = con.execute(
        f"""SELECT count(*), count(*) FILTER (WHERE indicator_id NOT IN ({",".join(repr(i) for i in ids)})),
                   count(*) FILTER (WHERE period < prev)
            FROM (SELECT *, lag(period) OVER () AS prev FROM {pq})"""
    ).fetchone() or (0, 0, 0)
    assert n == a["observations"] > 0
    assert unknown == 0 and disorder == 0
    # at most one record per indicator × area × period
    dup = con.execute(
        f"SELECT count(*) - count(DISTINCT (indicator_id, area_id, period)) FROM {pq}"
    ).fetchone()
    assert dup == (0,)
    csv_rows = con.execute(f"SELECT count(*) FROM read_csv('{out / 'observations.csv'}')").fetchone()
    assert csv_rows == (min(n, scale.csv_rows),) == (a["csv_rows"],)
