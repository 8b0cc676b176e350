"""Report views derived from Scorecards — alerts, league tables, colour changes — and the daily
job's silences as the terminal lists them.

Polars in, Polars out: no printing. The terminal, the exporters and the cron job share them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import polars as pl

from citykpi.catalogue.model import SEVERITY
from citykpi.engine.diff import diff_scorecards  # the one definition; re-exported for render users
from citykpi.engine.funnel import with_funnel
from citykpi.engine.scorecard import Scorecard
from citykpi.errors import UsageError
from citykpi.render.format import fmt_value
from citykpi.vocab.units import UNITS

#: Columns of :func:`alerts`.
ALERT_COLUMNS: tuple[str, ...] = (
    "indicator_id",
    "area_id",
    "level",
    "domain",
    "tier",
    "name_zh",
    "name_en",
    "area_name_zh",
    "area_name_en",
    "unit",
    "value",
    "status",
    "severity",
    "streak",
    "period_start",
    "previous_status",
    "is_new",
    "explanation",
)

#: Columns of :func:`league_table`.
LEAGUE_COLUMNS: tuple[str, ...] = (
    "rank",
    "area_id",
    "area_name_zh",
    "area_name_en",
    "value",
    "unit",
    "status",
    "severity",
    "change_previous",
    "change_unit",
    "numerator",
    "denominator",
    "ci_low",
    "ci_high",
    "overall",
    "funnel",
    "rank_low",
    "rank_high",
)


def alerts(
    current: Scorecard, previous: Scorecard | None = None, *, min_colour: str = "orange"
) -> pl.DataFrame:
    """Cells at or above ``min_colour``, worst first, flagged new when the previous run had them better.

    ``is_new`` is true when the cell was below ``min_colour`` or less severe (e.g. orange → red)
    in the previous run, or absent from it.

    Args:
        current: the scorecard to report on.
        previous: the previous run's scorecard, or None (then every alert is new).
        min_colour: the least severe colour reported (green … red).

    Returns:
        One row per alerting cell with the columns in :data:`ALERT_COLUMNS`.
    """
    if min_colour not in SEVERITY:
        raise UsageError(f"unknown colour {min_colour!r}; use one of {', '.join(SEVERITY)}")
    floor = SEVERITY[min_colour]
    cells = current.cells.filter(pl.col("severity").is_not_null() & (pl.col("severity") >= floor))
    if previous is not None and previous.cells.height:
        prev = previous.cells.select(
            "indicator_id",
            "area_id",
            pl.col("status").alias("previous_status"),
            pl.col("severity").alias("__prev_sev"),
        )
        cells = cells.join(prev, on=["indicator_id", "area_id"], how="left")
    else:
        cells = cells.with_columns(
            pl.lit(None, dtype=pl.String).alias("previous_status"),
            pl.lit(None, dtype=pl.Int8).alias("__prev_sev"),
        )
    # new = entered the alert range or escalated (orange → red) since the previous run
    cells = cells.with_columns(
        (pl.col("__prev_sev").is_null() | (pl.col("__prev_sev") < pl.col("severity"))).alias("is_new")
    )
    return cells.sort(
        ["severity", "is_new", "indicator_id", "area_id"], descending=[True, True, False, False]
    ).select(ALERT_COLUMNS)


def league_table(
    scorecard: Scorecard,
    ref: str,
    *,
    level: str = "district",
    direction: str | None = None,
    previous: Scorecard | None = None,
) -> pl.DataFrame:
    """The league table of areas at ``level`` for an indicator or an index, best first.

    Args:
        scorecard: the evaluated scorecard; with ``Scorecard.parts`` (``evaluate(parts=True)``) an
            indicator built from counts gets intervals and a funnel flag.
        ref: an indicator id or an index id.
        level: the level whose areas are ranked.
        direction: the indicator's direction (higher_is_better, lower_is_better, band); without
            it areas are ranked by colour only, ties by area id.
        previous: the scorecard of the previous period, for an index's change (an indicator's
            cells carry their own).

    Returns:
        The columns in :data:`LEAGUE_COLUMNS`; ``rank`` 1 is the best, ties share a rank. Areas
        without a colour (no data, stale, not applicable) or without a score are not ranked
        (``rank`` null) and come last. For a rate built from counts (its unit has an interval in
        the units registry and the cells have parts): ``numerator``, ``denominator``, the 95 %
        interval ``ci_low``–``ci_high``, the ``overall`` value of the ranked areas, the ``funnel``
        flag (:mod:`citykpi.engine.funnel`) and ``rank_low``–``rank_high``, the ranks the area could
        hold given the intervals; null elsewhere.
    """
    idx = scorecard.indices.filter((pl.col("index_id") == ref) & (pl.col("level") == level))
    if idx.height or (scorecard.indices.height and ref in scorecard.indices.get_column("index_id").to_list()):
        frame = idx.select(
            "area_id",
            "area_name_zh",
            "area_name_en",
            pl.col("score").alias("value"),
            pl.lit("score").alias("unit"),
            "status",
            "severity",
        )
        before = (
            previous.indices.filter((pl.col("index_id") == ref) & (pl.col("level") == level))
            if previous is not None
            else pl.DataFrame(schema={"area_id": pl.String(), "score": pl.Float64()})
        )
        frame = frame.join(
            before.select("area_id", pl.col("score").alias("__before")), on="area_id", how="left"
        ).with_columns(
            (pl.col("value") - pl.col("__before")).alias("change_previous"),
            pl.lit("points", dtype=pl.String).alias("change_unit"),
        )
        frame = frame.with_columns(
            pl.col("value").rank("min", descending=True).cast(pl.Int32).alias("rank")
        ).sort(["rank", "area_id"], nulls_last=True)
        return _without_intervals(frame).select(LEAGUE_COLUMNS)
    cells = scorecard.cells.filter(pl.col("indicator_id") == ref)
    if not cells.height:
        raise UsageError(
            f"no indicator or index {ref!r} in this scorecard",
            hint="list the ids with `citykpi evaluate --format csv` or check the spelling",
        )
    cells = cells.filter(pl.col("level") == level)
    # Colour first (a red area never outranks a green one), then the value in the good direction.
    sev = pl.col("severity").fill_null(99)
    if direction == "higher_is_better":
        val = -pl.col("value")
    elif direction == "lower_is_better":
        val = pl.col("value")
    else:
        val = pl.lit(0.0)
    keyed = cells.with_columns(
        sev.alias("__sev"),
        val.fill_null(float("inf")).fill_nan(float("inf")).alias("__val"),
    ).sort(["__sev", "__val", "area_id"])
    # ties share the rank of the first of their run (1, 1, 3); areas without a colour get none
    starts = (
        (pl.col("__sev") != pl.col("__sev").shift(1)) | (pl.col("__val") != pl.col("__val").shift(1))
    ).fill_null(True)
    position = pl.int_range(1, pl.len() + 1, dtype=pl.Int32)
    rank = pl.when(starts).then(position).forward_fill()
    keyed = keyed.with_columns(
        pl.when(pl.col("__sev") == 99).then(None).otherwise(rank).cast(pl.Int32).alias("rank")
    )
    parts = scorecard.parts.filter(pl.col("indicator_id") == ref).select(
        "area_id", "numerator", "denominator", "factor"
    )
    keyed = keyed.join(parts, on="area_id", how="left", maintain_order="left").with_columns(
        # only ranked areas are compared (a stale cell's parts belong to an older period)
        pl.when(pl.col("rank").is_not_null()).then(pl.col("numerator")).alias("numerator"),
        pl.when(pl.col("rank").is_not_null()).then(pl.col("denominator")).alias("denominator"),
    )
    unit = cells.get_column("unit")[0] if cells.height else None
    entry = UNITS.get(unit) if isinstance(unit, str) else None
    interval = entry.interval if entry is not None else None
    table = _rank_ranges(with_funnel(keyed, interval), direction)
    return table.select(LEAGUE_COLUMNS)


def _without_intervals(frame: pl.DataFrame) -> pl.DataFrame:
    """The interval columns of a league table, all null (an index score has no numerator)."""
    return frame.with_columns(
        pl.lit(None, dtype=pl.Float64).alias("numerator"),
        pl.lit(None, dtype=pl.Float64).alias("denominator"),
        pl.lit(None, dtype=pl.Float64).alias("ci_low"),
        pl.lit(None, dtype=pl.Float64).alias("ci_high"),
        pl.lit(None, dtype=pl.Float64).alias("overall"),
        pl.lit(None, dtype=pl.String).alias("funnel"),
        pl.lit(None, dtype=pl.Int32).alias("rank_low"),
        pl.lit(None, dtype=pl.Int32).alias("rank_high"),
    )


def _rank_ranges(frame: pl.DataFrame, direction: str | None) -> pl.DataFrame:
    """``rank_low``–``rank_high``: the best and worst rank each ranked area could hold given the intervals.

    An area is surely behind another when the other's whole interval lies on the better side of its
    own (a value without an interval is its own interval). Best rank = 1 + the areas surely ahead;
    worst = the ranked areas less those surely behind; the range always holds the area's rank. Null
    when no area has an interval or the direction has no order (``band``). Counted with two binary
    searches over the sorted bounds: no comparison per pair of areas.
    """
    if direction not in ("higher_is_better", "lower_is_better") or frame.get_column("ci_low").is_null().all():
        return frame.with_columns(
            pl.lit(None, dtype=pl.Int32).alias("rank_low"), pl.lit(None, dtype=pl.Int32).alias("rank_high")
        )
    bounds = frame.with_columns(
        pl.coalesce("ci_low", "value").alias("__lo"), pl.coalesce("ci_high", "value").alias("__hi")
    )
    ranked = bounds.filter(pl.col("rank").is_not_null())
    rest = bounds.filter(pl.col("rank").is_null())
    total = ranked.height
    lows, highs = ranked.get_column("__lo").sort(), ranked.get_column("__hi").sort()
    # areas whose interval lies wholly above / below this one's
    above = total - lows.search_sorted(ranked.get_column("__hi"), side="right")
    below = highs.search_sorted(ranked.get_column("__lo"), side="left")
    ahead, behind = (above, below) if direction == "higher_is_better" else (below, above)
    ranked = ranked.with_columns(
        pl.min_horizontal(pl.Series("__a", ahead) + 1, pl.col("rank")).cast(pl.Int32).alias("rank_low"),
        pl.max_horizontal(total - pl.Series("__b", behind), pl.col("rank")).cast(pl.Int32).alias("rank_high"),
    )
    rest = rest.with_columns(
        pl.lit(None, dtype=pl.Int32).alias("rank_low"), pl.lit(None, dtype=pl.Int32).alias("rank_high")
    )
    return pl.concat([ranked, rest], how="vertical").drop("__lo", "__hi")


#: How the ``funnel`` flag reads in a league table, per language.
FUNNEL_TEXT: Mapping[str, Mapping[str, str]] = {
    "en": {
        "within": "noise",
        "above_95": "high 95%",
        "above_998": "high 99.8%",
        "below_95": "low 95%",
        "below_998": "low 99.8%",
        "better": "better",
        "worse": "worse",
    },
    "zh": {
        "within": "随机波动",
        "above_95": "偏高95%",
        "above_998": "偏高99.8%",
        "below_95": "偏低95%",
        "below_998": "偏低99.8%",
        "better": "较好",
        "worse": "较差",
    },
}

#: The interval method of each unit interval family, as a note names it.
_METHOD: Mapping[str, Mapping[str, str]] = {
    "en": {"binomial": "Wilson score", "poisson": "Byar's approximation to the exact Poisson"},
    "zh": {"binomial": "Wilson 得分", "poisson": "Byar 近似的精确 Poisson"},
}


def funnel_text(flag: str | None, direction: str | None = None, lang: str = "en") -> str:
    """A ``funnel`` flag in a few words: 'noise' (within the funnel), 'worse 99.8%' (beyond its 99.8 %
    limit on the bad side), 'high 95%' when the direction has no good side; '' for none."""
    if flag is None:
        return ""
    words = FUNNEL_TEXT.get(lang, FUNNEL_TEXT["en"])
    if flag == "within" or direction not in ("higher_is_better", "lower_is_better"):
        return words.get(flag, flag)
    better = flag.startswith("above") == (direction == "higher_is_better")
    level = "99.8%" if flag.endswith("998") else "95%"
    return f"{words['better' if better else 'worse']}{' ' if lang == 'en' else ''}{level}"


def league_note(table: pl.DataFrame, *, lang: str = "en", decimals: int = 1) -> str | None:
    """What a league table's intervals say about its order, in one line; None without intervals.

    Names the interval method and the overall value, counts the areas within the funnel (whose order
    is chance) and those beyond its 95 % and 99.8 % limits, and says plainly when no area differs from
    the overall value beyond chance, so that such a table is not published as a ranking.
    """
    flagged = table.filter(pl.col("funnel").is_not_null())
    if not flagged.height:
        return None
    unit = flagged.get_column("unit")[0]
    entry = UNITS.get(unit)
    method = _METHOD.get(lang, _METHOD["en"]).get(entry.interval if entry and entry.interval else "", "")
    overall = fmt_value(flagged.get_column("overall")[0], unit, decimals)
    counts = dict(flagged.group_by("funnel").len().iter_rows())
    within = int(counts.get("within", 0))
    beyond = flagged.height - within
    far = int(counts.get("above_998", 0)) + int(counts.get("below_998", 0))
    ranked = table.filter(pl.col("rank").is_not_null()).height
    if lang == "zh":
        head = f"按各区域的分子和分母计算 95% 区间（{method}）；总体 {overall}。"
        if not beyond:
            return (
                head
                + f"全部 {flagged.height} 个区域都在漏斗控制限内：与总体的差异均在随机波动范围内，此排序不应作为排名发布。"
            )
        return head + (
            f"{ranked} 个区域中 {within} 个在漏斗 95% 控制限内，差异在随机波动范围内，其名次无法区分（见名次区间）；"
            f"{beyond} 个超出 95% 控制限，其中 {far} 个超出 99.8%。"
        )
    head = f"95% intervals from each area's numerator and denominator ({method}); overall {overall}. "
    if not beyond:
        return head + (
            f"All {flagged.height} areas lie within the funnel: no area differs from the overall value beyond "
            "chance, so this order is not a ranking and should not be published as one."
        )
    return head + (
        f"{within} of {ranked} ranked areas lie within the funnel's 95% limits: their differences are within "
        f"chance and their ranks are not distinguishable (see the rank range). Beyond the 95% limits: "
        f"{beyond} (beyond 99.8%: {far})."
    )


def empty_league_reason(ref: str, levels: Sequence[str], level: str) -> str:
    """Why a league table of ``level`` for ``ref`` (reported at ``levels``) has no row."""
    why = (
        f"{ref} is reported at {', '.join(levels)} only"
        if level not in levels
        else f"the warehouse has no {level}-level areas"
    )
    return f"no {level}-level areas to rank: {why}"


def silences_table(frame: pl.DataFrame) -> pl.DataFrame:
    """The silences (``citykpi.notify.silences.list_silences``) as the terminal lists them: id, state,
    what each matches in words, until when (local time to the minute), its window and its reason."""

    def said(column: str, label: str, suffix: str = "") -> pl.Expr:
        return pl.when(pl.col(column).is_not_null()).then(
            pl.lit(f"{label} ") + pl.col(column) + pl.lit(suffix)
        )

    return frame.select(
        pl.col("silence_id").alias("id"),
        "state",
        pl.concat_str(
            [said("indicator", "indicator"), said("area_id", "area", " and below"), said("owner", "owner"),
             said("domain", "domain")],
            separator=" · ",
            ignore_nulls=True,
        ).alias("matches"),
        pl.col("ends_at").str.slice(0, 16).str.replace("T", " ").alias("until"),
        pl.col("every").fill_null(""),
        "reason",
    )  # fmt: skip


def outbox_table(frame: pl.DataFrame) -> pl.DataFrame:
    """The outbox (``citykpi.notify.outbox.outbox``) as the terminal lists it: the digest, its state
    and, for one set aside or put back by an operator, who did it and why."""
    action = pl.concat_str(
        [pl.col("action"), pl.lit(" by "), pl.col("action_by").fill_null("?"), pl.lit(": "),
         pl.col("action_reason").fill_null("")],
    )  # fmt: skip
    return frame.select(
        "notifier",
        "digest_key",
        "status",
        "as_of",
        "items",
        "attempts",
        pl.coalesce(pl.col("last_error"), action, pl.lit("")).alias("note"),
    )


__all__ = [
    "FUNNEL_TEXT",
    "alerts",
    "diff_scorecards",
    "empty_league_reason",
    "funnel_text",
    "league_note",
    "league_table",
    "outbox_table",
    "silences_table",
]
