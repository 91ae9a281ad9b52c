"""Showing a status report: a summary for people, and JUnit XML for CircleCI's Tests tab.

JUnit is how B's outcome becomes visible inside A: ``store_test_results`` on the file
makes each downstream workflow a test case of A's job, with B's failed jobs linked.

Names, statuses and messages come from B's API data, which anyone who can edit B's config
writes: in the summary each one is escaped (``printable``), so none can start a line of
its own (a forged "all downstream pipelines succeeded"); the JUnit document drops what XML
cannot carry (``xml_safe``).
"""

from __future__ import annotations

import re
from xml.etree import ElementTree as ET

from circleback._text import printable, xml_safe
from circleback.relay.status import PipelineReport, StatusReport, WorkflowReport


def summary(report: StatusReport) -> str:
    """A few lines a person reads at a glance: per pipeline and workflow, status and link."""
    lines: list[str] = []
    for p in report.pipelines:
        mark = "ok" if p.succeeded else ("RUNNING" if not p.finished else "FAILED")
        lines.append(f"{mark:7} {p.project_slug} pipeline #{p.number}  {p.url}")
        if p.waiting:
            lines.append(f"          still waiting: {p.waiting}")
        lines.extend(f"          error: {e}" for e in p.errors)
        for w in p.workflows:
            lines.append(f"          {w.name}: {w.status}{_duration(w)}  {w.url}")
            lines.extend(f"            - {j.name} {j.status}  {j.url}" for j in w.failed_jobs)
            lines.extend(
                f"            - {j.name} did not run (not_run)  {j.url}" for j in w.not_run_jobs
            )
    for r in report.required:
        found = ", ".join(r.statuses) or "not found in any downstream workflow"
        lines.append(f"{'ok' if r.succeeded else 'FAILED':7} required job {r.name}: {found}")
    if report.timed_out:
        verdict = "gave up waiting: downstream still running"
    elif report.succeeded:
        verdict = "all downstream pipelines succeeded"
    else:
        verdict = "downstream failed"
    lines.append(verdict)
    # Each line escaped whole: no value from the API can break a line or start one.
    return "\n".join(printable(line) for line in lines)


def _duration(w: WorkflowReport) -> str:
    if w.duration_seconds is None:
        return ""
    minutes, seconds = divmod(round(w.duration_seconds), 60)
    return f" in {minutes}m{seconds:02d}s" if minutes else f" in {seconds}s"


#: Every character that could start a line or move the cursor (C0, DEL, C1, line and
#: paragraph separators): API text in the JUnit report is one line, its own.
_NOT_ONE_LINE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _one_line(text: str) -> str:
    return _NOT_ONE_LINE.sub("", text)


def junit_xml(report: StatusReport) -> str:
    """One test case per downstream workflow (or per errored pipeline), failures linked."""
    suites = ET.Element("testsuites", name="circleback")
    groups = [(_one_line(f"{p.project_slug} #{p.number}"), _cases(p)) for p in report.pipelines]
    if report.required:
        groups.append(("required jobs", _required_cases(report)))
    for name, cases in groups:
        suite = ET.SubElement(
            suites,
            "testsuite",
            name=name,
            tests=str(len(cases)),
            failures=str(sum(1 for _, failure in cases if failure)),
        )
        for case, failure in cases:
            suite.append(case)
            if failure:
                ET.SubElement(case, "failure", message=failure[0]).text = failure[1]
    ET.indent(suites)
    # ElementTree writes control characters as they are, which no XML parser accepts.
    document = ET.tostring(suites, encoding="unicode")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + xml_safe(document)


def _cases(p: PipelineReport) -> list[tuple[ET.Element, tuple[str, str] | None]]:
    # Each API value passes _one_line; only the newlines joining them are ours.
    c = _one_line
    classname = c(p.project_slug)
    if p.waiting:
        case = ET.Element("testcase", classname=classname, name="pipeline", time="0")
        return [(case, (f"pipeline #{p.number} still running", f"{c(p.waiting)}\n{c(p.url)}"))]
    if p.errors or not p.workflows:
        case = ET.Element("testcase", classname=classname, name="pipeline", time="0")
        text = "\n".join(c(line) for line in [*p.errors, p.url])
        return [(case, (f"pipeline #{p.number} errored", text))]
    result: list[tuple[ET.Element, tuple[str, str] | None]] = []
    for w in p.workflows:
        case = ET.Element(
            "testcase",
            classname=classname,
            name=c(w.name),
            time=f"{w.duration_seconds or 0:.1f}",
            file=c(w.url),
        )
        failure = None
        if not w.succeeded:
            jobs = [c(f"{j.name}: {j.status} {j.url}") for j in w.failed_jobs]
            failure = (c(f"workflow {w.name} {w.status}"), "\n".join([*jobs, c(w.url)]))
        if w.not_run_jobs:
            # Shown, not failed: the workflow succeeded (status --require-job fails it).
            out = ET.SubElement(case, "system-out")
            out.text = "\n".join(c(f"not_run: {j.name} {j.url}") for j in w.not_run_jobs)
        result.append((case, failure))
    return result


def _required_cases(report: StatusReport) -> list[tuple[ET.Element, tuple[str, str] | None]]:
    result: list[tuple[ET.Element, tuple[str, str] | None]] = []
    for r in report.required:
        name = _one_line(r.name)
        case = ET.Element("testcase", classname="required-jobs", name=name, time="0")
        found = _one_line(", ".join(r.statuses)) or "not found"
        result.append((case, None if r.succeeded else (f"required job {name}: {found}", found)))
    return result
