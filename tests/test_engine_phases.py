"""Evaluation is four phases; the compile phase is pure (no database) and its size does not grow with the catalogue."""

from __future__ import annotations

import ast
from dataclasses import replace
from datetime import date
from pathlib import Path

import polars as pl

from citykpi.catalogue import load_catalogue
from citykpi.catalogue.model import Observed
from citykpi.engine.gather import Gathered, Request
from citykpi.engine.plan import compile_evaluation

ROOT = Path(__file__).resolve().parents[1]


def _gathered(n_indicators: int | None = None, **request: object) -> Gathered:
    catalogue = load_catalogue(ROOT / "indicators")
    compiled = catalogue
    if n_indicators is not None:
        keep = tuple(i for i in catalogue.indicators if isinstance(i.value, Observed))[:n_indicators]
        compiled = replace(catalogue, indicators=keep, indices=())
    areas = pl.DataFrame({"area_id": ["500000", "500101"], "area_key": [1, 2]})
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


def test_compile_needs_no_database_and_is_repeatable() -> None:
    a = compile_evaluation(_gathered())
    b = compile_evaluation(_gathered())
    assert a.text() == b.text()
    assert {"cells", "indices", "history"} <= set(a.outputs)
    assert {"ck_ind", "ck_bandset"} <= set(a.frames)
    assert all(sql.strip() for _name, sql in a.statements)


def test_statement_count_does_not_grow_with_the_number_of_indicators() -> None:
    few = compile_evaluation(_gathered(5))
    many = compile_evaluation(_gathered(120))  # observed values only: measures add one statement per source
    assert len(few.statements) == len(many.statements)
    assert many.frames["ck_ind"].height > few.frames["ck_ind"].height


def test_a_replay_reads_observations_as_they_were() -> None:
    plan = compile_evaluation(replace(_gathered(), batch_cut=7))
    name, sql = plan.statements[0]
    assert name == "observations as ingested" and "7" in sql


def test_no_history_levels_means_no_history_query() -> None:
    assert "history" not in compile_evaluation(_gathered(history_levels=())).outputs


def test_evaluate_reads_as_the_four_phases() -> None:
    """evaluate() calls gather → compile_evaluation → execute → persist_run, in that order, once each."""
    tree = ast.parse((ROOT / "citykpi" / "engine" / "evaluate.py").read_text(encoding="utf-8"))
    fn = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "evaluate")
    calls = [
        n.func.id
        for n in ast.walk(fn)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
        if n.func.id in ("gather", "compile_evaluation", "execute", "persist_run")
    ]
    assert calls == ["gather", "compile_evaluation", "execute", "persist_run"]
