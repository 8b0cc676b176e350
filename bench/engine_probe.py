"""Time citykpi's engine in-process (no CLI, no export): load the catalogue, then ``citykpi.evaluate``."""

from __future__ import annotations

import argparse
import json
import time
from datetime import date


def main(argv: list[str] | None = None) -> int:
    """Print one JSON line: catalogue load seconds, evaluate seconds, statements, cells."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--db", required=True)
    ap.add_argument("--catalogue", required=True)
    ap.add_argument("--as-of", type=date.fromisoformat, required=True)
    ap.add_argument("--grain", default="day")
    ap.add_argument("--persist", action="store_true", help="record the run, as the CLI does")
    ap.add_argument(
        "--backend", choices=["duckdb", "spark"], default="duckdb", help="--db is a folder for spark"
    )
    ap.add_argument("--spark-master", default="local[2]")
    ap.add_argument("--repeat", type=int, default=1, help="evaluate N times in one process (later ones warm)")
    a = ap.parse_args(argv)
    t0 = time.perf_counter()
    from citykpi.catalogue.loader import load_catalogue
    from citykpi.engine.evaluate import evaluate
    from citykpi.warehouse.connection import Warehouse

    t1 = time.perf_counter()
    cat = load_catalogue(a.catalogue)
    t2 = time.perf_counter()
    backend = None
    if a.backend == "spark":
        from citykpi.backend import spark_backend

        backend = spark_backend(a.spark_master)
    wh = Warehouse.open(a.db, read_only=not a.persist, backend=backend)
    t3 = time.perf_counter()
    rounds = []
    for _ in range(max(1, a.repeat)):
        start = time.perf_counter()
        sc = evaluate(wh, cat, as_of=a.as_of, grain=a.grain, persist=a.persist)
        rounds.append(time.perf_counter() - start)
    t4 = time.perf_counter()
    out = {
        "import_seconds": t1 - t0,
        "catalogue_seconds": t2 - t1,
        "open_seconds": t3 - t2,
        "evaluate_seconds": rounds[0],
        "warm_evaluate_seconds": min(rounds[1:]) if len(rounds) > 1 else None,
        "total_seconds": t4 - t0,
        "statements": sc.meta.get("statements"),
        "cells": sc.cells.height,
        "indices": sc.indices.height,
        "status_counts": dict(sc.cells.group_by("status").len().sort("status").iter_rows()),
        "forecasts": sc.cells.get_column("forecast_status").count(),
        "fitted": sc.cells.get_column("forecast_slope").count(),
        "anomaly_scores": sc.cells.get_column("anomaly_score").count(),
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
