"""The ``alerts`` group: the alert episodes, silences and maintenance windows, and the notification outbox.

``citykpi alerts`` itself (what is red or orange now) is in ``evaluate_cmds``; its subcommands here:
``alerts history`` (the episodes of the alert lifecycle) and what the daily job's notifiers are
told: ``alerts silences``, ``alerts silence add``, ``alerts silence expire``, ``alerts outbox`` and
``alerts outbox retry|drop``.
"""

from __future__ import annotations

import getpass
from datetime import timedelta

import typer

from citykpi.cli.app import app, settings
from citykpi.cli.options import (
    AreasOpt,
    AtOpt,
    DecimalsOpt,
    ForceOpt,
    IndicatorGlobOpt,
    Lang,
    LangOpt,
    OutputOpt,
    TableFormat,
    TableFormatOpt,
    WaitOpt,
    city_instant,
    day_or_instant,
    parse_instant,
)
from citykpi.cli.output import check_destination, emit_frame

alerts_app = typer.Typer(no_args_is_help=False)  # its help is the view's (evaluate_cmds.alerts_cmd)
app.add_typer(alerts_app, name="alerts")
silence_app = typer.Typer(
    help="Add or end a silence (or maintenance window). Example: citykpi alerts silence add --help",
    no_args_is_help=True,
)
alerts_app.add_typer(silence_app, name="silence")


@alerts_app.command("history")
def alerts_history_cmd(
    ctx: typer.Context,
    at_: AtOpt = None,
    from_: str | None = typer.Option(
        None, "--from", help="Only episodes still open at or started after this date or instant."
    ),
    indicator: IndicatorGlobOpt = None,
    area: AreasOpt = [],  # noqa: B006
    state: list[str] = typer.Option(
        [], "--state", help="Only this stage: pending, firing, resolved, cancelled (repeatable)."
    ),
    lang: LangOpt = Lang.zh,
    fmt: TableFormatOpt = TableFormat.table,
    output: OutputOpt = None,
    force: ForceOpt = False,
    decimals: DecimalsOpt = None,
    wait: WaitOpt = 0.0,
) -> None:
    """The alert episodes of the indicators with an alert rule, newest first: pending from, firing
    from, resolved (or cancelled) at, how long, peak and worst colour.

    As of --at (default: the newest reading), replayed from the readings, so any past instant shows
    what was known then; nothing is recorded. Minutes to fire and to resolve are in the file formats.

    Example: citykpi alerts history --from 2025-12-31 --indicator 'gas.*' --format csv -o episodes.csv
    """
    from fnmatch import fnmatchcase

    from citykpi.catalogue import load_catalogue
    from citykpi.engine.alerting import episodes
    from citykpi.warehouse import Warehouse

    cfg = settings(ctx)
    at = parse_instant("--at", at_)
    since = day_or_instant("--from", from_)
    check_destination(ctx, fmt.value, output, force=force)
    catalogue = load_catalogue(cfg.catalogue)
    at = city_instant("--at", at, catalogue)
    since = city_instant("--from", since, catalogue)
    ids = [i.id for i in catalogue.indicators if indicator is None or fnmatchcase(i.id, indicator)]
    with Warehouse.open(cfg.db, read_only=True, create=False, wait=wait) as wh:
        frame = episodes(
            wh, catalogue, at=at, indicators=ids, areas=area or None, since=since, states=state or None
        )
    if fmt is not TableFormat.table:
        emit_frame(frame, fmt.value, output)
        return
    from citykpi.engine.calendar import format_instant
    from citykpi.render.format import Digits
    from citykpi.render.terminal import make_console, print_episodes

    print_episodes(
        make_console(),
        frame,
        lang=lang.value,
        label=None if at is None else format_instant(at),
        digits=Digits.of_catalogue(catalogue.indicators, decimals),
    )


@alerts_app.command("silences")
def silences_cmd(
    ctx: typer.Context,
    include_expired: bool = typer.Option(False, "--all", help="Also the silences that have ended."),
    fmt: TableFormatOpt = TableFormat.table,
    output: OutputOpt = None,
    force: ForceOpt = False,
    wait: WaitOpt = 0.0,
) -> None:
    """List the silences and maintenance windows the daily job obeys: what each matches, until when, why.

    State: active (holding notifications back now), waiting (a recurring window outside its hours),
    pending (not begun) or expired (with --all). Times are shown in each silence's time zone.

    Example: citykpi alerts silences --format json
    """
    from citykpi.daily import clock
    from citykpi.notify.silences import list_silences
    from citykpi.warehouse import Warehouse

    check_destination(ctx, fmt.value, output, force=force)
    with Warehouse.open(settings(ctx).db, read_only=True, create=False, wait=wait) as wh:
        frame = list_silences(wh, now=clock.now(), include_expired=include_expired)
    if fmt is not TableFormat.table:
        emit_frame(frame, fmt.value, output)
        return
    from citykpi.render.terminal import make_console, print_frame
    from citykpi.render.views import silences_table

    shown = silences_table(frame)
    what = "silences (all)" if include_expired else "silences in force or to come"
    print_frame(make_console(), shown, title=f"{frame.height} {what}")


@silence_app.command("add")
def silence_add_cmd(
    ctx: typer.Context,
    indicator: IndicatorGlobOpt = None,
    area: str | None = typer.Option(None, "--area", help="An area id: it and every area below it."),
    owner: str | None = typer.Option(None, "--owner", help="The indicators' owner (department)."),
    domain: str | None = typer.Option(None, "--domain", help="The indicators' domain."),
    until: str | None = typer.Option(
        None, "--until", help="Expiry: YYYY-MM-DDTHH:MM, or a date (silenced through that day)."
    ),
    for_: str | None = typer.Option(
        None, "--for", help="Expiry as a duration from the start: 90m, 36h, 2d, 1w."
    ),
    start: str | None = typer.Option(None, "--from", help="Start (default now): YYYY-MM-DDTHH:MM or a date."),
    every: str | None = typer.Option(
        None,
        "--every",
        help="A recurring maintenance window within the span: 'sun 02:00-06:00', 'mon-fri 18:00-08:00'.",
    ),
    reason: str = typer.Option(..., "--reason", help="Why (shown by `alerts silences`)."),
    by: str | None = typer.Option(None, "--by", help="Who adds it (default: the login name)."),
    timezone: str | None = typer.Option(
        None, "--timezone", help="Zone of the times and window (default: this machine's; use the city's)."
    ),
    wait: WaitOpt = 0.0,
) -> None:
    """Hold back the daily job's notifications of matching alerts until an expiry, with a reason.

    A silence matches by indicator glob, area (and the areas below it), owner and/or domain: all
    that are given. Alerts it holds back are announced when it ends, if they still fire; a
    resolution of something already announced is always sent.

    Example: citykpi alerts silence add --indicator 'safety.gas.*' --area 500106 --for 2d --reason "pipe repair"
    """
    from citykpi.daily import clock
    from citykpi.errors import UsageError
    from citykpi.notify.silences import add_silence, parse_time
    from citykpi.warehouse import Warehouse

    if (until is None) == (for_ is None):
        raise UsageError("give the expiry: --until TIME or --for DURATION (one of them)")
    zone = clock.zone(timezone)
    now = clock.now(zone)
    begins = parse_time(start, zone, end_of_day=False) if start else now
    if until is not None:
        ends = parse_time(until, zone, end_of_day=True)
    else:
        from citykpi.catalogue.parser.reader import parse_duration

        span = parse_duration(str(for_))
        if span is None or span <= timedelta(0):
            raise UsageError(f"--for {for_!r}: expected a duration such as 90m, 36h, 2d or 1w")
        ends = begins + span
    _check_matchers(ctx, indicator, owner, domain)
    with Warehouse.open(settings(ctx).db, create=False, wait=wait) as wh:
        silence = add_silence(
            wh,
            reason=reason,
            starts_at=begins,
            ends_at=ends,
            now=now,
            indicator=indicator,
            area_id=area,
            owner=owner,
            domain=domain,
            every=every,
            timezone=clock.zone_name(zone),
            created_by=by or _login(),
        )
    local = silence.ends_at.astimezone(zone).isoformat(timespec="minutes")
    window = f", during {silence.every}" if silence.every else ""
    typer.echo(
        f"silence {silence.silence_id}: {silence.matchers()} until {local}{window} ({silence.state(now)})"
    )


def _login() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return None


def _check_matchers(ctx: typer.Context, indicator: str | None, owner: str | None, domain: str | None) -> None:
    """A glob, owner or domain that matches nothing in the catalogue is a typo: say so."""
    import fnmatch

    from citykpi.catalogue import load_catalogue
    from citykpi.errors import CitykpiError, UsageError

    try:
        catalogue = load_catalogue(settings(ctx).catalogue)
    except CitykpiError:
        return  # no catalogue to check against: the silence is still recorded
    inds = catalogue.indicators
    if indicator and not any(fnmatch.fnmatchcase(i.id, indicator) for i in inds):
        raise UsageError(f"--indicator {indicator!r} matches no indicator of the catalogue")
    if owner and not any(i.owner == owner for i in inds):
        raise UsageError(f"--owner {owner!r} owns no indicator of the catalogue")
    if domain and not any(i.domain == domain for i in inds):
        raise UsageError(f"--domain {domain!r} is not a domain of the catalogue")


@silence_app.command("expire")
def silence_expire_cmd(
    ctx: typer.Context,
    silence_id: int = typer.Argument(..., help="The silence's id (`citykpi alerts silences`)."),
    wait: WaitOpt = 0.0,
) -> None:
    """End a silence now: the alerts it held back are announced by the next run if they still fire.

    Example: citykpi alerts silence expire 3
    """
    from citykpi.daily import clock
    from citykpi.notify.silences import expire_silence
    from citykpi.warehouse import Warehouse

    with Warehouse.open(settings(ctx).db, create=False, wait=wait) as wh:
        silence = expire_silence(wh, silence_id, now=clock.now())
    typer.echo(f"silence {silence.silence_id} ended ({silence.matchers()}; reason: {silence.reason})")


outbox_app = typer.Typer(no_args_is_help=False)
alerts_app.add_typer(outbox_app, name="outbox")


@outbox_app.callback(invoke_without_command=True)
def outbox_cmd(
    ctx: typer.Context,
    include_delivered: bool = typer.Option(False, "--all", help="Also the delivered and dropped digests."),
    limit: int = typer.Option(50, "--limit", "-n", min=1, help="How many digests, newest first."),
    fmt: TableFormatOpt = TableFormat.table,
    output: OutputOpt = None,
    force: ForceOpt = False,
    wait: WaitOpt = 0.0,
) -> None:
    """The daily job's digests not delivered yet, newest first: pending (retried by the next run),
    sending (a run was stopped while delivering it: the next run sends it again) and dead (the
    receiver refused it for good: `alerts outbox retry KEY` once it is fixed, or `drop KEY`).

    Example: citykpi alerts outbox --all -n 10
    """
    if ctx.invoked_subcommand is not None:
        return
    from citykpi.notify.outbox import outbox
    from citykpi.warehouse import Warehouse

    check_destination(ctx, fmt.value, output, force=force)
    with Warehouse.open(settings(ctx).db, read_only=True, create=False, wait=wait) as wh:
        frame = outbox(wh, include_delivered=include_delivered, limit=limit)
    if fmt is not TableFormat.table:
        emit_frame(frame, fmt.value, output)
        return
    from citykpi.render.terminal import make_console, print_frame
    from citykpi.render.views import outbox_table

    what = "digests" if include_delivered else "digests not delivered"
    print_frame(make_console(), outbox_table(frame), title=f"{frame.height} {what}")


def _act(ctx: typer.Context, key: str, action: str, by: str | None, reason: str | None, notifier: str | None,
         wait: float) -> None:  # fmt: skip
    from citykpi.daily import clock
    from citykpi.notify.outbox import act
    from citykpi.warehouse import Warehouse

    with Warehouse.open(settings(ctx).db, create=False, wait=wait) as wh:
        done = act(wh, key, action, by=by or _login(), reason=reason, now=clock.now(), notifier=notifier)
    day = done.as_of.isoformat() if done.as_of else "?"
    what = "the next run delivers it" if action == "retry" else "it will not be sent"
    typer.echo(
        f"{done.action}: digest {done.digest_key} to {done.notifier} ({done.items} item(s) of {day}): "
        f"{done.before} → {done.after}; {what}"
    )


NotifierOpt = typer.Option(None, "--notifier", help="The digest's notifier (when a key start names several).")


@outbox_app.command("retry")
def outbox_retry_cmd(
    ctx: typer.Context,
    key: str = typer.Argument(..., help="The digest's key (or a unique start of it), from `alerts outbox`."),
    reason: str | None = typer.Option(None, "--reason", help="Why (kept with the digest)."),
    by: str | None = typer.Option(None, "--by", help="Who (default: the login name)."),
    notifier: str | None = NotifierOpt,
    wait: WaitOpt = 0.0,
) -> None:
    """Put a dead (refused for good) or dropped digest back in the outbox: the next run delivers it first.

    Who, when and why are kept with the digest (`alerts outbox --all --format json`).

    Example: citykpi alerts outbox retry citykpi-0c0a77f9 --reason "token renewed"
    """
    _act(ctx, key, "retry", by, reason, notifier, wait)


@outbox_app.command("drop")
def outbox_drop_cmd(
    ctx: typer.Context,
    key: str = typer.Argument(..., help="The digest's key (or a unique start of it), from `alerts outbox`."),
    reason: str = typer.Option(..., "--reason", help="Why it is not sent (kept with the digest)."),
    by: str | None = typer.Option(None, "--by", help="Who (default: the login name)."),
    notifier: str | None = NotifierOpt,
    wait: WaitOpt = 0.0,
) -> None:
    """Set a waiting or dead digest aside for good: no run sends it. Its alerts still count as told.

    Who, when and why are kept with the digest; `alerts outbox retry KEY` undoes it.

    Example: citykpi alerts outbox drop citykpi-0c0a77f9 --reason "endpoint retired"
    """
    _act(ctx, key, "drop", by, reason, notifier, wait)
