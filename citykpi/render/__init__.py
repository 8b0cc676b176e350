"""citykpi.render: scorecards for people and machines — exports, the HTML report, report views.

The terminal renderer (``citykpi.render.terminal``) is imported on its own: it is the one module
that imports Rich, so importing this package never pulls Rich in.
"""

from citykpi.render.exporters import EXTENSIONS, FORMATS, TEXT_FORMATS, render_text, write_scorecard
from citykpi.render.html import render_html
from citykpi.render.views import alerts, diff_scorecards, league_table

__all__ = [
    "EXTENSIONS",
    "FORMATS",
    "TEXT_FORMATS",
    "alerts",
    "diff_scorecards",
    "league_table",
    "render_html",
    "render_text",
    "write_scorecard",
]
