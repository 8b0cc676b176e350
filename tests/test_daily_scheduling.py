"""docs/daily-run.md's crontab line and systemd units parse, and the command lines in them run.

The units are read with ``configparser`` in strict mode (no duplicate sections or keys) and, where
``systemd-analyze`` exists, verified by it on a copy whose paths point at a temporary installation;
the timer's calendar expression is checked by ``systemd-analyze calendar``. The crontab line's five
fields are checked, and its command, like the service's ``ExecStart``, runs against a temporary
installation of the tiny city (a ``.venv/bin/citykpi`` that starts this interpreter).
"""

from __future__ import annotations

import configparser
import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.scorecard_city import START, write_city, write_days

DOC = (Path(__file__).resolve().parents[1] / "docs" / "daily-run.md").read_text(encoding="utf-8")
INSTALL = "/srv/citykpi"


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", DOC, re.S)


def _unit(name: str) -> tuple[str, configparser.ConfigParser]:
    text = next(b for b in _blocks("ini") if b.startswith(f"# /etc/systemd/system/{name}\n"))
    parser = configparser.ConfigParser(strict=True, interpolation=None, delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # systemd keys are case-sensitive
    parser.read_string(text)
    return text, parser


def _installation(tmp_path: Path) -> Path:
    """A stand-in for /srv/citykpi: the tiny city, its config and a `.venv/bin/citykpi`."""
    root = tmp_path / "srv" / "citykpi"
    root.mkdir(parents=True)
    paths = write_city(root)
    write_days(paths["inbox"], START, START)
    (root / "citykpi.toml").write_text(
        'database = "citykpi.duckdb"\ncatalogue = "catalogue"\nareas = "areas.csv"\ninbox = ["inbox"]\n'
        'settle = 0\ntimezone = "Asia/Shanghai"\n[outputs]\nfolder = "out"\nformats = ["json"]\n',
        encoding="utf-8",
    )
    venv = root / ".venv" / "bin"
    venv.mkdir(parents=True)
    (venv / "citykpi").write_text(
        f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m citykpi "$@"\n', encoding="utf-8"
    )
    (venv / "citykpi").chmod(0o755)
    (root / "log").mkdir()
    return root


def _ran_the_day(root: Path) -> None:
    report = json.loads((root / "out" / "runs" / f"run-{START}-day.json").read_text(encoding="utf-8"))
    assert (report["health"]["status"], report["as_of"]) == ("ok", START.isoformat())
    assert (root / "out" / f"scorecard-{START}-day.json").exists()


def test_the_crontab_line(tmp_path: Path) -> None:
    [block] = _blocks("cron")
    [line] = [x for x in block.splitlines() if x.strip() and not x.startswith("#")]
    minute, hour, dom, month, dow, command = line.split(None, 5)
    assert (minute, hour, dom, month, dow) == ("10", "2", "*", "*", "*")  # 02:10 every day
    assert int(minute) in range(60) and int(hour) in range(24)
    root = _installation(tmp_path)
    # as written, with the installation's folder, and a date that has data instead of "yesterday"
    command = command.replace(INSTALL, str(root)).replace(
        "--config citykpi.toml", f"--config citykpi.toml --date {START}"
    )
    done = subprocess.run(["sh", "-c", command], cwd=tmp_path, timeout=300)
    assert done.returncode == 0, (root / "log" / "run.log").read_text(encoding="utf-8")
    log = (root / "log" / "run.log").read_text(encoding="utf-8")
    assert " INFO    run=1 evaluated run 1" in log and "done: ok (exit 0)" in log
    _ran_the_day(root)


def test_the_systemd_units_parse(tmp_path: Path) -> None:
    _service_text, service = _unit("citykpi.service")
    assert service.sections() == ["Unit", "Service"]
    assert service["Service"]["Type"] == "oneshot"
    assert service["Service"]["ExecStart"].startswith(f"{INSTALL}/.venv/bin/citykpi run --config ")
    _timer_text, timer = _unit("citykpi.timer")
    assert timer.sections() == ["Unit", "Timer", "Install"]
    assert timer["Timer"]["Persistent"] == "true" and timer["Install"]["WantedBy"] == "timers.target"
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed: the units were checked with configparser only")
    calendar = subprocess.run(
        ["systemd-analyze", "calendar", timer["Timer"]["OnCalendar"]],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert calendar.returncode == 0 and "Normalized form: *-*-* 02:10:00 Asia/Shanghai" in calendar.stdout, (
        calendar
    )


def test_the_systemd_units_verify_and_the_service_runs(tmp_path: Path) -> None:
    service_text, service = _unit("citykpi.service")
    timer_text, _timer = _unit("citykpi.timer")
    root = _installation(tmp_path)
    command = shlex.split(service["Service"]["ExecStart"].replace(INSTALL, str(root)))
    done = subprocess.run(
        [*command, "--date", START.isoformat()], cwd=root, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    _ran_the_day(root)
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    units = tmp_path / "units"
    units.mkdir()
    (units / "citykpi.service").write_text(service_text.replace(INSTALL, str(root)), encoding="utf-8")
    (units / "citykpi.timer").write_text(timer_text, encoding="utf-8")
    verify = subprocess.run(
        [
            "systemd-analyze",
            "verify",
            "--man=no",
            str(units / "citykpi.service"),
            str(units / "citykpi.timer"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
    # the check can fail: a unit systemd would refuse is refused here too
    (units / "citykpi.service").write_text(
        service_text.replace(INSTALL, str(root)).replace("Type=oneshot", "Type=oneshot-ish"), encoding="utf-8"
    )
    broken = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(units / "citykpi.service")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert broken.returncode != 0 or "oneshot-ish" in broken.stderr, broken.stderr
