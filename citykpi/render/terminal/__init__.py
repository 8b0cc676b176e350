"""Terminal rendering with Rich — the ONLY package of citykpi that imports Rich.

Every function takes a ``Console`` and a result object (a Scorecard, a Polars frame, a model object)
and prints; none computes. Colour is never the only signal: each status also has a glyph and a text
label, so the output reads the same with ``NO_COLOR`` set or when piped.

One module per view: ``common`` (console, status styles, plain frames, progress), ``scorecard``
(``evaluate``), ``detail`` (``show``), ``listings`` (alerts, league tables, diffs, runs, rejects) and
``catalogue`` (``check``, ``catalogue list``).
"""

from citykpi.render.terminal.catalogue import print_diagnostics, print_indicator_list
from citykpi.render.terminal.common import (
    STATUS_LABELS_SHORT,
    STATUS_STYLES,
    make_console,
    print_frame,
    print_lines,
    print_prose,
    start_progress,
    status_cell,
    summary_text,
)
from citykpi.render.terminal.detail import bands_table, describe_bands, print_indicator, vertical_chart
from citykpi.render.terminal.listings import (
    CHANGE_LABELS,
    print_alerts,
    print_diff,
    print_early_alerts,
    print_league,
    print_rejects,
    print_runs,
)
from citykpi.render.terminal.scorecard import indices_table, print_scorecard

__all__ = [
    "CHANGE_LABELS",
    "STATUS_LABELS_SHORT",
    "STATUS_STYLES",
    "bands_table",
    "describe_bands",
    "indices_table",
    "make_console",
    "print_alerts",
    "print_diagnostics",
    "print_diff",
    "print_early_alerts",
    "print_frame",
    "print_indicator",
    "print_indicator_list",
    "print_league",
    "print_lines",
    "print_prose",
    "print_rejects",
    "print_runs",
    "print_scorecard",
    "start_progress",
    "status_cell",
    "summary_text",
    "vertical_chart",
]
