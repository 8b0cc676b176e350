"""Alert delivery, piece by piece: what changed, silences, digests, the three notifiers, the outbox.

The month-long end-to-end story is tests/test_daily_acceptance.py; here each rule is pinned alone.
"""

from __future__ import annotations

import fnmatch
import json
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from citykpi.catalogue import load_catalogue
from citykpi.cli import app
from citykpi.engine.evaluate import evaluate
from citykpi.errors import ConfigError, UsageError
from citykpi.notify.changes import alert_changes
from citykpi.notify.digest import empty_state, plan_notifier
from citykpi.notify.notifiers import NotifierConfig, deliver, parse_notifiers, send_jsonl
from citykpi.notify.silences import Window, add_silence, area_lineage, glob_regex, load_silences
from citykpi.warehouse import Warehouse, ingest, load_areas
from tests.daily_support import AQI_YUZHONG, Receiver, day, write_aqi, write_pressure
from tests.scorecard_city import write_city

SHANGHAI = ZoneInfo("Asia/Shanghai")


# --- windows and globs ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "moment", "inside"),
    [
        ("sun 02:00-06:00", "2026-11-22T03:00", True),  # a Sunday
        ("sun 02:00-06:00", "2026-11-22T06:00", False),  # the end is not in it
        ("sun 02:00-06:00", "2026-11-23T03:00", False),  # Monday
        ("mon-fri 18:00-08:00", "2026-11-20T23:00", True),  # Friday night
        ("mon-fri 18:00-08:00", "2026-11-21T07:59", True),  # … until Saturday 08:00
        ("mon-fri 18:00-08:00", "2026-11-22T07:00", False),  # Sunday morning: the window began on no weekday
        ("sat,sun 00:00-24:00", "2026-11-21T12:00", True),
        ("fri-mon 09:00-10:00", "2026-11-23T09:30", True),  # a range across the week's end
        ("daily 00:00-06:00", "2026-11-18T05:59", True),
    ],
)
def test_windows(spec: str, moment: str, inside: bool) -> None:
    assert Window.parse(spec).contains(datetime.fromisoformat(moment)) is inside


@pytest.mark.parametrize(
    "spec", ["weekends 02:00-03:00", "sun 2-6", "sun 02:00-02:00", "sun 25:00-26:00", "mon-"]
)
def test_bad_windows(spec: str) -> None:
    with pytest.raises(UsageError, match="--every"):
        Window.parse(spec)


#: Every character that means something in a glob or a regular expression, and two letters.
_GLOB_CHARS = "ab.*?[]!-^\\&~|$()+{}\n"


@settings(max_examples=400, deadline=None)
@given(
    glob=st.text(alphabet=_GLOB_CHARS, min_size=1, max_size=10),
    names=st.lists(st.text(alphabet=_GLOB_CHARS, max_size=8), min_size=1, max_size=6),
)
def test_glob_regex_agrees_with_fnmatch(glob: str, names: list[str]) -> None:
    """The silences' glob, run by Polars, matches exactly what fnmatch matches (which `silence add`
    checks the glob with), for every glob: brackets that open no class, ranges written backwards,
    ``[!]``, ``[[]``, set operators that Python's classes escape."""
    expected = [fnmatch.fnmatchcase(name, glob) for name in names]
    got = pl.Series(names, dtype=pl.String).str.contains(glob_regex(glob)).to_list()
    assert got == expected, (glob, names, glob_regex(glob))


@pytest.mark.parametrize(
    ("glob", "matches", "misses"),
    [
        ("[!]", ["[!]"], ["!", "]"]),  # no class: the bracket is a character
        ("[[]", ["["], ["[[]", "]"]),
        ("[b-a]", [], ["a", "b", "-", "[b-a]"]),  # a backwards range matches nothing
        ("env.[a&&b]x", ["env.ax", "env.&x", "env.bx"], ["env.x"]),  # && is two characters here
        ("[a--b]", ["b"], ["a", "-"]),
        ("env.*", ["env.air.aqi", "env."], ["water.env"]),
    ],
)
def test_odd_globs_match_as_fnmatch_does(glob: str, matches: list[str], misses: list[str]) -> None:
    names = [*matches, *misses]
    assert [fnmatch.fnmatchcase(n, glob) for n in names] == [True] * len(matches) + [False] * len(misses)
    got = pl.Series(names, dtype=pl.String).str.contains(glob_regex(glob)).to_list()
    assert got == [True] * len(matches) + [False] * len(misses)


# --- a small warehouse with scheduled runs ------------------------------------------------------------


@pytest.fixture
def wh(tmp_path: Path) -> Iterator[tuple[Warehouse, Any]]:
    """The tiny city with the scripted month's files of days 1–21 loaded (no runs yet)."""
    paths = write_city(tmp_path)
    catalogue = load_catalogue(paths["catalogue"])
    files = [f(paths["inbox"], n) for n in range(1, 22) for f in (write_aqi, write_pressure)]
    with Warehouse.open(paths["db"]) as w:
        load_areas(w, paths["areas"])
        ingest(w, catalogue, files)
        yield w, catalogue


def _run(w: Warehouse, catalogue: Any, n: int, *, scheduled: bool = True) -> Any:
    return evaluate(w, catalogue, as_of=day(n), persist=True, scheduled=scheduled, history_levels=())


def _firing(changes: Any) -> list[tuple[str, str, str, str]]:
    return [
        (r["change"], r["indicator_id"], r["area_id"], r["since"].isoformat())
        for r in changes.firing.iter_rows(named=True)
    ]


def test_alert_changes_against_the_previous_scheduled_run(wh: tuple[Warehouse, Any]) -> None:
    w, catalogue = wh
    first = _run(w, catalogue, 3)
    changes = alert_changes(w, first)
    assert changes.previous_run_id is None and _firing(changes) == [
        ("new", "env.air.aqi", "500103", day(3).isoformat())
    ]
    _run(w, catalogue, 4)
    _run(w, catalogue, 5, scheduled=False)  # an ad-hoc look at day 5 is no "previous run"
    six = _run(w, catalogue, 6)
    changes = alert_changes(w, six)
    assert changes.previous_run_id == 2  # day 4's, not the ad-hoc run 3
    assert _firing(changes) == [("escalated", "env.air.aqi", "500103", day(3).isoformat())]  # orange → red
    assert changes.counts == {"new": 0, "escalated": 1, "still_firing": 0, "resolved": 0}
    _run(w, catalogue, 7)
    eight = _run(w, catalogue, 8)
    changes = alert_changes(w, eight)
    # Yubei's pressure (93 %) is orange below 95 from day 8; the city's mean (96.25 %) is only yellow
    assert _firing(changes) == [("new", "water.supply.pressure_ok", "500112", day(8).isoformat())]
    [resolved] = changes.resolved.iter_rows(named=True)
    assert (resolved["area_id"], resolved["status"], resolved["previous_status"], resolved["since"]) == (
        "500103",
        "blue",
        "red",
        day(3),
    )


def test_since_spans_the_unbroken_scheduled_runs(wh: tuple[Warehouse, Any]) -> None:
    w, catalogue = wh
    for n in (16, 17, 18):
        _run(w, catalogue, n)
    changes = alert_changes(w, _run(w, catalogue, 19))
    since = {(r[1], r[2]): r[3] for r in _firing(changes)}
    assert since[("env.air.aqi", "500103")] == day(16).isoformat()  # red since the 16th
    assert (
        since[("env.air.aqi", "500000")] == day(16).isoformat()
    )  # the city: red then orange, an alert throughout


# --- digests against what a notifier was told ---------------------------------------------------------


def _plan(w: Warehouse, catalogue: Any, card: Any, state: pl.DataFrame, *, now: datetime, **kw: Any) -> Any:
    notifier = kw.pop("notifier", NotifierConfig("duty", "jsonl", path=Path("x.jsonl")))
    return plan_notifier(
        notifier,
        alert_changes(w, card),
        card,
        catalogue,
        state,
        silences=load_silences(w),
        lineage=area_lineage(w.areas()),
        now=now,
        run_id=card.run_id,
        lang="en",
        **kw,
    )


def _told(plan: Any) -> list[tuple[str, str, str]]:
    if plan.digest is None:
        return []
    return [
        (i["change"], i["indicator_id"], i["area_id"])
        for g in plan.digest.document["groups"]
        for i in g["items"]
    ]


def test_a_notifier_is_told_each_thing_once(wh: tuple[Warehouse, Any]) -> None:
    w, catalogue = wh
    now = datetime(2026, 11, 4, 2, 10, tzinfo=SHANGHAI)
    card = _run(w, catalogue, 3)
    plan = _plan(w, catalogue, card, empty_state(), now=now)
    assert _told(plan) == [("new", "env.air.aqi", "500103")]
    again = _plan(w, catalogue, card, plan.state, now=now)  # the same day, run again
    assert again.digest is None and again.state.equals(plan.state)
    latecomer = _plan(w, catalogue, _run(w, catalogue, 4), empty_state(), now=now)  # a notifier added later
    assert _told(latecomer) == [("new", "env.air.aqi", "500103")]
    assert latecomer.digest is not None
    [[item]] = [g["items"] for g in latecomer.digest.document["groups"]]
    assert (item["since"], item["days"], item["value_text"]) == (day(3).isoformat(), 1, "170.0 index")
    other = NotifierConfig("water", "jsonl", path=Path("w.jsonl"), domains=("utilities",))
    assert _plan(w, catalogue, card, empty_state(), now=now, notifier=other).digest is None


def test_a_cell_without_data_is_not_resolved(wh: tuple[Warehouse, Any]) -> None:
    w, catalogue = wh
    now = datetime(2026, 11, 6, 2, 10, tzinfo=SHANGHAI)
    plan = _plan(w, catalogue, _run(w, catalogue, 5), empty_state(), now=now)
    assert ("new", "env.air.aqi", "500103") in _told(plan)
    # Yuzhong's AQI falls silent for three days: stale, not resolved; the alert stays open
    w.con.execute(
        "DELETE FROM observations WHERE period >= ? AND indicator_key = "
        "(SELECT indicator_key FROM indicator_keys WHERE indicator_id = 'env.air.aqi') AND area_key = "
        "(SELECT area_key FROM areas WHERE area_id = '500103')",
        [day(6)],
    )
    silent = _run(w, catalogue, 9)
    assert silent.cells.filter((pl.col("area_id") == "500103") & (pl.col("indicator_id") == "env.air.aqi"))[
        "status"
    ].to_list() == ["stale"]
    later = _plan(w, catalogue, silent, plan.state, now=now, remind_after=0)
    assert ("env.air.aqi", "500103") not in [(i, a) for _c, i, a in _told(later)]  # nothing said of it …
    assert later.state.filter(pl.col("area_id") == "500103")["status"].to_list() == ["red"]  # … still open


def test_a_silence_holds_back_and_its_end_announces(wh: tuple[Warehouse, Any]) -> None:
    w, catalogue = wh
    start = datetime(2026, 11, 3, 12, 0, tzinfo=SHANGHAI)
    add_silence(
        w,
        reason="sensor swap",
        starts_at=start,
        ends_at=start + timedelta(days=2),
        now=start,
        indicator="env.air.*",
        area_id="500000",  # the city: and every area below it
        timezone="Asia/Shanghai",
    )
    held = _plan(w, catalogue, _run(w, catalogue, 4), empty_state(), now=start + timedelta(hours=14))
    assert held.digest is None and (held.silenced, held.state.height) == (1, 0)
    told = _plan(w, catalogue, _run(w, catalogue, 5), held.state, now=start + timedelta(days=2, hours=14))
    assert told.digest is not None
    [[item]] = [g["items"] for g in told.digest.document["groups"]]
    # announced when the silence ended, with its start: the first scheduled run that saw it (day 4's)
    assert (item["change"], item["status"], item["since"]) == ("new", "red", day(4).isoformat())


def test_a_red_parent_holds_back_its_children(wh: tuple[Warehouse, Any]) -> None:
    w, catalogue = wh
    now = datetime(2026, 11, 17, 2, 10, tzinfo=SHANGHAI)
    plan = _plan(w, catalogue, _run(w, catalogue, 16), empty_state(), now=now)
    assert _told(plan) == [("new", "env.air.aqi", "500000")] and plan.inhibited == 2
    assert AQI_YUZHONG[16] > 200


# --- silences through the CLI ---------------------------------------------------------------------------


def test_silence_commands(wh: tuple[Warehouse, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    w, _catalogue = wh
    w.close()
    monkeypatch.setattr(
        "citykpi.daily.clock.now", lambda tz=None: datetime(2026, 11, 20, 9, 0, tzinfo=SHANGHAI)
    )
    base = ["--db", str(tmp_path / "city.duckdb"), "--catalogue", str(tmp_path / "catalogue")]
    runner = CliRunner()

    def cli(*args: str) -> Any:
        return runner.invoke(app, [*base, "alerts", *args])

    add = ["silence", "add", "--timezone", "Asia/Shanghai", "--reason", "pipe repair"]
    r = cli(*add, "--indicator", "water.*", "--area", "500112", "--for", "2d", "--by", "duty")
    assert r.exit_code == 0, r.output
    assert r.stdout.strip() == (
        "silence 1: indicator water.* · area 500112 (and below) until 2026-11-22T09:00+08:00 (active)"
    )
    r = cli(*add, "--domain", "environment", "--every", "sun 02:00-06:00", "--until", "2026-12-31")
    assert r.exit_code == 0 and "during sun 02:00-06:00 (waiting)" in r.stdout, r.output
    for bad, message in [
        (["--for", "2d"], "a silence needs something to match"),
        (["--indicator", "env.*"], "give the expiry: --until TIME or --for DURATION"),
        (["--indicator", "no.such.*", "--for", "1d"], "matches no indicator of the catalogue"),
        (["--area", "999", "--for", "1d"], "unknown area '999'"),
        (["--indicator", "env.*", "--until", "2026-11-01"], "the silence ends before it starts"),
        (
            ["--indicator", "env.*", "--from", "2026-10-01", "--until", "2026-11-01"],
            "the expiry is in the past",
        ),
        (["--indicator", "env.*", "--for", "soon"], "expected a duration"),
    ]:
        r = cli(*add, *bad)
        assert r.exit_code == 2 and message in r.output, (bad, r.output)
    listed = json.loads(cli("silences", "--format", "json").stdout)
    assert listed[0]["created_by"] == "duty"  # --by; the second is the login name
    assert [(s["silence_id"], s["state"]) for s in listed] == [(1, "active"), (2, "waiting")]  # Friday 09:00
    assert listed[0]["ends_at"] == "2026-11-22T09:00+08:00" and listed[0]["reason"] == "pipe repair"
    csv = cli("silences", "--format", "csv").stdout.splitlines()
    assert csv[0].startswith("silence_id,state,indicator,area_id,owner,domain") and len(csv) == 3
    assert cli("silence", "expire", "1").exit_code == 0
    assert [s["silence_id"] for s in json.loads(cli("silences", "--format", "json").stdout)] == [2]
    everything = json.loads(cli("silences", "--all", "--format", "json").stdout)
    assert [(s["silence_id"], s["state"]) for s in everything] == [(1, "expired"), (2, "waiting")]
    again = cli("silence", "expire", "1")
    assert again.exit_code == 2 and "already ended" in again.output
    assert "pipe repair" in cli("silences", "--all").stdout


def test_the_silences_table_says_what_each_matches(wh: tuple[Warehouse, Any]) -> None:
    """The terminal's silences table is a library view (render.views), the CLI only prints it."""
    from citykpi.notify.silences import list_silences
    from citykpi.render.views import silences_table

    w, _catalogue = wh
    now = datetime(2026, 11, 20, 9, 0, tzinfo=SHANGHAI)
    add_silence(w, reason="pipe repair", ends_at=now + timedelta(days=2), now=now, indicator="water.*",
                area_id="500112", timezone="Asia/Shanghai")  # fmt: skip
    add_silence(w, reason="calibration", ends_at=now + timedelta(days=30), now=now, domain="environment",
                every="sun 02:00-06:00", timezone="Asia/Shanghai")  # fmt: skip
    shown = silences_table(list_silences(w, now=now))
    assert shown.columns == ["id", "state", "matches", "until", "every", "reason"]
    assert shown.rows() == [
        (1, "active", "indicator water.* · area 500112 and below", "2026-11-22 09:00", "", "pipe repair"),
        (2, "waiting", "domain environment", "2026-12-20 09:00", "sun 02:00-06:00", "calibration"),
    ]


def test_an_unknown_time_zone_is_a_usage_error_outside_run(wh: tuple[Warehouse, Any], tmp_path: Path) -> None:
    """Exit 78 is `run`'s (its config file is wrong); a bad --timezone of any other command is a usage
    error (exit 2), and nothing is recorded."""
    w, _catalogue = wh
    w.close()
    base = ["--db", str(tmp_path / "city.duckdb"), "--catalogue", str(tmp_path / "catalogue")]
    r = CliRunner().invoke(
        app,
        [*base, "alerts", "silence", "add", "--indicator", "env.*", "--for", "1d", "--reason", "x",
         "--timezone", "Mars/Base"],
    )  # fmt: skip
    assert r.exit_code == 2, r.output
    assert "unknown time zone 'Mars/Base'" in r.output and "IANA name" in r.output
    with Warehouse.open(tmp_path / "city.duckdb", read_only=True) as again:
        assert again.con.execute("SELECT count(*) FROM silences").fetchall() == [(0,)]


# --- the notifiers ----------------------------------------------------------------------------------------


class _Scripted(BaseHTTPRequestHandler):
    """Answers with the statuses in ``server.script`` (then 200), records requests in ``server.seen``."""

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.server.seen.append((self.path, dict(self.headers.items()), body))  # type: ignore[attr-defined]
        script = self.server.script  # type: ignore[attr-defined]
        status = script.pop(0) if script else 200
        self.send_response(status)
        if status in (301, 302, 307):
            self.send_header("Location", "/elsewhere")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def endpoint() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Scripted)
    server.seen = []  # type: ignore[attr-defined]
    server.script = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _hook(server: ThreadingHTTPServer, **kw: Any) -> NotifierConfig:
    url = f"http://127.0.0.1:{server.server_address[1]}/hooks/citykpi"
    return NotifierConfig("duty", "webhook", url=url, timeout=5, **kw)


def test_webhook_retries_with_backoff_then_delivers(
    endpoint: ThreadingHTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint.script[:] = [503, 429]  # type: ignore[attr-defined]
    monkeypatch.setenv("CITYKPI_TEST_TOKEN", "s3cret")
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:1")  # ignored: the job contacts only the URL
    waits: list[float] = []
    config = _hook(
        endpoint, retries=3, backoff=0.5, headers={"Authorization": "Bearer ${CITYKPI_TEST_TOKEN}"}
    )
    done = deliver(config, "citykpi-k1", '{"key": "citykpi-k1"}', sleep=waits.append)
    assert (done.delivered, done.attempts, waits) == (True, 3, [0.5, 1.0])
    path, headers, body = endpoint.seen[-1]  # type: ignore[attr-defined]
    assert path == "/hooks/citykpi" and json.loads(body) == {"key": "citykpi-k1"}
    assert headers["Idempotency-Key"] == "citykpi-k1" and headers["Authorization"] == "Bearer s3cret"
    assert headers["Content-Type"] == "application/json; charset=utf-8" and headers["User-Agent"].startswith(
        "citykpi/"
    )


def test_webhook_gives_up_for_this_run_on_what_retrying_cannot_cure(endpoint: ThreadingHTTPServer) -> None:
    endpoint.script[:] = [400]  # type: ignore[attr-defined]
    refused = deliver(_hook(endpoint, retries=3), "k", "{}", sleep=lambda s: None)
    assert (refused.delivered, refused.attempts, refused.dead) == (False, 1, True)
    assert refused.error.endswith("answered HTTP 400: refused for good, not retried")
    endpoint.script[:] = [302]  # type: ignore[attr-defined]
    moved = deliver(_hook(endpoint, retries=3), "k", "{}", sleep=lambda s: None)
    assert (
        not moved.delivered and "a redirect" in moved.error and not moved.dead
    )  # the url is fixed in the config
    assert [p for p, _h, _b in endpoint.seen] == ["/hooks/citykpi", "/hooks/citykpi"]  # type: ignore[attr-defined]
    missing = deliver(_hook(endpoint, headers={"X-Token": "${CITYKPI_NOT_SET_ANYWHERE}"}), "k", "{}")
    assert not missing.delivered and "CITYKPI_NOT_SET_ANYWHERE" in missing.error and missing.attempts == 1


def test_jsonl_appends_each_digest_exactly_once(tmp_path: Path) -> None:
    path = tmp_path / "alerts.jsonl"
    config = NotifierConfig("archive", "jsonl", path=path)
    send_jsonl(config, "citykpi-a", json.dumps({"key": "citykpi-a", "n": 1}))
    send_jsonl(config, "citykpi-a", json.dumps({"key": "citykpi-a", "n": 1}))  # a retry after a crash
    with path.open("ab") as fh:
        fh.write(b'{"key": "citykpi-b", "n":')  # a line a crash cut short
    send_jsonl(config, "citykpi-b", json.dumps({"key": "citykpi-b", "n": 2}))
    assert [json.loads(line)["key"] for line in path.read_text().splitlines()] == ["citykpi-a", "citykpi-b"]


def test_command_gets_the_digest_on_stdin(tmp_path: Path) -> None:
    script = tmp_path / "send.py"
    script.write_text(
        "import os, sys, pathlib\n"
        "pathlib.Path(sys.argv[1]).write_text(os.environ['CITYKPI_DIGEST_KEY'] + ' ' + sys.stdin.read())\n"
        "sys.exit(int(sys.argv[2]))\n",
        encoding="utf-8",
    )
    got = tmp_path / "got.txt"
    ok = NotifierConfig("sms", "command", command=(sys.executable, str(script), str(got), "0"))
    assert deliver(ok, "citykpi-c", '{"key": "citykpi-c"}').delivered
    assert got.read_text() == 'citykpi-c {"key": "citykpi-c"}'
    fails = NotifierConfig(
        "sms", "command", command=(sys.executable, str(script), str(got), "3"), retries=1, backoff=0
    )
    result = deliver(fails, "k", "{}")
    assert (result.delivered, result.attempts) == (False, 2) and "exited 3" in result.error
    missing = deliver(NotifierConfig("sms", "command", command=("/no/such/sender",)), "k", "{}")
    assert not missing.delivered and missing.attempts == 1 and "no such command" in missing.error


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"name": "a", "type": "email"}, "type must be one of jsonl, webhook, command"),
        ({"type": "jsonl", "path": "x"}, 'needs name = "'),
        ({"name": "a", "type": "webhook", "url": "ftp://host/x"}, "http or https"),
        ({"name": "a", "type": "webhook", "url": "file:///etc/passwd"}, "http or https"),
        ({"name": "a", "type": "webhook", "url": "https://h/x", "retries": 99}, "retries must be"),
        ({"name": "a", "type": "webhook", "url": "https://h/x", "path": "y"}, "unknown key 'path'"),
        (
            {"name": "a", "type": "command", "command": "mail -s alert duty"},
            "an argument list, never a shell line",
        ),
        ({"name": "a", "type": "jsonl"}, 'needs path = "FILE.jsonl"'),
        ({"name": "a", "type": "webhook", "url": "https://h/x", "headers": {"X": "a\nb"}}, "line break"),
    ],
)
def test_notifier_config_errors(table: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_notifiers([table], base=Path("."), origin="citykpi.toml")
    with pytest.raises(ConfigError, match="two notifiers have this name"):
        parse_notifiers(
            [{"name": "a", "type": "jsonl", "path": "x"}, {"name": "a", "type": "jsonl", "path": "y"}],
            base=Path("."),
            origin="c",
        )


def test_the_outbox_keeps_order_and_stops_a_notifier_at_its_first_failure(tmp_path: Path) -> None:
    from citykpi.notify.digest import Digest, NotifierPlan
    from citykpi.notify.notifiers import Delivery
    from citykpi.notify.outbox import deliver_pending, outbox, queue

    with Warehouse.open(tmp_path / "o.duckdb") as w:
        now = datetime(2026, 11, 20, tzinfo=UTC)
        for n, key in enumerate(("k1", "k2", "k3")):
            digest = Digest("duty", key, n, date(2026, 11, n + 1), "day", 1, {"key": key})
            queue(w, [NotifierPlan("duty", digest, empty_state())], now=now + timedelta(minutes=n))
        calls: list[str] = []

        def flaky(config: NotifierConfig, key: str, payload: str, **kw: Any) -> Delivery:
            calls.append(key)
            return Delivery(key != "k2", 1, "" if key != "k2" else "HTTP 503")

        hook = NotifierConfig("duty", "webhook", url="http://127.0.0.1:9/x")
        reports = deliver_pending(w, [hook], now=lambda: now, send=flaky)
        assert calls == ["k1", "k2"] and [r.delivery.delivered for r in reports] == [True, False]
        frame = outbox(w, include_delivered=True)
        assert dict(zip(frame["digest_key"], frame["status"], strict=True)) == {
            "k1": "delivered",
            "k2": "pending",
            "k3": "pending",
        }
        calls.clear()
        deliver_pending(w, [hook], now=lambda: now, send=lambda c, k, p, **kw: Delivery(True, 1))
        assert outbox(w).height == 0
        # a notifier the config no longer declares keeps its digests, unsent
        queue(
            w,
            [NotifierPlan("gone", Digest("gone", "k9", 9, date(2026, 11, 9), "day", 1, {}), empty_state())],
            now=now,
        )
        assert deliver_pending(w, [hook], now=lambda: now, send=flaky) == []
        from citykpi.notify.outbox import orphaned

        assert orphaned(w, [hook]) == {"gone": 1}


def test_receiver_helper_dedupes_by_key() -> None:
    r = Receiver().start()
    try:
        for _ in range(2):
            deliver(
                NotifierConfig("d", "webhook", url=r.url, timeout=5),
                "citykpi-x",
                json.dumps({"key": "citykpi-x"}),
            )
        assert len(r.posts) == 2 and list(r.digests()) == ["citykpi-x"]
    finally:
        r.stop()
