"""The restricted expression language of the catalogue: text → AST, never text → SQL.

Expressions (``where``, ``filter``, ``numerator``, ``denominator``, ``formula``) come from
untrusted YAML. This module tokenizes and parses them by hand into an AST of frozen dataclasses;
everything outside the grammar below is an :class:`~citykpi.errors.ExpressionError` that names
the 1-based column. The engine's compiler renders the AST to SQL (quoting names with
``sqlutil.ident`` and constants with ``sqlutil.literal``); expression text is never pasted into SQL.

Grammar (case-insensitive keywords, lowest precedence first)::

    expr     := or
    or       := and ("OR" and)*
    and      := not ("AND" not)*
    not      := "NOT" not | compare
    compare  := sum [("=" | "!=" | "<>" | "<" | "<=" | ">" | ">=") sum | "IS" ["NOT"] "NULL"]
    sum      := product (("+" | "-") product)*
    product  := unary (("*" | "/") unary)*
    unary    := ("-" | "+") unary | primary
    primary  := NUMBER | 'single-quoted string' | NAME | NAME "(" [args] ")" | "(" expr ")"
    args     := "*" | expr ("," expr)*          -- "*" only in count(*)

AST node shapes (all frozen dataclasses; ``pos`` is the 1-based column, excluded from equality):

* ``Number(value: int | float)``           a numeric literal
* ``String(value: str)``                   a string literal (quotes removed, ``''`` unescaped)
* ``Name(name: str)``                      a declared column / formula input
* ``Star()``                               the ``*`` of ``count(*)`` (only there)
* ``Unary(op: '-' | '+', operand)``
* ``Binary(op: '+' | '-' | '*' | '/', left, right)``
* ``Compare(op: '=' | '!=' | '<' | '<=' | '>' | '>=', left, right)``   (``<>`` becomes ``!=``)
* ``BoolOp(op: 'and' | 'or', operands: tuple)``   flattened, two or more operands
* ``Not(operand)``
* ``IsNull(operand, negated: bool)``       ``x IS NULL`` / ``x IS NOT NULL`` (negated=True)
* ``Call(func: str, args: tuple)``         ``func`` lower-case, one of :data:`FUNCTIONS` or
  :data:`AGGREGATES`; ``count(*)`` is ``Call('count', (Star(),))``

Function meanings for the compiler: ``abs(x)``, ``round(x[, digits])``, ``least(a, b, …)``,
``greatest(a, b, …)``, ``coalesce(a, b, …)``, ``nullif(a, b)``, ``date_diff_hours(a, b)`` =
hours from timestamp ``a`` to timestamp ``b`` (b − a, fractional); aggregates ``count(*)``,
``count(x)`` (non-null x), ``count_if(condition)``, ``sum``, ``avg``, ``min``, ``max``, ``median``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from citykpi.catalogue import model
from citykpi.catalogue.diagnostics import did_you_mean
from citykpi.errors import ExpressionError

#: Longest expression accepted, in characters.
MAX_LENGTH = 2000
#: Deepest nesting accepted (parentheses, function calls, unary operators).
MAX_DEPTH = 40

#: Scalar functions: name -> (minimum, maximum) number of arguments (None = no maximum).
FUNCTIONS: dict[str, tuple[int, int | None]] = {
    "abs": (1, 1),
    "round": (1, 2),
    "least": (2, None),
    "greatest": (2, None),
    "coalesce": (2, None),
    "nullif": (2, 2),
    "date_diff_hours": (2, 2),
}
#: Aggregate functions (measures only): name -> (minimum, maximum) number of arguments.
AGGREGATES: dict[str, tuple[int, int | None]] = {
    "count": (1, 1),
    "count_if": (1, 1),
    "sum": (1, 1),
    "avg": (1, 1),
    "min": (1, 1),
    "max": (1, 1),
    "median": (1, 1),
}
_KEYWORDS = frozenset({"and", "or", "not", "is", "null"})
#: SQL words refused as names, with a clear message (they could only be an injection attempt).
_SQL_WORDS = frozenset(
    """
    select from where insert update delete drop create alter attach detach copy install load pragma
    export import call set reset use with union intersect except join into values table truncate
    vacuum checkpoint begin commit rollback transaction describe show summarize explain case when
    then else cast exists in between like ilike similar glob distinct over window
    """.split()  # noqa: SIM905
)


# --- AST -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Number:
    """A numeric literal."""

    value: int | float
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class String:
    """A single-quoted string literal (quotes removed)."""

    value: str
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Name:
    """A reference to a declared column or formula input."""

    name: str
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Star:
    """The ``*`` in ``count(*)``."""

    pos: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Unary:
    """``-x`` or ``+x``."""

    op: str
    operand: Expr
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Binary:
    """Arithmetic: ``left op right`` with op in + - * /."""

    op: str
    left: Expr
    right: Expr
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Compare:
    """A comparison ``left op right`` with op in = != < <= > >=."""

    op: str
    left: Expr
    right: Expr
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class BoolOp:
    """``a AND b AND …`` or ``a OR b OR …`` (op is 'and' or 'or')."""

    op: str
    operands: tuple[Expr, ...]
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Not:
    """``NOT x``."""

    operand: Expr
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class IsNull:
    """``x IS NULL`` (negated=False) or ``x IS NOT NULL`` (negated=True)."""

    operand: Expr
    negated: bool = False
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Call:
    """A whitelisted function call; ``func`` is lower-case."""

    func: str
    args: tuple[Expr, ...]
    pos: int = field(default=0, compare=False)


Expr = Number | String | Name | Star | Unary | Binary | Compare | BoolOp | Not | IsNull | Call


# --- tokenizer -----------------------------------------------------------------------------

_NUM, _STR, _IDENT, _OP, _END = "number", "string", "name", "op", "end"
_OPS2 = ("<=", ">=", "!=", "<>")
_OPS1 = "+-*/(),=<>"
_DIGITS = frozenset("0123456789")  # ASCII only: str.isdigit() is true for '²' too


@dataclass(frozen=True, slots=True)
class _Tok:
    kind: str
    text: str
    pos: int  # 1-based column
    value: int | float | str | None = None


class ExpressionSyntaxError(ExpressionError):
    """An ExpressionError that knows the 1-based column of the problem in the expression."""

    def __init__(self, message: str, column: int) -> None:
        super().__init__(f"{message} at column {column}")
        self.column = column


def _fail(message: str, pos: int) -> ExpressionError:
    return ExpressionSyntaxError(message, pos)


def _tokens(text: str) -> Iterator[_Tok]:
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        pos = i + 1
        if ch in " \t\r\n":
            i += 1
        elif ch in _DIGITS or (ch == "." and i + 1 < n and text[i + 1] in _DIGITS):
            j = i
            while j < n and text[j] in _DIGITS:
                j += 1
            is_float = False
            if j < n and text[j] == ".":
                is_float = True
                j += 1
                while j < n and text[j] in _DIGITS:
                    j += 1
            if j < n and text[j] in "eE":
                k = j + 1
                if k < n and text[k] in "+-":
                    k += 1
                if k < n and text[k] in _DIGITS:
                    is_float = True
                    j = k
                    while j < n and text[j] in _DIGITS:
                        j += 1
            if j < n and (text[j].isalpha() or text[j] == "_"):
                raise _fail(f"malformed number '{text[i : j + 1]}'", pos)
            literal = text[i:j]
            try:
                finite = math.isfinite(float(literal))
            except OverflowError:
                finite = False
            if not finite:
                raise _fail(f"the number {literal[:20]}{'…' if len(literal) > 20 else ''} is too large", pos)
            yield _Tok(_NUM, literal, pos, float(literal) if is_float else int(literal))
            i = j
        elif ch == "'":
            j, parts = i + 1, []
            while True:
                k = text.find("'", j)
                if k < 0:
                    raise _fail("unterminated string", pos)
                parts.append(text[j:k])
                if "\x00" in parts[-1]:
                    raise _fail("a string cannot hold a NUL character", pos)
                if k + 1 < n and text[k + 1] == "'":
                    parts.append("'")
                    j = k + 2
                    continue
                j = k + 1
                break
            yield _Tok(_STR, text[i:j], pos, "".join(parts))
            i = j
        elif ch.isalpha() or ch == "_":
            j = i + 1
            while j < n and (text[j].isalnum() or text[j] == "_"):
                j += 1
            yield _Tok(_IDENT, text[i:j], pos)
            i = j
        elif text.startswith("--", i) or text.startswith("/*", i) or ch == "#":
            raise _fail("comments are not allowed in expressions", pos)
        elif text[i : i + 2] in _OPS2:
            yield _Tok(_OP, text[i : i + 2], pos)
            i += 2
        elif ch in _OPS1:
            yield _Tok(_OP, ch, pos)
            i += 1
        elif ch == ";":
            raise _fail("';' is not allowed: an expression is not a statement", pos)
        elif ch == '"':
            raise _fail("double-quoted identifiers are not allowed; use the plain column name", pos)
        else:
            raise _fail(f"unexpected character {ch!r}", pos)
    yield _Tok(_END, "", n + 1)


# --- parser --------------------------------------------------------------------------------

_COMPARE = {"=": "=", "!=": "!=", "<>": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}


class _Parser:
    def __init__(self, text: str, names: Collection[str] | None, aggregates: bool) -> None:
        self.toks = list(_tokens(text))
        self.i = 0
        self.names = names
        self.aggregates = aggregates
        self.depth = 0
        self.in_aggregate = False

    @property
    def tok(self) -> _Tok:
        return self.toks[self.i]

    def advance(self) -> _Tok:
        t = self.toks[self.i]
        self.i += 1
        return t

    def is_op(self, text: str) -> bool:
        return self.tok.kind == _OP and self.tok.text == text

    def is_kw(self, word: str) -> bool:
        return self.tok.kind == _IDENT and self.tok.text.lower() == word

    def expect_op(self, text: str) -> _Tok:
        if not self.is_op(text):
            raise _fail(f"expected '{text}' but found {self.describe(self.tok)}", self.tok.pos)
        return self.advance()

    @staticmethod
    def describe(t: _Tok) -> str:
        return "the end of the expression" if t.kind == _END else f"'{t.text}'"

    def enter(self, pos: int) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise _fail(f"the expression is nested deeper than {MAX_DEPTH} levels", pos)

    def parse(self) -> Expr:
        if self.tok.kind == _END:
            raise _fail("the expression is empty", 1)
        expr = self.parse_or()
        if self.tok.kind != _END:
            raise _fail(f"unexpected {self.describe(self.tok)}", self.tok.pos)
        return expr

    def parse_or(self) -> Expr:
        return self.parse_bool("or", self.parse_and)

    def parse_and(self) -> Expr:
        return self.parse_bool("and", self.parse_not)

    def parse_bool(self, word: str, operand: Callable[[], Expr]) -> Expr:
        first = operand()
        items = [first]
        while self.is_kw(word):
            self.advance()
            items.append(operand())
        return first if len(items) == 1 else BoolOp(word, tuple(items), first.pos)

    def parse_not(self) -> Expr:
        if self.is_kw("not"):
            t = self.advance()
            self.enter(t.pos)
            operand = self.parse_not()
            self.depth -= 1
            return Not(operand, t.pos)
        return self.parse_compare()

    def parse_compare(self) -> Expr:
        left = self.parse_sum()
        t = self.tok
        if t.kind == _OP and t.text in _COMPARE:
            self.advance()
            right = self.parse_sum()
            nxt = self.tok
            if (nxt.kind == _OP and nxt.text in _COMPARE) or self.is_kw("is"):
                raise _fail("comparisons cannot be chained; combine them with AND", nxt.pos)
            return Compare(_COMPARE[t.text], left, right, t.pos)
        if self.is_kw("is"):
            self.advance()
            negated = False
            if self.is_kw("not"):
                self.advance()
                negated = True
            if not self.is_kw("null"):
                raise _fail(f"expected NULL after IS but found {self.describe(self.tok)}", self.tok.pos)
            self.advance()
            return IsNull(left, negated, t.pos)
        return left

    def parse_sum(self) -> Expr:
        left = self.parse_product()
        while self.tok.kind == _OP and self.tok.text in "+-":
            t = self.advance()
            left = Binary(t.text, left, self.parse_product(), t.pos)
        return left

    def parse_product(self) -> Expr:
        left = self.parse_unary()
        while self.tok.kind == _OP and self.tok.text in "*/":
            t = self.advance()
            left = Binary(t.text, left, self.parse_unary(), t.pos)
        return left

    def parse_unary(self) -> Expr:
        if self.tok.kind == _OP and self.tok.text in "+-":
            t = self.advance()
            self.enter(t.pos)
            operand = self.parse_unary()
            self.depth -= 1
            return Unary(t.text, operand, t.pos)
        return self.parse_primary()

    def parse_primary(self) -> Expr:
        t = self.tok
        if t.kind == _NUM:
            self.advance()
            assert isinstance(t.value, int | float)
            return Number(t.value, t.pos)
        if t.kind == _STR:
            self.advance()
            assert isinstance(t.value, str)
            return String(t.value, t.pos)
        if self.is_op("("):
            self.advance()
            self.enter(t.pos)
            if self.is_kw("select") or self.is_kw("with"):
                raise _fail("subqueries are not allowed", self.tok.pos)
            inner = self.parse_or()
            self.expect_op(")")
            self.depth -= 1
            return inner
        if t.kind == _IDENT:
            self.advance()
            if self.is_op("("):
                return self.parse_call(t)
            return self.name(t)
        if self.is_op("*"):
            raise _fail("'*' is only allowed as count(*)", t.pos)
        raise _fail(f"expected a value but found {self.describe(t)}", t.pos)

    def name(self, t: _Tok) -> Name:
        word = t.text.lower()
        if word in _KEYWORDS:
            raise _fail(f"unexpected keyword {t.text.upper()}", t.pos)
        if word in _SQL_WORDS:
            raise _fail(f"SQL keyword {t.text.upper()} is not allowed in expressions", t.pos)
        if self.names is not None and t.text not in self.names:
            raise _fail(f"unknown name '{t.text}'{_did_you_mean(t.text, self.names)}", t.pos)
        if self.aggregates and not self.in_aggregate:
            raise _fail(
                f"column '{t.text}' must be inside an aggregate such as sum({t.text}) or count_if(...)",
                t.pos,
            )
        return Name(t.text, t.pos)

    def parse_call(self, t: _Tok) -> Expr:
        func = t.text.lower()
        if func in AGGREGATES:
            if not self.aggregates:
                raise _fail(f"aggregate function {func}() is only allowed in measures", t.pos)
            if self.in_aggregate:
                raise _fail(f"aggregate {func}() cannot be nested inside another aggregate", t.pos)
            arity = AGGREGATES[func]
        elif func in FUNCTIONS:
            arity = FUNCTIONS[func]
        elif func in _SQL_WORDS:
            raise _fail(f"SQL keyword {t.text.upper()} is not allowed in expressions", t.pos)
        else:
            allowed = sorted(FUNCTIONS) + (sorted(AGGREGATES) if self.aggregates else [])
            raise _fail(f"unknown function '{t.text}' (allowed: {', '.join(allowed)})", t.pos)
        self.advance()  # "("
        self.enter(t.pos)
        args: list[Expr] = []
        was_in_aggregate = self.in_aggregate
        self.in_aggregate = was_in_aggregate or func in AGGREGATES
        if func == "count" and self.is_op("*"):
            args.append(Star(self.advance().pos))
        elif not self.is_op(")"):
            args.append(self.parse_or())
            while self.is_op(","):
                self.advance()
                args.append(self.parse_or())
        self.expect_op(")")
        self.in_aggregate = was_in_aggregate
        self.depth -= 1
        low, high = arity
        if len(args) < low or (high is not None and len(args) > high):
            want = str(low) if low == high else f"{low} or more" if high is None else f"{low} to {high}"
            raise _fail(f"{func}() takes {want} argument(s), got {len(args)}", t.pos)
        if func == "count_if" and not _may_be_boolean(args[0]):
            raise _fail("count_if() needs a condition, e.g. count_if(closed_at <= due_at)", t.pos)
        return Call(func, tuple(args), t.pos)


def _did_you_mean(word: str, names: Collection[str]) -> str:
    close = did_you_mean(word, names)
    if close:
        return f"; {close}"
    if names:
        shown = ", ".join(sorted(names)[:8]) + (", …" if len(names) > 8 else "")
        return f" (declared: {shown})"
    return " (nothing is declared)"


# --- public API ----------------------------------------------------------------------------


def parse_expression(
    text: str,
    *,
    names: Collection[str] | None,
    aggregates: bool = False,
    boolean: bool | None = None,
) -> Expr:
    """Parse an untrusted expression into an AST, or raise ExpressionError naming the column.

    Args:
        text: the expression text.
        names: the names it may use (declared columns or formula inputs); ``None`` skips the
            name check (syntax and whitelist only).
        aggregates: allow the aggregate functions; then every column must be inside an aggregate
            (a measure's numerator/denominator).
        boolean: ``True`` requires a condition (filters), ``False`` a number (formulas,
            measures); ``None`` accepts either.

    Returns:
        The root :data:`Expr` node.
    """
    if not isinstance(text, str):
        raise ExpressionError(f"an expression must be text, not {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise _fail(f"the expression is {len(text)} characters long, over the {MAX_LENGTH} limit", MAX_LENGTH)
    expr = _Parser(text, names, aggregates).parse()
    if boolean is True and not _may_be_boolean(expr):
        raise _fail("this must be a condition (e.g. category = 'noise'), not a number", 1)
    if boolean is False and is_boolean(expr):
        raise _fail("this must be a number, not a condition", 1)
    return expr


def parse_condition(text: str) -> model.Condition:
    """Parse ``value <op> number`` (rollup.where), e.g. ``value <= 100``, into a Condition."""
    if not isinstance(text, str):
        raise ExpressionError(f"a condition must be text like 'value <= 100', not {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise _fail("the condition is too long", MAX_LENGTH)
    toks = list(_tokens(text))
    i = 0
    if not (toks[i].kind == _IDENT and toks[i].text.lower() == "value"):
        raise _fail("a condition is written 'value <op> number', e.g. 'value <= 100'", toks[i].pos)
    i += 1
    if not (toks[i].kind == _OP and toks[i].text in _COMPARE):
        raise _fail(
            f"expected a comparison (< <= > >= = !=) but found {_Parser.describe(toks[i])}", toks[i].pos
        )
    op = _COMPARE[toks[i].text]
    i += 1
    sign = 1
    if toks[i].kind == _OP and toks[i].text in "+-":
        sign = -1 if toks[i].text == "-" else 1
        i += 1
    if toks[i].kind != _NUM:
        raise _fail(f"expected a number but found {_Parser.describe(toks[i])}", toks[i].pos)
    literal = toks[i].value
    assert isinstance(literal, int | float)
    number = sign * float(literal)
    i += 1
    if toks[i].kind != _END:
        raise _fail(f"unexpected {_Parser.describe(toks[i])} after the number", toks[i].pos)
    return model.Condition(op, number)


def walk(expr: Expr) -> Iterator[Expr]:
    """Every node of ``expr``, parents before children (iterative)."""
    stack: list[Expr] = [expr]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, Unary | Not | IsNull):
            stack.append(node.operand)
        elif isinstance(node, Binary | Compare):
            stack.extend((node.right, node.left))
        elif isinstance(node, BoolOp):
            stack.extend(reversed(node.operands))
        elif isinstance(node, Call):
            stack.extend(reversed(node.args))


def names_used(expr: Expr) -> set[str]:
    """The names (columns / inputs) an expression refers to."""
    return {node.name for node in walk(expr) if isinstance(node, Name)}


def is_aggregate(expr: Expr) -> bool:
    """True when the expression contains an aggregate function call."""
    return any(isinstance(node, Call) and node.func in AGGREGATES for node in walk(expr))


def _may_be_boolean(expr: Expr) -> bool:
    """A condition, or something that may be a boolean column (a name or a function of names)."""
    return is_boolean(expr) or isinstance(expr, Name | Call)


def is_boolean(expr: Expr) -> bool:
    """True when the expression is a condition (comparison, AND/OR/NOT, IS NULL)."""
    return isinstance(expr, Compare | BoolOp | Not | IsNull)


# --- types ---------------------------------------------------------------------------------

#: The types of the expression language. ``date`` and ``timestamp`` compare with each other.
NUMBER, TEXT, BOOLEAN, DATE, TIMESTAMP = "number", "text", "boolean", "date", "timestamp"
#: A name whose type is not known (no declared type): it is accepted wherever a value may go.
UNKNOWN = "unknown"
#: Source column type (``model.SOURCE_COLUMN_TYPES``) → expression type.
COLUMN_TYPES: dict[str, str] = {
    "text": TEXT,
    "integer": NUMBER,
    "double": NUMBER,
    "date": DATE,
    "timestamp": TIMESTAMP,
    "boolean": BOOLEAN,
}
_TEMPORAL = frozenset({DATE, TIMESTAMP})
#: ``round(x, digits)``: digits is a whole number within ±this.
MAX_ROUND_DIGITS = 20
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_ISO_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}(?:[ T]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?)?")


class ExpressionTypeError(ExpressionSyntaxError):
    """Values of the wrong type are combined (``a + 'x'``, ``round(a, 'x')``, ``1 AND b``)."""


def _describe_node(node: Expr) -> str:
    if isinstance(node, String):
        return f"'{node.value}'" if len(node.value) <= 20 else "a string"
    if isinstance(node, Number):
        return repr(node.value)
    if isinstance(node, Name):
        return f"'{node.name}'"
    if isinstance(node, Call):
        return f"{node.func}()"
    return "this"


def _pos(node: Expr) -> int:
    """The column to point at for a node: where an operand starts, or its operator."""
    if isinstance(node, Binary | Compare | BoolOp):
        first: Expr = node.left if isinstance(node, Binary | Compare) else node.operands[0]
        return _pos(first)
    if isinstance(node, IsNull):
        return _pos(node.operand)
    return node.pos or 1


def _string_fits(node: Expr, temporal: str) -> bool:
    """A string literal that DuckDB reads as a value of ``temporal`` (date or timestamp)."""
    if not isinstance(node, String):
        return False
    text = node.value
    pattern = _ISO_DATE if temporal == DATE else _ISO_TIMESTAMP
    if not pattern.fullmatch(text):
        return False
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


def whole_number(node: Expr) -> int | None:
    """The value of a (signed) whole-number literal, else None."""
    sign = 1
    while isinstance(node, Unary):
        sign = -sign if node.op == "-" else sign
        node = node.operand
    if isinstance(node, Number) and float(node.value).is_integer():
        return sign * int(node.value)
    return None


class _Types:
    def __init__(self, types: Mapping[str, str]) -> None:
        self.types = types

    def fail(self, message: str, node: Expr) -> ExpressionTypeError:
        return ExpressionTypeError(message, _pos(node))

    def need(self, node: Expr, want: str, what: str) -> str:
        """The type of ``node``, which ``what`` needs to be ``want``."""
        got = self.of(node)
        if got not in (want, UNKNOWN):
            raise self.fail(f"{what} needs {_a(want)}, but {_describe_node(node)} is {_a(got)}", node)
        return want

    def same(self, nodes: Sequence[Expr], what: str) -> str:
        """The common type of ``nodes`` (date and timestamp mix into timestamp)."""
        common = UNKNOWN
        first: Expr | None = None
        for node in nodes:
            got = self.of(node)
            if got == UNKNOWN:
                continue
            if common == UNKNOWN:
                common, first = got, node
            elif got != common:
                if {got, common} <= _TEMPORAL:
                    common = TIMESTAMP
                    continue
                assert first is not None
                raise self.fail(
                    f"{what} mixes {_a(common)} ({_describe_node(first)}) with {_a(got)} ({_describe_node(node)})",
                    node,
                )
        return common

    def of(self, node: Expr) -> str:
        if isinstance(node, Number):
            return NUMBER
        if isinstance(node, String):
            return TEXT
        if isinstance(node, Name):
            return self.types.get(node.name, UNKNOWN)
        if isinstance(node, Star):
            return NUMBER
        if isinstance(node, Unary):
            return self.need(node.operand, NUMBER, f"'{node.op}'")
        if isinstance(node, Binary):
            self.need(node.left, NUMBER, f"'{node.op}'")
            return self.need(node.right, NUMBER, f"'{node.op}'")
        if isinstance(node, Compare):
            return self.compare(node)
        if isinstance(node, BoolOp):
            for operand in node.operands:
                self.need(operand, BOOLEAN, node.op.upper())
            return BOOLEAN
        if isinstance(node, Not):
            return self.need(node.operand, BOOLEAN, "NOT")
        if isinstance(node, IsNull):
            self.of(node.operand)
            return BOOLEAN
        return self.call(node)

    def compare(self, node: Compare) -> str:
        left, right = self.of(node.left), self.of(node.right)
        if UNKNOWN in (left, right) or left == right or {left, right} <= _TEMPORAL:
            return BOOLEAN
        for temporal, other in ((left, node.right), (right, node.left)):
            if temporal in _TEMPORAL and _string_fits(other, temporal):
                return BOOLEAN
        if TEXT in (left, right) and _TEMPORAL & {left, right}:
            text_node = node.right if right == TEXT else node.left
            want = "YYYY-MM-DD" if DATE in (left, right) else "YYYY-MM-DD or YYYY-MM-DD HH:MM[:SS]"
            raise self.fail(f"{_describe_node(text_node)} is not a valid date ({want})", text_node)
        raise self.fail(f"'{node.op}' compares {_a(left)} with {_a(right)}", node.right)

    def call(self, node: Expr) -> str:
        assert isinstance(node, Call)
        f, args = node.func, node.args
        what = f"{f}()"
        if f in ("abs", "sum", "avg", "median"):
            return self.need(args[0], NUMBER, what)
        if f == "round":
            self.need(args[0], NUMBER, what)
            if len(args) == 2:
                digits = whole_number(args[1])
                if digits is None or abs(digits) > MAX_ROUND_DIGITS:
                    raise self.fail(
                        f"round()'s digits must be a whole number from -{MAX_ROUND_DIGITS} to "
                        f"{MAX_ROUND_DIGITS} such as 1 or -2, not {_describe_node(args[1])}",
                        args[1],
                    )
            return NUMBER
        if f in ("least", "greatest", "coalesce"):
            return self.same(args, what)
        if f == "nullif":
            self.same(args, what)
            return self.of(args[0])
        if f == "date_diff_hours":
            for arg in args:
                got = self.of(arg)
                if got not in (*_TEMPORAL, UNKNOWN):
                    raise self.fail(
                        f"{what} needs dates or timestamps, but {_describe_node(arg)} is {_a(got)}", arg
                    )
            return NUMBER
        if f == "count":
            if not isinstance(args[0], Star):
                self.of(args[0])
            return NUMBER
        if f == "count_if":
            self.need(args[0], BOOLEAN, what)
            return NUMBER
        if f in ("min", "max"):
            return self.of(args[0])
        raise self.fail(f"unknown function {f}()", node)  # pragma: no cover - the parser refuses it


_ARTICLED = {
    NUMBER: "a number",
    TEXT: "text",
    BOOLEAN: "a condition",
    DATE: "a date",
    TIMESTAMP: "a timestamp",
}


def _a(kind: str) -> str:
    """``kind`` as it reads after 'is' or 'needs': a number, text, a condition, a date…"""
    return _ARTICLED.get(kind, "of unknown type")


def type_of(expr: Expr, types: Mapping[str, str]) -> str:
    """The type of a parsed expression (number, text, boolean, date, timestamp; unknown when it
    depends only on names whose type is not given).

    Args:
        expr: the parsed expression.
        types: name → expression type (see :data:`COLUMN_TYPES` for source columns; formula
            inputs are numbers).

    Raises:
        ExpressionTypeError: values of the wrong types are combined, naming the column.
    """
    return _Types(types).of(expr)


def check_types(expr: Expr, types: Mapping[str, str], *, want: str) -> str:
    """:func:`type_of`, requiring the whole expression to be ``want`` (``number`` for formulas,
    numerators and denominators, ``boolean`` for filters).

    Raises:
        ExpressionTypeError: a type error inside, or the result is not ``want``.
    """
    checker = _Types(types)
    got = checker.of(expr)
    if got not in (want, UNKNOWN):
        raise ExpressionTypeError(f"this must be {_a(want)}, but it is {_a(got)}", _pos(expr))
    return got
