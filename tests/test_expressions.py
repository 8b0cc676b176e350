"""The restricted expression language: what parses, what does not, and that nothing else crashes."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from citykpi.catalogue.expressions import (
    MAX_DEPTH,
    Binary,
    BoolOp,
    Call,
    Compare,
    ExpressionSyntaxError,
    IsNull,
    Name,
    Not,
    Number,
    Star,
    String,
    Unary,
    is_aggregate,
    is_boolean,
    names_used,
    parse_condition,
    parse_expression,
)
from citykpi.catalogue.model import Condition
from citykpi.errors import ExpressionError

COLS = ("closed_at", "due_at", "created_at", "category", "minutes", "satisfied", "a", "b")


def p(text: str, aggregates: bool = False) -> object:
    return parse_expression(text, names=COLS, aggregates=aggregates)


def test_arithmetic_precedence() -> None:
    assert p("a + b * 2") == Binary("+", Name("a"), Binary("*", Name("b"), Number(2)))
    assert p("(a + b) * 2") == Binary("*", Binary("+", Name("a"), Name("b")), Number(2))
    assert p("a - b - 1") == Binary("-", Binary("-", Name("a"), Name("b")), Number(1))
    assert p("-a / 2.5e2") == Binary("/", Unary("-", Name("a")), Number(250.0))


def test_conditions() -> None:
    assert p("category = 'noise' AND a IS NOT NULL") == BoolOp(
        "and", (Compare("=", Name("category"), String("noise")), IsNull(Name("a"), negated=True))
    )
    assert p("a < 1 or a > 2 or b is null") == BoolOp(
        "or", (Compare("<", Name("a"), Number(1)), Compare(">", Name("a"), Number(2)), IsNull(Name("b")))
    )
    assert p("not a <> 1") == Not(Compare("!=", Name("a"), Number(1)))
    assert p("a = 1 or b = 2 and a = 3") == BoolOp(
        "or",
        (
            Compare("=", Name("a"), Number(1)),
            BoolOp("and", (Compare("=", Name("b"), Number(2)), Compare("=", Name("a"), Number(3)))),
        ),
    )


def test_strings_unescape_quotes_and_keep_unicode() -> None:
    assert p("category = 'it''s 噪声'") == Compare("=", Name("category"), String("it's 噪声"))


def test_functions_and_aggregates() -> None:
    assert p("count(*)", aggregates=True) == Call("count", (Star(),))
    assert p("COUNT_IF(closed_at <= due_at)", aggregates=True) == Call(
        "count_if", (Compare("<=", Name("closed_at"), Name("due_at")),)
    )
    assert p("median(date_diff_hours(created_at, closed_at))", aggregates=True) == Call(
        "median", (Call("date_diff_hours", (Name("created_at"), Name("closed_at"))),)
    )
    assert p("round(coalesce(a, 0) / nullif(b, 0), 2)") == Call(
        "round",
        (
            Binary("/", Call("coalesce", (Name("a"), Number(0))), Call("nullif", (Name("b"), Number(0)))),
            Number(2),
        ),
    )
    assert p("count_if(satisfied)", aggregates=True) == Call("count_if", (Name("satisfied"),))


def test_helpers() -> None:
    e = parse_expression("sum(minutes) / count(*)", names=COLS, aggregates=True)
    assert names_used(e) == {"minutes"}
    assert is_aggregate(e)
    assert not is_aggregate(p("a + 1"))
    assert is_boolean(p("a > 1")) and not is_boolean(p("a + 1"))


def test_positions_are_recorded_but_not_compared() -> None:
    e = p("a +  b")
    assert isinstance(e, Binary) and e.pos == 3 and e.right.pos == 6
    assert e == Binary("+", Name("a", 99), Name("b"))


def test_names_none_skips_name_check() -> None:
    assert names_used(parse_expression("x + y", names=None)) == {"x", "y"}


HOSTILE = [
    ("read_csv('x')", "unknown function 'read_csv'", 1),
    ("1; DROP TABLE x", "';' is not allowed", 2),
    ("getenv('HOME')", "unknown function 'getenv'", 1),
    ("COPY", "SQL keyword COPY is not allowed", 1),
    ("ATTACH", "SQL keyword ATTACH is not allowed", 1),
    ("INSTALL", "SQL keyword INSTALL is not allowed", 1),
    ("a + (SELECT 1)", "subqueries are not allowed", 6),
    ('"a" + 1', "double-quoted identifiers are not allowed", 1),
    ("a -- comment", "comments are not allowed", 3),
    ("a /* c */", "comments are not allowed", 3),
    ("load('httpfs')", "SQL keyword LOAD", 1),
    ("read_parquet('s3://x')", "unknown function 'read_parquet'", 1),
    ("a.b", "unexpected character '.'", 2),
    ("a::int", "unexpected character ':'", 2),
    ("a || b", "unexpected character '|'", 3),
    ("unknown_col + 1", "unknown name 'unknown_col'", 1),
    ("minute + 1", "did you mean 'minutes'?", 1),
    ("a < b < 3", "comparisons cannot be chained", 7),
    ("a IS 1", "expected NULL after IS", 6),
    ("abs(a, b)", "abs() takes 1 argument(s), got 2", 1),
    ("least(a)", "least() takes 2 or more argument(s), got 1", 1),
    ("count(*)", "aggregate function count() is only allowed in measures", 1),
    ("a * *", "'*' is only allowed as count(*)", 5),
    ("a +", "expected a value but found the end of the expression", 4),
    ("(a + 1", "expected ')' but found the end of the expression", 7),
    ("a 1", "unexpected '1'", 3),
    ("'abc", "unterminated string", 1),
    ("", "the expression is empty", 1),
    ("12abc", "malformed number", 1),
    ("x'", "unterminated string", 2),
    ("a²", "unknown name 'a²'", 1),
    ("²", "unexpected character '²'", 1),
    ("a\x00", "unexpected character", 2),
    ("abs(a)(b)", "unexpected '('", 7),
]


@pytest.mark.parametrize(("text", "message", "column"), HOSTILE, ids=[h[0] or "empty" for h in HOSTILE])
def test_hostile_and_malformed_inputs(text: str, message: str, column: int) -> None:
    with pytest.raises(ExpressionSyntaxError) as info:
        p(text)
    assert message in info.value.message
    assert info.value.column == column
    assert f"at column {column}" in info.value.message


AGG_ERRORS = [
    ("sum(count(*))", "cannot be nested inside another aggregate"),
    ("minutes + 1", "column 'minutes' must be inside an aggregate"),
    ("sum(minutes) / minutes", "must be inside an aggregate"),
    ("count_if(minutes + 1)", "count_if() needs a condition"),
    ("count(*, a)", "expected ')'"),
    ("sum(*)", "'*' is only allowed as count(*)"),
]


@pytest.mark.parametrize(("text", "message"), AGG_ERRORS)
def test_aggregate_rules(text: str, message: str) -> None:
    with pytest.raises(
        ExpressionError, match=message.replace("(", r"\(").replace(")", r"\)").replace("*", r"\*")
    ):
        p(text, aggregates=True)


def test_boolean_and_numeric_contexts() -> None:
    with pytest.raises(ExpressionError, match="must be a condition"):
        parse_expression("a + 1", names=COLS, boolean=True)
    with pytest.raises(ExpressionError, match="must be a number"):
        parse_expression("a > 1", names=COLS, boolean=False)
    assert parse_expression("satisfied", names=COLS, boolean=True) == Name("satisfied")


def test_length_and_depth_limits() -> None:
    with pytest.raises(ExpressionError, match="over the 2000 limit"):
        p("a + " * 600 + "a")
    with pytest.raises(ExpressionError, match=f"nested deeper than {MAX_DEPTH}"):
        p("(" * 100 + "a" + ")" * 100)
    with pytest.raises(ExpressionError, match="nested deeper"):
        p("- " * 100 + "a")
    with pytest.raises(ExpressionError, match="nested deeper"):
        p("abs(" * 100 + "a" + ")" * 100)
    assert p("(" * 10 + "a" + ")" * 10) == Name("a")


def test_non_text_is_refused() -> None:
    with pytest.raises(ExpressionError):
        parse_expression(12, names=COLS)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("value <= 100", Condition("<=", 100.0)),
        ("value>200", Condition(">", 200.0)),
        ("VALUE != -3.5", Condition("!=", -3.5)),
        ("value <> 0", Condition("!=", 0.0)),
        ("value = 1e3", Condition("=", 1000.0)),
    ],
)
def test_parse_condition(text: str, expected: Condition) -> None:
    assert parse_condition(text) == expected


@pytest.mark.parametrize(
    "text", ["x <= 100", "value", "value <= ", "value <= a", "value <= 1 and value > 0", "100 >= value", ""]
)
def test_parse_condition_rejects(text: str) -> None:
    with pytest.raises(ExpressionError):
        parse_condition(text)


_ALPHABET = st.sampled_from(
    [
        *list("abcdemnstuvxyz_0123456789.+-*/()<>=!,' \"\t;:|#%$@[]{}\\`~^&?"),
        "count",
        "sum",
        "AND",
        "OR",
        "NOT",
        "IS",
        "NULL",
        "(*)",
        "''",
        "--",
        "/*",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_ALPHABET, max_size=40).map("".join), st.booleans())
def test_fuzz_only_expression_errors(text: str, aggregates: bool) -> None:
    """Random input either parses or raises ExpressionError — never anything else."""
    try:
        expr = parse_expression(text, names=COLS, aggregates=aggregates)
    except ExpressionError:
        return
    assert names_used(expr) <= set(COLS)
    assert is_aggregate(expr) <= aggregates


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_fuzz_arbitrary_unicode(text: str) -> None:
    with contextlib.suppress(ExpressionError):
        parse_expression(text, names=None, aggregates=True)
    with contextlib.suppress(ExpressionError):
        parse_condition(text)
