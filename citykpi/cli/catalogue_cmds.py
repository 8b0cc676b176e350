"""Catalogue commands, no data needed: ``check``, ``schema``, ``catalogue list``, ``catalogue docs``,
``catalogue import``."""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from pathlib import Path

import typer

from citykpi.cli.app import app, settings
from citykpi.cli.options import (
    CheckFormat,
    DocsFormat,
    ForceOpt,
    Grain,
    GrainOpt,
    Kind,
    Lang,
    LangOpt,
    Level,
    ListFormat,
    OutputOpt,
    WaitOpt,
    parse_day,
)
from citykpi.cli.output import check_output, write_or_echo
from citykpi.errors import ExitCode

catalogue_app = typer.Typer(
    help="Browse the indicator catalogue: list indicators, write the data dictionary.", no_args_is_help=True
)
app.add_typer(catalogue_app, name="catalogue")


@app.command("check")
def check_cmd(
    ctx: typer.Context,
    path: Path | None = typer.Argument(
        None, help="Catalogue folder or file (default: the global --catalogue).", show_default=False
    ),
    fmt: CheckFormat = typer.Option(
        CheckFormat.text, "--format", "-f", help="Output format: text, json, github or junit."
    ),
    strict: bool = typer.Option(False, "--strict", help="Fail (exit 1) on warnings too."),
    output: OutputOpt = None,
    force: ForceOpt = False,
    against: str | None = typer.Option(
        None,
        "--against",
        metavar="REV",
        help="Also show the definition diff against REV: a git revision of the repository holding PATH "
        "(e.g. origin/main), or another catalogue folder or file.",
    ),
    db: Path | None = typer.Option(
        None,
        "--db",
        help="With --against: evaluate both catalogues on this warehouse (read-only, nothing recorded) and "
        "list the cells whose status would change. The global --db, when given, does the same.",
        show_default=False,
    ),
    date_: str | None = typer.Option(
        None, "--date", "-d", help="With --db: evaluate as of this date (default: the newest data)."
    ),
    period: GrainOpt = Grain.day,
    fail_on_change: bool = typer.Option(
        False, "--fail-on-change", help="With --against: exit 1 when a definition or a status changes."
    ),
    wait: WaitOpt = 0.0,
) -> None:
    """Check the catalogue without any data: every problem with file:line:col and a rule code.

    Exit 0 when sound, 1 when there are errors (or warnings with --strict), 2 on bad usage, 3 when PATH does not exist. Formats: text (for people), json (schema_version 1), github (workflow annotations), junit (CI test reports).

    With --against REV it also prints the definition diff: indicators, indices, groups and sources added, removed and changed, field by field (old → new). With --db (and --date, --period) it evaluates the old and the new definitions on the warehouse and lists the cells whose status would change, with counts per transition. The diff is information: the exit code is the check's, unless --fail-on-change. See docs/catalogue.md, "Reviewing a change".

    Example: citykpi check indicators/ --format github --strict

    Example: citykpi check indicators/ --against origin/main --db city.duckdb --date 2025-12-31
    """
    from citykpi.catalogue import check_catalogue
    from citykpi.errors import UsageError
    from citykpi.render import diagnostics as plain

    cfg = settings(ctx)
    as_of = parse_day("--date", date_)
    warehouse = db if db is not None else _explicit_global_db(ctx)
    if against is None and (db is not None or date_ is not None or fail_on_change):
        raise UsageError("--db, --date and --fail-on-change of check need --against REV")
    if against is None and period is not Grain.day:
        raise UsageError("--period of check needs --against REV and --db")
    if warehouse is None and (date_ is not None or period is not Grain.day):
        raise UsageError("--date and --period of check need a warehouse: give --db FILE")
    # --output may replace neither catalogue nor the warehouse the review reads
    protect = [p for p in (path, warehouse, Path(against) if against else None) if p is not None]
    check_output(ctx, output, fmt.value, force=force, catalogues=protect)
    if against is not None:
        _check_against(
            path if path is not None else cfg.catalogue,
            against,
            fmt=fmt,
            strict=strict,
            output=output,
            db=warehouse,
            as_of=as_of,
            grain=period.value,
            fail_on_change=fail_on_change,
            wait=wait,
        )
        return
    result = check_catalogue(path if path is not None else cfg.catalogue)
    if fmt is CheckFormat.text and output is None:
        from citykpi.render.terminal import make_console, print_diagnostics

        print_diagnostics(make_console(), result)
    else:
        renderers = {
            CheckFormat.text: lambda: plain.diagnostics_text(result),
            CheckFormat.json: lambda: plain.diagnostics_json(result, strict=strict),
            CheckFormat.github: lambda: plain.diagnostics_github(result),
            CheckFormat.junit: lambda: plain.diagnostics_junit(result, strict=strict),
        }
        write_or_echo(renderers[fmt](), output)
        if output is not None:
            typer.echo(f"{plain.summary_line(result)} (report written to {output})")
    raise typer.Exit(int(ExitCode.OK) if result.ok(strict) else int(ExitCode.FAILED))


def _explicit_global_db(ctx: typer.Context) -> Path | None:
    """The global --db when it was given on the command line (its default and CITYKPI_DB do not count:
    a CI job that exports CITYKPI_DB should not start evaluating in `check`)."""
    source = ctx.find_root().get_parameter_source("db")
    if source is not None and source.name == "COMMANDLINE":  # Click's ParameterSource, by name
        return settings(ctx).db
    return None


def _check_against(
    path: Path,
    against: str,
    *,
    fmt: CheckFormat,
    strict: bool,
    output: Path | None,
    db: Path | None,
    as_of: date | None,
    grain: str,
    fail_on_change: bool,
    wait: float,
) -> None:
    """``check --against``: the check of PATH, then the review of the change (render/review.py)."""
    from citykpi.render import diagnostics as plain
    from citykpi.render import review as rv
    from citykpi.review import review_catalogue

    review = review_catalogue(path, against, db=db, as_of=as_of, grain=grain, wait=wait)
    result = review.check
    if fmt is CheckFormat.text and output is None:
        from citykpi.render.terminal import make_console, print_diagnostics

        print_diagnostics(make_console(), result)
        typer.echo(rv.review_text(review), nl=False)
    else:
        renderers = {
            CheckFormat.text: lambda: plain.diagnostics_text(result) + rv.review_text(review),
            CheckFormat.json: lambda: rv.review_json(plain.diagnostics_json(result, strict=strict), review),
            CheckFormat.github: lambda: plain.diagnostics_github(result) + rv.review_github(review),
            CheckFormat.junit: lambda: rv.review_junit(
                plain.diagnostics_junit(result, strict=strict), review, fail_on_change=fail_on_change
            ),
        }
        write_or_echo(renderers[fmt](), output)
        if output is not None:
            typer.echo(f"{plain.summary_line(result)} (report written to {output})")
    failed = not result.ok(strict) or (fail_on_change and review.changed)
    raise typer.Exit(int(ExitCode.FAILED) if failed else int(ExitCode.OK))


@app.command("schema")
def schema_cmd(ctx: typer.Context, output: OutputOpt = None, force: ForceOpt = False) -> None:
    """Print the JSON Schema (draft 2020-12) of the catalogue YAML format, for editors and CI.

    Its $id names the catalogue's schema_version (https://citykpi.org/schema/catalogue/v1.json); point an editor at the written file with a "# yaml-language-server: $schema=PATH" first line (docs/ci.md).

    Example: citykpi schema --output schema/catalogue.schema.json
    """
    from citykpi.catalogue.jsonschema import catalogue_schema_json

    check_output(ctx, output, "json", force=force)
    write_or_echo(catalogue_schema_json(), output)
    if output is not None:
        typer.echo(f"Wrote the catalogue JSON Schema to {output}")


@catalogue_app.command("list")
def catalogue_list_cmd(
    ctx: typer.Context,
    domain: str | None = typer.Option(None, "--domain", help="Only this domain (e.g. environment)."),
    kind: Kind | None = typer.Option(None, "--kind", help="Only this kind of indicator."),
    tag: str | None = typer.Option(None, "--tag", help="Only indicators with this tag."),
    level: Level | None = typer.Option(None, "--level", help="Only indicators reported at this level."),
    fmt: ListFormat = typer.Option(ListFormat.text, "--format", "-f", help="Output format."),
    lang: LangOpt = Lang.zh,
) -> None:
    """List the catalogue's indicators, filtered by domain, kind, tag or level.

    Example: citykpi catalogue list --domain environment --level district --format csv
    """
    from citykpi.catalogue import load_catalogue
    from citykpi.catalogue.docs import indicator_rows
    from citykpi.render import diagnostics as plain

    catalogue = load_catalogue(settings(ctx).catalogue)
    rows = indicator_rows(
        catalogue,
        domain=domain,
        kind=kind.value if kind is not None else None,
        tag=tag,
        level=level.value if level is not None else None,
    )
    if fmt is ListFormat.json:
        typer.echo(plain.rows_json(rows), nl=False)
    elif fmt is ListFormat.csv:
        typer.echo(plain.rows_csv(rows), nl=False)
    else:
        from citykpi.render.terminal import make_console, print_indicator_list

        print_indicator_list(make_console(), rows, lang=lang.value)


@catalogue_app.command("search")
def catalogue_search_cmd(
    ctx: typer.Context,
    query: str = typer.Argument(
        ..., help="Words to find (all of them): an id, a name in Chinese or English, a tag."
    ),
    limit: int = typer.Option(20, "--limit", "-n", min=1, help="At most this many indicators."),
    fmt: ListFormat = typer.Option(ListFormat.text, "--format", "-f", help="Output format."),
    lang: LangOpt = Lang.zh,
) -> None:
    """Find indicators by id, Chinese or English name, tag, domain, owner or description, best match first.

    Exit 0 when something matches, 1 when nothing does.

    Example: citykpi catalogue search 燃气 · citykpi catalogue search "gas leak"
    """
    from citykpi.catalogue import load_catalogue
    from citykpi.catalogue.docs import indicator_rows
    from citykpi.catalogue.search import search
    from citykpi.render import diagnostics as plain

    catalogue = load_catalogue(settings(ctx).catalogue)
    hits = search(catalogue, query, limit=limit)
    by_id = {r["id"]: r for r in indicator_rows(catalogue)}
    rows = [{**by_id[h.indicator.id], "score": h.score, "matched": list(h.fields)} for h in hits]
    if fmt is ListFormat.json:
        typer.echo(plain.rows_json(rows), nl=False)
    elif fmt is ListFormat.csv:
        typer.echo(plain.rows_csv(rows), nl=False)
    else:
        from citykpi.render.terminal import make_console, print_indicator_list

        if rows:
            print_indicator_list(
                make_console(), rows, lang=lang.value, title=f"{len(rows)} indicators match {query!r}"
            )
        else:
            typer.echo(f"no indicator matches {query!r} (search looks in ids, names, tags, domains, owners)")
    if not hits:
        raise typer.Exit(int(ExitCode.FAILED))


@catalogue_app.command("docs")
def catalogue_docs_cmd(
    ctx: typer.Context,
    fmt: DocsFormat = typer.Option(
        DocsFormat.md, "--format", "-f", help="md (Markdown) or html (one self-contained page)."
    ),
    output: OutputOpt = None,
    force: ForceOpt = False,
) -> None:
    """Write the data dictionary: one section per domain, a row per indicator (names, unit, bands, target).

    Example: citykpi catalogue docs --format html --output catalogue.html
    """
    from citykpi.catalogue import load_catalogue
    from citykpi.catalogue.docs import data_dictionary_html, data_dictionary_markdown

    check_output(ctx, output, fmt.value, force=force)
    catalogue = load_catalogue(settings(ctx).catalogue)
    text = data_dictionary_html(catalogue) if fmt is DocsFormat.html else data_dictionary_markdown(catalogue)
    write_or_echo(text, output)
    if output is not None:
        typer.echo(f"Wrote the data dictionary of {len(catalogue.indicators)} indicators to {output}")


class ImportKind(StrEnum):
    """What ``catalogue import`` reads."""

    open_sdg = "open-sdg"


@catalogue_app.command("import")
def catalogue_import_cmd(
    ctx: typer.Context,
    kind: ImportKind = typer.Argument(..., help="The kind of repository: open-sdg."),
    path: Path = typer.Argument(..., help="The repository folder (with meta/ and data/)."),
    output: Path = typer.Option(
        ..., "--output", "-o", help="A new (or empty) folder for the catalogue, feeds, areas and report."
    ),
) -> None:
    """Turn an Open SDG data repository into a catalogue, its ingest feeds and an areas file.

    Each meta/<id>.md and data/indicator_<id>.csv pair becomes an indicator (one per Units series),
    goal as domain, goal and target as tags, and a feed that reads the file as published (Year,
    Value, every other column a breakdown dimension, empty values recorded as missing); each
    geographical coverage becomes a top-level area. The folder gets indicators/*.yaml, areas.csv and
    import-report.md (data files without metadata, metadata without data, what was skipped, the
    unit guesses), written all at once; an existing non-empty folder is never overwritten.

    Exit codes: 0 written; 2 the output folder exists and is not empty (or is the catalogue in use);
    3 PATH is not an Open SDG repository.

    Example: citykpi catalogue import open-sdg open-sdg-data-starter --output la-catalogue
    """
    from citykpi.catalogue.opensdg import import_open_sdg, write_import

    cfg = settings(ctx)
    report = import_open_sdg(path, output=output)
    folder = write_import(report, output, protected=[cfg.catalogue, cfg.db])
    typer.echo(
        f"Imported {report.indicators} indicators, {report.feeds} feeds and {report.areas} areas into {folder}; "
        f"{len(report.data_without_meta)} data files without metadata, {len(report.meta_without_data)} "
        f"metadata files without data, {len(report.skipped)} skipped (see {folder / 'import-report.md'})"
    )
    typer.echo("Next, load the areas and ingest the data:\n" + "\n".join(f"  {c}" for c in report.commands()))
