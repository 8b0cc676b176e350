"""Evaluation is four phases; the compile phase is pure (no database) and its size does not grow with the catalogue."""

from __future__ import annotations

import ast
from dataclasses import replace
from pathlib import Path

from citykpi.engine.plan import compile_evaluation
from tests.plan_support import gathered

ROOT = Path(__file__).resolve().parents[1]


def test_compile_needs_no_database_and_is_repeatable() -> None:
    a = compile_evaluation(gathered())
    b = compile_evaluation(gathered())
    assert a.text() == b.text()
    assert {"cells", "indices", "history"} <= set(a.outputs)
    assert {"ck_ind", "ck_bandset"} <= set(a.frames)
    assert all(sql.strip() for _name, sql in a.statements)


def test_statement_count_does_not_grow_with_the_number_of_indicators() -> None:
    few = compile_evaluation(gathered(5))
    many = compile_evaluation(gathered(120))  # observed values only: measures add one statement per source
    assert len(few.statements) == len(many.statements)
    assert many.frames["ck_ind"].height > few.frames["ck_ind"].height


def test_a_replay_reads_observations_as_they_were() -> None:
    plan = compile_evaluation(replace(gathered(), batch_cut=7))
    name, sql = plan.statements[0]
    assert name == "observations as ingested" and "7" in sql


def test_no_history_levels_means_no_history_query() -> None:
    assert "history" not in compile_evaluation(gathered(history_levels=())).outputs


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
