"""The command line: thin commands over the library.

Each command parses its options, makes one library call, renders the result and maps it to an exit
code. The modules:

- ``app``: the Typer app, the global options (:class:`Settings`), the single error boundary
  (``_ErrorBoundary``: a ``CitykpiError`` becomes ``Error: …`` on stderr and its exit code;
  ``--debug`` shows the traceback instead) and ``main``, the console-script entry point;
- ``options``: the options shared by the commands, declared once, their vocabularies as Enums;
- ``output``: where results go (terminal, stdout, or a file written atomically);
- ``catalogue_cmds``: check, schema, catalogue list/docs;
- ``warehouse_cmds``: areas load, ingest, db info/rejects, query, test;
- ``evaluate_cmds``: evaluate, show, alerts, rank;
- ``quality_cmds``: quality (the data-quality scorecard);
- ``runs_cmds``: diff, runs list/prune, run (the daily job).
"""

# The commands register themselves on import, in the order `citykpi --help` lists them.
# isort: off
from citykpi.cli import catalogue_cmds, warehouse_cmds, evaluate_cmds, quality_cmds, runs_cmds

# isort: on
from citykpi.cli.app import Settings, app, main, settings

__all__ = [
    "Settings",
    "app",
    "catalogue_cmds",
    "evaluate_cmds",
    "main",
    "quality_cmds",
    "runs_cmds",
    "settings",
    "warehouse_cmds",
]
