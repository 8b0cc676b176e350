"""Notifiers declared in the run configuration, and how each delivers one digest.

``[[notifiers]]`` tables (paths relative to the config file)::

    [[notifiers]]
    name = "archive"            # unique; the outbox and the delivery state are kept per name
    type = "jsonl"              # one digest per line, appended
    path = "out/alerts.jsonl"

    [[notifiers]]
    name = "duty"
    type = "webhook"            # HTTP POST of the digest (application/json)
    url = "https://alerts.example.gov.cn/hooks/citykpi"
    headers = {Authorization = "Bearer ${CITYKPI_WEBHOOK_TOKEN}"}   # ${VAR}: from the environment
    timeout = 10                # seconds per attempt
    retries = 3                 # attempts after the first, within one run
    backoff = 1.0               # seconds before the first retry, doubled each time
    domains = ["environment"]   # optional: only alerts of these domains (and/or owners = [...])

    [[notifiers]]
    name = "sms"
    type = "command"            # the digest as JSON on stdin; exit 0 means delivered
    command = ["/usr/local/bin/send-digest", "--to", "duty-officer"]   # an argument list, never a shell

Every attempt sends the digest's idempotency key (``key`` in the document; the webhook's
``Idempotency-Key`` header; ``CITYKPI_DIGEST_KEY`` for a command). An attempt made after one that
may have reached the receiver (a run stopped while sending, a timeout, a connection lost after the
request went out) says so: ``"redelivery": true`` in the document (``CITYKPI_REDELIVERY=1`` for a
command), so a receiver that keeps the keys it has seen can drop the duplicate. A webhook contacts
only its ``url``: redirects are refused and the environment's proxy variables ignored (``proxy =
URL`` sets one on purpose). The JSONL notifier is its own receiver: before appending it reads the
last line of its file (only that: the outbox sends a notifier's digests one at a time, in order, so
the only digest a stopped run may have written unrecorded is the last line), and appends a digest
exactly once.

A refusal for good (HTTP 4xx other than 408, 425 and 429; a command exiting
:data:`DO_NOT_RETRY_EXIT`) is *dead*: it is not retried by later runs (the outbox sets it aside for
an operator) and does not hold back the notifier's later digests.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from citykpi import __version__
from citykpi.errors import ConfigError

#: Keys of a ``[[notifiers]]`` table, by type (``name``, ``type``, ``domains``, ``owners`` always).
_COMMON = {"name", "type", "domains", "owners"}
_KEYS: Mapping[str, set[str]] = {
    "jsonl": {"path"},
    "webhook": {"url", "headers", "timeout", "retries", "backoff", "proxy"},
    "command": {"command", "timeout", "retries", "backoff"},
}
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
#: HTTP statuses worth another attempt in the same run (the rest wait for the next run).
_RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
#: 4xx statuses that are not a refusal for good (a timeout, too early, too many requests).
_TRANSIENT_4XX = frozenset({408, 425, 429})
#: A command notifier's exit status for "refused for good, do not send it again" (sysexits EX_DATAERR).
DO_NOT_RETRY_EXIT = 65
#: Notifier types that are their own receiver and check for a digest already delivered themselves
#: (a redelivery flag would be wrong in their file: what they find there is never written twice).
SELF_DEDUPING: frozenset[str] = frozenset({"jsonl"})
#: How much of a JSONL file's end is read at a time while looking for the start of its last line.
_TAIL_BLOCK = 64 * 1024


@dataclass(frozen=True)
class NotifierConfig:
    """One declared notifier."""

    name: str
    type: str
    domains: tuple[str, ...] = ()
    owners: tuple[str, ...] = ()
    path: Path | None = None
    url: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    proxy: str | None = None
    command: tuple[str, ...] = ()
    timeout: float = 10.0
    retries: int = 3
    backoff: float = 1.0

    def target(self) -> str:
        """Where it delivers, for logs (a webhook's host and path, never its headers)."""
        if self.type == "jsonl":
            return str(self.path)
        if self.type == "webhook":
            parts = urlsplit(self.url or "")
            return (
                f"{parts.scheme}://{parts.hostname}{':' + str(parts.port) if parts.port else ''}{parts.path}"
            )
        return " ".join(self.command[:1])


@dataclass(frozen=True)
class Delivery:
    """The outcome of delivering one digest: delivered or not, after how many attempts, why not.

    ``dead``: refused for good (never retried). ``uncertain``: some failed attempt may have reached
    the receiver (a timeout, a connection lost after the request went out).
    """

    delivered: bool
    attempts: int
    error: str = ""
    dead: bool = False
    uncertain: bool = False


class DeliveryError(Exception):
    """One attempt failed; ``retry`` says whether another attempt in this run may help, ``permanent``
    that the receiver refused the digest for good, ``uncertain`` that it may have taken it anyway."""

    def __init__(
        self, message: str, *, retry: bool, permanent: bool = False, uncertain: bool = False
    ) -> None:
        super().__init__(message)
        self.retry = retry
        self.permanent = permanent
        self.uncertain = uncertain


class Sender(Protocol):
    """How one notifier type sends a digest (one attempt)."""

    def __call__(self, config: NotifierConfig, key: str, payload: str) -> None:
        """Send ``payload`` (the digest, JSON); raise DeliveryError when it did not arrive."""
        ...


# --- the three types ------------------------------------------------------------------------------


def send_jsonl(config: NotifierConfig, key: str, payload: str) -> None:
    """Append the digest as one line, unless the file's last line is already this digest.

    Only the file's end is read (its last line, however long the file): the outbox sends a
    notifier's digests one at a time, oldest first, recording each, so a digest a stopped run wrote
    without recording it is the last line. A last line a crash cut short (no newline) was never
    delivered: it is dropped before appending.
    """
    assert config.path is not None
    path = config.path
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o644)
    except OSError as exc:
        raise DeliveryError(f"cannot open {path}: {exc.strerror or exc}", retry=False) from None
    try:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":  # a line cut short by a crash: drop it
            size = _last_line(fd, size)[0]
            os.ftruncate(fd, size)
        if size and _key_of(_last_line(fd, size - 1)[1]) == key:
            return  # delivered by an earlier, interrupted run
        os.write(fd, payload.replace("\n", " ").encode("utf-8") + b"\n")
        os.fsync(fd)
    except OSError as exc:
        raise DeliveryError(f"cannot write {path}: {exc.strerror or exc}", retry=False) from None
    finally:
        os.close(fd)


def _last_line(fd: int, end: int) -> tuple[int, bytes]:
    """The line that ends before byte ``end``: where it starts and its bytes (read backwards a block
    at a time, so only that line, and part of the block before it, is read)."""
    chunks: list[bytes] = []
    pos = end
    while pos > 0:
        block = max(0, pos - _TAIL_BLOCK)
        data = os.pread(fd, pos - block, block)
        found = data.rfind(b"\n")
        if found >= 0:
            chunks.append(data[found + 1 :])
            return block + found + 1, b"".join(reversed(chunks))
        chunks.append(data)
        pos = block
    return 0, b"".join(reversed(chunks))


def _key_of(line: bytes) -> str | None:
    """The ``key`` of a digest line, or None for a line that is not one."""
    try:
        doc = json.loads(line)
    except ValueError:
        return None
    return doc.get("key") if isinstance(doc, dict) else None


def redelivered(payload: str) -> str:
    """The digest with ``"redelivery": true``: an earlier attempt may have reached the receiver."""
    doc = json.loads(payload)
    doc["redelivery"] = True
    return json.dumps(doc, ensure_ascii=False, sort_keys=False)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is an error: the job contacts only the URL the operator configured."""

    def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str) -> None:
        return None


def _header_values(headers: Mapping[str, str]) -> dict[str, str]:
    out = {}
    for name, value in headers.items():

        def env(m: re.Match[str], name: str = name) -> str:
            var = m.group(1)
            if var not in os.environ:
                raise DeliveryError(
                    f"header {name} needs the environment variable {var}, which is not set", retry=False
                )
            return os.environ[var]

        out[name] = _ENV.sub(env, value)
    return out


def send_webhook(config: NotifierConfig, key: str, payload: str) -> None:
    """POST the digest to the configured URL; any 2xx is delivered."""
    assert config.url is not None
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": f"citykpi/{__version__}",
        "Idempotency-Key": key,
        **_header_values(config.headers),
    }
    request = urllib.request.Request(config.url, data=payload.encode("utf-8"), headers=headers, method="POST")
    proxies = {"http": config.proxy, "https": config.proxy} if config.proxy else {}
    opener = urllib.request.build_opener(_NoRedirect(), urllib.request.ProxyHandler(proxies))
    where = config.target()
    try:
        with opener.open(request, timeout=config.timeout) as response:
            response.read(65536)
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        status = int(exc.code)
        with contextlib.suppress(Exception):
            exc.close()
        if 300 <= status < 400:
            raise DeliveryError(
                f"{where} answered HTTP {status} (a redirect); citykpi only posts to the configured url",
                retry=False,
            ) from None
        raise _refused(where, status) from None
    except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        # refused or unresolvable: the request never left; anything else (a timeout, a reset) may
        # have come after the receiver took it
        never_sent = isinstance(reason, ConnectionRefusedError | socket.gaierror)
        raise DeliveryError(f"cannot reach {where}: {reason}", retry=True, uncertain=not never_sent) from None
    if not 200 <= status < 300:
        raise _refused(where, status)


def _refused(where: str, status: int) -> DeliveryError:
    """The error of an HTTP answer that is not 2xx: a 4xx (but 408, 425, 429) is a refusal for good."""
    if 400 <= status < 500 and status not in _TRANSIENT_4XX:
        return DeliveryError(
            f"{where} answered HTTP {status}: refused for good, not retried", retry=False, permanent=True
        )
    return DeliveryError(f"{where} answered HTTP {status}", retry=status in _RETRY_STATUSES)


def send_command(config: NotifierConfig, key: str, payload: str) -> None:
    """Run the command with the digest on stdin; exit status 0 is delivered,
    :data:`DO_NOT_RETRY_EXIT` refused for good."""
    env = {**os.environ, "CITYKPI_DIGEST_KEY": key}
    with contextlib.suppress(ValueError, AttributeError):
        if json.loads(payload).get("redelivery") is True:
            env["CITYKPI_REDELIVERY"] = "1"
    try:
        done = subprocess.run(
            list(config.command),
            input=payload.encode("utf-8"),
            capture_output=True,
            timeout=config.timeout,
            env=env,
            check=False,
        )
    except FileNotFoundError:
        raise DeliveryError(f"no such command {config.command[0]!r}", retry=False) from None
    except PermissionError:
        raise DeliveryError(f"{config.command[0]!r} is not executable", retry=False) from None
    except subprocess.TimeoutExpired:  # it may have sent the digest before it was stopped
        raise DeliveryError(
            f"{config.command[0]} did not finish within {config.timeout:g} s", retry=True, uncertain=True
        ) from None
    if done.returncode != 0:
        tail = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
        if done.returncode == DO_NOT_RETRY_EXIT:
            raise DeliveryError(
                f"{config.command[0]} exited {DO_NOT_RETRY_EXIT} (refused for good, not retried): {tail[0][:200]}",
                retry=False,
                permanent=True,
            )
        raise DeliveryError(f"{config.command[0]} exited {done.returncode}: {tail[0][:200]}", retry=True)


#: Notifier types → how they send.
SENDERS: Mapping[str, Sender] = {"jsonl": send_jsonl, "webhook": send_webhook, "command": send_command}


def deliver(
    config: NotifierConfig,
    key: str,
    payload: str,
    *,
    sleep: Callable[[float], None] = time.sleep,
    senders: Mapping[str, Sender] = SENDERS,
    redelivery: bool = False,
) -> Delivery:
    """Send one digest: the first attempt, then up to ``retries`` more after ``backoff`` × 2ⁿ seconds
    while the failure is one that another attempt may cure (no connection, a timeout, HTTP 5xx/429).

    ``redelivery``: an earlier attempt (of an earlier run) may have reached the receiver. Such an
    attempt, and any attempt after one whose outcome is unknown, sends ``"redelivery": true``
    (except to a notifier in :data:`SELF_DEDUPING`, which checks what it already holds).
    """
    send = senders[config.type]
    attempts = 0
    delay = config.backoff
    uncertain = redelivery
    while True:
        attempts += 1
        body = redelivered(payload) if uncertain and config.type not in SELF_DEDUPING else payload
        try:
            send(config, key, body)
            return Delivery(True, attempts, uncertain=uncertain)
        except DeliveryError as exc:
            uncertain = uncertain or exc.uncertain
            if exc.permanent:
                return Delivery(False, attempts, str(exc), dead=True, uncertain=uncertain)
            if not exc.retry or attempts > config.retries:
                return Delivery(False, attempts, str(exc), uncertain=uncertain)
        sleep(delay)
        delay *= 2


# --- configuration ------------------------------------------------------------------------------


def parse_notifiers(raw: object, *, base: Path, origin: str) -> tuple[NotifierConfig, ...]:
    """Read the ``[[notifiers]]`` tables of a run configuration.

    Raises:
        ConfigError: a missing or unknown key, a bad value, a duplicate name.
    """

    def fail(message: str) -> ConfigError:
        return ConfigError(f"{origin}: {message}", hint="see `[[notifiers]]` in docs/daily-run.md")

    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(t, dict) for t in raw):
        raise fail("notifiers must be an array of tables ([[notifiers]])")
    out: list[NotifierConfig] = []
    for table in raw:
        kind = table.get("type")
        name = table.get("name")
        if not isinstance(name, str) or not _NAME.match(name):
            raise fail('every [[notifiers]] needs name = "…" (letters, digits, . _ -; at most 64)')
        where = f"[[notifiers]] {name!r}"
        if kind not in _KEYS:
            raise fail(f"{where}: type must be one of {', '.join(_KEYS)}, not {kind!r}")
        unknown = sorted(set(table) - _COMMON - _KEYS[kind])
        if unknown:
            raise fail(
                f"{where}: unknown key {unknown[0]!r}; a {kind} notifier takes {', '.join(sorted(_COMMON | _KEYS[kind]))}"
            )
        if any(n.name == name for n in out):
            raise fail(f"{where}: two notifiers have this name")

        def fail_here(message: str, where: str = where) -> ConfigError:
            return fail(f"{where}: {message}")

        notifier = _notifier(table, name, kind, base, fail_here)
        same = next((n for n in out if n.path is not None and n.path == notifier.path), None)
        if same is not None:  # its "already written?" check reads only the file's last line
            raise fail(
                f"{where}: notifier {same.name!r} writes the same file {notifier.path}; give each its own"
            )
        out.append(notifier)
    return tuple(out)


def _strings(value: object, key: str, fail: Callable[[str], ConfigError]) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise fail(f"{key} must be a list of names")
    return tuple(value)


def _number(
    value: object, key: str, default: float, fail: Callable[[str], ConfigError], *, low: float
) -> float:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or value < low:
        raise fail(f"{key} must be a number of seconds >= {low:g}")
    return float(value)


def _notifier(
    table: Mapping[str, Any], name: str, kind: str, base: Path, fail: Callable[[str], ConfigError]
) -> NotifierConfig:
    common: dict[str, Any] = {
        "name": name,
        "type": kind,
        "domains": _strings(table.get("domains"), "domains", fail),
        "owners": _strings(table.get("owners"), "owners", fail),
    }
    if kind != "jsonl":
        retries = table.get("retries", 3)
        if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= 10:
            raise fail("retries must be a whole number from 0 to 10")
        common |= {
            "timeout": _number(table.get("timeout"), "timeout", 10.0, fail, low=0.1),
            "retries": retries,
            "backoff": _number(table.get("backoff"), "backoff", 1.0, fail, low=0.0),
        }
    if kind == "jsonl":
        path = table.get("path")
        if not isinstance(path, str) or not path:
            raise fail('a jsonl notifier needs path = "FILE.jsonl"')
        p = Path(path).expanduser()
        return NotifierConfig(**common, path=p if p.is_absolute() else base / p)
    if kind == "webhook":
        url = table.get("url")
        if (
            not isinstance(url, str)
            or urlsplit(url).scheme not in ("http", "https")
            or not urlsplit(url).hostname
        ):
            raise fail('a webhook needs url = "https://host/path" (http or https)')
        headers = table.get("headers", {})
        if not isinstance(headers, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
        ):
            raise fail(
                'headers must be a table of text values, e.g. headers = {Authorization = "Bearer ${TOKEN}"}'
            )
        if any("\n" in v or "\r" in v for v in headers.values()):
            raise fail("a header value may not contain a line break")
        proxy = table.get("proxy")
        if proxy is not None and (
            not isinstance(proxy, str) or urlsplit(proxy).scheme not in ("http", "https")
        ):
            raise fail('proxy must be an http(s) URL, e.g. proxy = "http://proxy.example:3128"')
        return NotifierConfig(**common, url=url, headers=dict(headers), proxy=proxy)
    command = table.get("command")
    if not isinstance(command, list) or not command or not all(isinstance(c, str) and c for c in command):
        raise fail(
            'a command notifier needs command = ["program", "arg", …] (an argument list, never a shell line)'
        )
    program = Path(command[0]).expanduser()
    if not program.is_absolute() and "/" in command[0]:
        program = base / program
    return NotifierConfig(**common, command=(str(program) if "/" in command[0] else command[0], *command[1:]))


def check_notifier(config: NotifierConfig) -> list[str]:
    """Problems a notifier would meet at delivery, found without contacting anyone (for --check-config)."""
    problems = []
    if config.type == "command":
        import shutil

        if shutil.which(config.command[0]) is None:
            problems.append(
                f"notifier {config.name!r}: command {config.command[0]!r} is not an executable on PATH"
            )
    if config.type == "webhook":
        for value in config.headers.values():
            for var in _ENV.findall(value):
                if var not in os.environ:
                    problems.append(
                        f"notifier {config.name!r}: environment variable {var} (in its headers) is not set"
                    )
    return problems
