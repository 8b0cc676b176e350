"""Every reject reason is a coded, documented rule, and every rule is one the ingest checks can produce."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from citykpi.warehouse.ingest import REJECT_RULES, code_of, reason
from citykpi.warehouse.ingest.codes import markdown_table

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "citykpi" / "warehouse" / "ingest"


def _codes_used() -> set[str]:
    used: set[str] = set()
    for path in PACKAGE.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "reason"
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                used.add(str(node.args[0].value))
    return used


def test_every_rule_is_used_and_every_use_is_a_rule() -> None:
    used = _codes_used()
    assert used == set(REJECT_RULES), (sorted(used - set(REJECT_RULES)), sorted(set(REJECT_RULES) - used))


def test_codes_are_unique_well_formed_and_documented() -> None:
    assert all(re.fullmatch(r"IN\d{3}", c) for c in REJECT_RULES)
    texts = [r.reason for r in REJECT_RULES.values()]
    assert len(set(texts)) == len(texts)
    doc = (ROOT / "docs" / "warehouse.md").read_text(encoding="utf-8")
    block = doc.split("<!-- reject-codes -->\n", 1)[1].split("\n<!-- /reject-codes -->", 1)[0]
    assert block == markdown_table(), "docs/warehouse.md is stale: paste markdown_table() between the markers"


@pytest.mark.parametrize("code", sorted(REJECT_RULES))
def test_a_stored_reason_maps_back_to_its_code(code: str) -> None:
    text = reason(
        code,
        year=1900,
        column="received_at",
        kind="timestamp",
        hint=" (expected format %Y)",
        zone="Europe/Berlin",
    )
    assert code_of(text) == code


def test_an_unknown_reason_has_no_code() -> None:
    assert code_of("written by some other tool") is None


def test_rejected_rows_carry_coded_reasons(tmp_path: Path) -> None:
    """Rows rejected by a real ingest all map to a code (no free-text reason escapes the registry)."""
    from citykpi import IngestOptions, ingest, load_areas, load_catalogue, open_warehouse

    catalogue = load_catalogue(ROOT / "indicators")
    ind = catalogue.indicators[0].id
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "indicator_id,area_id,period,value\n"
        f"{ind},500000,2025-01-01,1\n"
        "no.such.indicator,500000,2025-01-01,1\n"
        f"{ind},999999,2025-01-01,1\n"
        f"{ind},500000,not a date,1\n"
        f"{ind},500000,2025-01-02,abc\n"
        f"{ind},500000,2025-01-03,\n"
        f"{ind},500000,0201-01-01,1\n"
        f"{ind},500000,2025-01-01,2\n",
        encoding="utf-8",
    )
    with open_warehouse(tmp_path / "w.duckdb") as wh:
        load_areas(wh, ROOT / "sample_data" / "areas.csv")
        ingest(wh, catalogue, [bad], IngestOptions())
        reasons = [str(r[0]) for r in wh.con.execute("SELECT DISTINCT reason FROM rejects").fetchall()]
    assert len(reasons) >= 5
    assert all(code_of(r) for r in reasons), reasons
