"""The same evaluation writes the same bytes, in every export format, whatever DuckDB's thread count.

Floating-point sums depend on the order their terms are added in, and DuckDB's parallel aggregation
combines per-thread partial sums in whatever order the threads finish. The compiler therefore sums
with compensated summation (``fsum``/``favg``, order-independent to the last bit for these data) and
gives every window an order; this test evaluates the sample city twice with different thread counts
and compares the files byte for byte.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from citykpi.catalogue import load_catalogue
from citykpi.engine.evaluate import evaluate
from citykpi.render.exporters import EXTENSIONS, FORMATS, write_scorecard
from citykpi.render.format import sort_history
from citykpi.warehouse import Warehouse
from tests.golden_support import END, SampleCity


def _export_all(
    city: SampleCity, out: Path, threads: int, grain: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Evaluate (the day at every level, other grains above the streets) and write every format."""
    monkeypatch.setenv("CITYKPI_THREADS", str(threads))
    levels = None if grain == "day" else ["city", "district"]
    catalogue = load_catalogue(city.catalogue)
    with Warehouse.open(city.db, read_only=True, create=False) as wh:
        threads_used = wh.con.execute("SELECT current_setting('threads')").fetchone()
        assert threads_used is not None and int(threads_used[0]) == threads
        card = evaluate(wh, catalogue, as_of=END, grain=grain, levels=levels, persist=False)
    out.mkdir()
    for fmt in FORMATS:
        write_scorecard(card, fmt, out / f"scorecard{EXTENSIONS[fmt]}")


@pytest.mark.parametrize("grain", ["day", "month", "year"])
def test_two_evaluations_write_identical_bytes(
    grain: str, sample_city: SampleCity, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _export_all(sample_city, tmp_path / "a", 1, grain, monkeypatch)
    _export_all(sample_city, tmp_path / "b", 4, grain, monkeypatch)
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert len(names) == len(FORMATS)
    differing = [n for n in names if (tmp_path / "a" / n).read_bytes() != (tmp_path / "b" / n).read_bytes()]
    assert differing == [], f"exports differ between two evaluations: {differing}"


def test_evaluation_is_repeatable_in_one_process(sample_city: SampleCity) -> None:
    """Several evaluations on one connection (the default thread count) give identical frames."""
    catalogue = load_catalogue(sample_city.catalogue)
    with Warehouse.open(sample_city.db, read_only=True, create=False) as wh:
        cards = [evaluate(wh, catalogue, as_of=date(2025, 12, 31), persist=False) for _ in range(3)]
    for card in cards[1:]:
        assert card.cells.equals(cards[0].cells)
        assert card.indices.equals(cards[0].indices)
        assert sort_history(card.history).equals(sort_history(cards[0].history))  # unordered by contract
