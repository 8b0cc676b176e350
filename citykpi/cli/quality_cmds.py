"""``citykpi quality``: the data-quality scorecard (完整·准确·一致·时效) of the warehouse."""

from __future__ import annotations

from enum import StrEnum

import typer

from citykpi.cli.app import app, settings
from citykpi.cli.options import (
    FailOn,
    ForceOpt,
    Lang,
    LangOpt,
    OutputOpt,
    ScorecardFormat,
    ScorecardFormatOpt,
    WaitOpt,
    parse_day,
)
from citykpi.cli.output import check_destination, warn_after_newest
from citykpi.errors import ExitCode


class QualityBy(StrEnum):
    """What the league table groups by (``citykpi.quality.BY``)."""

    owner = "owner"
    source = "source"
    indicator = "indicator"
    area = "area"


class QualityTable(StrEnum):
    """The table a table format writes (``citykpi.quality.TABLES``)."""

    groups = "groups"
    series = "series"
    rules = "rules"
    violations = "violations"
    rejects = "rejects"
    records = "records"
    outliers = "outliers"


@app.command("quality")
def quality_cmd(
    ctx: typer.Context,
    date_: str | None = typer.Option(
        None,
        "--date",
        "-d",
        help="Judge the periods that ended by this date (YYYY-MM-DD); default the newest data.",
    ),
    from_: str | None = typer.Option(
        None,
        "--from",
        help="Judge periods from this date on (default: the last 7 days, 4 weeks, 3 months, 4 quarters or 3 "
        "years, by frequency).",
    ),
    by: QualityBy = typer.Option(
        QualityBy.owner,
        "--by",
        help="Group the league table by provider department (owner), feed (source), indicator or area.",
    ),
    fmt: ScorecardFormatOpt = ScorecardFormat.table,
    table: QualityTable = typer.Option(
        QualityTable.groups,
        "--table",
        help="The table csv, parquet and jsonl write (json, markdown, html, xlsx and junit hold them all).",
    ),
    output: OutputOpt = None,
    force: ForceOpt = False,
    lang: LangOpt = Lang.zh,
    limit: int | None = typer.Option(
        20, "--limit", min=1, help="Table format: groups and violations listed."
    ),
    fail_on: FailOn = typer.Option(
        FailOn.never, "--fail-on", help="Exit 1 when a group's quality is at or above this colour."
    ),
    explain: bool = typer.Option(False, "--explain", help="Print the SQL instead of running it."),
    wait: WaitOpt = 0.0,
) -> None:
    """Score the data itself — complete, accurate, consistent, timely — and rank its providers.

    Completeness: expected periods (from each indicator's frequency, levels and the loaded areas)
    that have a value; a missing-value token counts as missing. Accuracy: values inside the valid
    range and not robust outliers (median/MAD of the series), over the values plus the rows ingest
    rejected. Consistency: the catalogue's consistency rules (parts sum to a total, breakdowns,
    roll-ups) that hold. Timeliness: deliveries by their due time (`due`, after the period's end).
    The league table is coloured like a scorecard (green from 99 %). The database is opened
    read-only; nothing is recorded. See docs/quality.md.

    Exit codes: 0 ok; 1 a group at or above --fail-on; 2 usage error; 3 data, catalogue or database error.

    Example: citykpi quality --date 2025-12-31 --by owner --format html -o quality-2025-12-31.html
    """
    from citykpi.catalogue import load_catalogue
    from citykpi.quality import assess
    from citykpi.quality import explain as explain_sql
    from citykpi.render.exports import junit_fail_on
    from citykpi.render.quality import render_text
    from citykpi.warehouse import Warehouse

    cfg = settings(ctx)
    as_of, since = parse_day("--date", date_), parse_day("--from", from_)
    check_destination(ctx, fmt.value, output, force=force)
    catalogue = load_catalogue(cfg.catalogue)
    junit = junit_fail_on(fail_on.value)
    with Warehouse.open(cfg.db, read_only=True, create=False, wait=wait) as wh:
        if explain:
            typer.echo(explain_sql(wh, catalogue, as_of=as_of, since=since))
            return
        report = assess(wh, catalogue, as_of=as_of, since=since, by=by.value)
    warn_after_newest(
        report.as_of,
        report.meta.get("newest_data"),
        "the periods after it have no data: pending until due, missing after",
    )
    breached = report.breaches(fail_on.value)
    if output is not None:
        report.write(fmt.value, output, lang=lang.value, table=table.value, fail_on=junit)
        typer.echo(f"wrote {output} ({report.groups.height} groups by {report.by})", err=True)
    elif fmt is ScorecardFormat.table:
        from citykpi.render.terminal import make_console
        from citykpi.render.terminal.quality import print_quality

        print_quality(make_console(), report, lang=lang.value, limit=limit)
    else:
        typer.echo(
            render_text(report, fmt.value, lang=lang.value, table=table.value, fail_on=junit), nl=False
        )
    if breached:
        raise typer.Exit(int(ExitCode.FAILED))
