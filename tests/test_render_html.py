"""The self-contained HTML report: structure, escaping, no external resources, headless Chromium."""

from __future__ import annotations

import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from citykpi.render import exports
from citykpi.render.html import render_html, sparkline_svg
from tests.scorecard_fixtures import make_scorecard

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


def test_no_scripts_and_no_network() -> None:
    doc = render_html(make_scorecard(rename={"env.air.aqi": HOSTILE}), lang="en")
    c = parse(doc)
    assert "script" not in c.tags and "link" not in c.tags and "img" not in c.tags and "iframe" not in c.tags
    assert c.urls == []
    assert not re.search(r"https?://|url\(|@import|@font-face", doc)
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in doc
    assert HOSTILE in "".join(c.text)  # shown as text


def test_escaping_in_attributes_and_ids() -> None:
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
    doc = render_html(sc, lang="en")
    c = parse(doc)
    assert "b" not in c.tags
    assert 'onclick="x' not in doc and "onmouseover=x>" not in doc


def test_deterministic() -> None:
    assert render_html(make_scorecard(run_id=1)) == render_html(make_scorecard(run_id=99))


def test_sparkline_gaps() -> None:
    svg = sparkline_svg([1.0, None, 3.0, 4.0])
    assert svg.count("<polyline") == 1 and svg.count("<circle") == 2
    assert sparkline_svg([None, None]) == ""


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
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)


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
    report = exports.write_scorecard(sc, "html", tmp_path / "report.html", lang="zh")
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
