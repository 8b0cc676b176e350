"""Time citykpi's data-quality scorecard in-process (no CLI, no export): ``citykpi.quality.assess``."""

from __future__ import annotations

import argparse
import json
import time
from datetime import date, datetime

#: The moment arrivals are judged at (after every batch the bench loads: nothing is pending).
JUDGED_AT = datetime(2100, 1, 1)


def main(argv: list[str] | None = None) -> int:
    """Print one JSON line: assess seconds, statements, groups and the summary counts."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--db", required=True)
    ap.add_argument("--catalogue", required=True)
    ap.add_argument("--as-of", type=date.fromisoformat, required=True)
    a = ap.parse_args(argv)
    from citykpi.catalogue.loader import load_catalogue
    from citykpi.quality import assess
    from citykpi.warehouse.connection import Warehouse

    cat = load_catalogue(a.catalogue)
    wh = Warehouse.open(a.db, read_only=True)
    now = JUDGED_AT  # the same moment as the hand-written query, whatever the clock says
    t0 = time.perf_counter()
    report = assess(wh, cat, as_of=a.as_of, now=now)
    t1 = time.perf_counter()
    s = report.summary
    out = {
        "assess_seconds": t1 - t0,
        "statements": report.meta.get("statements"),
        "groups": report.groups.height,
        "series": report.series.height,
        "totals": {k: s[k] for k in ("expected", "present", "pending", "on_time", "late", "missing")},
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
