"""A month of unattended operation, and SIGKILLs at the job's worst moments.

``test_thirty_days_of_operation`` runs ``citykpi run`` once a day (through the CLI) for 30 simulated
days of the tiny city with a local HTTP server standing in for the webhook: late files, a rejected
file, a duplicated file, a file still being copied, the webhook down for two days (HTTP 503, then no
listener) and back, two overlapping runs, a silence that expires mid-episode, and a red parent area
that holds back its districts. Each day's exit status is the one the contract's table says; after
each day the database is whole, the day's scorecard file equals its recorded run, every inbox file
is in exactly one place, and the run report agrees. At the end every alert was delivered exactly
once, none lost, none twice, in the order of the hand-computed list ``EXPECTED``.

The kill tests stop ``run`` with SIGKILL inside the notification steps (after the digests are
queued; after a digest was marked ``sending`` and before it went out; after the receiver took a
digest and before the outbox recorded it; after the JSONL notifier wrote its line and before the
outbox recorded it) and check the guarantees docs/daily-run.md states: the JSONL notifier writes
each digest exactly once; a webhook gets it at least once, again only with the same idempotency key
and ``"redelivery": true``, so a receiver that dedupes on the key acts on each digest once; no alert
is ever put in two digests. The slow test kills ``run`` at random moments of a fortnight, many
times over.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from citykpi.cli import app
from citykpi.cron import run_lock
from citykpi.warehouse import Warehouse
from tests.daily_support import (
    GrowingFile,
    Receiver,
    day,
    items,
    pinned_clock,
    pressure_rows,
    run_time,
    write_aqi,
    write_config,
    write_pressure,
)
from tests.reliability_support import PYTHON, REPO, check_invariants, kill_at
from tests.scorecard_city import write_city

#: The notices the month must produce, by the day they are about (hand-computed from the script in
#: daily_support: AQI red above 200, orange above 150; pressure orange below 95; reminders every 3 days).
EXPECTED: list[tuple[int, str, str, str, str, int]] = [
    # day, change, indicator, area, status, since (day)
    (3, "new", "env.air.aqi", "500103", "orange", 3),
    (5, "escalated", "env.air.aqi", "500103", "red", 3),  # webhook down (503): delivered on day 7
    (6, "still_firing", "env.air.aqi", "500103", "red", 3),  # webhook not listening: delivered on day 7
    (8, "resolved", "env.air.aqi", "500103", "blue", 3),
    # Yubei's pressure is orange from day 8, silenced until the end of day 11 (expires mid-episode)
    (11, "new", "water.supply.pressure_ok", "500112", "orange", 8),
    (14, "still_firing", "water.supply.pressure_ok", "500112", "orange", 8),
    (15, "resolved", "water.supply.pressure_ok", "500112", "green", 8),
    # the city is red: its districts' red AQI is held back (inhibited) …
    (16, "new", "env.air.aqi", "500000", "red", 16),
    # … until the city is only orange: Yuzhong, still red, is announced with its true start
    (19, "new", "env.air.aqi", "500103", "red", 16),
    (19, "still_firing", "env.air.aqi", "500000", "orange", 16),
    (21, "resolved", "env.air.aqi", "500000", "blue", 16),
    (21, "resolved", "env.air.aqi", "500103", "blue", 16),
    (27, "new", "env.air.aqi", "500103", "red", 27),
    (28, "resolved", "env.air.aqi", "500103", "blue", 27),
]

#: The exit status of each day's run (the contract's table), and of the extra runs on some days.
EXIT: dict[int, int] = {n: 0 for n in range(1, 31)} | {5: 4, 6: 4, 10: 4, 20: 5, 27: 1}


def _cli(config: Path, *args: str) -> Result:
    return CliRunner().invoke(app, ["run", "--config", str(config), *args])


def _scorecard_matches_its_run(root: Path, n: int, run_id: int) -> None:
    """The day's scorecard file holds exactly the statuses its recorded run holds."""
    doc = json.loads((root / "out" / f"scorecard-{day(n)}-day.json").read_text(encoding="utf-8"))
    exported = {(c["indicator_id"], c["area_id"]): c["status"] for c in doc["cells"]}
    with Warehouse.open(root / "city.duckdb", read_only=True, create=False) as wh:
        recorded = {
            (str(i), str(a)): str(s)
            for i, a, s in wh.con.execute(
                """SELECT k.indicator_id, a.area_id, c.status FROM run_cells c
                   JOIN indicator_keys k USING (indicator_key) JOIN areas a USING (area_key)
                   JOIN runs r USING (run_id) WHERE c.run_id = ? AND r.scheduled AND r.as_of = ?""",
                [run_id, day(n)],
            ).fetchall()
        }
    assert exported == recorded and len(recorded) == 6


def _where_files_are(inbox: Path) -> dict[str, list[str]]:
    """Each file name and the folders it is in (the inbox, done/, rejected/)."""
    places: dict[str, list[str]] = {}
    for folder in (inbox, inbox / "done", inbox / "rejected"):
        if folder.is_dir():
            for p in folder.iterdir():
                if p.is_file():
                    places.setdefault(p.name, []).append(folder.name)
    return places


def test_thirty_days_of_operation(
    tmp_path: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = write_city(tmp_path)
    inbox = paths["inbox"]
    config = write_config(tmp_path, receiver.url)
    clock = pinned_clock(monkeypatch, run_time(1))
    (inbox / "notes.txt").write_text("the feeds of the environment bureau come at 01:00\n", encoding="utf-8")
    dropped: set[str] = {"notes.txt"}
    codes: dict[int, int] = {}
    growing: GrowingFile | None = None
    for n in range(1, 31):
        clock.set(run_time(n))
        # --- what arrives in the inbox before the run of day n ---------------------------------------
        if n != 20:  # day 20's files are late: they come with day 21's
            dropped.add(write_aqi(inbox, n).name)
        if n not in (20, 23):
            dropped.add(write_pressure(inbox, n).name)
        if n == 21:
            dropped |= {write_aqi(inbox, 20).name, write_pressure(inbox, 20).name}
        if n == 24:
            assert growing is not None
            growing.finish()  # the copy ended after yesterday's run: today's run takes it
        if n == 10:
            (inbox / "broken.csv").write_bytes(b"\x00\x01 not a table \xff\n")
            dropped.add("broken.csv")
        if n == 12:  # yesterday's AQI file sent again under another name
            shutil.copy(inbox / "done" / f"aqi-{day(11)}.csv", inbox / "aqi-resent.csv")
            dropped.add("aqi-resent.csv")
        if n == 23:  # a file still being copied, and one with a temporary name
            growing = GrowingFile(inbox / f"pressure-{day(23)}.csv", pressure_rows(23))
            dropped.add(growing.path.name)
            (inbox / f"aqi-{day(24)}.csv.part").write_text("indicator_id,area", encoding="utf-8")
            dropped.add(f"aqi-{day(24)}.csv.part")
        # --- the endpoint ----------------------------------------------------------------------------
        if n == 5:
            receiver.mode = "down"  # HTTP 503
        if n == 6:
            receiver.stop()  # nothing listens: connection refused
        if n == 7:
            receiver.start()
        # --- the run(s) of day n ---------------------------------------------------------------------
        if n == 13:  # another run holds the lock: busy, nothing done, no report
            with run_lock(tmp_path / "city.duckdb"):
                busy = _cli(config, "--date", day(n).isoformat())
            assert busy.exit_code == 75, busy.stderr
            assert not (tmp_path / "out" / "runs" / f"run-{day(n)}-day.json").exists()
        args = ["--date", day(n).isoformat()] + (["--fail-on", "red"] if n == 27 else [])
        if n == 23:
            assert growing is not None
            with monkeypatch.context() as m:
                m.setattr("time.sleep", growing.sleep)  # the copy goes on while the job waits
                result = _cli(config, *args)
        else:
            result = _cli(config, *args)
        codes[n] = result.exit_code
        assert result.exit_code == EXIT[n], (n, result.stderr[-3000:])
        assert "Traceback" not in result.output
        if n == 7:  # the silence of Yubei's pressure, until the end of day 11
            clock.set(run_time(7, minute=40))
            added = CliRunner().invoke(
                app,
                ["--db", str(paths["db"]), "--catalogue", str(paths["catalogue"]), "alerts", "silence", "add",
                 "--indicator", "water.supply.*", "--area", "500112", "--until", day(11).isoformat(),
                 "--reason", "valve replacement", "--timezone", "Asia/Shanghai", "--by", "duty officer"],
            )  # fmt: skip
            assert added.exit_code == 0, added.output
            assert "until 2026-11-12T00:00+08:00 (active)" in added.stdout
        # --- the day is consistent -------------------------------------------------------------------
        report = json.loads(
            (tmp_path / "out" / "runs" / f"run-{day(n)}-day.json").read_text(encoding="utf-8")
        )
        assert report["exit_code"] == EXIT[n] and report["as_of"] == day(n).isoformat()
        assert report["health"]["status"] == {0: "ok", 1: "ok", 4: "partial", 5: "no_data"}[EXIT[n]]
        check_invariants(paths["db"])
        _scorecard_matches_its_run(tmp_path, n, report["run_id"])
        places = _where_files_are(inbox)
        assert set(places) == dropped, "a file appeared or vanished"
        assert all(len(where) == 1 for where in places.values()), places
        assert places["notes.txt"] == ["inbox"] and places.get("broken.csv", ["rejected"]) == ["rejected"]
        if n == 23 and growing is not None:
            assert places[growing.path.name] == ["inbox"] and places[f"aqi-{day(24)}.csv.part"] == ["inbox"]
            waiting = {Path(w["path"]).name: w["reason"] for w in report["waiting"]}
            assert "still being written" in waiting[growing.path.name]
            assert "temporary name" in waiting[f"aqi-{day(24)}.csv.part"]
        if n == 24 and growing is not None:
            assert places[growing.path.name] == ["done"]
        assert [Path(i["path"]).name for i in report["ignored"]] == ["notes.txt"]
        if n in (5, 6):
            assert "not delivered yet" in " ".join(report["health"]["reasons"])
        if n == 10:
            assert report["health"]["reasons"] == ["broken.csv was rejected"]
        if n == 12:
            resent = next(f for f in report["files"] if Path(f["path"]).name == "aqi-resent.csv")
            assert resent["status"] == "unchanged" and "done" in resent["moved_to"]
        if n == 20:
            assert report["health"]["reasons"][0].startswith(f"no data for {day(20)}")
        if n == 16:
            duty = _jsonl(tmp_path)[-1]
            assert duty["held_back"] == {"silenced": 0, "inhibited": 2}
    # --- every alert delivered exactly once, in order, none lost ---------------------------------------
    expected = [(day(d).isoformat(), c, i, a, s, day(since).isoformat()) for d, c, i, a, s, since in EXPECTED]
    webhook = sorted(receiver.digests().values(), key=lambda doc: (doc["as_of"], doc["run_id"]))
    assert [p.key for p in receiver.posts] == [p.document["key"] for p in receiver.posts]
    assert len(receiver.posts) == len(webhook), "a digest was posted twice"
    # no run was stopped mid-delivery and no attempt timed out (503, then no listener: answers that
    # say the digest was not taken), so no delivery is flagged as a possible repeat
    assert [p.document["redelivery"] for p in receiver.posts] == [False] * len(receiver.posts)
    assert items(webhook) == expected
    assert [doc["as_of"] for doc in (p.document for p in receiver.posts)][:4] == [
        day(3).isoformat(),
        day(5).isoformat(),  # the digests of the days the endpoint was down, in order, on day 7
        day(6).isoformat(),
        day(8).isoformat(),
    ]
    assert items(_jsonl(tmp_path)) == expected  # the JSONL notifier, never down, got the same
    with Warehouse.open(paths["db"], read_only=True, create=False) as wh:
        pending = wh.con.execute("SELECT count(*) FROM notify_outbox WHERE status <> 'delivered'").fetchall()
        attempts = dict(
            wh.con.execute(
                "SELECT as_of, attempts FROM notify_outbox WHERE notifier = 'duty' ORDER BY as_of"
            ).fetchall()
        )
    assert pending == [(0,)]
    assert attempts[day(5)] == 2 + 2 + 1  # two attempts on day 5, two on day 6, delivered on day 7
    assert attempts[day(6)] == 1  # it waited behind day 5's, in order, and went through at once


def _jsonl(root: Path) -> list[dict[str, Any]]:
    lines = (root / "out" / "alerts.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


# --- SIGKILL inside the notification steps ------------------------------------------------------------


def _month_start(root: Path, receiver: Receiver, days: int) -> Path:
    """The tiny city with ``days`` days run to completion (real processes)."""
    write_city(root)
    config = write_config(root, receiver.url)
    config.write_text(
        config.read_text(encoding="utf-8").replace("settle = 0.3", "settle = 0"), encoding="utf-8"
    )
    for n in range(1, days + 1):
        write_aqi(root / "inbox", n)
        write_pressure(root / "inbox", n)
    return config


def _cli_process(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYTHON, "-m", "citykpi", *map(str, args)], capture_output=True, text=True, cwd=REPO, timeout=300
    )


def test_kill_after_the_digest_is_queued_delivers_it_once(tmp_path: Path, receiver: Receiver) -> None:
    config = _month_start(tmp_path, receiver, 3)
    kill_at("queued", "queued", "run", "--config", config, "--date", day(3).isoformat())
    assert receiver.posts == []  # queued, not sent
    with Warehouse.open(tmp_path / "city.duckdb", read_only=True, create=False) as wh:
        queued = wh.con.execute("SELECT notifier, status FROM notify_outbox ORDER BY notifier").fetchall()
    assert queued == [("archive", "pending"), ("duty", "pending")]
    again = _cli_process("run", "--config", config, "--date", day(3).isoformat())
    assert again.returncode == 0, again.stderr
    assert len(receiver.posts) == 1 and items([receiver.posts[0].document]) == [
        (day(3).isoformat(), "new", "env.air.aqi", "500103", "orange", day(3).isoformat())
    ]
    assert len(_jsonl(tmp_path)) == 1
    check_invariants(tmp_path / "city.duckdb")


def _outbox(root: Path) -> dict[str, tuple[str, bool]]:
    """Each notifier's digest of the (single) day: its status and whether it may have been seen."""
    with Warehouse.open(root / "city.duckdb", read_only=True, create=False) as wh:
        rows = wh.con.execute(
            "SELECT notifier, status, uncertain FROM notify_outbox ORDER BY notifier"
        ).fetchall()
    return {str(n): (str(s), bool(u)) for n, s, u in rows}


def test_kill_after_the_receiver_took_the_digest_sends_it_again_with_the_same_key(
    tmp_path: Path, receiver: Receiver
) -> None:
    config = _month_start(tmp_path, receiver, 3)
    kill_at("sent", "sent", "run", "--config", config, "--date", day(3).isoformat())
    assert len(receiver.posts) == 1  # the receiver has it; the outbox knows only that it was being sent
    assert _outbox(tmp_path)["duty"] == ("sending", False)
    again = _cli_process("run", "--config", config, "--date", day(3).isoformat())
    assert again.returncode == 0, again.stderr
    # at least once: the same digest again, with the same key and flagged as a possible repeat …
    assert len(receiver.posts) == 2 and receiver.posts[0].key == receiver.posts[1].key
    first, second = (p.document for p in receiver.posts)
    assert (first["redelivery"], second["redelivery"]) == (False, True)
    assert {**first, "redelivery": True} == second
    assert receiver.posts[1].headers["Idempotency-Key"] == first["key"]
    # … so a receiver that keeps the keys it has seen acts on it once
    assert len(receiver.digests()) == 1
    assert _outbox(tmp_path)["duty"] == ("delivered", True)
    # … and the JSONL notifier, its own receiver, wrote it once
    assert len(_jsonl(tmp_path)) == 1
    # the next day tells nothing twice
    write_aqi(tmp_path / "inbox", 4)
    write_pressure(tmp_path / "inbox", 4)
    assert _cli_process("run", "--config", config, "--date", day(4).isoformat()).returncode == 0
    assert len(receiver.digests()) == 1
    assert [p.document["redelivery"] for p in receiver.posts] == [False, True]


def test_kill_before_the_post_still_says_it_may_be_a_repeat(tmp_path: Path, receiver: Receiver) -> None:
    """Killed after the digest was marked `sending` and before the POST: the next run cannot know
    whether it went out, so it sends it once, flagged as a possible repeat."""
    config = _month_start(tmp_path, receiver, 3)
    kill_at("sending", "sending", "run", "--config", config, "--date", day(3).isoformat())
    assert receiver.posts == [] and _outbox(tmp_path)["duty"] == ("sending", False)
    again = _cli_process("run", "--config", config, "--date", day(3).isoformat())
    assert again.returncode == 0, again.stderr
    assert [p.document["redelivery"] for p in receiver.posts] == [True]
    assert _outbox(tmp_path)["duty"] == ("delivered", True)


def test_kill_after_the_jsonl_line_is_written_writes_it_exactly_once(
    tmp_path: Path, receiver: Receiver
) -> None:
    """The JSONL notifier's line is in its file, the outbox says `sending`: the next run finds the
    line (the file's last one) and appends nothing; no redelivery flag is ever written there."""
    config = _month_start(tmp_path, receiver, 3)
    kill_at("appended", "appended", "run", "--config", config, "--date", day(3).isoformat())
    [line] = _jsonl(tmp_path)
    assert _outbox(tmp_path)["archive"] == ("sending", False)
    again = _cli_process("run", "--config", config, "--date", day(3).isoformat())
    assert again.returncode == 0, again.stderr
    assert _jsonl(tmp_path) == [line] and line["redelivery"] is False
    assert _outbox(tmp_path)["archive"] == ("delivered", True)
    assert len(receiver.digests()) == 1


# --- slow: many kills at random moments --------------------------------------------------------------


def _reference(root: Path, days: int) -> list[tuple[Any, ...]]:
    """The notices of an uninterrupted fortnight (the same script), from the JSONL notifier."""
    ref = Receiver().start()
    try:
        config = _month_start(root, ref, days)
        for n in range(1, days + 1):
            assert _cli_process("run", "--config", config, "--date", day(n).isoformat()).returncode in (0, 4)
        return items(_jsonl(root))
    finally:
        ref.stop()


@pytest.mark.slow
def test_random_kills_of_run_lose_nothing_and_tell_nothing_twice(tmp_path: Path, receiver: Receiver) -> None:
    """Kill `run` after random delays, day after day; re-run the day to completion after each kill."""
    kills_wanted = int(os.environ.get("CITYKPI_KILLS", "45"))
    budget = float(os.environ.get("CITYKPI_KILL_SECONDS", "600"))
    rng = random.Random(int(os.environ.get("CITYKPI_KILL_SEED", "20261207")))
    days = 21
    expected = _reference(tmp_path / "reference", days)
    root = tmp_path / "killed"
    root.mkdir()
    config = _month_start(root, receiver, 0)
    started = time.monotonic()
    durations: list[float] = [1.0]
    kills = finished_first = 0
    n = 0
    while n < days and time.monotonic() - started < budget:
        n += 1
        write_aqi(root / "inbox", n)
        write_pressure(root / "inbox", n)
        for _ in range(
            max(1, kills_wanted // days + (1 if rng.random() < (kills_wanted % days) / days else 0))
        ):
            proc = subprocess.Popen(
                [PYTHON, "-m", "citykpi", "run", "--config", str(config), "--date", day(n).isoformat()],
                cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            time.sleep(rng.uniform(0.05, sorted(durations)[len(durations) // 2] * 0.95))
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=120)
            if proc.returncode == -signal.SIGKILL:
                kills += 1
            else:
                finished_first += 1
            if (root / "city.duckdb").exists():  # a kill before the first run created it leaves none
                check_invariants(root / "city.duckdb")
        t0 = time.monotonic()
        done = _cli_process("run", "--config", config, "--date", day(n).isoformat())
        durations.append(time.monotonic() - t0)
        assert done.returncode in (0, 4), done.stderr[-2000:]
        check_invariants(root / "city.duckdb")
        inbox = root / "inbox"
        assert sorted(p.name for p in inbox.iterdir() if p.is_file()) == [], "a file was left in the inbox"
        assert len(list((inbox / "done").iterdir())) == 2 * n, "an inbox file was lost"
    got = receiver.digests()
    keyed_items = [(key, it) for key, doc in got.items() for it in items([doc])]
    assert len({it for _, it in keyed_items}) == len(keyed_items), "an alert was put in two digests"
    delivered = items(sorted(got.values(), key=lambda doc: (doc["as_of"], doc["run_id"])))
    assert delivered == expected[: len(delivered)] and len(delivered) == len(
        [e for e in expected if e[0] <= day(n).isoformat()]
    )
    assert items(_jsonl(root)) == delivered  # the JSONL notifier: exactly once, no dedupe needed
    print(
        f"\nrandom kills of run: {kills} SIGKILLs landed over {n} days, {finished_first} runs finished "
        f"first; {len(receiver.posts)} POSTs for {len(got)} digests ({len(receiver.posts) - len(got)} "
        f"resent with their key after a kill), {len(delivered)} alerts delivered, 0 lost, 0 twice"
    )
    assert kills >= min(20, kills_wanted // 2), f"only {kills} kills landed"
