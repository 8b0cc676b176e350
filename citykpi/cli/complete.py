"""Shell completion of the values the catalogue and the warehouse know: indicator and index ids,
domains, area ids (option values of fixed sets complete from their enums by themselves).

Completion runs before the root callback, so the global ``--catalogue`` and ``--db`` are read from
the parsed root parameters (or their environment variables). A completion never fails loudly: a
missing catalogue or database completes nothing.
"""

from __future__ import annotations

import os
from pathlib import Path

import typer

from citykpi.catalogue.model import Catalogue


def _root(ctx: typer.Context, name: str, env: str, default: str) -> Path:
    value = ctx.find_root().params.get(name)
    return Path(str(value)) if value else Path(os.environ.get(env) or default)


def _catalogue(ctx: typer.Context) -> Catalogue | None:
    from citykpi.catalogue import load_catalogue

    try:
        return load_catalogue(_root(ctx, "catalogue", "CITYKPI_CATALOGUE", "indicators"))
    except Exception:  # completion must stay silent
        return None


def _starting(values: list[str], incomplete: str) -> list[str]:
    return sorted(v for v in set(values) if v.startswith(incomplete))


def indicator_ids(ctx: typer.Context, incomplete: str) -> list[str]:
    """Indicator ids starting with what was typed."""
    cat = _catalogue(ctx)
    return [] if cat is None else _starting([i.id for i in cat.indicators], incomplete)


def indicator_or_index_ids(ctx: typer.Context, incomplete: str) -> list[str]:
    """Indicator and index ids starting with what was typed."""
    cat = _catalogue(ctx)
    return (
        []
        if cat is None
        else _starting([*(i.id for i in cat.indicators), *(x.id for x in cat.indices)], incomplete)
    )


def domains(ctx: typer.Context, incomplete: str) -> list[str]:
    """The catalogue's domains starting with what was typed."""
    cat = _catalogue(ctx)
    return [] if cat is None else _starting([i.domain for i in cat.indicators], incomplete)


def area_ids(ctx: typer.Context, incomplete: str) -> list[str]:
    """Area ids of the warehouse starting with what was typed (the database opened read-only)."""
    from citykpi.warehouse import Warehouse

    db = _root(ctx, "db", "CITYKPI_DB", "citykpi.duckdb")
    if not db.is_file():
        return []
    try:
        with Warehouse.open(db, read_only=True, create=False) as wh:
            ids = [str(a) for a in wh.areas().get_column("area_id").to_list()]
    except Exception:  # busy, not a citykpi database…: complete nothing
        return []
    return _starting(ids, incomplete)
