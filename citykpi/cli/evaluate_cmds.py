"""Scorecard commands: ``evaluate``, ``show``, ``alerts``, ``rank``.

Exit codes (a published contract, see citykpi/errors.py): 0 success; 1 the scorecard breached
--fail-on (default never); 2 usage; 3 data, catalogue or environment error.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from citykpi.catalogue.search import resolve_indicator
from citykpi.cli import complete
from citykpi.cli.alerts_cmds import alerts_app
from citykpi.cli.app import app, settings
from citykpi.cli.options import (
    AreasOpt,
    AtOpt,
    Colour,
    DecimalsOpt,
    FailOn,
    ForceOpt,
    Grain,
    GrainOpt,
    GroupBy,
    IndicatorGlobOpt,
    Kind,
    Lang,
    LangOpt,
    Level,
    LevelsOpt,
    OutputOpt,
    RunSet,
    RunsOpt,
    ScorecardFormat,
    ScorecardFormatOpt,
    Status,
    TableFormat,
    TableFormatOpt,
    WaitOpt,
    city_instant,
    date_or_instant,
    parse_day,
    unknown_id,
    values,
)
from citykpi.cli.output import check_destination, emit_frame, warn_past_data
from citykpi.errors import ExitCode

if TYPE_CHECKING:
    from citykpi.catalogue.model import Catalogue
    from citykpi.engine.scorecard import Scorecard


@app.command("evaluate")
def evaluate_cmd(
    ctx: typer.Context,
    date_: str | None = typer.Option(
        None, "--date", "-d", help="Evaluate as of this date (YYYY-MM-DD); default the newest data."
    ),
    at_: AtOpt = None,
    period: GrainOpt = Grain.day,
    level: LevelsOpt = [],  # noqa: B006  # Typer copies the default
    area: AreasOpt = [],  # noqa: B006
    domain: list[str] = typer.Option(
        [], "--domain", help="Only this domain (repeatable).", autocompletion=complete.domains
    ),
    kind: list[Kind] = typer.Option([], "--kind", help="Only this kind (repeatable)."),
    status: list[Status] = typer.Option(
        [],
        "--status",
        help="Only show or export cells with this status (repeatable); --fail-on still judges every cell.",
    ),
    indicator: IndicatorGlobOpt = None,
    lang: LangOpt = Lang.zh,
    fmt: ScorecardFormatOpt = ScorecardFormat.table,
    output: OutputOpt = None,
    force: ForceOpt = False,
    decimals: DecimalsOpt = None,
    fail_on: FailOn = typer.Option(
        FailOn.never,
        "--fail-on",
        help="Exit 1 when a cell is at or above this colour. "
        "junit marks failures at this colour (at red when never).",
    ),
    explain: bool = typer.Option(False, "--explain", help="Print the generated SQL instead of evaluating."),
    why: bool = typer.Option(False, "--why", help="Table format: add the one-line reason of each colour."),
    group_by: GroupBy = typer.Option(GroupBy.domain, "--group-by", help="Table format: group the cells by."),
    limit: int | None = typer.Option(None, "--limit", min=1, help="Table format: rows per group."),
    as_ingested: bool = typer.Option(
        False, "--as-ingested", help="Replay what was known at the end of --date (batches finished by then)."
    ),
    record: bool = typer.Option(
        False,
        "--record/--no-record",
        help="Record the run as an ad-hoc one, for `diff --runs all` or by its id. Without it (the "
        "default) the database is opened read-only and nothing is stored.",
    ),
    scheduled: bool = typer.Option(
        False,
        "--scheduled",
        help="Record the run as a scheduled one, like `citykpi run` does: `diff`, `alerts` and the "
        "notifiers compare with these (for a daily job that does not use `citykpi run`).",
    ),
    wait: WaitOpt = 0.0,
) -> None:
    """Evaluate the catalogue as of a date and print or export the scorecard (stored only with --record).

    The table groups cells by domain and area: value with unit, colour with a text label, change
    arrows, target progress, a sparkline, counts per colour and the indices. Exports: csv, parquet,
    json (docs/scorecard-json.md), jsonl, markdown, html (one self-contained file), xlsx, junit
    (one test case per indicator × area). Text formats go to stdout unless --output is given.

    Nothing is recorded unless asked: --record keeps an ad-hoc run, --scheduled a run that the
    daily comparisons use (`citykpi run` records one every day).

    Exit codes: 0 ok; 1 a cell is at or above --fail-on; 2 usage error; 3 data, catalogue or database error.

    --period hour and 15min evaluate an instant (--at 2025-12-31T14:00; default the newest reading):
    each cell is the period holding it, with the previous period and the same period a day and a week
    earlier; --at with a day or coarser period evaluates what was known at that instant.

    Example: citykpi evaluate --date 2025-12-31 --level district --format html -o report.html --fail-on red

    Example: citykpi evaluate --at 2025-12-31T14:00 --period hour --domain gas
    """
    from citykpi.catalogue import load_catalogue
    from citykpi.engine.evaluate import HISTORY_LEVELS, evaluate
    from citykpi.engine.evaluate import explain as explain_sql
    from citykpi.errors import UsageError
    from citykpi.render.exporters import draws_history, render_text, write_scorecard
    from citykpi.render.exports import junit_fail_on
    from citykpi.warehouse import Warehouse

    cfg = settings(ctx)
    as_of, at = date_or_instant("--date", date_, at_)
    statuses, levels, kinds = values(status), values(level), values(kind)
    check_destination(ctx, fmt.value, output, force=force)
    if as_ingested and as_of is None and at is None:
        raise UsageError("--as-ingested needs --date or --at")
    if scheduled and (levels or area or domain or kinds or indicator or as_ingested):
        raise UsageError(
            "--scheduled records the whole catalogue (tomorrow's alerts compare with it): drop --level, --area, "
            "--domain, --kind, --indicator and --as-ingested, or keep an ad-hoc run with --record"
        )
    catalogue = load_catalogue(cfg.catalogue)
    at = city_instant("--at", at, catalogue)
    if explain:
        with Warehouse.open(cfg.db, read_only=True, create=False, wait=wait) as wh:
            typer.echo(explain_sql(wh, catalogue, as_of=as_of, grain=period.value, at=at))
        return
    # only the terminal table and the formats that draw sparklines read the history back
    history_levels = HISTORY_LEVELS if draws_history(fmt.value) else ()
    record = record or scheduled
    with Warehouse.open(cfg.db, read_only=not record, create=False, wait=wait) as wh:
        scorecard = evaluate(
            wh,
            catalogue,
            as_of=as_of,
            at=at,
            grain=period.value,
            levels=levels or None,
            areas=area or None,
            domains=domain or None,
            kinds=kinds or None,
            indicator_glob=indicator,
            as_ingested=as_ingested,
            persist=record,
            scheduled=scheduled,
            history_levels=history_levels,
        )
        warn_past_data(scorecard)
    # --status only chooses what is shown: the exit code judges every evaluated cell, so a cron line
    # that prints the greens still fails on a red
    breached = scorecard.breaches(fail_on.value)
    if statuses:
        scorecard = scorecard.filter(statuses=statuses)
    junit = junit_fail_on(fail_on.value)
    if output is not None:
        write_scorecard(scorecard, fmt.value, output, lang=lang.value, fail_on=junit)
        run = f"run {scorecard.run_id}" if scorecard.run_id is not None else "not recorded"
        typer.echo(f"wrote {output} ({run}, {scorecard.cells.height} cells)", err=True)
    elif fmt is ScorecardFormat.table:
        from citykpi.render.format import Digits
        from citykpi.render.terminal import make_console, print_lines, print_scorecard

        console = make_console()
        shown = scorecard
        if not level and not area and scorecard.cells.height:
            # a thousand streets do not fit a terminal: the table shows city and districts by default
            shown = scorecard.filter(levels=["city", "district"])
            hidden = scorecard.cells.height - shown.cells.height
        else:
            hidden = 0
        digits = Digits.of_catalogue(catalogue.indicators, decimals)
        print_scorecard(
            console, shown, lang=lang.value, group_by=group_by.value, limit=limit, explain=why, digits=digits
        )
        if hidden:
            print_lines(
                console, [f"({hidden} street-level cells not shown: add --level street or --area ID)"]
            )
    else:
        typer.echo(render_text(scorecard, fmt.value, lang=lang.value, fail_on=junit), nl=False)
    if breached:
        raise typer.Exit(int(ExitCode.FAILED))


@app.command("show")
def show_cmd(
    ctx: typer.Context,
    indicator: str = typer.Argument(
        ...,
        help="Indicator id (env.air.aqi) or a name or words that match one indicator (空气质量指数).",
        autocompletion=complete.indicator_ids,
    ),
    area: AreasOpt = [],  # noqa: B006
    from_: str | None = typer.Option(None, "--from", help="History from this date (YYYY-MM-DD)."),
    to: str | None = typer.Option(None, "--to", help="Evaluate as of this date; default the newest data."),
    at_: AtOpt = None,
    period: GrainOpt = Grain.day,
    lang: LangOpt = Lang.zh,
    fmt: TableFormatOpt = TableFormat.table,
    output: OutputOpt = None,
    force: ForceOpt = False,
    decimals: DecimalsOpt = None,
    wait: WaitOpt = 0.0,
) -> None:
    """Drill into one indicator: definition, bands, current colours and why, history table and chart, target.

    Nothing is recorded (the database is opened read-only). A file format exports the history rows.

    Example: citykpi show env.air.aqi --area 500103 --from 2025-12-01 --to 2025-12-31
    """
    from datetime import datetime, time

    import polars as pl

    from citykpi.catalogue import load_catalogue
    from citykpi.engine.evaluate import evaluate
    from citykpi.render.format import sort_history
    from citykpi.warehouse import Warehouse

    cfg = settings(ctx)
    start = parse_day("--from", from_)
    end, at = date_or_instant("--to", to, at_)
    check_destination(ctx, fmt.value, output, force=force)
    catalogue = load_catalogue(cfg.catalogue)
    at = city_instant("--at", at, catalogue)
    indicator = resolve_indicator(catalogue, indicator) or indicator  # an id, or a name matching one
    if indicator not in catalogue.by_id:
        raise unknown_id("indicator", indicator, catalogue.by_id)
    with Warehouse.open(cfg.db, read_only=True, create=False, wait=wait) as wh:
        scorecard = evaluate(
            wh,
            catalogue,
            as_of=end,
            at=at,
            grain=period.value,
            areas=area or None,
            indicator_glob=indicator,
            persist=False,
            history_levels=("city", "district", "street"),
            history_from=start,
        )
        warn_past_data(scorecard)
    # evaluate() already kept the indicator and the areas (groups expanded to their members)
    history = sort_history(scorecard.history)  # the engine leaves it unordered
    if start is not None:  # it reads back further than --from
        since = (
            datetime.combine(start, time()) if history.schema["period_start"] == pl.Datetime("us") else start
        )
        history = history.filter(pl.col("period_start") >= since)
    if fmt is not TableFormat.table:
        emit_frame(history, fmt.value, output)
        return
    from citykpi.render.terminal import make_console, print_indicator

    ind = catalogue.indicator(indicator)
    print_indicator(make_console(), ind, scorecard.cells, history, lang=lang.value, decimals=decimals)


@alerts_app.callback(invoke_without_command=True)
def alerts_cmd(
    ctx: typer.Context,
    date_: str | None = typer.Option(None, "--date", "-d", help="As of this date; default the newest data."),
    at_: AtOpt = None,
    min_colour: Colour = typer.Option(Colour.orange, "--min", help="Least severe colour shown."),
    level: LevelsOpt = [],  # noqa: B006
    area: AreasOpt = [],  # noqa: B006
    period: GrainOpt = Grain.day,
    lang: LangOpt = Lang.zh,
    fail_on: FailOn = typer.Option(
        FailOn.never, "--fail-on", help="Exit 1 when an alert is at or above this colour."
    ),
    runs: RunsOpt = RunSet.scheduled,
    fmt: TableFormatOpt = TableFormat.table,
    output: OutputOpt = None,
    force: ForceOpt = False,
    decimals: DecimalsOpt = None,
    wait: WaitOpt = 0.0,
    early: bool = typer.Option(
        False,
        "--early",
        help="List the cells whose trend reaches --min or worse within its horizon, soonest first "
        "(indicators that declare forecast:); --fail-on then applies to the forecast colour.",
    ),
    everything: bool = typer.Option(
        False,
        "--all",
        help="With --at: also list the cells at or above --min of the indicators without an alert rule.",
    ),
) -> None:
    """What is red or orange now, what is new since the previous run, and how long each has persisted.

    "New" compares with the latest scheduled run (`citykpi run`) of an earlier date and the same
    period (--runs all: any recorded run). Nothing is recorded. With --early, what is heading for
    orange or red instead ("→ red in ~6 days"), soonest first. With --at (an instant) the alert
    rules decide: every area of an indicator with an `alert:` rule that is pending or firing at
    that instant, since when and for how long, its peak and worst colour (hysteresis may hold an
    alert below its colour); --all adds the colour alerts of the other indicators. `citykpi alerts
    history` lists the episodes; the daily job's silences and notification outbox: `alerts
    silences`, `alerts silence add|expire`, `alerts outbox`.

    Example: citykpi alerts --date 2025-12-31 --min orange --level district

    Example: citykpi alerts --at 2025-12-31T10:30 --level district
    """
    if ctx.invoked_subcommand is not None:
        return
    import polars as pl

    from citykpi.catalogue import load_catalogue
    from citykpi.engine.alerting import firing, rules
    from citykpi.engine.evaluate import evaluate
    from citykpi.engine.runs import previous_run
    from citykpi.render.views import alerts
    from citykpi.warehouse import Warehouse

    cfg = settings(ctx)
    as_of, at = date_or_instant("--date", date_, at_)
    check_destination(ctx, fmt.value, output, force=force)
    levels = values(level)
    catalogue = load_catalogue(cfg.catalogue)
    at = city_instant("--at", at, catalogue)
    with Warehouse.open(cfg.db, read_only=True, create=False, wait=wait) as wh:
        scorecard = evaluate(
            wh,
            catalogue,
            as_of=as_of,
            at=at,
            grain=period.value,
            levels=levels or None,
            areas=area or None,
            persist=False,
            history_levels=(),
        )
        warn_past_data(scorecard)
        previous = (
            None
            if early
            else previous_run(
                wh,
                scorecard.as_of,
                catalogue,
                grain=period.value,
                scheduled_only=runs is RunSet.scheduled,
                at=scorecard.at,
            )
        )
        lifecycle, followed = None, [i.id for i in rules(catalogue)]
        if not early and scorecard.at is not None and followed:
            lifecycle = firing(wh, catalogue, scorecard.at, areas=list(scorecard.cells["area_id"].unique()))
    if early:
        _early_alerts(
            scorecard, catalogue, min_colour.value, lang.value, fmt, output, decimals, fail_on.value
        )
        return
    frame = alerts(scorecard, previous, min_colour=min_colour.value, lifecycle=lifecycle, followed=followed)
    if lifecycle is not None and not everything:  # the real-time view: what the alert rules say
        frame = frame.filter(pl.col("state").is_not_null())
    if fmt is TableFormat.table:
        from citykpi.render.format import Digits
        from citykpi.render.terminal import make_console, print_alerts

        print_alerts(
            make_console(),
            frame,
            lang=lang.value,
            min_colour=min_colour.value,
            grain=period.value,
            as_of=scorecard.as_of,
            label=scorecard.label,
            digits=Digits.of_catalogue(catalogue.indicators, decimals),
        )
    else:
        emit_frame(frame, fmt.value, output)
    if scorecard.breaches(fail_on.value):
        raise typer.Exit(int(ExitCode.FAILED))


def _early_alerts(
    scorecard: Scorecard,
    catalogue: Catalogue,
    min_colour: str,
    lang: str,
    fmt: TableFormat,
    output: Path | None,
    decimals: int | None,
    fail_on: str,
) -> None:
    """``alerts --early``: the forecast crossings, soonest first; exit 1 when one reaches ``fail_on``."""
    from citykpi.render.outlook import early_alerts

    frame = early_alerts(scorecard, min_colour=min_colour)
    if fmt is TableFormat.table:
        from citykpi.render.format import Digits
        from citykpi.render.terminal import make_console, print_early_alerts

        print_early_alerts(
            make_console(),
            frame,
            lang=lang,
            min_colour=min_colour,
            as_of=scorecard.as_of,
            digits=Digits.of_catalogue(catalogue.indicators, decimals),
            label=scorecard.label,
        )
    else:
        emit_frame(frame, fmt.value, output)
    if fail_on != "never" and early_alerts(scorecard, min_colour=fail_on).height:
        raise typer.Exit(int(ExitCode.FAILED))


@app.command("rank")
def rank_cmd(
    ctx: typer.Context,
    ref: str = typer.Argument(
        ...,
        help="An indicator id or an index id, or a name or words that match one indicator.",
        autocompletion=complete.indicator_or_index_ids,
    ),
    level: Level = typer.Option(Level.district, "--level", help="The level whose areas are ranked."),
    date_: str | None = typer.Option(None, "--date", "-d", help="As of this date; default the newest data."),
    at_: AtOpt = None,
    period: GrainOpt = Grain.day,
    lang: LangOpt = Lang.zh,
    fmt: TableFormatOpt = TableFormat.table,
    output: OutputOpt = None,
    force: ForceOpt = False,
    decimals: DecimalsOpt = None,
    wait: WaitOpt = 0.0,
) -> None:
    """The league table of areas for an indicator or an index, best first (the quarterly "airing").

    Indicators rank by colour first, then by value in the indicator's good direction; indices by
    score. Ties share a rank; areas without data come last, unranked. A rate built from counts
    (%, per 10k…) also shows each area's 95% interval, whether it lies within the funnel around the
    overall rate (noise) or beyond its 95%/99.8% limits, and the ranks it could hold. Nothing is
    recorded.

    Example: citykpi rank index.operation --level district --period quarter
    """
    from citykpi.catalogue import load_catalogue
    from citykpi.engine.evaluate import evaluate
    from citykpi.render.views import empty_league_reason, league_note, league_table
    from citykpi.warehouse import Warehouse

    cfg = settings(ctx)
    as_of, at = date_or_instant("--date", date_, at_)
    check_destination(ctx, fmt.value, output, force=force)
    catalogue = load_catalogue(cfg.catalogue)
    at = city_instant("--at", at, catalogue)
    ref = resolve_indicator(catalogue, ref, [i.id for i in catalogue.indices]) or ref
    indicator = catalogue.by_id.get(ref)
    index = next((i for i in catalogue.indices if i.id == ref), None)
    if indicator is None and index is None:
        raise unknown_id("indicator or index", ref, [*catalogue.by_id, *(i.id for i in catalogue.indices)])
    with Warehouse.open(cfg.db, read_only=True, create=False, wait=wait) as wh:
        scorecard = evaluate(
            wh,
            catalogue,
            as_of=as_of,
            at=at,
            grain=period.value,
            indicator_glob=ref if indicator is not None else None,
            persist=False,
            history_levels=(),
            parts=indicator is not None,  # a rate built from counts gets intervals and a funnel flag
        )
        warn_past_data(scorecard)
        previous = None
        if index is not None:  # an index's change: its score at the end of the previous period
            from citykpi.engine.calendar import previous_period_end, previous_period_instant

            if scorecard.at is not None:
                before_at = previous_period_instant(period.value, scorecard.at)
                if before_at is not None:
                    previous = evaluate(
                        wh, catalogue, at=before_at, grain=period.value, persist=False, history_levels=()
                    )
            elif (before := previous_period_end(period.value, scorecard.as_of)) is not None:
                previous = evaluate(
                    wh, catalogue, as_of=before, grain=period.value, persist=False, history_levels=()
                )
    direction = indicator.direction if indicator else None
    table = league_table(scorecard, ref, level=level.value, direction=direction, previous=previous)
    if not table.height:
        levels = (indicator or index).levels  # type: ignore[union-attr]  # one of them is set
        message = empty_league_reason(ref, levels, level.value)
        if fmt is TableFormat.table:
            typer.echo(message)
            return
        typer.echo(f"note: {message}", err=True)
    if fmt is not TableFormat.table:
        emit_frame(table, fmt.value, output)
        note = league_note(table, lang=lang.value)
        if note:
            typer.echo(f"note: {note}", err=True)
        return
    from citykpi.render.terminal import make_console, print_league

    name = (indicator or index).name.pick(lang.value)  # type: ignore[union-attr]  # one of them is set
    title = f"{name} · {level.value} · {scorecard.label}"
    places = decimals if decimals is not None else (indicator.decimals if indicator is not None else 1)
    print_league(
        make_console(),
        table,
        title=title,
        lang=lang.value,
        decimals=places,
        direction=indicator.direction if indicator is not None else None,
    )
