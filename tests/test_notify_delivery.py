"""Alert delivery across days: backfills, digests refused for good, the operator's outbox commands,
pruning, redelivery flags and the JSONL notifier's tail read.

tests/test_notify.py pins each rule of the digests alone; tests/test_daily_acceptance.py is the
month-long story and the kills. Here each case runs `citykpi run` (through CliRunner) on the tiny
city's scripted month (tests/daily_support.py) with a local webhook and a JSONL notifier.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from citykpi.cli import app
from citykpi.errors import ConfigError
from citykpi.notify.notifiers import (
    Delivery,
    DeliveryError,
    NotifierConfig,
    deliver,
    parse_notifiers,
    send_jsonl,
)
from citykpi.warehouse import Warehouse
from tests.daily_support import (
    Receiver,
    day,
    items,
    pinned_clock,
    run_time,
    write_aqi,
    write_config,
    write_pressure,
)
from tests.scorecard_city import write_city


def _city(root: Path, url: str, days: range, *, extra: str = "") -> Path:
    """The tiny city with the scripted files of ``days`` in its inbox and the job's config (a webhook
    ``duty`` at ``url`` and a JSONL notifier ``archive``)."""
    write_city(root)
    config = write_config(root, url, extra=extra)
    config.write_text(
        config.read_text(encoding="utf-8").replace("settle = 0.3", "settle = 0"), encoding="utf-8"
    )
    for n in days:
        write_aqi(root / "inbox", n)
        write_pressure(root / "inbox", n)
    return config


def _run(config: Path, n: int, *args: str) -> Result:
    return CliRunner().invoke(app, ["run", "--config", str(config), "--date", day(n).isoformat(), *args])


def _report(root: Path, n: int) -> dict[str, Any]:
    return json.loads((root / "out" / "runs" / f"run-{day(n)}-day.json").read_text(encoding="utf-8"))


def _jsonl(root: Path) -> list[dict[str, Any]]:
    return [
        json.loads(line) for line in (root / "out" / "alerts.jsonl").read_text(encoding="utf-8").splitlines()
    ]


def _cli(root: Path, *args: str) -> Result:
    return CliRunner().invoke(app, ["--db", str(root / "city.duckdb"), *args])


# --- a backfill tells no one anything ------------------------------------------------------------------


def test_a_backfill_notifies_no_one_and_the_next_day_is_told_only_its_changes(
    tmp_path: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The newest day, then an older day run again (a backfill), then the next day: the notifiers hear
    of the newest day and of the next day's changes, nothing of the older day, and the next day's
    digest is what it would have been without the backfill."""
    clock = pinned_clock(monkeypatch, run_time(19))
    config = _city(tmp_path, receiver.url, range(1, 21))
    # day 19: Yuzhong's AQI 240 (red, above 200); Yubei's 150 (yellow: orange is above 150); the city's
    # population-weighted mean (240 × 0.59 M + 150 × 2.19 M) / 2.78 M = 169.1 (orange); pressure green
    first = _run(config, 19)
    assert first.exit_code == 0, first.stderr
    told_19 = [
        (day(19).isoformat(), "new", "env.air.aqi", "500000", "orange", day(19).isoformat()),
        (day(19).isoformat(), "new", "env.air.aqi", "500103", "red", day(19).isoformat()),
    ]
    assert items([p.document for p in receiver.posts]) == told_19
    # day 5 again (Yuzhong 220 red, the city (220 × 0.59 + 50 × 2.19) / 2.78 = 86.1, blue): without the
    # rule the notifiers heard "the city resolved" and "Yuzhong red since day 5" about a day long gone
    clock.set(run_time(19, minute=30))
    backfill = _run(config, 5)
    assert backfill.exit_code == 0, backfill.stderr
    assert len(receiver.posts) == 1 and len(_jsonl(tmp_path)) == 1
    notes = [line for line in backfill.stderr.splitlines() if "backfill: not notified" in line]
    assert len(notes) == 2 and all(f"was told about {day(19)} already" in line for line in notes)
    report = _report(tmp_path, 5)
    assert [
        (n["notifier"], n["status"], n["digest_key"], n["note"][:22]) for n in report["notifications"]
    ] == [
        ("duty", "backfill", "", "backfill: not notified"),
        ("archive", "backfill", "", "backfill: not notified"),
    ]
    assert report["health"]["status"] == "ok"
    dry = _run(config, 6, "--dry-run", "--report", "-")
    assert [n["status"] for n in json.loads(dry.stdout)["notifications"]] == ["backfill", "backfill"]
    # day 20 (60 and 50: Yuzhong and the city blue): both alerts of day 19 resolved, nothing else
    clock.set(run_time(20))
    nxt = _run(config, 20)
    assert nxt.exit_code == 0, nxt.stderr
    assert items([p.document for p in receiver.posts]) == [
        *told_19,
        (day(20).isoformat(), "resolved", "env.air.aqi", "500000", "blue", day(19).isoformat()),
        (day(20).isoformat(), "resolved", "env.air.aqi", "500103", "blue", day(19).isoformat()),
    ]
    assert items(_jsonl(tmp_path)) == items([p.document for p in receiver.posts])


# --- refused for good: dead, set aside, the operator decides --------------------------------------------


class _Scripted:
    """A webhook endpoint answering the statuses in ``script`` in turn (then 202); records each POST."""

    def __init__(self) -> None:
        self.script: list[int] = []
        self.posts: list[tuple[int, dict[str, Any]]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                status = owner.script.pop(0) if owner.script else 202
                owner.posts.append((status, json.loads(body)))
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/citykpi"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def taken(self) -> list[tuple[str, str]]:
        """(as_of, key) of each POST answered 2xx, in order."""
        return [(d["as_of"], d["key"]) for status, d in self.posts if 200 <= status < 300]


@pytest.fixture
def scripted() -> Iterator[_Scripted]:
    s = _Scripted()
    yield s
    s.stop()


def test_a_digest_refused_for_good_is_set_aside_and_the_rest_go_out(
    tmp_path: Path, scripted: _Scripted, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = pinned_clock(monkeypatch, run_time(3))
    config = _city(tmp_path, scripted.url, range(1, 9))
    # day 3: Yuzhong orange (new); the endpoint answers 422 Unprocessable Entity: dead, not retried
    scripted.script[:] = [422]
    three = _run(config, 3)
    assert three.exit_code == 4, three.stderr  # partial once: a notification was not delivered
    report = _report(tmp_path, 3)
    [duty] = [n for n in report["notifications"] if n["notifier"] == "duty"]
    dead_key = duty["digest_key"]
    assert (duty["status"], duty["attempts"]) == ("dead", 1) and "HTTP 422: refused for good" in duty["error"]
    assert report["health"]["reasons"] == [
        f"digest {dead_key} to duty was refused for good (dead): {duty['error']}"
    ]
    [logged] = [line for line in three.stderr.splitlines() if "refused digest" in line]
    assert " ERROR " in logged and f"citykpi alerts outbox retry {dead_key}" in logged
    assert len(scripted.posts) == 1  # retries do not cure a 4xx: one attempt
    # day 4 (no change) and day 5 (escalated to red): the later digest goes out, the run is not partial
    for n, code in ((4, 0), (5, 0)):
        clock.set(run_time(n))
        r = _run(config, n)
        assert r.exit_code == code, r.stderr
        assert "1 dead digest(s) of 'duty' from earlier runs wait for an operator" in r.stderr
    assert [a for a, _k in scripted.taken()] == [day(5).isoformat()]
    # the operator lists it, and puts it back once the receiver is fixed
    listed = json.loads(_cli(tmp_path, "alerts", "outbox", "--format", "json").stdout)
    assert [(r["notifier"], r["digest_key"], r["status"]) for r in listed] == [("duty", dead_key, "dead")]
    table = _cli(tmp_path, "alerts", "outbox")
    assert table.exit_code == 0 and "1 digests not delivered" in table.stdout and "dead" in table.stdout
    clock.set(datetime(2026, 11, 6, 9, 30, tzinfo=UTC))
    retried = _cli(
        tmp_path, "alerts", "outbox", "retry", dead_key[:16], "--by", "ops", "--reason", "schema fixed"
    )
    assert retried.exit_code == 0, retried.output
    assert retried.stdout.strip() == (
        f"retry: digest {dead_key} to duty (1 item(s) of {day(3)}): dead → pending; the next run delivers it"
    )
    clock.set(run_time(6))
    six = _run(config, 6)
    assert six.exit_code == 0, six.stderr
    assert [k for _a, k in scripted.taken()][1] == dead_key  # first in line on the next run
    assert [a for a, _k in scripted.taken()][:2] == [day(5).isoformat(), day(3).isoformat()]
    everything = {
        r["digest_key"]: r
        for r in json.loads(_cli(tmp_path, "alerts", "outbox", "--all", "--format", "json").stdout)
    }
    back = everything[dead_key]
    assert (back["status"], back["attempts"], back["action"], back["action_by"], back["action_reason"]) == (
        "delivered", 2, "retry", "ops", "schema fixed",
    )  # fmt: skip
    assert back["action_at"].startswith("2026-11-06 09:30")
    # day 8 (Yuzhong resolved, Yubei's pressure orange): refused with 410 Gone; the operator drops it
    scripted.script[:] = [410]
    clock.set(run_time(8))
    assert _run(config, 8).exit_code == 4
    [gone] = [n["digest_key"] for n in _report(tmp_path, 8)["notifications"] if n["status"] == "dead"]
    dropped = _cli(tmp_path, "alerts", "outbox", "drop", gone, "--reason", "the duty desk was told by phone")
    assert dropped.exit_code == 0 and "dead → dropped; it will not be sent" in dropped.stdout
    assert json.loads(_cli(tmp_path, "alerts", "outbox", "--format", "json").stdout) == []
    # what the commands refuse
    for args, message in [
        (["retry", dead_key], "cannot retry digest"),
        (["drop", dead_key, "--reason", "x"], "it was delivered"),
        (["retry", "citykpi-nope"], "no digest 'citykpi-nope' in the outbox"),
        (["retry", "citykpi-"], "names 8 digests"),  # days 3, 5, 6 and 8, for each notifier
        (["drop", gone, "--reason", " "], "drop needs a --reason"),
    ]:
        r = _cli(tmp_path, "alerts", "outbox", *args)
        assert r.exit_code == 2 and message in r.output, (args, r.output)
    assert _cli(tmp_path, "alerts", "outbox", "drop", gone).exit_code == 2  # --reason is required
    # a drop is undone by retry; a digest that waits already is not retried twice
    undone = _cli(tmp_path, "alerts", "outbox", "retry", gone, "--notifier", "duty")
    assert undone.exit_code == 0 and "dropped → pending" in undone.stdout
    twice = _cli(tmp_path, "alerts", "outbox", "retry", gone)
    assert twice.exit_code == 2 and "it waits for delivery already" in twice.output


def test_delivered_and_dropped_digests_go_with_the_runs_they_belong_to(
    tmp_path: Path, scripted: _Scripted, monkeypatch: pytest.MonkeyPatch
) -> None:
    """keep_runs (and `runs prune`) remove the delivered and dropped digests older than every kept run;
    a dead one stays until an operator acts, a pending one until it is delivered."""
    clock = pinned_clock(monkeypatch, run_time(3))

    def rows() -> list[tuple[str, str, str]]:
        with Warehouse.open(tmp_path / "city.duckdb", read_only=True) as wh:
            found = wh.con.execute(
                "SELECT notifier, strftime(as_of, '%d'), status FROM notify_outbox ORDER BY as_of, notifier"
            ).fetchall()
        return [(str(n), str(d), str(s)) for n, d, s in found]

    config = _city(tmp_path, scripted.url, range(1, 7), extra="keep_runs = 2")
    scripted.script[:] = [422]  # day 3's digest to the webhook is refused for good
    assert _run(config, 3).exit_code == 4  # run 1
    for n in (4, 5):  # runs 2 and 3; run 3 prunes run 1 and day 3's delivered digest, not the dead one
        clock.set(run_time(n))
        assert _run(config, n).exit_code == 0
    assert rows() == [("duty", "03", "dead"), ("archive", "05", "delivered"), ("duty", "05", "delivered")]
    [dead] = json.loads(_cli(tmp_path, "alerts", "outbox", "--format", "json").stdout)
    assert (
        _cli(tmp_path, "alerts", "outbox", "drop", dead["digest_key"], "--reason", "told by phone").exit_code
        == 0
    )
    clock.set(run_time(6))
    six = _run(config, 6)  # run 4 prunes run 2: the dropped digest of run 1 goes too
    assert six.exit_code == 0, six.stderr
    assert "pruned 1 old run(s)" in six.stderr and "and 1 delivered or dropped digest(s)" in six.stderr
    assert rows() == [("archive", "05", "delivered"), ("duty", "05", "delivered"), ("archive", "06", "delivered"),
                      ("duty", "06", "delivered")]  # fmt: skip
    dry = _cli(tmp_path, "runs", "prune", "--keep", "1", "--dry-run")
    assert dry.exit_code == 0 and "2 delivered or dropped digest(s); 1 run(s) kept" in dry.stdout, dry.output
    assert len(rows()) == 4
    done = _cli(tmp_path, "runs", "prune", "--keep", "1")
    assert done.exit_code == 0 and "removed 1 run(s) (runs 3–3)" in done.stdout
    assert rows() == [("archive", "06", "delivered"), ("duty", "06", "delivered")]


def test_a_command_says_do_not_retry_with_exit_65(tmp_path: Path) -> None:
    import sys

    script = tmp_path / "send.py"
    script.write_text(
        "import os, sys\nprint('unknown duty officer', file=sys.stderr)\nsys.exit(int(sys.argv[1]))\n",
        encoding="utf-8",
    )
    refused = deliver(
        NotifierConfig("sms", "command", command=(sys.executable, str(script), "65")), "k", "{}"
    )
    assert (refused.delivered, refused.dead, refused.attempts) == (False, True, 1)
    assert refused.error.endswith("exited 65 (refused for good, not retried): unknown duty officer")
    failed = deliver(
        NotifierConfig("sms", "command", command=(sys.executable, str(script), "1"), retries=1, backoff=0),
        "k",
        "{}",
    )
    assert (failed.delivered, failed.dead, failed.attempts) == (False, False, 2)  # retried next run


# --- redelivery: said when an earlier attempt may have arrived ------------------------------------------


def test_an_attempt_after_one_that_may_have_arrived_says_redelivery() -> None:
    """A timeout may come after the receiver took the digest: the next attempt carries
    "redelivery": true (and a command CITYKPI_REDELIVERY=1); a refused connection or an HTTP answer
    does not make it uncertain; the JSONL notifier never gets the flag."""
    bodies: list[dict[str, Any]] = []
    outcomes: list[DeliveryError | None] = [
        DeliveryError("cannot reach x: refused", retry=True),
        DeliveryError("cannot reach x: timed out", retry=True, uncertain=True),
        None,
    ]

    def send(config: NotifierConfig, key: str, payload: str) -> None:
        bodies.append(json.loads(payload))
        failure = outcomes.pop(0)
        if failure is not None:
            raise failure

    hook = NotifierConfig("duty", "webhook", url="http://127.0.0.1:9/x", retries=3, backoff=0)
    doc = json.dumps({"key": "k1", "redelivery": False, "groups": []})
    done = deliver(hook, "k1", doc, sleep=lambda s: None, senders={"webhook": send})
    assert (done.delivered, done.attempts, done.uncertain) == (True, 3, True)
    assert [b["redelivery"] for b in bodies] == [False, False, True]
    assert {**bodies[0], "redelivery": True} == bodies[2]
    # a digest an earlier run may have sent: flagged from the first attempt, never for JSONL
    bodies.clear()
    outcomes[:] = [None, None]
    deliver(hook, "k1", doc, senders={"webhook": send}, redelivery=True)
    archive = NotifierConfig("archive", "jsonl", path=Path("unused.jsonl"))
    deliver(archive, "k1", doc, senders={"jsonl": send}, redelivery=True)
    assert [b["redelivery"] for b in bodies] == [True, False]


def test_a_webhook_timeout_makes_the_next_attempt_a_redelivery() -> None:
    """Through HTTP: the endpoint takes the digest and answers too late; the retry says redelivery."""
    seen: list[dict[str, Any]] = []

    class Slow(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            seen.append(json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0")))))
            if len(seen) == 1:
                time.sleep(1.0)  # longer than the notifier's timeout: the client gives up
            self.send_response(202)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
        hook = NotifierConfig("duty", "webhook", url=url, timeout=0.3, retries=1, backoff=0)
        done = deliver(hook, "k2", json.dumps({"key": "k2", "redelivery": False}), sleep=lambda s: None)
    finally:
        server.shutdown()
        server.server_close()
    assert (done.delivered, done.attempts, done.uncertain) == (True, 2, True)
    assert [d["redelivery"] for d in seen] == [False, True]


def test_a_command_is_told_of_a_redelivery(tmp_path: Path) -> None:
    import sys

    script = tmp_path / "send.py"
    got = tmp_path / "got.txt"
    script.write_text(
        "import os, sys, pathlib\n"
        "pathlib.Path(sys.argv[1]).write_text(os.environ.get('CITYKPI_REDELIVERY', '-') + ' ' + sys.stdin.read())\n",
        encoding="utf-8",
    )
    sms = NotifierConfig("sms", "command", command=(sys.executable, str(script), str(got)))
    assert deliver(sms, "k3", json.dumps({"key": "k3", "redelivery": False}), redelivery=True).delivered
    assert got.read_text(encoding="utf-8") == '1 {"key": "k3", "redelivery": true}'
    assert deliver(sms, "k3", json.dumps({"key": "k3", "redelivery": False})).delivered
    assert got.read_text(encoding="utf-8") == '- {"key": "k3", "redelivery": false}'


# --- the JSONL notifier reads only its file's end ---------------------------------------------------------


class _ReadMeter:
    """Bytes this process reads from files: the kernel's count (``rchar`` of /proc/self/io) where
    there is one, else what ``os.read``, ``os.pread`` and file objects read (counted by wrapping them)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.io = Path("/proc/self/io")
        self.counted = 0
        if not self.io.exists():
            for name in ("read", "pread"):
                real = getattr(os, name)

                def counting(*args: Any, real: Any = real) -> bytes:
                    data = real(*args)
                    self.counted += len(data)
                    return bytes(data)

                monkeypatch.setattr(os, name, counting)
        self.start = self.now()

    def now(self) -> int:
        if self.io.exists():
            return int(self.io.read_text().split("rchar:")[1].split()[0])
        return self.counted

    def since(self) -> int:
        """Bytes read since the meter was made (or last reset), and reset it."""
        done, self.start = self.now() - self.start, self.now()
        return done


def test_jsonl_reads_only_the_last_line_and_still_writes_each_digest_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "alerts.jsonl"
    line = json.dumps({"key": "citykpi-old", "redelivery": False, "groups": [{"items": ["x" * 180]}]})
    with path.open("w", encoding="utf-8") as fh:
        for _ in range(40_000):  # 8 MB of earlier digests
            fh.write(line + "\n")
    big = json.dumps({"key": "citykpi-last", "redelivery": False, "groups": [{"items": ["y" * 150_000]}]})
    config = NotifierConfig("archive", "jsonl", path=path)
    meter = _ReadMeter(monkeypatch)
    send_jsonl(config, "citykpi-last", big)  # the last line is another digest: appended
    size = path.stat().st_size
    assert meter.since() < 80_000  # the last line (and part of a block): the 8 MB before it are not read
    send_jsonl(config, "citykpi-last", big)  # a retry after a stopped run: found on the last line
    assert path.stat().st_size == size
    assert len(big) < meter.since() < len(big) + 80_000  # that line and part of the block before it
    with path.open("ab") as fh:
        fh.write(b'{"key": "citykpi-next", "gro')  # cut short by a crash
    meter.since()
    send_jsonl(config, "citykpi-next", json.dumps({"key": "citykpi-next"}))
    assert meter.since() < len(big) + 2 * 80_000  # the cut line, the line before it
    tail = path.read_bytes()[-400_000:].splitlines()
    assert [json.loads(x)["key"] for x in tail[-2:]] == ["citykpi-last", "citykpi-next"]
    assert path.stat().st_size == size + len(b'{"key": "citykpi-next"}\n')


def test_two_jsonl_notifiers_may_not_share_a_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="notifier 'a' writes the same file"):
        parse_notifiers(
            [
                {"name": "a", "type": "jsonl", "path": "out/x.jsonl"},
                {"name": "b", "type": "jsonl", "path": "out/x.jsonl"},
            ],
            base=tmp_path,
            origin="citykpi.toml",
        )


# --- the schema: databases of the previous version ----------------------------------------------------------


def test_version_4_databases_learn_what_each_notifier_was_told(tmp_path: Path) -> None:
    """Schema 5 keeps the newest date each notifier was told about; a database of version 4 starts
    from the digests it queued, so a backfill right after the upgrade tells no one anything."""
    import duckdb

    from citykpi.warehouse import schema as schema_mod

    path = tmp_path / "v4.duckdb"
    con = duckdb.connect(str(path))
    for version in (1, 2, 3, 4):
        for stmt in dict(schema_mod.MIGRATIONS)[version]:
            con.execute(stmt)
    con.execute("INSERT INTO meta VALUES ('schema_version', '4')")
    for notifier, as_of, run_id in (
        ("duty", "2025-12-30", 7),
        ("duty", "2025-12-31", 8),
        ("archive", "2025-12-29", 6),
    ):
        con.execute(
            "INSERT INTO notify_outbox (notifier, digest_key, run_id, as_of, grain, created_at, items, payload, "
            "status, attempts) VALUES (?, ?, ?, ?, 'day', TIMESTAMP '2026-01-01', 1, '{}', 'delivered', 1)",
            [notifier, f"k{run_id}", run_id, as_of],
        )
    con.close()
    with Warehouse.open(path) as wh:
        cursor = dict(wh.con.execute("SELECT notifier, as_of FROM notify_cursor").fetchall())
        flags = wh.con.execute("SELECT DISTINCT uncertain, action FROM notify_outbox").fetchall()
    assert cursor == {"duty": date(2025, 12, 31), "archive": date(2025, 12, 29)}
    assert flags == [(False, None)]


def test_the_outbox_functions_take_a_fake_sender(tmp_path: Path) -> None:
    """deliver_pending marks each digest `sending` (committed) before the attempt: what a stopped
    run leaves behind is visible, and the next attempt is told it may be a redelivery."""
    from citykpi.notify.digest import Digest, NotifierPlan, empty_state
    from citykpi.notify.outbox import deliver_pending, outbox, queue

    with Warehouse.open(tmp_path / "o.duckdb") as w:
        now = datetime(2026, 11, 20, tzinfo=UTC)
        digest = Digest("duty", "k1", 1, date(2026, 11, 19), "day", 1, {"key": "k1"})
        queue(w, [NotifierPlan("duty", digest, empty_state(), as_of=date(2026, 11, 19), run_id=1)], now=now)
        seen: list[tuple[str, bool]] = []

        def killed(config: NotifierConfig, key: str, payload: str, **kw: Any) -> Delivery:
            status = w.con.execute("SELECT status FROM notify_outbox WHERE digest_key = ?", [key]).fetchall()
            seen.append((status[0][0], kw["redelivery"]))
            raise KeyboardInterrupt  # the run is stopped during the delivery

        hook = NotifierConfig("duty", "webhook", url="http://127.0.0.1:9/x")
        with pytest.raises(KeyboardInterrupt):
            deliver_pending(w, [hook], now=lambda: now, send=killed)
        assert outbox(w)["status"].to_list() == ["sending"]

        def fine(config: NotifierConfig, key: str, payload: str, **kw: Any) -> Delivery:
            seen.append(("again", kw["redelivery"]))
            return Delivery(True, 1)

        deliver_pending(w, [hook], now=lambda: now, send=fine)
        assert seen == [("sending", False), ("again", True)]
        assert outbox(w, include_delivered=True)["status"].to_list() == ["delivered"]


def test_version_6_databases_keep_the_day_each_notifier_was_told(tmp_path: Path) -> None:
    """Schema 7 keeps the instant a notifier was told about; the days a version-6 database kept
    stay days (no instant), so a run for an earlier day is still a backfill and one for a later
    instant is not."""
    import duckdb

    from citykpi.notify.outbox import moment_key, told_up_to
    from citykpi.warehouse import schema as schema_mod

    path = tmp_path / "v6.duckdb"
    con = duckdb.connect(str(path))
    for version in (1, 2, 3, 4, 5, 6):
        for stmt in dict(schema_mod.MIGRATIONS)[version]:
            con.execute(stmt)
    con.execute("INSERT INTO meta VALUES ('schema_version', '6')")
    con.execute("INSERT INTO notify_cursor VALUES ('duty', DATE '2025-12-31', 8, TIMESTAMP '2026-01-01')")
    con.close()
    with Warehouse.open(path) as wh:
        told = told_up_to(wh)
        version = wh.con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchall()
    assert told == {"duty": date(2025, 12, 31)} and version == [(str(schema_mod.SCHEMA_VERSION),)]
    assert moment_key(datetime(2025, 12, 31, 23, 0)) < moment_key(told["duty"])
    assert moment_key(datetime(2026, 1, 1, 0, 10)) > moment_key(told["duty"])
