"""`make demo` shows the report people open: its last steps run on the sample city, and what it says the
report holds is in the report (and in the README's "What `make demo` shows")."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import openpyxl
from typer.testing import CliRunner

from citykpi.cli import app
from citykpi.demo import REPORT_CONTENTS, demo_steps, report_steps
from tests.golden_support import END, ENV, ROOT, SampleCity

#: For each line the demo prints about the report, what in the file proves it.
EVIDENCE: dict[str, tuple[str, ...]] = {
    REPORT_CONTENTS[0]: ('id="summary"', 'id="legend"', 'id="indices"', 'class="league fgroup"'),
    REPORT_CONTENTS[1]: ('id="exceptions"', 'id="exceptions-red"'),
    REPORT_CONTENTS[2]: ('class="domain fgroup"', '<table class="mx">', "title="),
    REPORT_CONTENTS[3]: ('<input type="search" id="search"', 'name="status"', "table.sortable", "sortTable"),
    REPORT_CONTENTS[4]: ('<figure class="trend f"', 'class="band"', 'class="line'),
    REPORT_CONTENTS[5]: ("default-src 'none'", "@media print", "@page { size: A4 landscape"),
}


def test_the_demo_ends_with_two_league_tables_and_both_reports(
    sample_city: SampleCity, tmp_path: Path
) -> None:
    steps = report_steps(END.isoformat(), tmp_path)
    assert [s[1] for s in steps] == ["rank", "rank", "evaluate", "evaluate"]
    runner = CliRunner(env=ENV)
    outputs = []
    for step in steps:
        assert step[0] == "citykpi"
        r = runner.invoke(
            app, ["--db", str(sample_city.db), "--catalogue", str(sample_city.catalogue), *step[1:]]
        )
        assert r.exit_code == 0, (shlex.join(step), r.output)
        outputs.append(r.stdout)
    # the rate's league table carries intervals, the funnel and the note on what its order means
    assert "95%区间" in outputs[1] and "漏斗" in outputs[1] and "名次区间" in outputs[1]
    assert "个在漏斗 95% 控制限内" in " ".join(outputs[1].split())
    report = (tmp_path / f"scorecard-{END.isoformat()}.html").read_text(encoding="utf-8")
    for claim, markers in EVIDENCE.items():
        for marker in markers:
            assert marker in report, (claim, marker)
    assert set(EVIDENCE) == set(REPORT_CONTENTS)
    book = openpyxl.load_workbook(tmp_path / f"scorecard-{END.isoformat()}.xlsx", read_only=True)
    assert book.sheetnames == ["summary", "city", "district", "street", "indices"]


def test_the_readme_says_what_the_report_holds() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## What `make demo` shows") : readme.index("## Real public data")]
    for words in (
        "search box",
        "status filters",
        "column head sorts",
        "trend charts",
        "prints",
        "without a\nnetwork",
        "95 % interval",
        "funnel",
        "summary sheet",
    ):
        assert words in section, words
    assert re.search(r"citykpi rank case\.hotline\.on_time_rate .*--level district", section)


def test_the_readme_transcript_shows_the_commands_the_demo_runs(sample_city: SampleCity) -> None:
    """Each command of the README's transcript is one the demo runs, in the demo's order (the
    transcript skips some, marked …); none passes an option that is now the default."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("```text\n$ export CITYKPI_DB=out/demo.duckdb\n", 1)[1].split("```", 1)[0]
    shown = [line[2:] for line in block.splitlines() if line.startswith("$ citykpi ")]
    manifest = json.loads((sample_city.data / "manifest.json").read_text(encoding="utf-8"))
    steps = [shlex.join(step) for step in demo_steps(manifest, Path("out"))]
    assert all("--no-record" not in step for step in steps)
    it = iter(steps)
    missing = [cmd for cmd in shown if cmd not in it]  # a subsequence: each found after the previous
    assert not missing, missing
    assert len(shown) >= 10
