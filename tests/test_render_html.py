"""The self-contained HTML report: structure, escaping, no external resources, headless Chromium."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from html.parser import HTMLParser
from pathlib import Path

import polars as pl
import pytest

from citykpi.catalogue.model import SEVERITY
from citykpi.engine.scorecard import CELL_SCHEMA, HISTORY_SCHEMA, Scorecard
from citykpi.render import exporters
from citykpi.render.html import DETAIL_LIMIT, EXCEPTION_STATUSES, render_html, sparkline_svg
from tests.scorecard_fixtures import AS_OF, make_indices, make_scorecard

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
HOSTILE = "<script>alert('x')</script>"


class _Collector(HTMLParser):
    """Collects tags, ids, attribute URLs and text."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.ids: list[str] = []
        self.urls: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        for key, value in attrs:
            if key == "id" and value:
                self.ids.append(value)
            if key in ("src", "href", "xlink:href", "action") and value:
                self.urls.append(value)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(text: str) -> _Collector:
    """Parse an HTML document."""
    c = _Collector()
    c.feed(text)
    return c


def test_structure() -> None:
    doc = render_html(make_scorecard(), lang="zh")
    c = parse(doc)
    for section in (
        "summary",
        "legend",
        "indices",
        "domain-environment",
        "domain-service",
        "domain-utilities",
    ):
        assert section in c.ids
    assert "league-index-operation" in c.ids and "league-index-health" in c.ids
    assert c.tags.count("svg") >= 9 + 6  # sparklines for cells with history, score bars
    assert "空气质量指数" in doc and "■ 红" in doc
    assert "@media print" in doc


@pytest.mark.parametrize("detail_limit", [DETAIL_LIMIT, 0])
def test_no_scripts_and_no_network(detail_limit: int) -> None:
    doc = render_html(make_scorecard(rename={"env.air.aqi": HOSTILE}), lang="en", detail_limit=detail_limit)
    c = parse(doc)
    assert "script" not in c.tags and "link" not in c.tags and "img" not in c.tags and "iframe" not in c.tags
    assert c.urls == []
    assert not re.search(r"https?://|url\(|@import|@font-face", doc)
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in doc
    assert HOSTILE in "".join(c.text)  # shown as text


@pytest.mark.parametrize("detail_limit", [DETAIL_LIMIT, 0])
def test_escaping_in_attributes_and_ids(detail_limit: int) -> None:
    sc = make_scorecard()
    sc = type(sc)(
        as_of=sc.as_of,
        grain=sc.grain,
        cells=sc.cells.with_columns(
            sc.cells.get_column("domain").str.replace("environment", '"><b onmouseover=x>'),
            sc.cells.get_column("explanation").str.replace("red", '" onclick="x'),
        ),
        indices=sc.indices,
        history=sc.history,
    )
    doc = render_html(sc, lang="en", detail_limit=detail_limit)
    c = parse(doc)
    assert "b" not in c.tags
    assert 'onclick="x' not in doc and "onmouseover=x>" not in doc


def test_deterministic() -> None:
    assert render_html(make_scorecard(run_id=1)) == render_html(make_scorecard(run_id=99))


def test_sparkline_gaps() -> None:
    svg = sparkline_svg([1.0, None, 3.0, 4.0])
    # one path with one run (3.0 → 4.0), a dot for the lone 1.0 and one on the last value
    assert svg.count("<path") == 1 and svg.count("M") == 1 and svg.count("<circle") == 2
    assert sparkline_svg([1.0, None, 3.0, None, 5.0, 6.0]).count("M") == 1
    assert sparkline_svg([1.0, 2.0, None, 3.0, 4.0]).count("M") == 2
    assert sparkline_svg([None, None]) == ""
    assert 'class="spark k-red"' in sparkline_svg([1.0, 2.0], status="red")
    assert "aria-label" not in sparkline_svg([1.0, 2.0], label=False)


def _section(doc: str, section_id: str) -> str:
    start = doc.index(f'<section id="{section_id}"')
    return doc[start : doc.index("</section>", start)]


def test_compact_layout_lists_every_exception() -> None:
    """Above the detail limit: exceptions with reasons, city rows in full, matrices for the districts."""
    sc = make_scorecard()
    doc = render_html(sc, lang="zh", detail_limit=0)
    c = parse(doc)
    for section in ("summary", "legend", "indices", "exceptions", "domain-environment", "domain-utilities"):
        assert section in c.ids
    assert doc.index('id="indices"') < doc.index('id="exceptions"') < doc.index('class="domain"')
    exceptions = _section(doc, "exceptions")
    listed = sc.cells.filter(pl.col("status").is_in(list(EXCEPTION_STATUSES)))
    assert listed.height and exceptions.count("<tr") == listed.height + sum(
        1 for s in EXCEPTION_STATUSES if s in listed.get_column("status").to_list()
    )  # one row per cell plus a header row per status table
    for explanation in listed.get_column("explanation").to_list():
        assert explanation in exceptions
    # every non-green district cell carries its reason as a tooltip; green cells carry none
    for row in sc.cells.filter(pl.col("level") == "district").iter_rows(named=True):
        tip = f'title="{row["explanation"]}"'
        assert (tip in doc) == (row["status"] != "green"), row
    assert '<table class="mx">' in doc and "空气质量指数" in doc and "■ 红" in doc
    assert "<svg" in doc  # city sparklines and index bars stay
    assert render_html(sc, lang="en", detail_limit=0) == render_html(
        make_scorecard(run_id=99), lang="en", detail_limit=0
    )


def large_scorecard(indicators: int = 2_000, areas: int = 42, days: int = 9) -> Scorecard:
    """A city-scale scorecard built in memory: indicators × (city + districts), ~40% not green.

    The first tenth of the indicators is green everywhere (summarised in one line per matrix).
    """
    ind = pl.DataFrame(
        {
            "indicator_id": [f"dom{i % 15:02d}.g{i // 100:02d}.i{i:04d}" for i in range(indicators)],
            "name_zh": [f"指标{i:04d}" for i in range(indicators)],
            "name_en": [f"Indicator {i:04d}" for i in range(indicators)],
            "domain": [f"dom{i % 15:02d}" for i in range(indicators)],
            "unit": [("%", "index", "persons", "µg/m³", "cases")[i % 5] for i in range(indicators)],
            "__i": list(range(indicators)),
        }
    )
    area = pl.DataFrame(
        {
            "area_id": [str(500000 + a) for a in range(areas)],
            "level": ["city" if a == 0 else "district" for a in range(areas)],
            "area_name_zh": ["重庆市" if a == 0 else f"第{a:02d}区" for a in range(areas)],
            "area_name_en": ["Chongqing" if a == 0 else f"District {a:02d}" for a in range(areas)],
            "__a": list(range(areas)),
        }
    )
    statuses = ["green"] * 12 + ["blue"] * 3 + ["yellow"] * 2 + ["orange", "red", "stale"]
    hashed = ((pl.col("__i") * 31 + pl.col("__a") * 17) % len(statuses)).cast(pl.Int64)
    status = (
        pl.when(pl.col("__i") < indicators // 10)
        .then(pl.lit("green"))
        .otherwise(hashed.replace_strict(list(range(len(statuses))), statuses, return_dtype=pl.String))
    )
    cells = (
        ind.join(area, how="cross")
        .with_columns(
            status.alias("status"),
            (100 + pl.col("__i") % 97 + pl.col("__a") * 1.3).round(1).alias("value"),
        )
        .with_columns(
            pl.col("status")
            .replace_strict(dict(SEVERITY), default=None, return_dtype=pl.Int8)
            .alias("severity"),
            pl.format(
                "{}: {} {} > {} ({} above {})",
                pl.col("status"),
                pl.col("value"),
                pl.col("unit"),
                (pl.col("value") - 3).round(1),
                pl.col("status"),
                (pl.col("value") - 3).round(1),
            ).alias("explanation"),
            (pl.col("value") * 0.97).round(1).alias("previous_value"),
            pl.lit(3.1).alias("change_previous"),
            pl.lit(-1.2).alias("change_last_year"),
            pl.lit("percent").alias("change_unit"),
            pl.lit("kpi").alias("kind"),
            pl.lit("guidance").alias("tier"),
            pl.lit(AS_OF).alias("period_start"),
            pl.lit(AS_OF).alias("period_end"),
        )
    )
    cells = cells.select(
        [
            pl.col(name).cast(dtype) if name in cells.columns else pl.lit(None, dtype=dtype).alias(name)
            for name, dtype in CELL_SCHEMA.items()
        ]
    )
    history = (
        cells.select("indicator_id", "area_id", "value")
        .join(pl.DataFrame({"d": list(range(days))}), how="cross")
        .select(
            "indicator_id",
            "area_id",
            (pl.lit(AS_OF) - pl.duration(days=days - 1 - pl.col("d"))).cast(pl.Date).alias("period_start"),
            (pl.col("value") * (1 + (pl.col("d") % 4) * 0.02)).alias("value"),
        )
        .select([pl.col(n).cast(t) for n, t in HISTORY_SCHEMA.items()])
    )
    return Scorecard(as_of=AS_OF, grain="day", cells=cells, indices=make_indices(), history=history)


#: Byte budget of the large scorecard's report: 2,000 indicators × 42 areas = 84,000 cells in at
#: most 9 MB (~107 bytes a cell). The one-row-per-cell layout took ~740 bytes a cell (165 MB at
#: city scale, 226k cells); the compact one takes ~84.
LARGE_BUDGET_BYTES = 9_000_000


def test_large_scorecard_fits_the_byte_budget(tmp_path: Path) -> None:
    sc = large_scorecard()
    assert sc.cells.height == 84_000
    started = time.perf_counter()
    path = exporters.write_scorecard(sc, "html", tmp_path / "large.html", lang="zh")
    seconds = time.perf_counter() - started
    size = path.stat().st_size
    assert size <= LARGE_BUDGET_BYTES, f"{size:,} bytes for {sc.cells.height:,} cells"
    assert seconds < 60, seconds  # a generous bound for a shared CI machine (about 1 s locally)
    doc = path.read_text(encoding="utf-8")
    exceptions = _section(doc, "exceptions")
    listed = sc.cells.filter(pl.col("status").is_in(list(EXCEPTION_STATUSES)))
    assert exceptions.count("<tr") == listed.height + len(EXCEPTION_STATUSES)
    assert doc.count('<table class="mx">') == 15  # one district matrix per domain
    assert doc.count('class="allgreen"') == 15  # the always-green tenth, summarised per domain
    assert doc.count('<svg class="spark') == 2_000  # sparklines for the city rows only
    assert "<script" not in doc and doc.rstrip().endswith("</html>")


def _chromium(*args: str, tmp: Path) -> subprocess.CompletedProcess[str]:
    cmd = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--enable-logging=stderr",
        "--v=0",
        f"--user-data-dir={tmp / 'profile'}",
        *args,
    ]
    # Chromium puts its singleton socket under TMPDIR, and a Unix socket path may not exceed ~107
    # bytes: a checkout (and its TMPDIR) in a long path would abort the browser. A short private
    # folder under the system's temporary root keeps the test independent of where it runs.
    with tempfile.TemporaryDirectory(prefix="ck-", dir="/tmp" if os.path.isdir("/tmp") else None) as short:
        env = {**os.environ, "TMPDIR": short}
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False, env=env)


def _console_problems(stderr: str) -> list[str]:
    return [
        line
        for line in stderr.splitlines()
        if "Uncaught" in line or "ERROR:CONSOLE" in line or ":CONSOLE(" in line or "Refused to" in line
    ]


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium (install it with `make browser`)")
def test_renders_in_headless_chromium(tmp_path: Path) -> None:
    sc = make_scorecard(rename={"service.hotline.ontime": HOSTILE})
    report = exporters.write_scorecard(sc, "html", tmp_path / "report.html", lang="zh")
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "report.png"
    if shot.exists():
        shot.unlink()
    done = _chromium(f"--screenshot={shot}", "--window-size=1280,2000", report.as_uri(), tmp=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert shot.exists() and shot.stat().st_size > 20_000  # a blank page is a few kB
    assert _console_problems(done.stderr) == []

    dom = _chromium("--dump-dom", report.as_uri(), tmp=tmp_path)
    assert dom.returncode == 0, dom.stderr[-2000:]
    c = parse(dom.stdout)
    for section in (
        "summary",
        "legend",
        "indices",
        "domain-environment",
        "domain-utilities",
        "league-index-health",
    ):
        assert section in c.ids
    assert "script" not in c.tags  # the hostile name did not become an element
    assert HOSTILE in "".join(c.text)
    assert _console_problems(dom.stderr) == []
    shutil.copy(report, ARTIFACTS / "report.html")


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium (install it with `make browser`)")
def test_compact_layout_renders_in_headless_chromium(tmp_path: Path) -> None:
    report = tmp_path / "compact.html"
    report.write_text(
        render_html(make_scorecard(rename={"service.hotline.ontime": HOSTILE}), lang="zh", detail_limit=0),
        encoding="utf-8",
    )
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "report-compact.png"
    if shot.exists():
        shot.unlink()
    done = _chromium(f"--screenshot={shot}", "--window-size=1280,2000", report.as_uri(), tmp=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert shot.exists() and shot.stat().st_size > 20_000
    assert _console_problems(done.stderr) == []
    dom = _chromium("--dump-dom", report.as_uri(), tmp=tmp_path)
    assert dom.returncode == 0, dom.stderr[-2000:]
    c = parse(dom.stdout)
    assert "exceptions" in c.ids and "domain-environment" in c.ids
    assert "script" not in c.tags and HOSTILE in "".join(c.text)
    assert _console_problems(dom.stderr) == []
