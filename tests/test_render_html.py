"""The self-contained HTML report: structure, escaping, no external resources, headless Chromium.

The browser tests drive Chromium over the DevTools protocol (tests/browser_support.py): they click
column heads and type into the search box as a person would, and check that a hostile name stays text.
"""

from __future__ import annotations

import re
import shutil
import time
from html.parser import HTMLParser
from pathlib import Path

import polars as pl
import pytest

from citykpi.catalogue.model import SEVERITY
from citykpi.engine.scorecard import CELL_SCHEMA, HISTORY_SCHEMA, Scorecard
from citykpi.render import exporters
from citykpi.render.html import (
    DETAIL_LIMIT,
    EXCEPTION_STATUSES,
    TREND_LIMIT,
    csp_hash,
    render_html,
    sparkline_svg,
    static_text,
)
from tests.browser_support import Browser, browser
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
        self.scripts: list[str] = []
        self.styles: list[str] = []
        self.meta: dict[str, str] = {}
        self._raw: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag in ("script", "style"):
            self._raw = self.scripts if tag == "script" else self.styles
            self._raw.append("")
        named = dict(attrs)
        if tag == "meta" and named.get("http-equiv"):
            self.meta[str(named["http-equiv"])] = named.get("content") or ""
        for key, value in attrs:
            if key == "id" and value:
                self.ids.append(value)
            if key in ("src", "href", "xlink:href", "action") and value:
                self.urls.append(value)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._raw = None

    def handle_data(self, data: str) -> None:
        if self._raw is not None:
            self._raw[-1] += data
            return
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
def test_one_own_script_and_no_network(detail_limit: int) -> None:
    doc = render_html(make_scorecard(rename={"env.air.aqi": HOSTILE}), lang="en", detail_limit=detail_limit)
    c = parse(doc)
    # the only script is the report's own; nothing is loaded from anywhere
    assert c.tags.count("script") == 1 and c.scripts == [static_text("report.js")]
    assert "link" not in c.tags and "img" not in c.tags and "iframe" not in c.tags
    assert c.urls == []
    assert not re.search(r"https?://|url\(|@import|@font-face", doc)
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in doc
    assert HOSTILE in "".join(c.text)  # shown as text


@pytest.mark.parametrize("detail_limit", [DETAIL_LIMIT, 0])
def test_the_policy_allows_the_own_style_and_script_by_hash_only(detail_limit: int) -> None:
    doc = render_html(make_scorecard(), lang="zh", detail_limit=detail_limit)
    c = parse(doc)
    assert len(c.styles) == 1 and len(c.scripts) == 1
    policy = dict(
        part.strip().split(" ", 1) for part in c.meta["Content-Security-Policy"].split(";") if part.strip()
    )
    assert policy["default-src"] == "'none'" and policy["base-uri"] == "'none'"
    assert policy["form-action"] == "'none'" and policy["img-src"] == "data:"
    assert policy["style-src"] == csp_hash(c.styles[0]) and policy["script-src"] == csp_hash(c.scripts[0])
    assert "unsafe" not in c.meta["Content-Security-Policy"]
    assert ' style="' not in doc  # inline style attributes would be blocked by the policy


def test_control_characters_and_bidi_overrides_are_shown_not_obeyed() -> None:
    name = "evil\u202ecod.exe\x1b[2J\x07"
    doc = render_html(make_scorecard(rename={"env.air.aqi": name}), lang="en")
    assert "\u202e" not in doc and "\x1b" not in doc and "\x07" not in doc
    assert "evil\\u202ecod.exe\\x1b[2J\\x07" in "".join(parse(doc).text)


def test_trend_charts_per_indicator_from_the_history() -> None:
    sc = make_scorecard()
    doc = render_html(sc, lang="en")
    charts = re.findall(r'<figure class="trend f".*?</figure>', doc, re.S)
    with_history = sc.history.get_column("indicator_id").unique().to_list()
    assert len(charts) == len(with_history) == 4  # every indicator with history has its chart
    aqi = next(ch for ch in charts if "env.air.aqi" in ch)
    # the city's line, coloured by its status, over the band of the two districts and their median
    assert '<g class="line k-yellow"><path d="M46 ' in aqi and 'class="band"' in aqi and 'class="mid"' in aqi
    assert "line: Chongqing; band and dashed median: the other 2 areas" in aqi
    # axis labels: the highest and lowest value drawn, the first and last period
    values = (
        sc.history.filter(pl.col("indicator_id") == "env.air.aqi").sort("period_start").get_column("value")
    )
    assert f">{values.max():.1f}</text>" in aqi and f">{values.min():.1f}</text>" in aqi
    assert ">11-11</text>" in aqi and ">11-24</text>" in aqi
    # the accessible name reads the city's series
    assert 'aria-label="Chongqing: 2026-11-11 128.0, ' in aqi


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
    assert doc.index('id="indices"') < doc.index('id="exceptions"') < doc.index('class="domain fgroup"')
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
    assert doc.count('class="allgreen f"') == 15  # the always-green tenth, summarised per domain
    # trend charts for the indicators with a red, orange or stale cell, worst first, at most TREND_LIMIT
    assert doc.count('<figure class="trend f"') == TREND_LIMIT
    assert doc.count('<svg class="spark') == 2_000  # sparklines for the city rows only
    assert doc.count("<script") == 1 and doc.rstrip().endswith("</html>")


#: Names that would run code, break out of an attribute, a style or a script, or turn text around,
#: were they pasted into the page; each must stay inert text.
HOSTILE_NAMES = {
    "env.air.aqi": "<script>window.__pwned = 1; alert(1)</script>",
    "env.air.good_days": '" onmouseover="window.__pwned = 2; alert(2)" x="',
    "water.supply.pressure_ok": "</style><script>alert(3)</script><img src=x onerror=alert(4)>",
    "service.hotline.ontime": "\u202eevil\x1b[2J {{ 7 * 7 }} </script><script>alert(5)</script>",
}

needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs /usr/bin/chromium (install it with `make browser`)"
)


def _hostile_scorecard() -> Scorecard:
    sc = make_scorecard(rename=HOSTILE_NAMES)
    cells = sc.cells.with_columns(
        pl.col("area_name_en").str.replace("Yubei District", "<b onclick=alert(6)>Yubei</b>"),
        pl.col("explanation").str.replace("red", "red <iframe src=javascript:alert(7)>"),
    )
    return type(sc)(as_of=sc.as_of, grain=sc.grain, cells=cells, indices=sc.indices, history=sc.history)


def _open(b: Browser, doc: str, tmp_path: Path, name: str = "report.html") -> None:
    report = tmp_path / name
    report.write_text(doc, encoding="utf-8")
    b.open(report.as_uri())


def _column_texts(b: Browser, table: str, column: int) -> list[str]:
    return list(
        b.evaluate(
            f"Array.from(document.querySelectorAll({table!r} + ' tbody tr'))"
            f".filter(r => !r.hidden).map(r => r.cells[{column}].textContent.trim())"
        )
    )


def _leading_number(text: str) -> float:
    match = re.match(r"^[▲▼=\s]*([+-]?[0-9][0-9,]*(?:\.[0-9]+)?)", text)
    assert match, text
    return float(match.group(1).replace(",", ""))


@pytest.mark.browser
@needs_chromium
def test_a_click_on_a_column_head_sorts_the_rows(tmp_path: Path) -> None:
    with browser() as b:
        _open(b, render_html(make_scorecard(), lang="en"), tmp_path)
        table = "#domain-environment table.detail"
        # the scorecard's order first: by indicator, then city before districts
        assert _column_texts(b, table, 2) == [
            "128.0 index Lightly polluted",
            "212.0 index Heavily polluted",
            "46.0 index Excellent",
            "301.0 days",
            "280.0 days",
            "310.0 days",
        ]
        b.click(f"{table} thead th:nth-child(3) button")  # Value, ascending
        assert [_leading_number(t) for t in _column_texts(b, table, 2)] == [
            46.0,
            128.0,
            212.0,
            280.0,
            301.0,
            310.0,
        ]
        assert b.evaluate(
            f"document.querySelector('{table} thead th:nth-child(3)').getAttribute('aria-sort')"
        ) == ("ascending")
        # every row keeps its indicator's name once sorted away from its group
        assert _column_texts(b, table, 0) == [
            "Air quality indexenv.air.aqi",
            "Air quality indexenv.air.aqi",
            "Air quality indexenv.air.aqi",
            "Good-air daysenv.air.good_days",
            "Good-air daysenv.air.good_days",
            "Good-air daysenv.air.good_days",
        ]
        b.click(f"{table} thead th:nth-child(3) button")  # Value again: descending
        assert [_leading_number(t) for t in _column_texts(b, table, 2)] == [
            310.0,
            301.0,
            280.0,
            212.0,
            128.0,
            46.0,
        ]
        b.click(f"{table} thead th:nth-child(4) button")  # Status: worst first (red … green)
        statuses = b.evaluate(
            f"Array.from(document.querySelectorAll('{table} tbody tr')).map(r => r.dataset.status)"
        )
        assert statuses == ["red", "orange", "yellow", "blue", "green", "green"]
        b.click(f"{table} thead th:nth-child(2) button")  # Area: by name
        assert _column_texts(b, table, 1) == sorted(_column_texts(b, table, 1))
        b.click("#indices thead th:nth-child(2) button")  # an index score column, ascending
        scores = [_leading_number(t) for t in _column_texts(b, "#indices table", 1)]
        assert scores == sorted(scores) == [60.0, 64.0, 81.0]  # the health index: 81, 60, 64
        assert b.problems() == [] and b.dialogs() == []


@pytest.mark.browser
@needs_chromium
def test_the_search_box_and_the_status_filter_hide_rows(tmp_path: Path) -> None:
    sc = make_scorecard()
    with browser() as b:
        _open(b, render_html(sc, lang="en"), tmp_path)
        cells = "tr.cell"
        total = sc.cells.height
        assert b.evaluate(f"document.querySelectorAll('{cells}:not([hidden])').length") == total
        assert b.evaluate("document.getElementById('toolbar').hidden") is False
        b.type_text("#search", "yuzhong")
        shown = b.evaluate(
            f"Array.from(document.querySelectorAll('{cells}:not([hidden])')).map(r => r.cells[1].textContent)"
        )
        assert shown == ["Yuzhong District"] * 4  # one cell per indicator
        # every word must match, in any case: Yuzhong's AQI (env.air.aqi), then no row at all
        b.type_text("#search", " AQI")
        assert b.evaluate(f"document.querySelectorAll('{cells}:not([hidden])').length") == 1
        b.type_text("#search", " nowhere")
        assert b.evaluate(f"document.querySelectorAll('{cells}:not([hidden])').length") == 0
        b.evaluate(
            "(() => { const s = document.getElementById('search'); s.value = ''; "
            "s.dispatchEvent(new Event('input')); })()"
        )
        b.type_text("#search", "air quality yuzhong")
        assert b.evaluate(f"document.querySelectorAll('{cells}:not([hidden])').length") == 1
        # a domain without a row left is hidden whole
        assert b.evaluate("document.getElementById('domain-utilities').hidden") is True
        assert b.evaluate("document.getElementById('domain-environment').hidden") is False
        b.evaluate(
            "(() => { const s = document.getElementById('search'); s.value = ''; "
            "s.dispatchEvent(new Event('input')); })()"
        )
        # untick green: no green cell is left, every other one is
        b.click("#toolbar input[value=green]")
        visible = b.evaluate(
            f"Array.from(document.querySelectorAll('{cells}:not([hidden])')).map(r => r.dataset.status)"
        )
        assert (
            "green" not in visible
            and len(visible) == total - sc.cells.filter(pl.col("status") == "green").height
        )
        rows = "tr.f, table.ft > tbody > tr"  # every row the filters act on (cells, indices, leagues)
        counted = b.evaluate(
            f"[document.querySelectorAll('{rows}').length, "
            f"Array.from(document.querySelectorAll('{rows}')).filter(r => !r.hidden).length]"
        )
        assert b.evaluate("document.getElementById('shown').textContent") == f"{counted[1]} / {counted[0]}"
        assert counted[1] < counted[0]
        # printing: the toolbar is not printed, and a note says the print is filtered
        b.send("Emulation.setEmulatedMedia", {"media": "print"})
        assert b.evaluate("getComputedStyle(document.getElementById('toolbar')).display") == "none"
        assert b.evaluate("getComputedStyle(document.querySelector('.print-only')).display") == "block"
        b.send("Emulation.setEmulatedMedia", {"media": "screen"})
        assert b.evaluate("getComputedStyle(document.querySelector('.print-only')).display") == "none"
        assert b.problems() == [] and b.dialogs() == []


@pytest.mark.browser
@needs_chromium
@pytest.mark.parametrize("detail_limit", [DETAIL_LIMIT, 0])
def test_hostile_names_are_inert_in_chromium(tmp_path: Path, detail_limit: int) -> None:
    sc = _hostile_scorecard()
    doc = render_html(sc, lang="en", detail_limit=detail_limit)
    ARTIFACTS.mkdir(exist_ok=True)
    with browser() as b:
        _open(b, doc, tmp_path)
        b.evaluate("document.getElementById('domain-environment').scrollIntoView()")
        shot = b.screenshot(ARTIFACTS / f"report-hostile-{detail_limit}.png")
        assert shot.stat().st_size > 20_000  # a blank page is a few kB
        # hover and click every element, type the names into the search box: nothing runs
        b.evaluate(
            "document.querySelectorAll('*').forEach(e => { e.dispatchEvent(new MouseEvent('mouseover', {bubbles: true}));"
            " e.dispatchEvent(new MouseEvent('click', {bubbles: true})); })"
        )
        b.type_text("#search", "<script>alert(8)</script>")
        b.pump(0.5)
        assert b.dialogs() == []
        assert b.evaluate("typeof window.__pwned") == "undefined"
        assert b.evaluate("document.querySelectorAll('script').length") == 1
        assert b.evaluate("document.querySelectorAll('img, iframe, b, object, embed').length") == 0
        assert b.evaluate("document.querySelectorAll('[onmouseover], [onclick], [onerror]').length") == 0
        text = b.evaluate("document.querySelector('main').textContent")
        for name in HOSTILE_NAMES.values():
            assert name.replace("\u202e", "\\u202e").replace("\x1b", "\\x1b") in text, name
        assert "49" not in text.split("{{ 7 * 7 }}")[0][-5:]  # a name is never rendered as a template
        assert "<b onclick=alert(6)>Yubei</b>" in text
        assert b.problems() == []  # no exception, no console error, no blocked inline code (CSP)
        assert b.requests() == [(tmp_path / "report.html").as_uri()]  # nothing else was fetched


@pytest.mark.browser
@needs_chromium
def test_the_compact_layout_sorts_and_filters_in_chromium(tmp_path: Path) -> None:
    sc = large_scorecard(indicators=300, areas=42, days=9)
    with browser() as b:
        started = time.perf_counter()
        _open(b, render_html(sc, lang="zh"), tmp_path)
        loaded = time.perf_counter() - started
        assert loaded < 60, loaded
        total = b.evaluate("document.getElementById('shown').textContent")
        b.type_text("#search", "指标0042")
        matrix_rows = b.evaluate(
            "Array.from(document.querySelectorAll('table.mx tbody tr:not([hidden]) th')).map(t => t.textContent)"
        )
        assert matrix_rows and all("指标0042" in r for r in matrix_rows)
        exc = b.evaluate("Array.from(document.querySelectorAll('#exceptions tbody tr:not([hidden])')).length")
        expected = sc.cells.filter(
            (pl.col("indicator_id").str.ends_with("i0042")) & pl.col("status").is_in(list(EXCEPTION_STATUSES))
        ).height
        assert exc == expected
        b.evaluate(
            "(() => { const s = document.getElementById('search'); s.value = ''; "
            "s.dispatchEvent(new Event('input')); })()"
        )
        assert b.evaluate("document.getElementById('shown').textContent") == total
        # sort the red exceptions by value, descending
        red = "#exceptions table.exc[data-status=red]"
        b.click(f"{red} thead th:nth-child(3) button")
        b.click(f"{red} thead th:nth-child(3) button")
        values = [_leading_number(t) for t in _column_texts(b, red, 2)]
        assert (
            values == sorted(values, reverse=True)
            and len(values) == sc.cells.filter(pl.col("status") == "red").height
        )
        ARTIFACTS.mkdir(exist_ok=True)
        b.screenshot(ARTIFACTS / "report-compact.png")
        assert b.problems() == [] and b.dialogs() == []


@pytest.mark.browser
@needs_chromium
def test_the_sample_report_renders_in_chromium(tmp_path: Path) -> None:
    """A full-page screenshot for a person to look at (test-artifacts/report.png), and its DOM."""
    report = exporters.write_scorecard(make_scorecard(), "html", tmp_path / "report.html", lang="zh")
    ARTIFACTS.mkdir(exist_ok=True)
    with browser() as b:
        b.open(report.as_uri())
        shot = b.screenshot(ARTIFACTS / "report.png", full_page=True)
        assert shot.stat().st_size > 20_000
        ids = b.evaluate("Array.from(document.querySelectorAll('[id]')).map(e => e.id)")
        for section in (
            "summary",
            "legend",
            "indices",
            "domain-environment",
            "domain-utilities",
            "league-index-health",
        ):
            assert section in ids
        assert b.evaluate("document.querySelectorAll('figure.trend svg path').length") >= 4
        assert b.problems() == [] and b.dialogs() == []
    shutil.copy(report, ARTIFACTS / "report.html")


@pytest.mark.browser
@needs_chromium
def test_the_data_dictionary_sorts_and_searches_in_chromium(tmp_path: Path) -> None:
    """`catalogue docs --format html` shares the report's base: the same policy, sorting and search."""
    from citykpi.catalogue import load_catalogue
    from citykpi.catalogue.docs import indicator_cells
    from citykpi.render.dictionary import data_dictionary_html

    catalogue = load_catalogue(Path(__file__).resolve().parent.parent / "indicators")
    doc = data_dictionary_html(catalogue)
    c = parse(doc)
    assert c.meta["Content-Security-Policy"].count("sha256-") == 2 and "unsafe" not in doc
    with browser() as b:
        _open(b, doc, tmp_path, "dictionary.html")
        rows = "table.ft > tbody > tr"
        total = b.evaluate(f"document.querySelectorAll('{rows}').length")
        assert total >= len(catalogue.indicators)
        b.type_text("#search", "pm2.5")
        ids = b.evaluate(
            f"Array.from(document.querySelectorAll('{rows}:not([hidden])')).map(r => r.cells[0].textContent)"
        )
        expected = [i.id for i in catalogue.indicators if "pm2.5" in "".join(indicator_cells(i)).lower()]
        assert ids and sorted(ids) == sorted(expected)
        assert b.evaluate("document.getElementById('section-gas').hidden") is True  # no match in that domain
        b.evaluate(
            "(() => { const s = document.getElementById('search'); s.value = ''; s.dispatchEvent(new Event('input')); })()"
        )
        b.click("#section-environment thead th:nth-child(1) button")
        b.click("#section-environment thead th:nth-child(1) button")
        ids = _column_texts(b, "#section-environment table", 0)
        assert ids == sorted(ids, reverse=True)
        assert b.problems() == [] and b.dialogs() == []
