"""citykpi benchmark: each case beside a baseline measured in the same run (see bench/README.md).

Usage: ``python bench/run.py --scale small|city [--runs 3] [--cases check,ingest,evaluate,period,export,find,quality,early,hourly,spark]``.
Every timed step runs in a fresh subprocess; wall time is the median of ``--runs`` runs after one
warm-up, peak memory the subprocess's ``ru_maxrss`` (from ``os.wait4``). A case whose citykpi command
does not exist yet, or fails, is reported as such, never with a figure.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import find_probe
import generate

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PY = sys.executable
CITYKPI = [PY, "-m", "citykpi"]
BASE = [PY, str(HERE / "baselines.py")]

TARGETS = {
    "early_vs_hand": 1.5,
    "early_vs_plain": 3.0,
    "check_seconds": 5.0,
    "ingest_vs_plain": 1.5,
    "evaluate_vs_hand": 2.0,
    "loop_vs_evaluate": 8.0,
    "evaluate_peak_gib": 4.0,
    "search_ms": 200.0,
}
#: The citykpi console script beside this Python: shell completion speaks to it by its name.
SCRIPT = Path(PY).parent / "citykpi"


@dataclass
class Run:
    """One subprocess run."""

    seconds: float
    maxrss_mb: float
    rc: int
    stdout: str
    stderr: str


@dataclass
class Case:
    """One measured case: a citykpi command or a baseline."""

    case: str
    what: str
    status: str = "ok"  # ok | not available | failed | skipped
    median_s: float | None = None
    runs_s: list[float] = field(default_factory=list)
    peak_mb: float | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    note: str = ""


def run_once(
    cmd: list[str], *, cwd: Path = ROOT, timeout: float = 3600, extra_env: dict[str, str] | None = None
) -> Run:
    """Run a command, return wall time, peak RSS (MiB), exit code and output."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        env = dict(
            os.environ, PYTHONPATH=str(ROOT), NO_COLOR="1", TERM="dumb", COLUMNS="120", **(extra_env or {})
        )
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, cwd=cwd, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env)
        deadline = t0 + timeout
        while True:
            pid, status, ru = os.wait4(p.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                p.kill()
            time.sleep(0.01)
        seconds = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return Run(
            seconds,
            ru.ru_maxrss / 1024,
            p.returncode,
            out.read().decode("utf-8", "replace"),
            err.read().decode("utf-8", "replace"),
        )


def measure(
    case: str,
    what: str,
    cmd: list[str],
    *,
    runs: int,
    warmup: bool = True,
    setup: Callable[[], None] | None = None,
    inner: str | None = None,
) -> Case:
    """Median wall time and max peak memory of ``runs`` runs (after a warm-up).

    ``inner``: a key of the command's JSON output to report as the timed figure instead of the
    process wall time (e.g. the query alone); the process time is kept in ``detail``.
    """
    c = Case(case, what)
    results: list[Run] = []
    for k in range(runs + (1 if warmup else 0)):
        if setup:
            setup()
        r = run_once(cmd)
        if r.rc != 0:
            c.status = "failed"
            c.note = (
                (r.stderr.strip() or r.stdout.strip()).splitlines()[-1:][0][:300]
                if (r.stderr or r.stdout)
                else ""
            )
            c.detail["rc"] = r.rc
            c.detail["stderr_tail"] = r.stderr[-2000:]
            return c
        if warmup and k == 0:
            continue
        results.append(r)
    c.runs_s = [round(r.seconds, 3) for r in results]
    c.peak_mb = round(max(r.maxrss_mb for r in results), 1)
    c.median_s = round(statistics.median(r.seconds for r in results), 3)
    last = results[-1].stdout.strip().splitlines()
    if last:
        try:
            payload = json.loads(last[-1])
            c.detail["output"] = payload
            if inner:
                c.detail["process_median_s"] = c.median_s
                vals = []
                for r in results:
                    vals.append(float(json.loads(r.stdout.strip().splitlines()[-1])[inner]))
                c.detail["inner"] = inner
                c.median_s = round(statistics.median(vals), 3)
                c.runs_s = [round(v, 3) for v in vals]
        except (ValueError, KeyError):
            c.detail["stdout_tail"] = "\n".join(last[-5:])
    return c


@dataclass
class Job:
    """One command to measure, for :func:`measure_interleaved`."""

    case: str
    what: str
    cmd: list[str]
    inner: str | None = None
    env: dict[str, str] | None = None


def measure_interleaved(jobs: list[Job], *, runs: int) -> list[Case]:
    """Measure several commands round-robin (warm-up round, then ``runs`` rounds).

    Interleaving gives every command the same share of a shared machine's noise, so the ratios between
    them are fair even when the load changes during the benchmark.
    """
    return measure_rounds([jobs] * (runs + 1))


def measure_rounds(rounds: list[list[Job]]) -> list[Case]:
    """Like :func:`measure_interleaved`, but each round runs commands of its own (the same cases, e.g.
    the next hour or the next batch): round 0 is the warm-up. A job's case name keys its results."""
    runs: dict[str, list[Run]] = {}
    jobs: dict[str, Job] = {}
    failed: dict[str, Case] = {}
    for k, round_jobs in enumerate(rounds):
        for job in round_jobs:
            jobs.setdefault(job.case, job)
            if job.case in failed:
                continue
            r = run_once(job.cmd, extra_env=job.env)
            if r.rc != 0:
                c = Case(job.case, job.what, status="failed")
                c.note = ((r.stderr.strip() or r.stdout.strip()).splitlines() or [""])[-1][:300]
                c.detail = {"rc": r.rc, "stderr_tail": r.stderr[-2000:]}
                failed[job.case] = c
            elif k > 0:
                runs.setdefault(job.case, []).append(r)
    cases: list[Case] = []
    for name, job in jobs.items():
        if name in failed:
            cases.append(failed[name])
            continue
        rs = runs.get(name, [])
        c = Case(job.case, job.what)
        if not rs:
            c.status = "failed"
            c.note = "no timed round"
            cases.append(c)
            continue
        c.runs_s = [round(r.seconds, 3) for r in rs]
        c.peak_mb = round(max(r.maxrss_mb for r in rs), 1)
        c.median_s = round(statistics.median(r.seconds for r in rs), 3)
        try:  # the probe's own timing, when its last line is the JSON it prints
            outs = [json.loads(r.stdout.strip().splitlines()[-1]) for r in rs]
            c.detail["output"] = outs[-1]
            if job.inner:
                vals = [float(o[job.inner]) for o in outs]
                c.detail["process_median_s"] = c.median_s
                c.detail["inner"] = job.inner
                c.median_s = round(statistics.median(vals), 3)
                c.runs_s = [round(v, 3) for v in vals]
        except (ValueError, KeyError, IndexError):
            pass
        cases.append(c)
    return cases


def not_available(case: str, what: str, why: str) -> Case:
    """A case that cannot run (the command does not exist yet)."""
    return Case(case, what, status="not available", note=why)


# --- what citykpi offers right now ---------------------------------------------------------------


def citykpi_commands() -> set[str]:
    """Top-level and sub-command names citykpi's CLI offers now (empty if it does not start)."""
    names: set[str] = set()
    r = run_once([*CITYKPI, "--help"], timeout=120)
    if r.rc != 0:
        return names
    names |= _commands_in_help(r.stdout)
    for group in ("areas", "db", "catalogue"):
        if group in names:
            g = run_once([*CITYKPI, group, "--help"], timeout=120)
            names |= {f"{group} {n}" for n in _commands_in_help(g.stdout)}
    return names


def _commands_in_help(text: str) -> set[str]:
    """Command names in a Typer/Click help text (the Commands section)."""
    out: set[str] = set()
    in_cmds = False
    for line in text.splitlines():
        s = line.strip("│ ").strip()
        if "Commands" in line:
            in_cmds = True
            continue
        if in_cmds and s and not s.startswith(("─", "╰", "╭")):
            out.add(s.split()[0])
    return out


def help_text(*args: str) -> str:
    """citykpi's help text for a command ('' if none)."""
    r = run_once([*CITYKPI, *args, "--help"], timeout=120)
    return r.stdout if r.rc == 0 else ""


# --- the benchmark -------------------------------------------------------------------------------


def ensure_data(scale: str) -> tuple[Path, dict[str, Any]]:
    """The generated data of a scale, generated **in a child process** when missing or outdated.

    Generating in this process would grow it to several GiB, and every later case's child would then
    report at least that peak: on Linux a child's ``ru_maxrss`` includes the high-water mark of the
    memory it was forked from. The bench process itself stays small (see ``bench_process_peak_mb``).
    """
    out = generate.CACHE / scale
    mf = out / "manifest.json"
    if mf.exists():
        manifest = json.loads(mf.read_text(encoding="utf-8"))
        if manifest.get("generator_version") == generate.GENERATOR_VERSION:
            return out, manifest
    print(f"generating the {scale} data set (once; cached in {out})…", flush=True)
    r = run_once([PY, str(HERE / "generate.py"), "--scale", scale])
    if r.rc != 0:
        raise SystemExit(f"data generation failed: {r.stderr[-2000:]}")
    return out, json.loads(mf.read_text(encoding="utf-8"))


def _ram_bytes() -> int:
    """Physical RAM of this machine in bytes."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def self_peak_mb() -> float:
    """This (bench) process's own peak RSS in MiB: the floor under every child's reported peak.

    On Linux, ``VmHWM`` of ``/proc/self/status`` belongs to this program's memory alone, whereas
    ``ru_maxrss`` also carries the size of the process this one was forked from (a test runner of
    several hundred MiB would show as the bench's own peak). Elsewhere ``ru_maxrss`` is the best there is.
    """
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text(encoding="ascii").splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)  # kB
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


class Bench:
    """All cases of one scale."""

    def __init__(self, scale: str, runs: int, loop_sample: int, cases: set[str]) -> None:
        self.scale = scale
        self.runs = runs
        self.loop_sample = loop_sample
        self.cases = cases
        self.cache, self.manifest = ensure_data(scale)
        self.work = self.cache / "work"
        self.work.mkdir(exist_ok=True)
        self.results: list[Case] = []
        self.earlier: list[Case] = []
        self.as_of = self.manifest["as_of"]
        self.cmds = citykpi_commands()
        self.catalogue = self.cache / "indicators"
        self.ckdb = self.work / "citykpi.duckdb"  # the warehouse citykpi ingest made (evaluate reads it)

    def add(self, c: Case) -> Case:
        """Record and print one case."""
        self.results.append(c)
        fig = f"{c.median_s:9.2f} s" if c.median_s is not None else f"{c.status:>11}"
        mem = f"{c.peak_mb:8.0f} MiB" if c.peak_mb is not None else " " * 12
        print(f"  {c.case:<34} {c.what:<44} {fig} {mem}  {c.note[:80]}", flush=True)
        return c

    def citykpi_key(self) -> str:
        """What citykpi's warehouse was built from: the data set and the schema version of the checkout
        (a warehouse of an older schema would need a migration that read-only cases cannot make)."""
        schema = (ROOT / "citykpi" / "warehouse" / "schema.py").read_text(encoding="utf-8")
        version = next((line for line in schema.splitlines() if line.startswith("SCHEMA_VERSION")), "")
        return generate.fingerprint(self.cache) + generate.GENERATOR_VERSION + version.replace(" ", "")

    def baseline_warehouse(self) -> Path:
        """The design-schema warehouse the baselines read, built once per generated data set."""
        db = self.cache / "baseline.duckdb"
        stamp = self.cache / "baseline.stamp"
        key = generate.fingerprint(self.cache) + generate.GENERATOR_VERSION
        if not (db.exists() and stamp.exists() and stamp.read_text() == key):
            print("building the baseline warehouse (once per data set)…", flush=True)
            r = run_once([*BASE, "warehouse", "--db", str(db), "--cache", str(self.cache)])
            if r.rc != 0:
                raise SystemExit(f"baseline warehouse failed: {r.stderr[-2000:]}")
            stamp.write_text(key)
        return db

    def citykpi_warehouse(self) -> bool:
        """Make sure the warehouse citykpi ingest builds exists, so every case can run on its own.

        The ingest case leaves it behind; when it is missing (``--cases evaluate`` on a fresh machine) or
        was built from other data, it is built here: areas load, then ingest of the Parquet file.
        Returns False when citykpi cannot build it (the cases then report "not available").
        """
        stamp = self.work / "citykpi.stamp"
        key = self.citykpi_key()
        if self.ckdb.exists() and stamp.exists() and stamp.read_text() == key:
            return True
        if "ingest" not in self.cmds or "areas load" not in self.cmds:
            return False
        print("building citykpi's warehouse (areas load + ingest of the Parquet file)…", flush=True)
        self._fresh_citykpi_db(self.ckdb)()
        r = run_once(
            [
                *CITYKPI,
                "--db",
                str(self.ckdb),
                "--catalogue",
                str(self.catalogue),
                "ingest",
                "--quiet",
                str(self.cache / "observations.parquet"),
            ]
        )
        if r.rc != 0:
            print(f"  citykpi ingest failed: {(r.stderr or r.stdout).strip()[-300:]}", flush=True)
            self.ckdb.unlink(missing_ok=True)
            return False
        stamp.write_text(key)
        return True

    # 1. check ----------------------------------------------------------------------------------
    def case_check(self) -> None:
        """citykpi check on the generated catalogue."""
        what = f"{self.manifest['indicators']} indicators + {self.manifest['indices']} indices"
        if "check" not in self.cmds:
            self.add(not_available("check", what, "`citykpi check` does not exist yet"))
            return
        c = measure("check", what, [*CITYKPI, "--catalogue", str(self.catalogue), "check"], runs=self.runs)
        if c.status == "failed" and c.detail.get("rc") == 1:
            c.note = "check reported errors on the generated catalogue: " + c.detail["stderr_tail"][-200:]
        self.add(c)

    # 2. ingest ---------------------------------------------------------------------------------
    def _fresh_citykpi_db(self, db: Path) -> Callable[[], None]:
        """A setup that gives ``db`` a fresh copy of a database with only the areas loaded."""
        template = self.work / "areas_only.duckdb"

        def setup() -> None:
            if not template.exists():
                r = run_once(
                    [
                        *CITYKPI,
                        "--db",
                        str(template),
                        "--catalogue",
                        str(self.catalogue),
                        "areas",
                        "load",
                        str(self.cache / "areas.csv"),
                    ]
                )
                if r.rc != 0:
                    raise RuntimeError(f"areas load failed: {r.stderr[-500:]}")
            for p in (db, Path(str(db) + ".wal")):
                p.unlink(missing_ok=True)
            shutil.copy(template, db)

        return setup

    def case_ingest(self) -> None:
        """citykpi ingest of the Parquet and the CSV beside a plain CREATE TABLE AS."""
        (self.work / "citykpi.stamp").unlink(missing_ok=True)  # the runs below rebuild the warehouse
        files = {
            "parquet": (self.cache / "observations.parquet", self.manifest["observations"]),
            "csv": (self.cache / "observations.csv", self.manifest["csv_rows"]),
        }
        for kind, (path, rows) in files.items():
            plain_db = self.work / f"plain_{kind}.duckdb"
            plain = measure(
                f"ingest {kind}: plain load",
                f"{rows:,} rows, CREATE TABLE AS read_{kind}",
                [*BASE, "plain-load", "--db", str(plain_db), "--file", str(path), "--kind", kind],
                runs=self.runs,
            )
            self.add(plain)
            plain_db.unlink(missing_ok=True)
            what = f"{rows:,} rows, validation on"
            if "ingest" not in self.cmds or "areas load" not in self.cmds:
                self.add(
                    not_available(
                        f"ingest {kind}: citykpi", what, "`citykpi ingest`/`areas load` not there yet"
                    )
                )
                continue
            db = self.ckdb if kind == "parquet" else self.work / "citykpi_csv.duckdb"
            try:
                c = measure(
                    f"ingest {kind}: citykpi",
                    what,
                    [
                        *CITYKPI,
                        "--db",
                        str(db),
                        "--catalogue",
                        str(self.catalogue),
                        "ingest",
                        "--quiet",
                        str(path),
                    ],
                    runs=self.runs,
                    setup=self._fresh_citykpi_db(db),
                )
            except RuntimeError as exc:
                c = Case(f"ingest {kind}: citykpi", what, status="failed", note=str(exc)[:300])
            if c.median_s and plain.median_s:
                c.detail["ratio_vs_plain"] = round(c.median_s / plain.median_s, 2)
                c.detail["rows_per_s"] = round(rows / c.median_s)
                c.note = f"{c.detail['ratio_vs_plain']}× plain (target ≤ {TARGETS['ingest_vs_plain']}×)"
            self.add(c)
            if kind == "csv":
                db.unlink(missing_ok=True)
            elif c.status == "ok":
                (self.work / "citykpi.stamp").write_text(self.citykpi_key())

    # 3/4. evaluate -----------------------------------------------------------------------------
    @property
    def evaluate_extra(self) -> list[str]:
        """Write the scorecard to a Parquet file (cheapest export) rather than a terminal table, and
        record the run as earlier versions always did (so the figures stay comparable)."""
        h = help_text("evaluate")
        extra = ["--record"] if "--record" in h else []
        if "--output" in h and "parquet" in h:
            return [*extra, "--format", "parquet", "--output", str(self.work / "scorecard.parquet")]
        return extra

    def _jobs(self, grain: str, hand_db: Path) -> tuple[list[Job], list[Case]]:
        """The hand-written query, the engine and the CLI for one grain (interleaved later)."""
        hand = [*BASE, "hand", "--db", str(hand_db), "--cache", str(self.cache), "--as-of", self.as_of]
        label = " (ck db)" if hand_db == self.ckdb else ""
        jobs = [
            Job(
                f"evaluate {grain}: hand SQL{label}",
                "ONE query, same scoring (the limit)",
                [*hand, "--grain", grain],
                "query_seconds",
            )
        ]
        eng = (f"evaluate {grain}: citykpi engine", "evaluate() in-process, engine time only")
        cli = (f"evaluate {grain}: citykpi CLI", f"CLI, all indicators × areas, --period {grain}")
        if "evaluate" not in self.cmds or not self.ckdb.exists():
            why = "`citykpi evaluate` or a warehouse made by `citykpi ingest` not there yet"
            return jobs, [not_available(*eng, why), not_available(*cli, why)]
        jobs.append(
            Job(
                *eng,
                [
                    PY,
                    str(HERE / "engine_probe.py"),
                    "--db",
                    str(self.ckdb),
                    "--catalogue",
                    str(self.catalogue),
                    "--as-of",
                    self.as_of,
                    "--grain",
                    grain,
                ],
                "evaluate_seconds",
            )
        )
        jobs.append(
            Job(
                *cli,
                [
                    *CITYKPI,
                    "--db",
                    str(self.ckdb),
                    "--catalogue",
                    str(self.catalogue),
                    "evaluate",
                    "--date",
                    self.as_of,
                    "--period",
                    grain,
                    *self.evaluate_extra,
                ],
            )
        )
        return jobs, []

    def _compare(self, grain: str, cases: list[Case]) -> None:
        """Ratios of the engine and the CLI to the hand-written query of the same round-robin."""
        by = {c.case.split(": ", 1)[1]: c for c in cases}
        hand = by.get("hand SQL (ck db)") or by.get("hand SQL")
        eng, cli = by.get("citykpi engine"), by.get("citykpi CLI")
        if hand is None or hand.median_s is None:
            return
        if eng and eng.median_s:
            eng.detail["ratio_vs_hand_query"] = round(eng.median_s / hand.median_s, 2)
            eng.note = f"{eng.detail['ratio_vs_hand_query']}× the hand-written query (query time only)"
        pm = hand.detail.get("process_median_s")
        if cli and cli.median_s and pm:
            cli.detail["ratio_vs_hand_process"] = round(cli.median_s / pm, 2)
            cli.note = f"{cli.detail['ratio_vs_hand_process']}× the hand-query process"

    def case_evaluate(self, base_db: Path, *, loop: bool = True) -> None:
        """Full daily evaluation beside the hand-written query and the per-indicator loop."""
        if loop:
            lp = measure(
                "evaluate day: per-indicator loop",
                f"{self.loop_sample} sampled indicators, 1 query each",
                [
                    *BASE,
                    "loop",
                    "--db",
                    str(base_db),
                    "--cache",
                    str(self.cache),
                    "--as-of",
                    self.as_of,
                    "--sample",
                    str(self.loop_sample),
                ],
                runs=1,
                warmup=False,
                inner="extrapolated_seconds",
            )
            if lp.status == "ok":
                out = lp.detail["output"]
                lp.note = (
                    f"EXTRAPOLATED: {out['sample_seconds']:.1f} s for {out['sample']} "
                    f"× {out['indicators']}/{out['sample']}"
                )
            self.add(lp)
        hand_db = self.ckdb if self.ckdb.exists() else base_db
        jobs, unavailable = self._jobs("day", hand_db)
        if hand_db != base_db:
            jobs.insert(
                0,
                Job(
                    "evaluate day: hand SQL",
                    "ONE query, same scoring, bench warehouse",
                    [
                        *BASE,
                        "hand",
                        "--db",
                        str(base_db),
                        "--cache",
                        str(self.cache),
                        "--as-of",
                        self.as_of,
                        "--grain",
                        "day",
                    ],
                    "query_seconds",
                ),
            )
        cases = measure_interleaved(jobs, runs=self.runs) + unavailable
        self._compare("day", cases)
        loop_case = next(
            (
                c
                for c in [*self.results, *self.earlier]
                if c.case == "evaluate day: per-indicator loop" and c.median_s
            ),
            None,
        )
        cli = next((c for c in cases if c.case == "evaluate day: citykpi CLI"), None)
        if cli and cli.median_s and loop_case and loop_case.median_s:
            cli.detail["loop_over_evaluate"] = round(loop_case.median_s / cli.median_s, 1)
            cli.note += f"; loop/CLI {cli.detail['loop_over_evaluate']}×"
        for c in cases:
            self.add(c)

    def case_period(self, base_db: Path) -> None:
        """One month's and one year's evaluation (hand-written query beside, interleaved)."""
        for grain in ("month", "year"):
            jobs, unavailable = self._jobs(grain, self.ckdb if self.ckdb.exists() else base_db)
            cases = measure_interleaved(jobs, runs=self.runs) + unavailable
            self._compare(grain, cases)
            for c in cases:
                self.add(c)

    # 8. early warning ---------------------------------------------------------------------------
    def case_early(self) -> None:
        """Days to breach and anomaly scores for every daily series, beside a hand-written query doing
        the same and beside the same evaluation without them (all round-robin)."""
        early_catalogue = self.cache / "indicators_early"
        what = "every daily series: 28-day trend, crossing, same-weekday z"
        hand = [*BASE, "hand", "--db", str(self.ckdb), "--cache", str(self.cache), "--as-of", self.as_of]
        if "evaluate" not in self.cmds or not self.ckdb.exists() or not early_catalogue.exists():
            why = "`citykpi evaluate`, its warehouse or the early catalogue not there yet"
            self.add(not_available("early: citykpi engine", what, why))
            return

        def probe(catalogue: Path) -> list[str]:
            return [
                PY,
                str(HERE / "engine_probe.py"),
                "--db",
                str(self.ckdb),
                "--catalogue",
                str(catalogue),
                "--as-of",
                self.as_of,
            ]

        jobs = [
            Job(
                "early: hand SQL (ck db)",
                "ONE query + regr_slope/median/MAD",
                [*hand, "--early"],
                "query_seconds",
            ),
            Job("early: citykpi engine", what, probe(early_catalogue), "evaluate_seconds"),
            Job("early: hand SQL, no forecasts", "the same query without them", hand, "query_seconds"),
            Job(
                "early: citykpi engine, no forecasts",
                "the same evaluation without them",
                probe(self.catalogue),
                "evaluate_seconds",
            ),
        ]
        cases = measure_interleaved(jobs, runs=self.runs)
        by = {c.case: c for c in cases}
        eng, hand_c = by["early: citykpi engine"], by["early: hand SQL (ck db)"]
        plain = by["early: citykpi engine, no forecasts"]
        if eng.median_s and hand_c.median_s:
            eng.detail["ratio_vs_hand_query"] = round(eng.median_s / hand_c.median_s, 2)
        if eng.median_s and plain.median_s:
            eng.detail["ratio_vs_plain"] = round(eng.median_s / plain.median_s, 2)
        if eng.median_s:
            out = eng.detail.get("output", {})
            eng.note = (
                f"{eng.detail.get('ratio_vs_hand_query')}× the hand query (target ≤ {TARGETS['early_vs_hand']}×), "
                f"{eng.detail.get('ratio_vs_plain')}× without forecasts (target ≤ {TARGETS['early_vs_plain']}×); "
                f"{out.get('fitted')} fitted, {out.get('forecasts')} forecasts, {out.get('anomaly_scores')} scores"
            )
        for c in cases:
            self.add(c)

    # 9. the hourly city --------------------------------------------------------------------------
    def hourly_warehouses(self) -> tuple[Path, Path, dict[str, Any]] | None:
        """Working copies of the daily warehouse with two days and with one day of hourly readings
        (built once per data set from the daily warehouse citykpi ingested, then copied fresh)."""
        r = run_once(
            [PY, str(HERE / "hourly.py"), "generate", "--scale", self.scale, "--cache", str(self.cache)]
        )
        if r.rc != 0:
            print(f"  hourly data failed: {r.stderr[-500:]}", flush=True)
            return None
        manifest = json.loads(r.stdout.strip().splitlines()[-1])
        if not self.citykpi_warehouse():
            return None
        hdir = self.cache / "hourly"
        key = (self.work / "citykpi.stamp").read_text() + json.dumps(manifest, sort_keys=True)
        stamp = self.work / "hourly.stamp"
        pristine = {n: self.work / f"hourly{n}.pristine.duckdb" for n in (1, 2)}
        if not (stamp.exists() and stamp.read_text() == key and all(p.exists() for p in pristine.values())):
            print(
                "building the hourly warehouses (daily warehouse + hourly readings, once per data set)…",
                flush=True,
            )
            files = sorted((hdir / "readings").glob("h*.parquet"))
            for n, db in pristine.items():
                for q in (db, Path(str(db) + ".wal")):
                    q.unlink(missing_ok=True)
                shutil.copy(self.ckdb, db)
                chosen = files if n == 2 else files[24:]
                r = run_once(
                    [
                        *CITYKPI,
                        "--db",
                        str(db),
                        "--catalogue",
                        str(hdir / "indicators"),
                        "ingest",
                        "--quiet",
                        *map(str, chosen),
                    ]
                )
                if r.rc != 0:
                    print(f"  hourly ingest failed: {(r.stderr or r.stdout)[-500:]}", flush=True)
                    return None
            stamp.write_text(key)
        work = {n: self.work / f"hourly{n}.duckdb" for n in (1, 2)}
        for n, db in work.items():
            for q in (db, Path(str(db) + ".wal")):
                q.unlink(missing_ok=True)
            shutil.copy(pristine[n], db)
        return work[1], work[2], manifest

    def case_hourly(self) -> None:
        """One hour of the hourly city with its comparisons and the alert lifecycle update, beside ONE
        hand-written query; 5-minute batches appended into one and two days of history, beside a plain
        INSERT."""
        built = self.hourly_warehouses() if "ingest" in self.cmds else None
        what = "hourly vital signs × streets, two days of readings beside the daily city"
        if built is None:
            self.add(
                not_available("hourly: citykpi engine", what, "hourly data or warehouses could not be built")
            )
            return
        one_day, two_days, manifest = built
        hcat = self.cache / "hourly" / "indicators"
        day = datetime.fromisoformat(manifest["first_day"]) + timedelta(days=1)
        rounds = min(self.runs, 7) + 1
        instants = [day + timedelta(hours=23 - rounds + k + 1, minutes=30) for k in range(rounds)]
        start = instants[0] - timedelta(hours=1)
        hourly = [PY, str(HERE / "hourly.py")]
        for cmd in (
            [
                *hourly,
                "probe-update",
                "--db",
                str(two_days),
                "--catalogue",
                str(hcat),
                "--at",
                start.isoformat(),
            ],
            [
                *hourly,
                "hand-init",
                "--cache",
                str(self.cache),
                "--db",
                str(two_days),
                "--at",
                start.isoformat(),
            ],
        ):
            r = run_once(cmd)
            if r.rc != 0:
                self.add(Case("hourly: citykpi engine", what, status="failed", note=r.stderr[-300:]))
                return
        series = (
            f"{manifest['series']:,} street series ({manifest['indicators']:,} × {manifest['streets']:,})"
        )

        def probe(t: datetime) -> list[str]:
            return [
                *hourly,
                "probe-evaluate",
                "--db",
                str(two_days),
                "--catalogue",
                str(hcat),
                "--at",
                t.isoformat(),
            ]

        evaluate_rounds = [
            [
                Job(
                    "hourly evaluate: hand SQL",
                    "ONE query: an hour, previous hour, same hour yesterday, roll-ups, lifecycle step",
                    [
                        *hourly,
                        "hand",
                        "--cache",
                        str(self.cache),
                        "--db",
                        str(two_days),
                        "--at",
                        t.isoformat(),
                    ],
                    "query_seconds",
                ),
                Job(
                    "hourly evaluate: citykpi engine",
                    f"evaluate(hour) + update_episodes, {series}",
                    probe(t),
                    "total_seconds",
                ),
                Job(
                    "hourly evaluate: citykpi engine, 60 % of RAM",
                    "the same with CITYKPI_MEMORY_LIMIT at 60 % of RAM, the daily default, instead of "
                    "the 4 GB an hourly evaluation is held to (DuckDB keeps its buckets in memory)",
                    probe(t),
                    "total_seconds",
                    env={"CITYKPI_MEMORY_LIMIT": f"{int(_ram_bytes() * 0.6 / 2**20)}MB"},
                ),
            ]
            for t in instants
        ]
        cases = measure_rounds(evaluate_rounds)
        by = {c.case: c for c in cases}
        hand, eng = by.get("hourly evaluate: hand SQL"), by.get("hourly evaluate: citykpi engine")
        # both lifecycles were followed to the last instant: their episode tables must agree
        agreed = run_once([*hourly, "compare", "--db", str(two_days)])
        if eng and agreed.rc == 0:
            eng.detail["episodes_vs_hand"] = json.loads(agreed.stdout.strip().splitlines()[-1])
        if hand and eng and hand.median_s and eng.median_s:
            eng.detail["ratio_vs_hand_query"] = round(eng.median_s / hand.median_s, 2)
            eng.note = (
                f"{eng.detail['ratio_vs_hand_query']}× the hand-written query (target ≤ 1.5×); "
                f"readings {manifest['readings']:,}"
            )
            agreement = eng.detail.get("episodes_vs_hand")
            if agreement:
                eng.note += f"; episodes differing from the hand query's: {agreement['differing_rows']}"
        roomy = by.get("hourly evaluate: citykpi engine, 60 % of RAM")
        if hand and roomy and hand.median_s and roomy.median_s:
            roomy.detail["ratio_vs_hand_query"] = round(roomy.median_s / hand.median_s, 2)
            roomy.note = (
                f"{roomy.detail['ratio_vs_hand_query']}× the hand-written query; peak "
                f"{(roomy.peak_mb or 0) / 1024:.1f} GiB (its lifecycle step is already done by the run before)"
            )
        for c in cases:
            self.add(c)
        last = instants[-1] + timedelta(minutes=15)
        cli = measure(
            "hourly evaluate: citykpi CLI",
            "citykpi evaluate --at … --period hour (recorded: run cells and lifecycle)",
            [
                *CITYKPI,
                "--db",
                str(two_days),
                "--catalogue",
                str(hcat),
                "evaluate",
                "--at",
                last.isoformat(),
                "--period",
                "hour",
                "--format",
                "parquet",
                "--output",
                str(self.work / "hourly.parquet"),
                "--force",
            ],
            runs=1,
            warmup=False,
        )
        self.add(cli)
        # micro-batches: batch k of every round into two days, into one day, and a plain INSERT
        batches = sorted((self.cache / "hourly" / "batches").glob("b*.parquet"))
        rows = manifest["batch_rows"][0]
        ingest_rounds = [
            [
                Job(
                    "5-minute batch: citykpi, 2 days of history",
                    f"ingest() of ≈{rows:,} readings (--on-duplicate resend)",
                    [
                        *hourly,
                        "probe-ingest",
                        "--db",
                        str(two_days),
                        "--catalogue",
                        str(hcat),
                        "--file",
                        str(b),
                    ],
                    "ingest_seconds",
                ),
                Job(
                    "5-minute batch: citykpi, 1 day of history",
                    f"ingest() of ≈{rows:,} readings",
                    [
                        *hourly,
                        "probe-ingest",
                        "--db",
                        str(one_day),
                        "--catalogue",
                        str(hcat),
                        "--file",
                        str(b),
                    ],
                    "ingest_seconds",
                ),
                Job(
                    "5-minute batch: plain INSERT",
                    "INSERT … SELECT read_parquet, ids joined to keys",
                    [*hourly, "plain-insert", "--db", str(one_day), "--file", str(b)],
                    "insert_seconds",
                ),
            ]
            for b in batches[:rounds]
        ]
        batch_cases = measure_rounds(ingest_rounds)
        bb = {c.case: c for c in batch_cases}
        two, one = (
            bb.get("5-minute batch: citykpi, 2 days of history"),
            bb.get("5-minute batch: citykpi, 1 day of history"),
        )
        plain = bb.get("5-minute batch: plain INSERT")
        if two and plain and two.median_s and plain.median_s:
            two.detail["ratio_vs_plain"] = round(two.median_s / plain.median_s, 2)
            two.note = f"{two.detail['ratio_vs_plain']}× the plain INSERT (target ≤ 1.5×)"
        if two and one and two.median_s and one.median_s:
            two.detail["ratio_vs_one_day"] = round(two.median_s / one.median_s, 2)
            two.note += f"; {two.detail['ratio_vs_one_day']}× one day of history"
        for c in batch_cases:
            self.add(c)
        if len(batches) > rounds:
            self.add(
                measure(
                    "5-minute batch: citykpi CLI",
                    "citykpi ingest --on-duplicate resend (the whole process)",
                    [
                        *CITYKPI,
                        "--db",
                        str(two_days),
                        "--catalogue",
                        str(hcat),
                        "ingest",
                        "--quiet",
                        "--on-duplicate",
                        "resend",
                        str(batches[rounds]),
                    ],
                    runs=1,
                    warmup=False,
                )
            )

    # 10. spark ---------------------------------------------------------------------------------
    def _spark_data(self) -> list[tuple[str, Path, Path, list[list[str]], str]]:
        """(name, catalogue, areas file, ingest arguments, as-of date) of the sample city and this scale."""
        sample = self.cache / "sample-city"
        if not (sample / "manifest.json").exists():
            print("generating the sample city for the Spark cases (once)…", flush=True)
            r = run_once([PY, "-m", "citykpi.sample", "--out", str(sample)])
            if r.rc != 0:
                raise SystemExit(f"sample generation failed: {r.stderr[-2000:]}")
        manifest = json.loads((sample / "manifest.json").read_text(encoding="utf-8"))
        ingests = []
        for entry in manifest["files"]:
            words = entry["command"].split()
            if words[1:3] == ["areas", "load"]:
                continue
            args = shlex.split(entry["command"].replace("sample_data/generated/", f"{sample}/"))[2:]
            ingests.append(["ingest", "--quiet", *args])
        return [
            ("sample city", ROOT / "indicators", sample / "areas.csv", ingests, str(manifest["end"])),
            (
                f"scale {self.scale}",
                self.catalogue,
                self.cache / "areas.csv",
                [["ingest", "--quiet", str(self.cache / "observations.parquet")]],
                self.as_of,
            ),
        ]

    @staticmethod
    def _spark_fresh(options: list[str], catalogue: Path, areas: Path, target: Path) -> Callable[[], None]:
        """A setup that leaves ``target`` (this engine's warehouse only: the other engine's, ingested
        before, is evaluated next) empty with only the areas loaded."""

        def setup() -> None:
            for p in (target, Path(f"{target}.wal")):
                if p.is_dir():
                    shutil.rmtree(p, ignore_errors=True)
                else:
                    p.unlink(missing_ok=True)
            r = run_once([*CITYKPI, *options, "--catalogue", str(catalogue), "areas", "load", str(areas)])
            if r.rc != 0:
                raise RuntimeError(f"areas load failed: {r.stderr[-500:]}")

        return setup

    def case_spark(self) -> None:
        """Ingest and evaluate on Spark local[2] beside DuckDB, interleaved, as ratios (docs/spark.md)."""
        try:
            import pyspark  # noqa: F401
        except ImportError:
            self.add(not_available("spark", "Spark local[2]", "PySpark is not installed"))
            return
        master = "local[2]"
        for name, catalogue, areas, ingests, as_of in self._spark_data():
            slug = name.replace(" ", "_")
            duck_db = self.work / f"spark_cmp_{slug}.duckdb"
            folder = self.work / f"spark_{slug}"
            engines = {
                "duckdb": ["--db", str(duck_db)],
                "spark": ["--backend", "spark", "--spark-master", master, "--warehouse", str(folder)],
            }

            timings: dict[str, Case] = {}
            for engine, options in engines.items():
                steps = [[*CITYKPI, *options, "--catalogue", str(catalogue), *args] for args in ingests]
                c = measure(
                    f"spark {name}: ingest {engine}",
                    f"{len(ingests)} file(s), validation on",
                    ["sh", "-c", " && ".join(shlex.join(step) for step in steps)],
                    runs=1,
                    warmup=False,
                    setup=self._spark_fresh(
                        options, catalogue, areas, duck_db if engine == "duckdb" else folder
                    ),
                )
                timings[engine] = self.add(c)
            d, sp = timings["duckdb"], timings["spark"]
            if d.median_s and sp.median_s:
                sp.detail["ratio_vs_duckdb"] = round(sp.median_s / d.median_s, 2)
                sp.note = f"{sp.detail['ratio_vs_duckdb']}× DuckDB's ingest (validated by DuckDB, written as Parquet)"
            jobs = [
                Job(
                    f"spark {name}: evaluate {engine}",
                    "engine in-process: first run, then a warm one",
                    [
                        PY,
                        str(HERE / "engine_probe.py"),
                        "--db",
                        str(duck_db if engine == "duckdb" else folder),
                        "--catalogue",
                        str(catalogue),
                        "--as-of",
                        as_of,
                        "--backend",
                        engine,
                        "--spark-master",
                        master,
                        "--repeat",
                        "2",
                    ],
                    "evaluate_seconds",
                )
                for engine in ("duckdb", "spark")
            ]
            cases = measure_interleaved(jobs, runs=max(1, self.runs - 1))
            d, sp = cases
            if d.median_s and sp.median_s:
                sp.detail["ratio_vs_duckdb"] = round(sp.median_s / d.median_s, 1)
                warm = [c.detail.get("output", {}).get("warm_evaluate_seconds") for c in cases]
                if all(warm):
                    sp.detail["warm_ratio_vs_duckdb"] = round(warm[1] / warm[0], 1)
                out = sp.detail.get("output", {})
                sp.note = (
                    f"{sp.detail['ratio_vs_duckdb']}× DuckDB cold, {sp.detail.get('warm_ratio_vs_duckdb')}× warm "
                    f"(warm {out.get('warm_evaluate_seconds', 0):.1f} s; {out.get('cells')} cells)"
                )
            for c in cases:
                self.add(c)

    # 5. export ---------------------------------------------------------------------------------
    def case_export(self) -> None:
        """HTML and xlsx export of the full district-level scorecard."""
        h = help_text("evaluate")
        for fmt in ("html", "xlsx"):
            what = "district-level scorecard, all indicators"
            if "evaluate" not in self.cmds or "--format" not in h or not self.ckdb.exists():
                self.add(
                    not_available(f"export {fmt}", what, "`citykpi evaluate --format/--output` not there yet")
                )
                continue
            out = self.work / f"scorecard.{fmt}"
            cmd = [
                *CITYKPI,
                "--db",
                str(self.ckdb),
                "--catalogue",
                str(self.catalogue),
                "evaluate",
                "--date",
                self.as_of,
                "--level",
                "district",
                "--format",
                fmt,
                "--output",
                str(out),
            ]
            c = measure(f"export {fmt}", what, cmd, runs=self.runs)
            if c.status == "ok" and out.exists():
                c.detail["bytes"] = out.stat().st_size
                c.note = f"{out.stat().st_size / 1e6:.1f} MB (includes the evaluation)"
            self.add(c)

    # 6. finding things: search and shell completion ------------------------------------------
    def case_find(self) -> None:
        """``catalogue search`` in-process and as a CLI process, and shell completion of indicator and
        area ids, each beside a baseline of the same run: a plain substring scan of the same fields,
        the bare CLI process (``--version``), the completion of a command name (reads nothing)."""
        n = self.manifest["indicators"]
        what = f"{n} indicators, {len(find_probe.QUERIES)} queries, median ms per query"
        if "catalogue search" not in self.cmds:
            self.add(
                not_available("find: search in process", what, "`citykpi catalogue search` not there yet")
            )
        else:
            self._find_in_process(what)
            jobs = [
                Job("find: CLI process floor", "citykpi --version", [*CITYKPI, "--version"]),
                Job(
                    "find: catalogue search (CLI)",
                    f"citykpi catalogue search over {n} indicators",
                    [*CITYKPI, "--catalogue", str(self.catalogue), "catalogue", "search", "indicator"],
                ),
            ]
            floor, cli = measure_interleaved(jobs, runs=self.runs)
            if floor.median_s and cli.median_s:
                cli.detail["ratio_vs_floor"] = round(cli.median_s / floor.median_s, 2)
                cli.note = f"{cli.detail['ratio_vs_floor']}× the bare CLI process"
            self.add(floor)
            self.add(cli)
        if not SCRIPT.exists():
            self.add(not_available("find: complete ids", "shell completion", f"no console script {SCRIPT}"))
            return
        have_db = self.citykpi_warehouse()
        words = {
            "command names (floor)": ("citykpi ev", "1"),
            "indicator ids": ("citykpi show gas.g0", "2"),
            "area ids": ("citykpi evaluate --area 5001", "3"),
        }
        jobs = []
        for name, (line, cword) in words.items():
            if name == "area ids" and not have_db:
                continue
            env = {
                "_CITYKPI_COMPLETE": "complete_bash",
                "COMP_WORDS": line,
                "COMP_CWORD": cword,
                "CITYKPI_CATALOGUE": str(self.catalogue),
                "CITYKPI_DB": str(self.ckdb),
            }
            jobs.append(Job(f"find: complete {name}", f"`{line}<TAB>`", [str(SCRIPT)], env=env))
        cases = measure_interleaved(jobs, runs=self.runs)
        floor = cases[0]
        for c, job in zip(cases, jobs, strict=True):
            if c.status != "ok":
                continue
            offered = run_once(job.cmd, extra_env=job.env).stdout.split()
            c.detail["completions"] = len(offered)
            if c is not floor and floor.median_s:
                c.detail["ratio_vs_floor"] = round(c.median_s / floor.median_s, 2)
                c.note = f"{len(offered)} offered; {c.detail['ratio_vs_floor']}× completing a command name"
            else:
                c.note = f"{len(offered)} offered"
        for c in cases:
            self.add(c)

    def _find_in_process(self, what: str) -> None:
        """Search and the plain scan timed inside one fresh process per run (after a warm-up run)."""
        cmd = [PY, str(HERE / "find_probe.py"), "--catalogue", str(self.catalogue), "--repeat", "5"]
        outputs = []
        for k in range(self.runs + 1):
            r = run_once(cmd)
            if r.rc != 0:
                self.add(Case("find: search in process", what, status="failed", note=r.stderr.strip()[-300:]))
                return
            if k:
                outputs.append(json.loads(r.stdout.strip().splitlines()[-1]))
        search = Case("find: search in process", what)
        scan = Case("find: plain scan (baseline)", "every term a substring of a field; no ranking")
        for c, key in ((search, "search_ms_median"), (scan, "scan_ms_median")):
            c.runs_s = [round(o[key] / 1000, 6) for o in outputs]
            c.median_s = round(statistics.median(c.runs_s), 6)
        last = outputs[-1]
        worst = statistics.median(o["search_ms_max"] for o in outputs)
        search.detail = {
            "queries": last["queries"],
            "search_ms_max": worst,
            "catalogue_seconds": last["catalogue_seconds"],
            "same_matches_as_scan": all(q["hits"] == q["scan_matches"] for q in last["queries"]),
        }
        if scan.median_s:
            search.detail["ratio_vs_scan"] = round(search.median_s / scan.median_s, 2)
        search.note = (
            f"{search.median_s * 1000:.1f} ms median, {worst:.1f} ms slowest query "
            f"(target < {TARGETS['search_ms']:.0f} ms); {search.detail.get('ratio_vs_scan')}× the plain scan"
        )
        scan.note = f"{scan.median_s * 1000:.1f} ms median"
        self.add(scan)
        self.add(search)

    # 7. data quality ----------------------------------------------------------------------------
    def case_quality(self) -> None:
        """The whole data-quality scorecard beside one hand-written completeness-and-timeliness query."""
        what = "completeness, accuracy, rules, timeliness of every series"
        names = ("quality: citykpi engine", "quality: citykpi CLI")
        if "quality" not in self.cmds or not self.ckdb.exists():
            for n in names:
                self.add(not_available(n, what, "`citykpi quality` or citykpi's warehouse not there yet"))
            return
        db, cat = str(self.ckdb), str(self.catalogue)
        jobs = [
            Job(
                "quality: hand SQL (ck db)",
                "ONE query: completeness and timeliness per series",
                [*BASE, "quality", "--db", db, "--cache", str(self.cache), "--as-of", self.as_of],
                "query_seconds",
            ),
            Job(
                names[0],
                "assess() in-process, all dimensions",
                [PY, str(HERE / "quality_probe.py"), "--db", db, "--catalogue", cat, "--as-of", self.as_of],
                "assess_seconds",
            ),
            Job(
                names[1],
                "CLI, --format parquet",
                [
                    *CITYKPI,
                    "--db",
                    db,
                    "--catalogue",
                    cat,
                    "quality",
                    "--date",
                    self.as_of,
                    "--format",
                    "parquet",
                    "--output",
                    str(self.work / "quality.parquet"),
                ],
            ),
        ]
        cases = measure_interleaved(jobs, runs=self.runs)
        hand, eng, cli = cases
        if hand.median_s and eng.median_s:
            eng.detail["ratio_vs_hand_query"] = round(eng.median_s / hand.median_s, 2)
            eng.note = f"{eng.detail['ratio_vs_hand_query']}× the hand-written query (target ≤ 1.5×)"
            same = hand.detail.get("output", {}).get("totals") == eng.detail.get("output", {}).get("totals")
            eng.detail["same_figures"] = same
            eng.note += "; same completeness and timeliness figures" if same else "; FIGURES DIFFER"
        pm = hand.detail.get("process_median_s")
        if cli.median_s and pm:
            cli.detail["ratio_vs_hand_process"] = round(cli.median_s / pm, 2)
            cli.note = f"{cli.detail['ratio_vs_hand_process']}× the hand-query process"
        for c in cases:
            self.add(c)

    def run(self) -> dict[str, Any]:
        """Run the selected cases and return the results document."""
        print(
            f"citykpi bench, scale {self.scale}: {self.manifest['observations']:,} observations, "
            f"{self.manifest['indicators']:,} indicators, {self.manifest['areas']:,} areas; "
            f"{self.runs} runs after a warm-up",
            flush=True,
        )
        base_db = self.baseline_warehouse()
        if "check" in self.cases:
            self.case_check()
        if "ingest" in self.cases:
            self.case_ingest()
        if self.cases & {"evaluate", "period", "export", "quality", "early"}:
            self.citykpi_warehouse()
        if "evaluate" in self.cases:
            self.case_evaluate(base_db, loop=self.loop_sample > 0)
        if "period" in self.cases:
            self.case_period(base_db)
        if "export" in self.cases:
            self.case_export()
        if "find" in self.cases:
            self.case_find()
        if "quality" in self.cases:
            self.case_quality()
        if "early" in self.cases:
            self.case_early()
        if "hourly" in self.cases:
            self.case_hourly()
        if "spark" in self.cases:
            self.case_spark()
        return self.document()

    def document(self) -> dict[str, Any]:
        """results.json: machine, versions, figures, ratios, pass/fail."""
        # versions from the installed metadata: importing the engines would grow this process by
        # hundreds of MiB (thread pools, arenas), which bench_process_peak_mb is there to rule out
        from importlib.metadata import version

        fresh = {c.case for c in self.results}
        self.results = [c for c in self.earlier if c.case not in fresh] + self.results
        by = {c.case: c for c in self.results}

        def verdict(value: float | None, target: float, below: bool = True) -> dict[str, Any]:
            if value is None:
                return {"value": None, "target": target, "pass": None}
            return {"value": value, "target": target, "pass": value <= target if below else value >= target}

        ev = by.get("evaluate day: citykpi CLI")
        eng = by.get("evaluate day: citykpi engine")
        checks = {
            "check_under_5s": verdict(
                by["check"].median_s if "check" in by else None, TARGETS["check_seconds"]
            ),
            "ingest_parquet_vs_plain": verdict(
                by.get("ingest parquet: citykpi", Case("", "")).detail.get("ratio_vs_plain"), 1.5
            ),
            "ingest_csv_vs_plain": verdict(
                by.get("ingest csv: citykpi", Case("", "")).detail.get("ratio_vs_plain"), 1.5
            ),
            "engine_vs_hand_query": verdict(eng.detail.get("ratio_vs_hand_query") if eng else None, 1.3),
            "cli_vs_hand_process": verdict(ev.detail.get("ratio_vs_hand_process") if ev else None, 1.4),
            "loop_over_evaluate": verdict(
                ev.detail.get("loop_over_evaluate") if ev else None, 8.0, below=False
            ),
        }
        early = by.get("early: citykpi engine")
        checks["early_vs_hand_query"] = verdict(
            early.detail.get("ratio_vs_hand_query") if early else None, TARGETS["early_vs_hand"]
        )
        checks["early_vs_no_forecasts"] = verdict(
            early.detail.get("ratio_vs_plain") if early else None, TARGETS["early_vs_plain"]
        )
        for grain in ("month", "year"):
            g = by.get(f"evaluate {grain}: citykpi engine")
            checks[f"engine_vs_hand_query_{grain}"] = verdict(
                g.detail.get("ratio_vs_hand_query") if g else None, 1.3
            )
        found = by.get("find: search in process")
        checks["search_under_200ms"] = verdict(
            found.detail.get("search_ms_max") if found else None, TARGETS["search_ms"]
        )
        for grain in ("day", "month", "year"):
            peaks = [
                c.peak_mb
                for c in (
                    by.get(f"evaluate {grain}: citykpi engine"),
                    by.get(f"evaluate {grain}: citykpi CLI"),
                )
                if c is not None and c.peak_mb
            ]
            checks[f"evaluate_{grain}_peak_gib"] = verdict(
                round(max(peaks) / 1024, 2) if peaks else None, TARGETS["evaluate_peak_gib"]
            )
        q = by.get("quality: citykpi engine")
        checks["quality_vs_hand_query"] = verdict(q.detail.get("ratio_vs_hand_query") if q else None, 1.5)
        eng_h = by.get("hourly evaluate: citykpi engine")
        two = by.get("5-minute batch: citykpi, 2 days of history")
        checks["hourly_engine_vs_hand_query"] = verdict(
            eng_h.detail.get("ratio_vs_hand_query") if eng_h else None, 1.5
        )
        checks["microbatch_vs_plain_insert"] = verdict(two.detail.get("ratio_vs_plain") if two else None, 1.5)
        # "no slower into two days of history than into one", within the noise of a shared machine
        checks["microbatch_two_days_vs_one"] = verdict(
            two.detail.get("ratio_vs_one_day") if two else None, 1.1
        )
        # citykpi as it runs by default: not the hand query, not the run given 60 % of RAM
        hourly_peaks = [
            c.peak_mb
            for name, c in by.items()
            if name.startswith(("hourly evaluate: citykpi", "5-minute batch: citykpi"))
            and "60 % of RAM" not in name
            and c.peak_mb
        ]
        checks["hourly_peak_gib"] = verdict(round(max(hourly_peaks) / 1024, 2) if hourly_peaks else None, 6.0)
        return {
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "scale": self.scale,
            "machine": {
                "cpus": os.cpu_count(),
                "ram_gib": round(_ram_bytes() / 2**30, 1),
                "platform": platform.platform(),
                "python": platform.python_version(),
                "duckdb": version("duckdb"),
                "polars": version("polars"),
                "load_avg": os.getloadavg(),
            },
            "citykpi_commit": subprocess.run(
                ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
            ).stdout.strip(),
            "data": self.manifest,
            "bench_process_peak_mb": self_peak_mb(),
            "runs": self.runs,
            "cases": [asdict(c) for c in self.results],
            "targets": checks,
        }


def markdown(doc: dict[str, Any]) -> str:
    """RESULTS.md: the figures of one results document, with the machine and the date."""
    m = doc["machine"]
    d = doc["data"]
    lines = [
        f"# citykpi benchmark results — scale `{doc['scale']}`",
        "",
        f"Run {doc['date']} on {m['cpus']} CPUs, {m['ram_gib']} GiB RAM ({m['platform']}); Python {m['python']}, "
        f"DuckDB {m['duckdb']}, Polars {m['polars']}; citykpi commit `{doc['citykpi_commit']}`. "
        f"Load average at the end {', '.join(f'{x:.1f}' for x in m['load_avg'])} (a shared machine: compare the "
        "ratios, measured in the same run, not the absolute seconds).",
        "",
        f"Data: {d['observations']:,} observations (Parquet, date order), a {d['csv_rows']:,}-row CSV, "
        f"{d['indicators']:,} indicators ({d['kpis']} KPIs, {d['vital_signs']:,} vital signs) + {d['indices']} "
        f"indices, {d['areas']:,} areas; value kinds {d['value_kinds']}; evaluated as of {d['as_of']}.",
        "",
        f"Each figure is the median of {doc['runs']} runs after a warm-up, each run a fresh process; peak memory "
        "is the process's max RSS. 'not available' = the citykpi command did not exist or failed; no figure is "
        "made up.",
        f"The bench process itself peaked at {doc.get('bench_process_peak_mb', '?')} MiB (it generates nothing "
        "in-process, so no child's peak starts from a large parent).",
        "",
        "| case | what | median s | runs s | peak MiB | note |",
        "|---|---|---:|---|---:|---|",
    ]
    for c in doc["cases"]:
        med = f"{c['median_s']:.2f}" if c["median_s"] is not None else c["status"]
        runs = ", ".join(f"{x:.2f}" for x in c["runs_s"])
        peak = f"{c['peak_mb']:.0f}" if c["peak_mb"] is not None else ""
        note = (c["note"] or "").replace("|", "/").replace("\n", " ")
        lines.append(f"| {c['case']} | {c['what']} | {med} | {runs} | {peak} | {note} |")
    lines += ["", "## Targets", "", "| target | value | limit | verdict |", "|---|---:|---:|---|"]
    for name, v in doc["targets"].items():
        verdict = "not available" if v["pass"] is None else ("pass" if v["pass"] else "**FAIL**")
        lines.append(f"| {name} | {v['value']} | {v['target']} | {verdict} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """CLI entry point."""
    ap = argparse.ArgumentParser(description="citykpi benchmark")
    ap.add_argument("--scale", choices=["micro", "small", "city"], default="city")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--loop-sample", type=int, default=300, help="0: skip the loop (with --merge: keep it)")
    ap.add_argument("--cases", default="check,ingest,evaluate,period,export,find,quality,early,hourly")
    ap.add_argument("--output", type=Path, default=HERE / "results.json")
    ap.add_argument("--merge", action="store_true", help="keep the other cases of an earlier results file")
    ap.add_argument(
        "--markdown", type=Path, help="also write the results as Markdown (e.g. bench/RESULTS.md)"
    )
    ap.add_argument("--render-only", action="store_true", help="only render --output to --markdown")
    a = ap.parse_args(argv)
    if a.render_only:
        if a.markdown:
            a.markdown.write_text(
                markdown(json.loads(a.output.read_text(encoding="utf-8"))), encoding="utf-8"
            )
        return 0
    bench = Bench(a.scale, a.runs, a.loop_sample, set(a.cases.split(",")))
    if a.merge and a.output.exists():
        old = json.loads(a.output.read_text(encoding="utf-8"))
        if old.get("scale") == a.scale:
            bench.earlier = [Case(**c) for c in old["cases"]]
    doc = bench.run()
    a.output.write_text(json.dumps(doc, indent=2, ensure_ascii=False, default=str), encoding="utf-8")
    print("\ntargets:")
    for name, v in doc["targets"].items():
        mark = "not available" if v["pass"] is None else ("PASS" if v["pass"] else "FAIL")
        print(f"  {name:<26} {v['value']!s:>10}  target {v['target']:<6} {mark}")
    print(f"\nresults written to {a.output}")
    if a.markdown:
        a.markdown.write_text(markdown(doc), encoding="utf-8")
        print(f"markdown written to {a.markdown}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
