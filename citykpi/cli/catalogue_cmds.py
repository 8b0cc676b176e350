"""Catalogue commands, no data needed: ``check``, ``schema``, ``catalogue list``, ``catalogue docs``."""

from __future__ import annotations

from pathlib import Path

import typer

from citykpi.cli.app import app, settings
from citykpi.cli.options import (
    CheckFormat,
    DocsFormat,
    ForceOpt,
    Kind,
    Lang,
    LangOpt,
    Level,
    ListFormat,
    OutputOpt,
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
) -> None:
    """Check the catalogue without any data: every problem with file:line:col and a rule code.

    Exit 0 when sound, 1 when there are errors (or warnings with --strict), 2 on bad usage, 3 when PATH does not exist. Formats: text (for people), json (schema_version 1), github (workflow annotations), junit (CI test reports).

    Example: citykpi check indicators/ --format github --strict
    """
    from citykpi.catalogue import check_catalogue
    from citykpi.render import diagnostics as plain

    check_output(ctx, output, fmt.value, force=force, catalogues=[path] if path is not None else [])
    result = check_catalogue(path if path is not None else settings(ctx).catalogue)
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
