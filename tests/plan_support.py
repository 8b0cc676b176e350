"""A gathered evaluation request built without a warehouse (for tests of the pure phases)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from pathlib import Path

import polars as pl

from citykpi.catalogue import load_catalogue
from citykpi.catalogue.model import Observed
from citykpi.engine.gather import Gathered, Request

ROOT = Path(__file__).resolve().parents[1]


def gathered(n_indicators: int | None = None, **request: object) -> Gathered:
    catalogue = load_catalogue(ROOT / "indicators")
    compiled = catalogue
    if n_indicators is not None:
        keep = tuple(i for i in catalogue.indicators if isinstance(i.value, Observed))[:n_indicators]
        compiled = replace(catalogue, indicators=keep, indices=())
    areas = pl.DataFrame(  # the columns Warehouse.areas() gives that the plan reads
        {
            "area_id": ["500000", "500101"],
            "area_key": [1, 2],
            "name": ["重庆市", "万州区"],
            "name_en": ["Chongqing", "Wanzhou"],
        }
    )
    return Gathered(
        request=Request(as_of=date(2025, 12, 31), **request),  # type: ignore[arg-type]
        catalogue=catalogue,
        compiled=compiled,
        shown=frozenset(i.id for i in compiled.indicators),
        as_of=date(2025, 12, 31),
        area_frame=areas,
        area_keys={"500000": 1, "500101": 2},
        areas=None,
        area_filter=None,
        keys={i.id: n for n, i in enumerate(catalogue.indicators, start=1)},
        classes={},
        batch_cut=None,
        max_batch=0,
    )
