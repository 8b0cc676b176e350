"""Helpers for the daily-job tests: a local webhook receiver, a month of scripted city data, a config.

The receiver is an HTTP server on 127.0.0.1 standing in for an alerting endpoint: it can be up,
answer 503, or refuse connections, and it records every POST with its ``Idempotency-Key``.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.scorecard_city import START

CITY_TZ = ZoneInfo("Asia/Shanghai")


@dataclass
class Post:
    """One request the receiver took."""

    key: str | None
    document: dict[str, Any]
    headers: dict[str, str]


@dataclass
class Receiver:
    """A local webhook endpoint: ``mode`` is up, down (HTTP 503) or refuse (no listening socket)."""

    port: int = 0
    mode: str = "up"
    posts: list[Post] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None
    thread: threading.Thread | None = None

    def start(self) -> Receiver:
        """Listen (again, on the same port once one was given)."""
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if receiver.mode == "down":
                    self.send_response(503)
                    self.end_headers()
                    return
                receiver.posts.append(
                    Post(self.headers.get("Idempotency-Key"), json.loads(body), dict(self.headers.items()))
                )
                self.send_response(202)
                self.end_headers()
                self.wfile.write(b"accepted")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.mode = "up" if self.mode == "refuse" else self.mode
        return self

    def stop(self) -> None:
        """Stop listening: connections are refused."""
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
        self.mode = "refuse"

    @property
    def url(self) -> str:
        """The endpoint's URL."""
        return f"http://127.0.0.1:{self.port}/hooks/citykpi"

    def digests(self) -> dict[str, dict[str, Any]]:
        """The digests received, deduplicated by idempotency key (what a careful receiver keeps)."""
        out: dict[str, dict[str, Any]] = {}
        for p in self.posts:
            assert p.key is not None and p.key == p.document["key"]
            out.setdefault(p.key, p.document)
        return out


def items(documents: list[dict[str, Any]]) -> list[tuple[str, str, str, str, str, str | None]]:
    """Every item of the digests as (as_of, change, indicator_id, area_id, status, since), in order."""
    return [
        (d["as_of"], i["change"], i["indicator_id"], i["area_id"], i["status"], i["since"])
        for d in documents
        for g in d["groups"]
        for i in g["items"]
    ]


def day(n: int) -> date:
    """Day n of the simulated month (day 1 is START)."""
    return START + timedelta(days=n - 1)


def run_time(n: int, minute: int = 10) -> datetime:
    """When the run for day n starts: 02:MM the next morning, city time."""
    return datetime.combine(day(n) + timedelta(days=1), time(2, minute), CITY_TZ)


#: AQI of Yuzhong (500103) and Yubei (500112), and Yubei's water pressure compliance, by day: the
#: scripted episodes of the acceptance test. Anything not named is the quiet base.
AQI_YUZHONG = {
    3: 170.0,
    4: 170.0,
    5: 220.0,
    6: 220.0,
    7: 220.0,
    16: 260.0,
    17: 260.0,
    18: 260.0,
    19: 240.0,
    27: 230.0,
}
AQI_YUBEI = {16: 230.0, 17: 230.0, 18: 230.0, 19: 150.0}
PRESSURE_YUBEI = {n: 93.0 for n in range(8, 15)}


def write_aqi(folder: Path, n: int, *, name: str | None = None) -> Path:
    """The AQI file of day n (both districts)."""
    d = day(n).isoformat()
    rows = [
        "indicator_id,area_id,period,value",
        f"env.air.aqi,500103,{d},{AQI_YUZHONG.get(n, 60.0)}",
        f"env.air.aqi,500112,{d},{AQI_YUBEI.get(n, 50.0)}",
    ]
    path = folder / (name or f"aqi-{d}.csv")
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def pressure_rows(n: int) -> list[str]:
    """The data rows of day n's pressure file."""
    d = day(n).isoformat()
    return [
        f"water.supply.pressure_ok,500103,{d},99.5",
        f"water.supply.pressure_ok,500112,{d},{PRESSURE_YUBEI.get(n, 99.0)}",
    ]


def write_pressure(folder: Path, n: int) -> Path:
    """The pressure file of day n (both districts)."""
    path = folder / f"pressure-{day(n).isoformat()}.csv"
    path.write_text(
        "\n".join(["indicator_id,area_id,period,value", *pressure_rows(n)]) + "\n", encoding="utf-8"
    )
    return path


def write_config(root: Path, url: str, *, extra: str = "") -> Path:
    """The job's config for the tiny city with a webhook and a JSONL notifier (quick retries)."""
    path = root / "citykpi.toml"
    path.write_text(
        f"""database = "city.duckdb"
catalogue = "catalogue"
areas = "areas.csv"
inbox = ["inbox"]
lang = "en"
timezone = "Asia/Shanghai"
settle = 0.3
remind_after = 3
{extra}
[outputs]
folder = "out"
formats = ["json", "csv"]

[[notifiers]]
name = "duty"
type = "webhook"
url = "{url}"
timeout = 5
retries = 1
backoff = 0.01

[[notifiers]]
name = "archive"
type = "jsonl"
path = "out/alerts.jsonl"
""",
        encoding="utf-8",
    )
    return path


class Clock:
    """A settable clock standing in for ``citykpi.daily.clock.now`` (aware, advances a second a call)."""

    def __init__(self, start: datetime) -> None:
        self.at = start

    def set(self, moment: datetime) -> None:
        """Jump to a moment."""
        self.at = moment

    def __call__(self, tz: Any = None) -> datetime:
        self.at += timedelta(seconds=1)
        return self.at.astimezone(tz) if tz is not None else self.at


def pinned_clock(monkeypatch: pytest.MonkeyPatch, start: datetime) -> Clock:
    """Pin the daily job's clock (every "now" of run, silences and logs) to a settable one."""
    clock = Clock(start)
    monkeypatch.setattr("citykpi.daily.clock.now", clock)
    return clock


class GrowingFile:
    """A file another program is still copying into the inbox: every wait of the job (its ``sleep``
    between the two looks) sees a few more bytes of it. ``finish`` writes it whole."""

    def __init__(self, path: Path, rows: list[str]) -> None:
        self.path = path
        self.text = "\n".join(["indicator_id,area_id,period,value", *rows]) + "\n"
        self.written = len(self.text) // 3
        path.write_text(self.text[: self.written], encoding="utf-8")

    def sleep(self, seconds: float) -> None:
        """What the job's wait does while the copy goes on."""
        if self.written < len(self.text) - 1:
            self.written += 3
            self.path.write_text(self.text[: self.written], encoding="utf-8")

    def finish(self) -> None:
        """The copy is complete."""
        self.path.write_text(self.text, encoding="utf-8")
