"""The restricted expression language: what parses, what does not, and that nothing else crashes."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from citykpi.catalogue.expressions import (
    MAX_DEPTH,
    UNKNOWN,
    Binary,
    BoolOp,
    Call,
    Compare,
    ExpressionSyntaxError,
    ExpressionTypeError,
    IsNull,
    Name,
    Not,
    Number,
    Star,
    String,
    Unary,
    check_types,
    is_aggregate,
    is_boolean,
    names_used,
    parse_condition,
    parse_expression,
    type_of,
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


# --- types ---------------------------------------------------------------------------------

TYPES = {"n": "number", "i": "number", "t": "text", "d": "date", "ts": "timestamp", "ok": "boolean"}

#: (expression, aggregates, wanted type, None when it type-checks else (words of the error, column)).
TYPE_RULES: list[tuple[str, bool, str, tuple[str, int] | None]] = [
    ("n + i * 2 - -n / 3", False, "number", None),
    ("n + 'x'", False, "number", ("'+' needs a number, but 'x' is text", 5)),
    ("'x' * 2", False, "number", ("'*' needs a number, but 'x' is text", 1)),
    ("-t", False, "number", ("'-' needs a number, but 't' is text", 2)),
    ("ok + 1", False, "number", ("'+' needs a number, but 'ok' is a condition", 1)),
    ("(n > 1) * 2", False, "number", ("'*' needs a number, but this is a condition", 2)),
    ("d + 1", False, "number", ("'+' needs a number, but 'd' is a date", 1)),
    ("round(n, 'x')", False, "number", ("round()'s digits must be a whole number", 10)),
    ("round(n, 1.5)", False, "number", ("round()'s digits must be a whole number", 10)),
    ("round(n, i)", False, "number", ("round()'s digits must be a whole number", 10)),
    ("round(n, 21)", False, "number", ("from -20 to 20", 10)),
    ("round(n, -2) + round(n) + round(i, 2)", False, "number", None),
    ("round(t, 1)", False, "number", ("round() needs a number, but 't' is text", 7)),
    ("abs(d)", False, "number", ("abs() needs a number, but 'd' is a date", 5)),
    ("nullif(n, 'x')", False, "number", ("nullif() mixes a number ('n') with text ('x')", 11)),
    ("nullif(n, 0) + coalesce(n, i, 0) + least(n, 1) + greatest(i, 2)", False, "number", None),
    ("coalesce(n, t)", False, "number", ("coalesce() mixes a number ('n') with text ('t')", 13)),
    ("least(d, ts) < ts", False, "boolean", None),  # dates and timestamps mix
    ("coalesce(t, 'none')", False, "number", ("this must be a number, but it is text", 1)),
    ("date_diff_hours(d, ts) + date_diff_hours(ts, ts)", False, "number", None),
    (
        "date_diff_hours(n, ts)",
        False,
        "number",
        ("date_diff_hours() needs dates or timestamps, but 'n' is a number", 17),
    ),
    ("date_diff_hours(ts, '2024-01-01')", False, "number", ("but '2024-01-01' is text", 21)),
    ("n > 'x'", False, "boolean", ("'>' compares a number with text", 5)),
    ("t = 1", False, "boolean", ("'=' compares text with a number", 5)),
    ("t = 'noise' AND t != ''", False, "boolean", None),
    ("d = 1", False, "boolean", ("'=' compares a date with a number", 5)),
    ("ok = 'true'", False, "boolean", ("'=' compares a condition with text", 6)),
    ("ok = (n > 1)", False, "boolean", None),
    (
        "d >= '2024-01-01' AND ts < '2024-01-01 10:30' AND ts < '2024-01-01T10:30:00' AND d < ts",
        False,
        "boolean",
        None,
    ),
    ("d < 'soon'", False, "boolean", ("'soon' is not a valid date (YYYY-MM-DD)", 5)),
    ("d < '2024-02-30'", False, "boolean", ("'2024-02-30' is not a valid date", 5)),
    ("d < '2024-01-01 10:00'", False, "boolean", ("'2024-01-01 10:00' is not a valid date (YYYY-MM-DD)", 5)),
    ("ts < '24/01/2024'", False, "boolean", ("is not a valid date (YYYY-MM-DD or YYYY-MM-DD HH:MM[:SS])", 6)),
    ("n AND ok", False, "boolean", ("AND needs a condition, but 'n' is a number", 1)),
    ("ok OR t", False, "boolean", ("OR needs a condition, but 't' is text", 7)),
    ("NOT n", False, "boolean", ("NOT needs a condition, but 'n' is a number", 5)),
    ("NOT ok AND t IS NOT NULL AND d IS NULL", False, "boolean", None),
    ("t", False, "boolean", ("this must be a condition, but it is text", 1)),
    ("'x'", False, "number", ("this must be a number, but it is text", 1)),
    ("ts", False, "number", ("this must be a number, but it is a timestamp", 1)),
    (
        "sum(n) / count(*) + count(t) + count_if(t = 'x') + avg(i) + median(date_diff_hours(d, ts))",
        True,
        "number",
        None,
    ),
    ("sum(t)", True, "number", ("sum() needs a number, but 't' is text", 5)),
    ("median(d)", True, "number", ("median() needs a number, but 'd' is a date", 8)),
    ("count_if(t)", True, "number", ("count_if() needs a condition, but 't' is text", 10)),
    ("max(d)", True, "number", ("this must be a number, but it is a date", 1)),
    ("max(n) - min(i) + max(t = 'x')", True, "number", ("'+' needs a number, but max() is a condition", 19)),
    ("unknown_name + 1", False, "number", None),  # no declared type: nothing to hold against it
]


@pytest.mark.parametrize(
    ("text", "aggregates", "want", "error"), TYPE_RULES, ids=[f"{r[0]}->{r[2]}" for r in TYPE_RULES]
)
def test_type_rules(text: str, aggregates: bool, want: str, error: tuple[str, int] | None) -> None:
    expr = parse_expression(text, names=None, aggregates=aggregates)
    if error is None:
        assert check_types(expr, TYPES, want=want) in (want, UNKNOWN)
        return
    with pytest.raises(ExpressionTypeError) as caught:
        check_types(expr, TYPES, want=want)
    words, column = error
    assert words in caught.value.message, caught.value.message
    assert caught.value.column == column
    assert caught.value.message.endswith(f"at column {column}")


def test_type_of_reports_each_type() -> None:
    for text, kind in [("n", "number"), ("t", "text"), ("d", "date"), ("ts", "timestamp"), ("ok", "boolean")]:
        assert type_of(parse_expression(text, names=None), TYPES) == kind
    assert type_of(parse_expression("coalesce(d, ts)", names=None), TYPES) == "timestamp"
    assert type_of(parse_expression("x", names=None), TYPES) == UNKNOWN


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("a * 1e400", "the number 1e400 is too large"),
        ("a + " + "9" * 400, "is too large"),
        ("a = 'x\x00y'", "a string cannot hold a NUL character"),
    ],
)
def test_literals_the_engine_cannot_take_are_refused_when_parsing(text: str, words: str) -> None:
    with pytest.raises(ExpressionSyntaxError, match=words):
        parse_expression(text, names=None)


_DB_TYPES = {"n": "DOUBLE", "i": "INTEGER", "t": "VARCHAR", "d": "DATE", "ts": "TIMESTAMP", "ok": "BOOLEAN"}
_ROWS = [
    "(1.5, 2, 'noise', DATE '2024-01-01', TIMESTAMP '2024-01-01 10:00', TRUE)",
    "(0.0, 0, '', DATE '2024-02-29', TIMESTAMP '2023-12-31 23:59:59', FALSE)",
    "(-7.25, -3, '噪声', DATE '1999-12-31', TIMESTAMP '2024-03-01 00:00', TRUE)",
    "(NULL, NULL, NULL, NULL, NULL, NULL)",
]
_duckdb_con: list[object] = []


def _engine() -> object:
    import duckdb

    if not _duckdb_con:
        con = duckdb.connect()
        con.execute("CREATE TABLE s (" + ", ".join(f"{c} {t}" for c, t in _DB_TYPES.items()) + ")")
        con.execute("INSERT INTO s VALUES " + ", ".join(_ROWS))
        _duckdb_con.append(con)
    return _duckdb_con[0]


_LEAVES = st.sampled_from(
    [
        *TYPES,
        "0",
        "1",
        "2",
        "-1",
        "2.5",
        "'x'",
        "''",
        "'2024-01-01'",
        "'2024-01-01 10:00'",
        "'2024-02-30'",
        "'1'",
    ]
)


def _scalar(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    two = st.tuples(children, children)
    return st.one_of(
        children.map(lambda a: f"-{a}"),
        st.tuples(children, st.sampled_from(["+", "-", "*", "/"]), children).map(
            lambda t: f"({t[0]} {t[1]} {t[2]})"
        ),
        st.tuples(children, st.sampled_from(["=", "!=", "<", "<=", ">", ">="]), children).map(
            lambda t: f"({t[0]} {t[1]} {t[2]})"
        ),
        st.tuples(children, st.sampled_from(["AND", "OR"]), children).map(
            lambda t: f"({t[0]} {t[1]} {t[2]})"
        ),
        children.map(lambda a: f"(NOT {a})"),
        children.map(lambda a: f"({a} IS NULL)"),
        st.tuples(st.sampled_from(["abs", "round"]), children).map(lambda t: f"{t[0]}({t[1]})"),
        st.tuples(children, st.sampled_from(["0", "1", "-2", "1.5", "i", "'x'"])).map(
            lambda t: f"round({t[0]}, {t[1]})"
        ),
        st.tuples(st.sampled_from(["least", "greatest", "coalesce", "nullif", "date_diff_hours"]), two).map(
            lambda t: f"{t[0]}({t[1][0]}, {t[1][1]})"
        ),
    )


_SCALARS = st.recursive(_LEAVES, _scalar, max_leaves=8)
_AGGREGATES = st.one_of(
    st.just("count(*)"),
    st.tuples(st.sampled_from(["count", "count_if", "sum", "avg", "min", "max", "median"]), _SCALARS).map(
        lambda t: f"{t[0]}({t[1]})"
    ),
)
_MEASURES = st.one_of(
    _AGGREGATES,
    st.tuples(_AGGREGATES, st.sampled_from(["+", "-", "*", "/"]), _AGGREGATES).map(
        lambda t: f"{t[0]} {t[1]} {t[2]}"
    ),
)


# Well-typed expressions, built type by type, so that most examples reach the engine.
_CMP = st.sampled_from(["=", "!=", "<", "<=", ">", ">="])
_ARITH = st.sampled_from(["+", "-", "*", "/"])
_TEMPORALS = st.sampled_from(["d", "ts", "least(d, ts)", "coalesce(ts, d)", "greatest(d, d)"])
_TEXTS = st.sampled_from(["t", "'x'", "''", "coalesce(t, 'none')", "nullif(t, '')", "least(t, 'm')"])
_NUMBERS: st.SearchStrategy[str] = st.deferred(
    lambda: st.one_of(
        st.sampled_from(["n", "i", "0", "1", "2.5", "-1"]),
        _NUMBERS.map(lambda a: f"(- {a})"),
        st.tuples(_NUMBERS, _ARITH, _NUMBERS).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        _NUMBERS.map(lambda a: f"abs({a})"),
        st.tuples(_NUMBERS, st.sampled_from(["", ", 0", ", 2", ", -1"])).map(
            lambda t: f"round({t[0]}{t[1]})"
        ),
        st.tuples(st.sampled_from(["least", "greatest", "coalesce", "nullif"]), _NUMBERS, _NUMBERS).map(
            lambda t: f"{t[0]}({t[1]}, {t[2]})"
        ),
        st.tuples(_TEMPORALS, _TEMPORALS).map(lambda t: f"date_diff_hours({t[0]}, {t[1]})"),
    )
)
_CONDITIONS: st.SearchStrategy[str] = st.deferred(
    lambda: st.one_of(
        st.just("ok"),
        st.tuples(_NUMBERS, _CMP, _NUMBERS).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.tuples(_TEXTS, _CMP, _TEXTS).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.tuples(_TEMPORALS, _CMP, _TEMPORALS).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        _CMP.map(lambda op: f"(d {op} '2024-01-01')"),
        _CMP.map(lambda op: f"(ts {op} '2024-01-01 10:00')"),
        _CONDITIONS.map(lambda a: f"(NOT {a})"),
        st.tuples(_CONDITIONS, st.sampled_from(["AND", "OR", "=", "!="]), _CONDITIONS).map(
            lambda t: f"({t[0]} {t[1]} {t[2]})"
        ),
        st.one_of(_NUMBERS, _TEXTS, _TEMPORALS).map(lambda a: f"({a} IS NOT NULL)"),
    )
)
_TYPED_MEASURES = st.one_of(
    st.tuples(st.sampled_from(["sum", "avg", "min", "max", "median", "count"]), _NUMBERS).map(
        lambda t: f"{t[0]}({t[1]})"
    ),
    _CONDITIONS.map(lambda c: f"count_if({c})"),
    st.one_of(_TEXTS, _TEMPORALS).map(lambda a: f"count({a})"),
)


def _runs_in_the_engine(text: str, *, aggregates: bool, want: str) -> None:
    """If ``text`` parses and type-checks, its SQL runs in DuckDB over typed columns without error."""
    import duckdb

    from citykpi.engine.compiler import render_expression
    from citykpi.sqlutil import ident

    try:
        expr = parse_expression(text, names=set(TYPES), aggregates=aggregates)
        check_types(expr, TYPES, want=want)
    except ExpressionError:
        return  # refused by `check`: never reaches the engine
    sql = render_expression(expr, lambda name: "s." + ident(name))
    query = (
        f"SELECT count(*) FROM s WHERE {sql}" if want == "boolean" else f"SELECT CAST({sql} AS DOUBLE) FROM s"
    )
    con = _engine()
    try:
        con.execute(query).fetchall()  # type: ignore[attr-defined]
    except duckdb.Error as exc:  # pragma: no cover - the property is that this never happens
        pytest.fail(f"{text!r} passed check but the engine refused it: {exc}")


@settings(max_examples=300, deadline=None)
@given(_SCALARS, st.sampled_from(["number", "boolean"]))
def test_fuzz_what_type_checks_runs_in_the_engine(text: str, want: str) -> None:
    """Formulas and filters: no expression that passes the type check fails in the engine."""
    _runs_in_the_engine(text, aggregates=False, want=want)


@settings(max_examples=300, deadline=None)
@given(_MEASURES)
def test_fuzz_what_type_checks_runs_in_the_engine_as_a_measure(text: str) -> None:
    """Measure numerators and denominators: the same, with aggregates."""
    _runs_in_the_engine(text, aggregates=True, want="number")


def test_check_reports_type_errors_with_file_line_and_column(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from citykpi.cli import app

    path = tmp_path / "bad.yaml"
    path.write_text(
        "indicators:\n"
        "  - id: x.base\n"
        "    name: {zh: 基数, en: Base}\n"
        "    kind: kpi\n"
        "    domain: test\n"
        "    unit: count\n"
        "    levels: [city]\n"
        "    frequency: daily\n"
        "    direction: lower_is_better\n"
        "    description: A base.\n"
        "    thresholds: {red: 1}\n"
        "  - id: x.bad\n"
        "    name: {zh: 坏, en: Bad}\n"
        "    kind: kpi\n"
        "    domain: test\n"
        "    unit: count\n"
        "    levels: [city]\n"
        "    frequency: daily\n"
        "    direction: lower_is_better\n"
        "    description: Refused by check.\n"
        "    thresholds: {red: 1}\n"
        "    value:\n"
        "      formula: \"round(a, 'x') + nullif(a, 'x')\"\n"
        "      inputs: {a: x.base}\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(app, ["check", str(path), "--format", "json"])
    assert result.exit_code == 1, result.output
    (diag,) = [d for d in json.loads(result.output)["diagnostics"] if d["severity"] == "error"]
    assert (diag["file"], diag["line"], diag["column"], diag["rule"]) == (str(path), 23, 16, "CK071")
    assert diag["name"] == "expression-type"
    assert diag["message"].startswith("formula of indicator x.bad: round()'s digits must be a whole number")
    with contextlib.chdir(tmp_path):  # a relative name: the text table wraps long paths at the terminal width
        text = CliRunner().invoke(app, ["check", "bad.yaml"])
    assert "bad.yaml:23:16" in text.output and "CK071" in text.output


def test_round_with_digits_evaluates(tmp_path: Path) -> None:
    """round(x, 1) passed check but DuckDB had no round(DOUBLE, DOUBLE): the digits render as an integer."""
    from dataclasses import replace

    from citykpi.catalogue.model import Formula
    from citykpi.engine.evaluate import evaluate
    from citykpi.warehouse import IngestOptions, ingest
    from tests._warehouse_support import catalogue, indicator, open_with_areas, write

    base = catalogue()
    rounded = replace(
        indicator("env.air.rounded"), value=Formula("round(a / 7, 2) + round(a, -1)", {"a": "env.air.aqi"})
    )
    cat = replace(base, indicators=(*base.indicators, rounded))
    csv = "indicator_id,area_id,period,value\nenv.air.aqi,重庆,2024-01-01,55\n"
    with open_with_areas(tmp_path) as wh:
        ingest(wh, cat, [write(tmp_path / "a.csv", csv)], IngestOptions())
        card = evaluate(wh, cat, persist=False)
    cells = card.cells.filter(card.cells["indicator_id"] == "env.air.rounded")
    assert sorted(v for v in cells["value"].to_list() if v is not None) == [round(55 / 7, 2) + 60]


@settings(max_examples=300, deadline=None)
@given(st.one_of(_NUMBERS.map(lambda e: (e, "number")), _CONDITIONS.map(lambda e: (e, "boolean"))))
def test_fuzz_well_typed_expressions_pass_check_and_run(case: tuple[str, str]) -> None:
    """Expressions built to be well typed pass the type check and run in the engine."""
    text, want = case
    assume(text.count("(") <= MAX_DEPTH // 2)  # the nesting limit is tested on its own
    assert check_types(parse_expression(text, names=set(TYPES)), TYPES, want=want) == want
    _runs_in_the_engine(text, aggregates=False, want=want)


@settings(max_examples=200, deadline=None)
@given(st.tuples(_TYPED_MEASURES, _ARITH, _TYPED_MEASURES).map(lambda t: f"{t[0]} {t[1]} {t[2]}"))
def test_fuzz_well_typed_measures_pass_check_and_run(text: str) -> None:
    assume(text.count("(") <= MAX_DEPTH // 2)
    assert (
        check_types(parse_expression(text, names=set(TYPES), aggregates=True), TYPES, want="number")
        == "number"
    )
    _runs_in_the_engine(text, aggregates=True, want="number")
