"""Is an area's rate different from the overall rate by more than chance? Intervals and funnel flags.

A league table of rates built from small counts ranks noise: a street with 9 cases closed on time out
of 9 reads 100 % and outranks a district with 2,320 out of 2,441 (95 %), though nothing says the street
is better. For values that are a numerator over a denominator (``Scorecard.parts``, value = numerator ÷
denominator × factor) whose unit says how they vary by chance (``Unit.interval``):

* ``binomial`` (%, ‰: successes out of trials) — the Wilson score interval of p = n / d;
* ``poisson`` (per 10k, per 100k: a count per exposure) — Byar's approximation to the exact Poisson
  interval of the count n, divided by d.

Both are then multiplied by the factor. The *funnel* (Spiegelhalter 2005, "Funnel plots for comparing
institutional performance") draws control limits around the overall value θ = Σn / Σd × factor of the
areas compared, at 95 % and 99.8 %, given each area's denominator. An area lies outside those limits
exactly when θ lies outside its own interval at the same level — the Wilson interval is the set of
proportions the score test (whose limits the funnel draws) does not reject, and Byar's interval
approximates the exact Poisson test — so the flag is read off the intervals:

``within``                 the difference from θ is within chance: do not rank on it;
``above_95`` / ``below_95``  beyond the 95 % limit (about 1 area in 20 lands here by chance alone);
``above_998`` / ``below_998`` beyond the 99.8 % limit (1 in 500 by chance).

Everything is a Polars expression over the whole table: no loop per area.
"""

from __future__ import annotations

import polars as pl

from citykpi.vocab.units import INTERVALS

#: Two-sided 95 % and 99.8 % normal quantiles (the funnel's warning and control limits).
Z95 = 1.959963984540054
Z998 = 3.090232306167813

#: Relative tolerance within which numerator ÷ denominator × factor must give the cell's value for the
#: parts to be used (a roll-up by sum or mean keeps summed parts that do not make the value).
PARTS_TOLERANCE = 1e-6

#: Values of the ``funnel`` column.
FUNNEL_FLAGS: tuple[str, ...] = ("within", "above_95", "above_998", "below_95", "below_998")

#: Columns :func:`with_funnel` adds.
FUNNEL_COLUMNS: tuple[str, ...] = ("ci_low", "ci_high", "overall", "funnel")


def wilson(n: pl.Expr, d: pl.Expr, z: float) -> tuple[pl.Expr, pl.Expr]:
    """The Wilson score interval of the proportion ``n / d`` at normal quantile ``z`` (as proportions)."""
    p = n / d
    z2 = z * z
    scale = 1 + z2 / d
    centre = (p + z2 / (2 * d)) / scale
    half = z * (p * (1 - p) / d + z2 / (4 * d * d)).clip(lower_bound=0).sqrt() / scale
    return (centre - half).clip(0.0, 1.0), (centre + half).clip(0.0, 1.0)


def byar(n: pl.Expr, d: pl.Expr, z: float) -> tuple[pl.Expr, pl.Expr]:
    """Byar's approximate Poisson interval of the count ``n``, divided by the exposure ``d``.

    Lower: n (1 − 1/(9n) − z/(3√n))³ (0 when n is 0); upper: (n+1) (1 − 1/(9(n+1)) + z/(3√(n+1)))³.
    Within 1 % of the exact (Garwood) limits from n = 2 on (n = 10 at 95 %: 4.79–18.39).
    """
    lower = pl.when(n > 0).then(n * (1 - 1 / (9 * n) - z / (3 * n.sqrt())) ** 3).otherwise(0.0)
    m = n + 1
    upper = m * (1 - 1 / (9 * m) + z / (3 * m.sqrt())) ** 3
    return lower.clip(lower_bound=0.0) / d, upper / d


_INTERVAL = {"binomial": wilson, "poisson": byar}


def with_funnel(frame: pl.DataFrame, interval: str | None) -> pl.DataFrame:
    """``frame`` (columns value, numerator, denominator, factor) with ``ci_low``, ``ci_high`` (the 95 %
    interval of the value), ``overall`` (θ, the funnel's centre) and ``funnel`` (a flag of
    :data:`FUNNEL_FLAGS`).

    Rows whose parts are missing, do not reproduce the value, or do not fit ``interval`` (a share
    above 1, a negative count) get nulls and count nowhere; so does every row when ``interval`` is
    None (the unit is not built from counts).
    """
    nulls = [
        pl.lit(None, dtype=pl.Float64).alias("ci_low"),
        pl.lit(None, dtype=pl.Float64).alias("ci_high"),
        pl.lit(None, dtype=pl.Float64).alias("overall"),
        pl.lit(None, dtype=pl.String).alias("funnel"),
    ]
    if interval not in INTERVALS or not frame.height:
        return frame.with_columns(nulls)
    n, d, factor, value = pl.col("numerator"), pl.col("denominator"), pl.col("factor"), pl.col("value")
    made = n / d * factor
    ok = (
        n.is_not_null()
        & d.is_not_null()
        & factor.is_not_null()
        & value.is_not_null()
        & (d > 0)
        & (n >= 0)
        & (factor != 0)
        & n.is_finite()
        & d.is_finite()
        & value.is_finite()
        & ((made - value).abs() <= PARTS_TOLERANCE * pl.max_horizontal(value.abs(), pl.lit(1.0)))
    )
    if interval == "binomial":
        ok = ok & (n <= d)
    ok = ok.fill_null(False)
    form = _INTERVAL[interval]
    lo95, hi95 = form(n, d, Z95)
    lo998, hi998 = form(n, d, Z998)
    theta = n.filter(pl.col("__ok")).sum() / d.filter(pl.col("__ok")).sum()
    flag = (
        pl.when(~pl.col("__ok"))
        .then(pl.lit(None, dtype=pl.String))
        .when(pl.col("__theta") > hi998)
        .then(pl.lit("below_998"))
        .when(pl.col("__theta") > hi95)
        .then(pl.lit("below_95"))
        .when(pl.col("__theta") < lo998)
        .then(pl.lit("above_998"))
        .when(pl.col("__theta") < lo95)
        .then(pl.lit("above_95"))
        .otherwise(pl.lit("within"))
    )
    inside = pl.col("__ok")
    return (
        frame.with_columns(ok.alias("__ok"))
        .with_columns(theta.alias("__theta"))
        .with_columns(
            pl.when(inside).then(lo95 * factor).alias("ci_low"),
            pl.when(inside).then(hi95 * factor).alias("ci_high"),
            pl.when(inside).then(pl.col("__theta") * factor).alias("overall"),
            flag.alias("funnel"),
        )
        .drop("__ok", "__theta")
    )


__all__ = ["FUNNEL_COLUMNS", "FUNNEL_FLAGS", "Z95", "Z998", "byar", "wilson", "with_funnel"]
