"""Renderings of a ``citykpi test`` report (text, json, github, junit), as strings.

No Rich and no Typer: the CLI prints or writes what these return. Test files, case names and
messages come from the user's YAML and the catalogue, so every rendering but JSON shows their
control characters as ``\\x1b`` (see ``safe_text``): CI logs are terminals too, and XML 1.0
cannot hold them. JSON keeps them exact (its encoder escapes them).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from xml.sax.saxutils import escape, quoteattr

from citykpi.engine.testing import CaseResult, TestReport, summary_lines
from citykpi.render.diagnostics import _gh_escape
from citykpi.render.format import safe_text

#: The formats of ``citykpi test --format``.
TEST_FORMATS: tuple[str, ...] = ("text", "json", "github", "junit")


def report_text(report: TestReport) -> str:
    """One line per case (PASS/FAIL), a line per failure with expected vs actual, then the summary."""
    return "".join(safe_text(line) + "\n" for line in summary_lines(report))


def report_json(report: TestReport) -> str:
    """The report as JSON (schema_version 1, see :meth:`TestReport.to_json`)."""
    return report.to_json() + "\n"


def report_github(report: TestReport) -> str:
    """GitHub Actions workflow commands: an ``::error`` per failing expectation, at its line of the
    test file (the case's line when the expectation's is unknown), then the summary as plain lines."""
    lines: list[str] = []
    for case in report.failed:
        file = _gh_escape(safe_text(case.file, one_line=True), prop=True)
        title = _gh_escape(safe_text(f"citykpi test: {case.name}", one_line=True), prop=True)
        for failure in case.failures:
            line = failure.line if failure.line is not None else case.line
            props = [f"file={file}", *([f"line={line}"] if line is not None else []), f"title={title}"]
            lines.append(f"::error {','.join(props)}::{_gh_escape(safe_text(failure.message))}")
    lines += [safe_text(line, one_line=True) for line in _summary(report)]
    return "".join(line + "\n" for line in lines)


def report_junit(report: TestReport) -> str:
    """A JUnit XML report: a ``<testsuite>`` per test file, a ``<testcase>`` per case, and a
    ``<failure>`` listing each expectation that failed, expected vs actual."""
    by_file: dict[str, list[CaseResult]] = {f: [] for f in report.files}
    for case in report.cases:
        by_file.setdefault(case.file, []).append(case)
    suites: list[str] = []
    for file, cases in by_file.items():
        failed = sum(not c.passed for c in cases)
        body = "".join(_junit_case(c) for c in cases)
        suites.append(
            f'  <testsuite name={_attr(file)} tests="{len(cases)}" failures="{failed}" errors="0">\n'
            f"{body}  </testsuite>\n"
        )
    head = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<testsuites name="citykpi test" tests="{len(report.cases)}" failures="{len(report.failed)}">\n'
    )
    return head + "".join(suites) + "</testsuites>\n"


def render_test_report(report: TestReport, fmt: str) -> str:
    """The report in ``fmt`` (one of :data:`TEST_FORMATS`)."""
    return _RENDERERS[fmt](report)


def _junit_case(case: CaseResult) -> str:
    attrs = f"classname={_attr(case.file)} name={_attr(case.name)}"
    if case.passed:
        return f"    <testcase {attrs}/>\n"
    first = case.failures[0].message
    more = f" (and {len(case.failures) - 1} more)" if len(case.failures) > 1 else ""
    text = "\n".join((f"line {f.line}: " if f.line is not None else "") + f.message for f in case.failures)
    return (
        f"    <testcase {attrs}>\n"
        f'      <failure message={_attr(first + more)} type="expectation">{escape(safe_text(text))}</failure>\n'
        "    </testcase>\n"
    )


def _attr(value: str) -> str:
    return quoteattr(safe_text(value, one_line=True))


def _summary(report: TestReport) -> list[str]:
    """The summary lines of the text report (counts and uncovered indicators), without the cases."""
    return [line for line in summary_lines(report) if not line.startswith(("PASS ", "FAIL ", "    - "))]


_RENDERERS: Mapping[str, Callable[[TestReport], str]] = {
    "text": report_text,
    "json": report_json,
    "github": report_github,
    "junit": report_junit,
}
