"""Property: an expression `check` accepts never fails at evaluation.

Random, well-formed formulas that mix numbers, strings, booleans, NULLs and every scalar function
(type errors included on purpose) go through the whole path a catalogue author takes: the YAML is
checked, and when `check` finds no error the catalogue is evaluated on a small warehouse. Either
`check` refuses the formula with a located diagnostic, or the evaluation completes: an engine error
at evaluation would be a defect that `check` could have caught (issue: a formula `a + 'x'` passed
`check` and then stopped the whole run). Hypothesis shrinks any counter-example to a minimal formula.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from datetime import timedelta
from pathlib import Path

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from citykpi.catalogue import load_catalogue
from citykpi.catalogue.loader import check_catalogue
from citykpi.engine.evaluate import evaluate
from tests.engine_helpers import AS_OF, City


def _indicator(id: str, zh: str, en: str, extra: str = "") -> str:
    return f"""  - id: {id}
    name: {{zh: {zh}, en: {en}}}
    kind: kpi
    domain: test
    unit: count
    levels: [city, district]
    frequency: daily
    direction: higher_is_better
{extra}"""


#: Two observed inputs and the formula under test, whose text follows ``formula: ``.
HEADER = (
    "schema_version: 1\nindicators:\n"
    + _indicator("t.a", "甲", "A")
    + _indicator("t.b", "乙", "B")
    + _indicator(
        "t.f",
        "算",
        "F",
        "    thresholds: {yellow: 1, red: 0}\n    value:\n      inputs: {a: t.a, b: t.b}\n      formula: ",
    )
)

_ROOT = Path(tempfile.mkdtemp(prefix="citykpi-exprfuzz-"))
_CITY = City(_ROOT)


def _remove_root() -> None:
    """The module's warehouse outlives every test of it: close and remove it when the process ends."""
    _CITY.wh.close()
    shutil.rmtree(_ROOT, ignore_errors=True)


atexit.register(_remove_root)
for _n, (_a, _b) in enumerate([(3.0, 0.0), (-2.5, 4.0), (0.0, 0.0)]):
    _area = ("C", "D1", "D2")[_n]
    _CITY.daily("t.a", _area, [_a, _a + 1], end=AS_OF)
    _CITY.daily("t.b", _area, [_b, _b], end=AS_OF)

numbers = st.sampled_from(["0", "1", "2", "2.5", "1e3", "100"])
strings = st.sampled_from(["'x'", "''", "'1'", "'2025-06-30'"])
names = st.sampled_from(["a", "b"])
atoms = st.one_of(names, names, numbers, numbers, strings, st.just("NULL"))  # mostly numbers: more accepted


#: Shapes built from one and from two smaller expressions ({0}, {1}).
UNARY = ["-{0}", "(NOT {0})", "({0} IS NULL)", "abs({0})", "round({0})"]
BINARY = [
    "({0} + {1})", "({0} - {1})", "({0} * {1})", "({0} / {1})",
    "({0} = {1})", "({0} <> {1})", "({0} < {1})", "({0} >= {1})", "({0} AND {1})", "({0} OR {1})",
    "round({0}, {1})", "least({0}, {1})", "greatest({0}, {1})", "coalesce({0}, {1})",
    "nullif({0}, {1})", "date_diff_hours({0}, {1})",
]  # fmt: skip


def _extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    one = [inner.map(shape.format) for shape in UNARY]
    two = [st.tuples(inner, inner).map(lambda p, shape=shape: shape.format(*p)) for shape in BINARY]
    return st.one_of(*one, *two)


formulas = st.recursive(atoms, _extend, max_leaves=6)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(formula=formulas)
def test_a_formula_check_accepts_evaluates(formula: str) -> None:
    folder = Path(tempfile.mkdtemp(dir=_ROOT))
    quoted = '"' + formula.replace("\\", "\\\\").replace('"', '\\"') + '"'
    (folder / "c.yaml").write_text(HEADER + quoted + "\n", encoding="utf-8")
    result = check_catalogue(folder)
    if result.errors:
        event("refused by check")
        for d in result.errors:  # located: the file and the line of the formula
            assert d.location is not None and d.location.line is not None, d
        return
    event("accepted by check")
    catalogue = load_catalogue(folder)
    scorecard = evaluate(_CITY.wh, catalogue, as_of=AS_OF, persist=False)  # must not raise
    cells = scorecard.cells.filter(scorecard.cells["indicator_id"] == "t.f")
    assert cells.height == 3  # city and both districts: one row each, whatever the value
    assert AS_OF - timedelta(days=1) <= cells["period_start"].max() <= AS_OF
