"""The data-quality scorecard as a result object, and how its figures are scored and grouped.

Four dimensions (完整·准确·一致·时效), each a percentage of what could be judged:

* **completeness** — expected periods (per series in its expected areas, from the frequency) with a
  value, over those due (a missing-value token counts as missing);
* **accuracy** — stored values inside the valid range and not robust outliers, over the values plus
  the rows ingest rejected (rejects count where a feed names their provider);
* **consistency** — consistency-rule checks that hold, over the checks that could be made;
* **timeliness** — deliveries on time, over those due (on time, late or missing), periods and raw
  records alike.

The score is the mean of the dimensions that could be judged; its colour follows :data:`BANDS`
(higher is better; green from 99). Every frame is plain Polars: the terminal, every exporter and
``citykpi run`` consume the same object.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from pathlib import Path

import polars as pl

from citykpi.catalogue.model import COLOURS, SEVERITY, Catalogue
from citykpi.quality.tables import NOBODY, feed_of

#: What ``--by`` groups the league table by.
BY: tuple[str, ...] = ("owner", "source", "indicator", "area")
#: Where each colour starts, for a score (0–100, higher is better): a value exactly at a cut keeps
#: the better colour. Green from 99, blue from 95, yellow from 90, orange from 80, red below.
BANDS: Mapping[str, float] = {"blue": 99.0, "yellow": 95.0, "orange": 90.0, "red": 80.0}
DIMENSIONS: tuple[str, ...] = ("completeness", "accuracy", "consistency", "timeliness")
#: Identifier and version of the JSON document.
JSON_SCHEMA_ID = "citykpi.quality"
JSON_SCHEMA_VERSION = 1

#: The count columns summed per group, and the score each feeds.
_COUNTS: tuple[str, ...] = (
    "expected",
    "present",
    "missing_tokens",
    "absent",
    "pending",
    "values",
    "inaccurate",
    "rejected",
    "checked",
    "violations",
    "on_time",
    "late",
    "missing",
    "records",
    "excluded",
)

GROUP_SCHEMA: Mapping[str, pl.DataType] = {
    "by": pl.String(),
    "group": pl.String(),
    "name_zh": pl.String(),
    "name_en": pl.String(),
    "completeness": pl.Float64(),
    "accuracy": pl.Float64(),
    "consistency": pl.Float64(),
    "timeliness": pl.Float64(),
    "score": pl.Float64(),
    "status": pl.String(),
    "severity": pl.Int8(),
    "rank": pl.Int32(),
    **{c: pl.Int64() for c in _COUNTS},
}

SERIES_SCHEMA: Mapping[str, pl.DataType] = {
    "indicator_id": pl.String(),
    "area_id": pl.String(),
    "level": pl.String(),
    "feed": pl.String(),
    "provider": pl.String(),
    "periods": pl.Int64(),
    "pending": pl.Int64(),
    "present": pl.Int64(),
    "missing_tokens": pl.Int64(),
    "absent": pl.Int64(),
    "on_time": pl.Int64(),
    "late": pl.Int64(),
    "missing": pl.Int64(),
    "lag_hours": pl.Float64(),
    "max_lag_hours": pl.Float64(),
    "values": pl.Int64(),
    "out_of_range": pl.Int64(),
    "outliers": pl.Int64(),
    "inaccurate": pl.Int64(),
    "completeness": pl.Float64(),
    "accuracy": pl.Float64(),
    "timeliness": pl.Float64(),
}

CHECK_SCHEMA: Mapping[str, pl.DataType] = {
    "rule_id": pl.String(),
    "kind": pl.String(),
    "indicator_id": pl.String(),
    "area_id": pl.String(),
    "period": pl.Date(),
    "breakdown": pl.String(),
    "total": pl.Float64(),
    "expected": pl.Float64(),
    "difference": pl.Float64(),
    "allowed": pl.Float64(),
    "members": pl.Int64(),
    "members_needed": pl.Int64(),
    "checked": pl.Boolean(),
    "violated": pl.Boolean(),
    "values": pl.String(),
}

RULE_SCHEMA: Mapping[str, pl.DataType] = {
    "rule_id": pl.String(),
    "kind": pl.String(),
    "indicator_id": pl.String(),
    "checked": pl.Int64(),
    "violations": pl.Int64(),
    "incomplete": pl.Int64(),
    "consistency": pl.Float64(),
}

REJECT_SCHEMA: Mapping[str, pl.DataType] = {
    "batch_id": pl.Int64(),
    "path": pl.String(),
    "feed": pl.String(),
    "provider": pl.String(),
    "code": pl.String(),
    "reason": pl.String(),
    "rows": pl.Int64(),
}

RECORD_SCHEMA: Mapping[str, pl.DataType] = {
    "source_id": pl.String(),
    "feed": pl.String(),
    "provider": pl.String(),
    "area_id": pl.String(),
    "records": pl.Int64(),
    "excluded": pl.Int64(),
    "on_time": pl.Int64(),
    "late": pl.Int64(),
    "missing": pl.Int64(),
    "pending": pl.Int64(),
    "lag_hours": pl.Float64(),
    "timeliness": pl.Float64(),
}

OUTLIER_SCHEMA: Mapping[str, pl.DataType] = {
    "indicator_id": pl.String(),
    "area_id": pl.String(),
    "period": pl.Datetime("us"),
    "value": pl.Float64(),
    "median": pl.Float64(),
    "mad": pl.Float64(),
    "z": pl.Float64(),
    "problem": pl.String(),
}

#: The report's tables by name (what ``--table`` picks for the table formats), in display order.
TABLES: tuple[str, ...] = ("groups", "series", "rules", "violations", "rejects", "records", "outliers")


def _empty(schema: Mapping[str, pl.DataType]) -> pl.DataFrame:
    return pl.DataFrame(schema=dict(schema))


def severity_of(score: float | None) -> int | None:
    """The colour severity (0 green … 4 red) of a 0–100 score by :data:`BANDS`; None without a score."""
    if score is None:
        return None
    worst = 0
    for n, colour in enumerate(COLOURS):
        cut = BANDS.get(colour)
        if cut is not None and score < cut:
            worst = n
    return worst


def _percent(good: pl.Expr, total: pl.Expr) -> pl.Expr:
    return pl.when(total > 0).then(good.cast(pl.Float64) / total * 100.0).otherwise(None)


def _scores(frame: pl.DataFrame) -> pl.DataFrame:
    """Add the four dimension scores, the mean score, its colour and rank to summed counts."""
    judged_t = pl.col("on_time") + pl.col("late") + pl.col("missing")
    frame = frame.with_columns(
        _percent(pl.col("present"), pl.col("expected") - pl.col("pending")).alias("completeness"),
        _percent(pl.col("values") - pl.col("inaccurate"), pl.col("values") + pl.col("rejected")).alias(
            "accuracy"
        ),
        _percent(pl.col("checked") - pl.col("violations"), pl.col("checked")).alias("consistency"),
        _percent(pl.col("on_time"), judged_t).alias("timeliness"),
    )
    frame = frame.with_columns(pl.mean_horizontal(*DIMENSIONS).alias("score"))
    sev = [severity_of(s) for s in frame["score"].to_list()]
    frame = frame.with_columns(
        pl.Series("severity", sev, dtype=pl.Int8),
        pl.Series("status", [COLOURS[s] if s is not None else "no_data" for s in sev], dtype=pl.String),
    )
    return frame.with_columns(
        pl.col("score").rank(method="min", descending=True).cast(pl.Int32).alias("rank")
    )


@dataclass(frozen=True)
class QualityReport:
    """The data-quality scorecard: a league table ``groups`` (by provider, feed, indicator or area) and
    the tables behind it, as Polars frames.

    ``series`` (per indicator × area: completeness, timeliness, accuracy), ``rules`` (per consistency
    rule), ``violations`` (each failed check with the values that disagree), ``rejects`` (rows
    ingest refused, per batch and code), ``records`` (raw source records, per provider and area),
    ``outliers`` (the values judged inaccurate); ``summary`` the whole catalogue's scores.
    """

    as_of: date
    by: str
    groups: pl.DataFrame
    series: pl.DataFrame = field(default_factory=lambda: _empty(SERIES_SCHEMA))
    rules: pl.DataFrame = field(default_factory=lambda: _empty(RULE_SCHEMA))
    violations: pl.DataFrame = field(default_factory=lambda: _empty(CHECK_SCHEMA))
    rejects: pl.DataFrame = field(default_factory=lambda: _empty(REJECT_SCHEMA))
    records: pl.DataFrame = field(default_factory=lambda: _empty(RECORD_SCHEMA))
    outliers: pl.DataFrame = field(default_factory=lambda: _empty(OUTLIER_SCHEMA))
    summary: Mapping[str, object] = field(default_factory=dict)
    since: date | None = None
    judged_at: datetime | None = None
    meta: Mapping[str, object] = field(default_factory=dict)

    def table(self, name: str) -> pl.DataFrame:
        """One of :data:`TABLES` by name."""
        if name not in TABLES:
            raise KeyError(name)
        frame = getattr(self, name)
        assert isinstance(frame, pl.DataFrame)
        return frame

    def with_meta(self, meta: Mapping[str, object]) -> QualityReport:
        """The same report with ``meta`` (statement count, timing) added."""
        return replace(self, meta={**self.meta, **meta})

    def worst_severity(self) -> int | None:
        """The worst colour among the groups (0 green … 4 red), None when nothing could be scored."""
        values = [s for s in self.groups["severity"].to_list() if s is not None] if self.groups.height else []
        return max(values) if values else None

    def breaches(self, fail_on: str) -> bool:
        """True when some group is at least as severe as colour ``fail_on`` ('never' → False)."""
        worst = self.worst_severity()
        return fail_on != "never" and worst is not None and worst >= SEVERITY[fail_on]

    def write(
        self, fmt: str, path: str | Path, *, lang: str = "zh", table: str = "groups", fail_on: str = "red"
    ) -> Path:
        """Write the report as ``fmt`` (any export format) to ``path``, atomically.

        ``table`` picks the table the table formats (csv, parquet, jsonl) write; json, markdown, html,
        xlsx and junit hold every table. ``fail_on``: the colour at which a junit group fails.
        """
        from citykpi.render.quality import write_report  # render depends on the library, not the reverse

        return write_report(self, fmt, path, lang=lang, table=table, fail_on=fail_on)


# --- building the report from the statements' outputs ------------------------------------------------


#: ``--by`` → the column of the series, checks and raw records that holds the group key.
_KEY_COLUMNS: Mapping[str, str] = {
    "owner": "provider",
    "source": "feed",
    "indicator": "indicator_id",
    "area": "area_id",
}


def attribution(catalogue: Catalogue) -> tuple[Callable[[str], str], Callable[[str], str]]:
    """Indicator id → its feed (the first that delivers it) and → its provider (the feed's provider,
    else the indicator's owner), :data:`NOBODY` where the catalogue names none."""
    feeds = feed_of(catalogue)
    by_id = catalogue.by_id

    def feed(iid: str) -> str:
        return feeds[iid].id if iid in feeds else NOBODY

    def provider(iid: str) -> str:
        f = feeds.get(iid)
        ind = by_id.get(iid)
        return (f.provider if f is not None and f.provider else (ind.owner if ind else "")) or NOBODY

    return feed, provider


def build_report(
    catalogue: Catalogue,
    areas: pl.DataFrame,
    keys: Mapping[str, int],
    out: Mapping[str, pl.DataFrame],
    *,
    as_of: date,
    since: date | None,
    by: str,
    now: datetime,
    source_feeds: Mapping[str, str],
) -> QualityReport:
    """Name, score and group the outputs of the quality statements (see :mod:`citykpi.quality.sql`)."""
    id_of_key = {v: k for k, v in keys.items()}
    area_of = {
        int(r["area_key"]): r for r in areas.select("area_key", "area_id", "level").iter_rows(named=True)
    }
    feed, provider = attribution(catalogue)

    # series -------------------------------------------------------------------------------
    s = out["series"]
    s = s.with_columns(
        pl.col("ikey").replace_strict(id_of_key, default=None, return_dtype=pl.String).alias("indicator_id"),
        pl.col("area_key")
        .replace_strict({k: r["area_id"] for k, r in area_of.items()}, default=None, return_dtype=pl.String)
        .alias("area_id"),
        pl.col("area_key")
        .replace_strict({k: r["level"] for k, r in area_of.items()}, default=None, return_dtype=pl.String)
        .alias("level"),
    ).filter(pl.col("area_id").is_not_null())
    ids = s["indicator_id"].unique().to_list()
    s = s.with_columns(
        pl.col("indicator_id")
        .replace_strict({i: feed(i) for i in ids}, return_dtype=pl.String)
        .alias("feed"),
        pl.col("indicator_id")
        .replace_strict({i: provider(i) for i in ids}, return_dtype=pl.String)
        .alias("provider"),
        pl.col("tokens").alias("missing_tokens"),
        (pl.col("periods") - pl.col("pending") - pl.col("present") - pl.col("tokens")).alias("absent"),
        pl.col("n_values").alias("values"),
    )
    s = s.with_columns(
        _percent(pl.col("present"), pl.col("periods") - pl.col("pending")).alias("completeness"),
        _percent(pl.col("values") - pl.col("inaccurate"), pl.col("values")).alias("accuracy"),
        _percent(pl.col("on_time"), pl.col("on_time") + pl.col("late") + pl.col("missing")).alias(
            "timeliness"
        ),
    )
    series = s.select([pl.col(c).cast(t) for c, t in SERIES_SCHEMA.items()]).sort("indicator_id", "area_id")

    # consistency checks -------------------------------------------------------------------------
    c = out["checks"]
    c = c.with_columns(
        pl.col("ikey").replace_strict(id_of_key, default=None, return_dtype=pl.String).alias("indicator_id"),
        pl.col("area_key")
        .replace_strict({k: r["area_id"] for k, r in area_of.items()}, default=None, return_dtype=pl.String)
        .alias("area_id"),
        pl.col("p").cast(pl.Date).alias("period"),
        pl.col("context").alias("breakdown"),
        pl.col("computed").alias("expected"),
        (pl.col("total") - pl.col("computed")).alias("difference"),
        pl.col("n_have").alias("members"),
        pl.col("n_need").alias("members_needed"),
        pl.col("details").alias("values"),
    )
    checked = (
        pl.col("total").is_not_null()
        & pl.col("expected").is_not_null()
        & (pl.col("members_needed") > 0)
        & (pl.col("members") >= pl.col("members_needed"))
    )
    c = c.with_columns(checked.alias("checked"))
    c = c.with_columns(
        (pl.col("checked") & (pl.col("difference").abs() > pl.col("allowed"))).alias("violated")
    )
    checks = c.select([pl.col(k).cast(t) for k, t in CHECK_SCHEMA.items()]).sort(
        "rule_id", "indicator_id", "area_id", "period", "breakdown"
    )
    rules = _rule_table(catalogue, checks)

    # rejects, raw records, outliers --------------------------------------------------------------
    rejects = (
        out["rejects"]
        .select([pl.col(k).cast(t) for k, t in REJECT_SCHEMA.items()])
        .sort("batch_id", "code", "reason")
    )
    records = _records(catalogue, out.get("records"), area_of, source_feeds)
    o = out["outliers"]
    outliers = (
        o.with_columns(
            pl.col("ikey")
            .replace_strict(id_of_key, default=None, return_dtype=pl.String)
            .alias("indicator_id"),
            pl.col("area_key")
            .replace_strict(
                {k: r["area_id"] for k, r in area_of.items()}, default=None, return_dtype=pl.String
            )
            .alias("area_id"),
        )
        .select([pl.col(k).cast(t) for k, t in OUTLIER_SCHEMA.items()])
        .sort("indicator_id", "area_id", "period")
    )

    groups = _groups(catalogue, areas, by, series, checks, rejects, records)
    summary = _summary(series, checks, rejects, records)
    return QualityReport(
        as_of=as_of,
        by=by,
        groups=groups,
        series=series,
        rules=rules,
        violations=checks.filter(pl.col("violated")),
        rejects=rejects,
        records=records,
        outliers=outliers,
        summary=summary,
        since=since,
        judged_at=now,
    )


def _rule_table(catalogue: Catalogue, checks: pl.DataFrame) -> pl.DataFrame:
    rows = []
    for rule in catalogue.consistency:
        mine = checks.filter(pl.col("rule_id") == rule.id)
        done = int(mine["checked"].sum()) if mine.height else 0
        bad = int(mine["violated"].sum()) if mine.height else 0
        rows.append(
            {
                "rule_id": rule.id,
                "kind": rule.kind,
                "indicator_id": rule.subject,
                "checked": done,
                "violations": bad,
                "incomplete": mine.height - done,
                "consistency": (done - bad) / done * 100.0 if done else None,
            }
        )
    return pl.DataFrame(rows, schema=dict(RULE_SCHEMA))


def _records(
    catalogue: Catalogue,
    frame: pl.DataFrame | None,
    area_of: Mapping[int, Mapping[str, object]],
    source_feeds: Mapping[str, str],
) -> pl.DataFrame:
    if frame is None or not frame.height:
        return _empty(RECORD_SCHEMA)
    sources = {s.id: s for s in catalogue.sources}
    feeds = {f.id: f for f in catalogue.feeds}

    def fallback(sid: str) -> str:
        src = sources.get(sid)
        fid = source_feeds.get(sid)
        feed_provider = feeds[fid].provider if fid in feeds else ""
        return (src.owner if src is not None and src.owner else feed_provider) or NOBODY

    sids = frame["source_id"].unique().to_list()
    f = frame.with_columns(
        pl.col("source_id")
        .replace_strict({s: source_feeds.get(s, f"source:{s}") for s in sids}, return_dtype=pl.String)
        .alias("feed"),
        pl.coalesce(
            pl.col("provider"),
            pl.col("source_id").replace_strict({s: fallback(s) for s in sids}, return_dtype=pl.String),
        ).alias("provider"),
        pl.col("area_key")
        .replace_strict({k: r["area_id"] for k, r in area_of.items()}, default=None, return_dtype=pl.String)
        .alias("area_id"),
    )
    f = f.with_columns(
        _percent(pl.col("on_time"), pl.col("on_time") + pl.col("late") + pl.col("missing")).alias(
            "timeliness"
        )
    )
    return f.select([pl.col(k).cast(t) for k, t in RECORD_SCHEMA.items()]).sort(
        "source_id", "provider", "area_id"
    )


def _keyed(frame: pl.DataFrame, by: str, columns: Mapping[str, str]) -> pl.DataFrame:
    """``frame`` with its group key as column ``group`` (``columns``: by → the column holding the key)."""
    name = columns.get(by)
    if name is None:
        return frame.clear().with_columns(pl.lit(None, pl.String).alias("group"))
    return frame.with_columns(pl.col(name).cast(pl.String).alias("group"))


def _groups(
    catalogue: Catalogue,
    areas: pl.DataFrame,
    by: str,
    series: pl.DataFrame,
    checks: pl.DataFrame,
    rejects: pl.DataFrame,
    records: pl.DataFrame,
) -> pl.DataFrame:
    zero = {c: pl.lit(0, pl.Int64) for c in _COUNTS}
    parts = []
    s = _keyed(series, by, _KEY_COLUMNS)
    parts.append(
        s.select(
            "group",
            **{
                **zero,
                "expected": pl.col("periods"),
                "present": pl.col("present"),
                "missing_tokens": pl.col("missing_tokens"),
                "absent": pl.col("absent"),
                "pending": pl.col("pending"),
                "values": pl.col("values"),
                "inaccurate": pl.col("inaccurate"),
                "on_time": pl.col("on_time"),
                "late": pl.col("late"),
                "missing": pl.col("missing"),
            },
        )
    )
    feed, provider = attribution(catalogue)
    ids = checks["indicator_id"].unique().to_list() if checks.height else []
    c = checks.with_columns(
        pl.col("indicator_id")
        .replace_strict({i: provider(i) for i in ids}, default=NOBODY, return_dtype=pl.String)
        .alias("provider"),
        pl.col("indicator_id")
        .replace_strict({i: feed(i) for i in ids}, default=NOBODY, return_dtype=pl.String)
        .alias("feed"),
    )
    c = _keyed(c, by, _KEY_COLUMNS)
    parts.append(
        c.select(
            "group",
            **{
                **zero,
                "checked": pl.col("checked").cast(pl.Int64),
                "violations": pl.col("violated").cast(pl.Int64),
            },
        )
    )
    r = _keyed(rejects, by, {"owner": "provider", "source": "feed"})
    parts.append(r.select("group", **{**zero, "rejected": pl.col("rows")}))
    rec = records.with_columns(("source:" + pl.col("source_id")).alias("indicator_id"))
    rec = _keyed(rec, by, _KEY_COLUMNS)
    parts.append(
        rec.select(
            "group",
            **{
                **zero,
                "records": pl.col("records"),
                "excluded": pl.col("excluded"),
                "on_time": pl.col("on_time"),
                "late": pl.col("late"),
                "missing": pl.col("missing"),
                "pending": pl.lit(0, pl.Int64),
            },
        )
    )
    allrows = pl.concat(parts, how="vertical_relaxed").filter(pl.col("group").is_not_null())
    summed = allrows.group_by("group").agg([pl.col(c).sum().cast(pl.Int64) for c in _COUNTS])
    names: dict[str, tuple[str, str]] = {}
    if by == "indicator":
        names = {i.id: (i.name.zh, i.name.en) for i in catalogue.indicators}
    elif by == "area":
        names = {
            str(a["area_id"]): (str(a["name"] or ""), str(a["name_en"] or ""))
            for a in areas.select("area_id", "name", "name_en").iter_rows(named=True)
        }
    summed = summed.with_columns(
        pl.lit(by).alias("by"),
        pl.col("group")
        .replace_strict({k: v[0] for k, v in names.items()}, default=None, return_dtype=pl.String)
        .alias("name_zh"),
        pl.col("group")
        .replace_strict({k: v[1] for k, v in names.items()}, default=None, return_dtype=pl.String)
        .alias("name_en"),
    )
    scored = _scores(summed)
    return scored.select([pl.col(k).cast(t) for k, t in GROUP_SCHEMA.items()]).sort(
        pl.col("score").is_null(), "rank", "group"
    )


def _summary(
    series: pl.DataFrame, checks: pl.DataFrame, rejects: pl.DataFrame, records: pl.DataFrame
) -> dict[str, object]:
    """The whole catalogue's counts and scores (one group holding everything)."""

    def total(frame: pl.DataFrame, col: str) -> int:
        return int(frame[col].sum()) if frame.height else 0

    counts = {
        "expected": total(series, "periods"),
        "present": total(series, "present"),
        "missing_tokens": total(series, "missing_tokens"),
        "absent": total(series, "absent"),
        "pending": total(series, "pending"),
        "values": total(series, "values"),
        "inaccurate": total(series, "inaccurate"),
        "rejected": total(rejects, "rows"),
        "checked": total(checks, "checked"),
        "violations": total(checks, "violated"),
        "on_time": total(series, "on_time") + total(records, "on_time"),
        "late": total(series, "late") + total(records, "late"),
        "missing": total(series, "missing") + total(records, "missing"),
        "records": total(records, "records"),
        "excluded": total(records, "excluded"),
    }
    frame = _scores(pl.DataFrame([counts]).with_columns(pl.lit(0, pl.Int64).alias("dummy")))
    row = frame.row(0, named=True)
    return {**counts, **{k: row[k] for k in (*DIMENSIONS, "score", "status")}}
