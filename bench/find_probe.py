"""Time ``citykpi catalogue search`` in-process beside a plain substring scan of the same fields.

The scan is the floor: every term must occur in some field (lower-cased), nothing is scored or sorted.
Each query runs ``--repeat`` times after one warm-up; the figures are medians per query, in ms.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from typing import Any

#: Queries of several shapes: an id prefix, a Chinese and an English name, words of descriptions,
#: two terms, and queries that match nothing (the whole catalogue is scanned either way).
QUERIES: tuple[str, ...] = (
    "gas",
    "gas.g00",
    "指标0042",
    "indicator 0042",
    "monthly ratio",
    "燃气",
    "gas leak",
    "zzzz qqqq",
)


def _scan(indicators: list[Any], query: str) -> int:
    """How many indicators hold every term of ``query`` in one of their fields (no ranking)."""
    terms = [t for t in query.lower().split() if t]
    found = 0
    for ind in indicators:
        hay = " ".join(
            [
                ind.id,
                ind.name.zh,
                ind.name.en,
                *ind.tags,
                ind.domain,
                ind.owner,
                ind.description,
            ]
        ).lower()
        if all(t in hay for t in terms):
            found += 1
    return found


def _median_ms(run: Callable[[], object], repeat: int) -> float:
    run()  # warm-up
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        run()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    """Print one JSON line: catalogue load seconds, and per query the search and scan medians (ms)."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--catalogue", required=True)
    ap.add_argument("--repeat", type=int, default=5)
    a = ap.parse_args(argv)
    from citykpi.catalogue.loader import load_catalogue
    from citykpi.catalogue.search import search

    t0 = time.perf_counter()
    cat = load_catalogue(a.catalogue)
    loaded = time.perf_counter() - t0
    indicators = list(cat.indicators)
    rows = []
    for query in QUERIES:
        hits = len(search(cat, query, limit=None))
        matched = _scan(indicators, query)
        rows.append(
            {
                "query": query,
                "hits": hits,
                "scan_matches": matched,
                "search_ms": round(_median_ms(lambda q=query: search(cat, q), a.repeat), 3),
                "scan_ms": round(_median_ms(lambda q=query: _scan(indicators, q), a.repeat), 3),
            }
        )
    search_ms = [r["search_ms"] for r in rows]
    scan_ms = [r["scan_ms"] for r in rows]
    out = {
        "indicators": len(indicators),
        "catalogue_seconds": round(loaded, 4),
        "queries": rows,
        "search_ms_median": round(statistics.median(search_ms), 3),
        "search_ms_max": round(max(search_ms), 3),
        "scan_ms_median": round(statistics.median(scan_ms), 3),
        # medians of the queries, as seconds, for the harness's figure
        "search_seconds": round(statistics.median(search_ms) / 1000, 6),
        "scan_seconds": round(statistics.median(scan_ms) / 1000, 6),
    }
    print(json.dumps(out, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
