"""Headless Chromium driven over the DevTools protocol on a pipe, for the HTML report's browser tests.

Why the DevTools protocol on ``--remote-debugging-pipe`` rather than Selenium: it needs no package
(Selenium and its dependencies would be a new test dependency, and its Selenium Manager may try to
download a driver unless told otherwise), no chromedriver matching the browser's version, and no TCP
port — the browser talks to the test over two inherited file descriptors, so nothing listens on the
network at all. The browser runs with its network features off and a fresh profile in a short private
TMPDIR (a Unix socket path may not exceed ~107 bytes: a long checkout path once aborted the browser).

The protocol: JSON messages separated by NUL bytes, written to the browser's fd 3 and read from its
fd 4. Commands carry an ``id`` (and a ``sessionId`` once attached to a page); events have a
``method`` and no ``id``. Every event is kept, so a test can look for dialogs, console messages,
exceptions, CSP violations and network requests afterwards.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")

#: The flags every test browser starts with: headless, no sandbox (tests run as root in CI), and
#: every background feature that could reach the network switched off.
FLAGS: tuple[str, ...] = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-domain-reliability",
    "--disable-client-side-phishing-detection",
    "--no-first-run",
    "--no-default-browser-check",
    "--mute-audio",
    "--remote-debugging-pipe",
)


class BrowserError(RuntimeError):
    """The browser answered a command with an error, or did not answer in time."""


class Browser:
    """One headless Chromium and one page in it."""

    def __init__(self, proc: subprocess.Popen[bytes], to_browser: int, from_browser: int) -> None:
        self.proc = proc
        self._out = to_browser
        self._in = from_browser
        self._buffer = b""
        self._next = 0
        self.events: list[dict[str, Any]] = []
        self.session: str | None = None

    # --- the protocol ------------------------------------------------------------------------------
    def _read_message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BrowserError("the browser did not answer in time")
            ready, _, _ = select.select([self._in], [], [], left)
            if not ready:
                continue
            chunk = os.read(self._in, 1 << 20)
            if not chunk:
                raise BrowserError(f"the browser closed the pipe (exit code {self.proc.poll()})")
            self._buffer += chunk
        raw, _, self._buffer = self._buffer.partition(b"\0")
        message: dict[str, Any] = json.loads(raw)
        return message

    def send(
        self, method: str, params: dict[str, Any] | None = None, *, timeout: float = 30
    ) -> dict[str, Any]:
        """Send a command (to the page once attached) and return its result; events are kept."""
        self._next += 1
        message: dict[str, Any] = {"id": self._next, "method": method, "params": params or {}}
        if self.session is not None and not method.startswith("Target."):
            message["sessionId"] = self.session
        os.write(self._out, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._next:
                if "error" in reply:
                    raise BrowserError(f"{method}: {reply['error']}")
                result: dict[str, Any] = reply.get("result", {})
                return result
            self.events.append(reply)

    def pump(self, seconds: float) -> None:
        """Keep reading events for ``seconds`` (timers, late console messages)."""
        deadline = time.monotonic() + seconds
        with contextlib.suppress(BrowserError):
            while time.monotonic() < deadline:
                self.events.append(self._read_message(deadline))

    def wait_for(self, method: str, timeout: float = 30) -> dict[str, Any]:
        """The first event ``method`` (already received or arriving within ``timeout``)."""
        for event in self.events:
            if event.get("method") == method:
                return event
        deadline = time.monotonic() + timeout
        while True:
            event = self._read_message(deadline)
            self.events.append(event)
            if event.get("method") == method:
                return event

    # --- a page ------------------------------------------------------------------------------------
    def open(self, url: str) -> None:
        """Open a page on ``url`` and wait until it has loaded."""
        target = self.send("Target.createTarget", {"url": "about:blank"})
        attached = self.send("Target.attachToTarget", {"targetId": target["targetId"], "flatten": True})
        self.session = attached["sessionId"]
        for domain in ("Page", "Runtime", "Network", "Log"):
            self.send(f"{domain}.enable")
        self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": False},
        )
        self.send("Page.navigate", {"url": url})
        self.wait_for("Page.loadEventFired")

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (JSON-serialisable values only)."""
        result = self.send(
            "Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True}
        )
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def click(self, selector: str) -> None:
        """A real mouse click in the middle of the first element matching ``selector``."""
        box = self.evaluate(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)}); e.scrollIntoView({{block: 'center'}});"
            " const r = e.getBoundingClientRect(); return [r.left + r.width / 2, r.top + r.height / 2]; })()"
        )
        if box is None:
            raise BrowserError(f"no element {selector}")
        x, y = box
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            self.send(
                "Input.dispatchMouseEvent",
                {
                    "type": kind,
                    "x": x,
                    "y": y,
                    "button": "left",
                    "clickCount": 1 if kind != "mouseMoved" else 0,
                },
            )

    def type_text(self, selector: str, text: str) -> None:
        """Click into ``selector`` and type ``text`` as keyboard input (one insert per character)."""
        self.click(selector)
        for ch in text:
            self.send("Input.insertText", {"text": ch})

    def screenshot(self, path: Path, *, full_page: bool = False) -> Path:
        """A PNG of the page (the viewport, or the whole page)."""
        import base64

        params: dict[str, Any] = {"format": "png"}
        if full_page:
            size = self.evaluate(
                "[document.documentElement.scrollWidth, document.documentElement.scrollHeight]"
            )
            params |= {
                "captureBeyondViewport": True,
                "clip": {"x": 0, "y": 0, "width": size[0], "height": min(size[1], 16000), "scale": 1},
            }
        data = self.send("Page.captureScreenshot", params)["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    # --- what happened ---------------------------------------------------------------------------
    def dialogs(self) -> list[dict[str, Any]]:
        """Every JavaScript dialog (alert, confirm, prompt) the page opened."""
        return [e for e in self.events if e.get("method") == "Page.javascriptDialogOpening"]

    def problems(self) -> list[str]:
        """Uncaught exceptions, console errors and warnings, and browser log errors (CSP violations)."""
        out: list[str] = []
        for e in self.events:
            method, params = e.get("method"), e.get("params", {})
            if method == "Runtime.exceptionThrown":
                out.append(f"exception: {params.get('exceptionDetails', {})}")
            elif method == "Runtime.consoleAPICalled" and params.get("type") in (
                "error",
                "warning",
                "assert",
            ):
                out.append(f"console {params.get('type')}: {params.get('args')}")
            elif method == "Log.entryAdded" and params.get("entry", {}).get("level") in ("error", "warning"):
                out.append(f"log: {params['entry'].get('text')}")
        return out

    def requests(self) -> list[str]:
        """The URL of every request the page made."""
        return [
            e["params"]["request"]["url"]
            for e in self.events
            if e.get("method") == "Network.requestWillBeSent"
        ]


def _high(pair: tuple[int, int]) -> tuple[int, int]:
    """The two ends of a pipe moved above fd 10, so that placing them on 3 and 4 cannot clobber one."""
    out = tuple(fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in pair)
    for fd in pair:
        os.close(fd)
    return out[0], out[1]


@contextlib.contextmanager
def browser() -> Iterator[Browser]:
    """A fresh headless Chromium (own profile, short private TMPDIR), closed afterwards."""
    with tempfile.TemporaryDirectory(prefix="ck-", dir="/tmp" if os.path.isdir("/tmp") else None) as short:
        to_read, to_browser = _high(os.pipe())  # the browser reads commands on its fd 3
        from_browser, to_write = _high(os.pipe())  # and writes replies on its fd 4

        def fds() -> None:  # in the child, before exec: the two pipe ends become its fds 3 and 4
            os.dup2(to_read, 3)
            os.dup2(to_write, 4)

        env = {**os.environ, "TMPDIR": short, "HOME": short}
        proc = subprocess.Popen(
            [str(CHROMIUM), *FLAGS, f"--user-data-dir={short}/profile", "about:blank"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=fds,
            pass_fds=(3, 4),
            env=env,
        )
        os.close(to_read)
        os.close(to_write)
        b = Browser(proc, to_browser, from_browser)
        try:
            yield b
        finally:
            with contextlib.suppress(BrowserError, OSError):
                b.send("Browser.close", timeout=10)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=20)
            os.close(to_browser)
            os.close(from_browser)
            shutil.rmtree(short, ignore_errors=True)
