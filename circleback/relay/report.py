"""Showing a status report: a summary for people, and JUnit XML for CircleCI's Tests tab.

JUnit is how B's outcome becomes visible inside A: ``store_test_results`` on the file
makes each downstream workflow a test case of A's job, with B's failed jobs linked.

Names, statuses and messages come from B's API data, which anyone who can edit B's config
writes: in the summary each one is escaped (``printable``), so none can start a line of
its own (a forged "all downstream pipelines succeeded"); the JUnit document drops what XML
cannot carry (``xml_safe``).
"""

from __future__ import annotations

from xml.etree import ElementTree as ET

from circleback._text import printable, xml_safe
from circleback.relay.status import PipelineReport, StatusReport, WorkflowReport


def summary(report: StatusReport) -> str:
    """A few lines a person reads at a glance: per pipeline and workflow, status and link."""
    lines: list[str] = []
    for p in report.pipelines:
        mark = "ok" if p.succeeded else "FAILED"
        lines.append(f"{mark:6} {p.project_slug} pipeline #{p.number}  {p.url}")
        lines.extend(f"         error: {e}" for e in p.errors)
        for w in p.workflows:
            lines.append(f"         {w.name}: {w.status}{_duration(w)}  {w.url}")
            lines.extend(f"           - {j.name} {j.status}  {j.url}" for j in w.failed_jobs)
    if report.succeeded:  # a failure is said once, by the error that ends the command
        lines.append("all downstream pipelines succeeded")
    # Each line escaped whole: no value from the API can break a line or start one.
    return "\n".join(printable(line) for line in lines)


def _duration(w: WorkflowReport) -> str:
    if w.duration_seconds is None:
        return ""
    minutes, seconds = divmod(round(w.duration_seconds), 60)
    return f" in {minutes}m{seconds:02d}s" if minutes else f" in {seconds}s"


def junit_xml(report: StatusReport) -> str:
    """One test case per downstream workflow (or per errored pipeline), failures linked."""
    suites = ET.Element("testsuites", name="circleback")
    for p in report.pipelines:
        cases = _cases(p)
        suite = ET.SubElement(
            suites,
            "testsuite",
            name=f"{p.project_slug} #{p.number}",
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
    classname = p.project_slug
    if p.errors or not p.workflows:
        case = ET.Element("testcase", classname=classname, name="pipeline", time="0")
        text = "\n".join([*p.errors, p.url])
        return [(case, (f"pipeline #{p.number} errored", text))]
    result: list[tuple[ET.Element, tuple[str, str] | None]] = []
    for w in p.workflows:
        case = ET.Element(
            "testcase",
            classname=classname,
            name=w.name,
            time=f"{w.duration_seconds or 0:.1f}",
            file=w.url,
        )
        failure = None
        if not w.succeeded:
            jobs = [f"{j.name}: {j.status} {j.url}" for j in w.failed_jobs]
            failure = (f"workflow {w.name} {w.status}", "\n".join([*jobs, w.url]))
        result.append((case, failure))
    return result
