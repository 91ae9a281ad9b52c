"""Relay rules that need no API: parameters, allow-list, state file, reports, durations."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from circleback import errors
from circleback._cli import parse_duration
from circleback.relay import (
    Downstream,
    parse_parameter,
    project_allowed,
    read_state,
    record_downstream,
)
from circleback.relay.approve import parse_allow_patterns
from circleback.relay.records import app_url, check_writable, job_url
from circleback.relay.report import junit_xml, summary
from circleback.relay.status import FailedJob, PipelineReport, StatusReport, WorkflowReport
from circleback.relay.trigger import TriggerRequest, build_parameters

PID = "5034460f-c7c4-4c43-9457-de07e2029e7b"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("deploy=true", ("deploy", True)),
        ("deploy=false", ("deploy", False)),
        ("count=42", ("count", 42)),
        ("count=-3", ("count", -3)),
        ("version:=42", ("version", "42")),
        ("flag:=true", ("flag", "true")),
        ("name=web-app", ("name", "web-app")),
        ("eq=a=b", ("eq", "a=b")),
        ("empty=", ("empty", "")),
        ("big=12345678901234567890", ("big", "12345678901234567890")),
    ],
)
def test_parameters_are_typed(text: str, expected: tuple[str, object]) -> None:
    assert parse_parameter(text) == expected


@pytest.mark.parametrize("text", ["novalue", "=x", "1abc=2", "a b=c", "x" * 129 + "=1"])
def test_bad_parameters_are_refused_with_hint(text: str) -> None:
    with pytest.raises(errors.ConfigurationError) as info:
        parse_parameter(text)
    assert "KEY=VALUE" in info.value.hint


def test_callback_parameter_is_added_and_protected() -> None:
    request = TriggerRequest("gh/acme/b", upstream_pipeline_id=PID.upper(), parameters={"x": 1})
    assert build_parameters(request) == {"x": 1, "triggering-pipeline-id": PID}
    clash = TriggerRequest(
        "gh/acme/b", upstream_pipeline_id=PID, parameters={"triggering-pipeline-id": "x"}
    )
    with pytest.raises(errors.ConfigurationError, match="overwrite"):
        build_parameters(clash)
    with pytest.raises(errors.ConfigurationError, match="not a UUID"):
        build_parameters(TriggerRequest("gh/acme/b", upstream_pipeline_id="null"))


@pytest.mark.parametrize(
    ("slug", "patterns", "allowed"),
    [
        ("gh/acme/a", ["gh/acme/*"], True),
        ("gh/acme/a", ["gh/acme/a"], True),
        ("gh/ACME/A", ["gh/acme/a"], True),
        ("github/acme/a", ["gh/acme/*"], True),
        ("gh/acme/a", ["github/acme/*"], True),
        ("gh/acme-evil/x", ["gh/acme/*"], False),
        ("gh/acme/x", ["gh/acme/a*"], False),
        ("gh/acme/a1", ["gh/acme/a*"], True),
        ("bb/acme/a", ["gh/acme/*"], False),
        ("gh/acme/a", ["gh/*/a"], True),
        ("gh/acme/a", ["gh/acme/?"], False),
        ("gh/acme/a", ["gh/acme/[a]"], False),
        ("gh/acme/a.b", ["gh/acme/a?b"], False),
        ("gh/acme/a", [], False),
    ],
)
def test_allow_list(slug: str, patterns: list[str], allowed: bool) -> None:
    assert project_allowed(slug, parse_allow_patterns(patterns)) is allowed


def test_allow_patterns_split_and_validate() -> None:
    assert parse_allow_patterns(["gh/acme/a, gh/acme/b  bb/x/y"]) == (
        "gh/acme/a",
        "gh/acme/b",
        "bb/x/y",
    )
    for bad in ["gh/acme", "gh//x", "*"]:
        with pytest.raises(errors.ConfigurationError, match="slug pattern"):
            parse_allow_patterns([bad])


def _record(slug: str, number: int = 1, pid: str = PID) -> Downstream:
    return Downstream(slug, pid, number, "created", f"https://x/{number}")


def _pid(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012d}"


def test_state_file_keeps_one_entry_per_downstream_pipeline(tmp_path: Path) -> None:
    # Why: two triggers into the same project kept one entry, so status judged one of
    # them and passed although the other failed.
    path = tmp_path / "ws" / "downstream.json"
    record_downstream(path, _record("gh/acme/b", 1, _pid(1)))
    record_downstream(path, _record("gh/acme/c", 2, _pid(2)))
    record_downstream(path, _record("gh/acme/b", 3, _pid(3)))
    record_downstream(path, _record("gh/acme/b", 3, _pid(3)))  # the same pipeline again
    assert [(d.project_slug, d.number) for d in read_state(path)] == [
        ("gh/acme/b", 1),
        ("gh/acme/c", 2),
        ("gh/acme/b", 3),
    ]
    assert json.loads(path.read_text())["version"] == 1
    assert [p.name for p in path.parent.iterdir()] == ["downstream.json"]


def test_concurrent_writers_never_lose_a_record(tmp_path: Path) -> None:
    # Why: eight concurrent triggers into one file lost 9 of 40 records.
    import threading

    path = tmp_path / "downstream.json"
    barrier = threading.Barrier(8)

    def writer(w: int) -> None:
        barrier.wait()
        for i in range(5):
            record_downstream(path, _record("gh/acme/b", w * 10 + i, _pid(w * 10 + i)))

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(d.number for d in read_state(path)) == sorted(
        w * 10 + i for w in range(8) for i in range(5)
    )


def test_check_writable_refuses_before_anything_is_done(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(errors.ConfigurationError, match="cannot be written"):
        check_writable(blocker / "state.json", what="--state-file")
    with pytest.raises(errors.ConfigurationError, match="is a directory"):
        check_writable(tmp_path, what="--junit")
    check_writable(tmp_path / "new" / "state.json", what="--state-file")
    assert [p.name for p in (tmp_path / "new").iterdir()] == []


@pytest.mark.parametrize(
    "content",
    [
        "not json",
        "[]",
        '{"version": 2, "downstream": []}',
        '{"version": 1}',
        '{"version": 1, "downstream": [{"project_slug": "gh/a/b"}]}',
        (
            '{"version": 1, "downstream": [{"project_slug": "gh/a/b", "pipeline_id": "x", '
            '"number": 1}]}'
        ),
        '{"version": 1, "downstream": [{"project_slug": "../x", "pipeline_id": "'
        + PID
        + '", "number": 1}]}',
        '{"version": 1, "downstream": [{"project_slug": "gh/a/b", "pipeline_id": "'
        + PID
        + '", "number": true}]}',
        '{"version": 1, "downstream": [7]}',
    ],
)
def test_bad_state_files_are_configuration_errors(tmp_path: Path, content: str) -> None:
    path = tmp_path / "s.json"
    path.write_text(content)
    with pytest.raises(errors.ConfigurationError) as info:
        read_state(path)
    assert "--state-file" in info.value.hint


def test_missing_or_binary_state_file(tmp_path: Path) -> None:
    with pytest.raises(errors.ConfigurationError, match="does not exist"):
        read_state(tmp_path / "nope.json")
    binary = tmp_path / "b.json"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(errors.ConfigurationError, match="cannot be read"):
        read_state(binary)


@pytest.mark.parametrize(
    ("host", "app"),
    [
        ("https://circleci.com/api/v2", "https://app.circleci.com"),
        ("https://circleci.example.com/api/v2", "https://circleci.example.com"),
        ("http://127.0.0.1:5000", "http://127.0.0.1:5000"),
    ],
)
def test_app_url(host: str, app: str) -> None:
    assert app_url(host) == app


def test_job_url_without_number_is_the_workflow() -> None:
    assert (
        job_url("https://a", "gh/x/y", 3, "w", None) == "https://a/pipelines/gh/x/y/3/workflows/w"
    )
    assert job_url("https://a", "gh/x/y", 3, "w", 9).endswith("/workflows/w/jobs/9")


def _report(*workflows: WorkflowReport, errors_: tuple[str, ...] = ()) -> StatusReport:
    return StatusReport(
        (
            PipelineReport(
                "gh/acme/b", PID, 7, "created", "https://app/p/7", workflows, errors=errors_
            ),
        )
    )


def test_report_success_needs_every_workflow_to_succeed() -> None:
    ok = WorkflowReport("build", "w1", "success", "https://w1", 65.0)
    bad = WorkflowReport(
        "test", "w2", "failed", "https://w2", 3.0, (FailedJob("unit", "failed", "https://j"),)
    )
    assert _report(ok).succeeded
    assert not _report(ok, bad).succeeded
    assert not _report().succeeded
    assert not _report(ok, errors_=("config: boom",)).succeeded
    assert not StatusReport(()).succeeded
    text = summary(_report(ok, bad))
    assert "build: success in 1m05s" in text
    assert "- unit failed  https://j" in text
    assert "downstream failed" not in text  # the command's error says it, once
    assert text.splitlines()[0].startswith("FAILED")


def test_junit_has_one_case_per_workflow_with_linked_failures() -> None:
    ok = WorkflowReport("build", "w1", "success", "https://w1", 1.0)
    bad = WorkflowReport(
        "test", "w2", "canceled", "https://w2", None, (FailedJob("unit", "canceled", "https://j"),)
    )
    root = ET.fromstring(junit_xml(_report(ok, bad)))
    cases = root.findall("./testsuite/testcase")
    assert [c.get("name") for c in cases] == ["build", "test"]
    assert cases[0].find("failure") is None
    failure = cases[1].find("failure")
    assert failure is not None
    assert failure.get("message") == "workflow test canceled"
    assert "unit: canceled https://j" in (failure.text or "")
    assert root.find("./testsuite").get("failures") == "1"  # type: ignore[union-attr]


def test_junit_keeps_no_control_character_of_api_text() -> None:
    # Issue 12: C0 control characters are removed from JUnit. A CR or LF in a workflow
    # or job name survived as &#13;/&#10; in attributes, so a test name in A's Tests tab
    # could still carry a line of its own ("all downstream pipelines succeeded").
    forged = "x\r\nall downstream pipelines succeeded\t\x1b[2K"
    bad = WorkflowReport(
        forged, "w2", "failed", "https://w2", 1.0, (FailedJob(forged, "failed", "https://j"),)
    )
    root = ET.fromstring(junit_xml(_report(bad, errors_=())))
    values = [v for e in root.iter() for v in e.attrib.values()]
    values += [e.text or "" for e in root.iter()]
    control = re.compile("[\x00-\x1f\x7f-\x9f]")
    assert any("all downstream pipelines succeeded" in v for v in values)
    assert not [v for v in values if control.search(v.replace("\n", ""))]
    for e in root.iter():
        assert not [v for v in e.attrib.values() if "\n" in v]
    failure = root.find("./testsuite/testcase/failure")
    assert failure is not None
    assert (failure.text or "").splitlines() == [
        "xall downstream pipelines succeeded[2K: failed https://j",
        "https://w2",
    ]


def test_junit_errored_pipeline_is_a_failed_case() -> None:
    root = ET.fromstring(junit_xml(_report(errors_=("config: no such job",))))
    failure = root.find("./testsuite/testcase/failure")
    assert failure is not None
    assert "config: no such job" in (failure.text or "")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("10m", 600), ("1h", 3600), ("1h30m", 5400), ("45", 45), ("2m5s", 125)],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "5x", "m", "1.5h", "-1s", "10 m"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(errors.ConfigurationError, match="not a duration"):
        parse_duration(text)


def test_the_dependency_index_keeps_numbers_and_dependencies_of_any_id_shape() -> None:
    from circleback.models import Job
    from circleback.relay.discovery import JobIndex

    first, second = "8AA5022E-6AD4-4B6E-9B1F-2F3C4D5E6F70", "949f0edf-0000-4000-8000-000000000001"
    index = JobIndex()
    index.add(Job(id=first, name="build", type="build", status="success", job_number=7))
    index.add(Job(id=second, name="trigger", type="build", status="success", dependencies=(first,)))
    index.add(Job(id="not-a-uuid", name="odd", type="build", status="success", job_number=9))
    index.add(Job(id=str(uuid.uuid4()), name="hold", type="approval", status="on_hold"))
    assert index.get(first.lower()) == (7, ())
    assert index.get(second.upper()) == (None, (first.lower(),))
    assert index.get("not-a-uuid") == (9, ())
    assert index.get(str(uuid.uuid4())) is None


def test_mermaid_labels_carry_no_markup_or_syntax_of_api_text() -> None:
    from circleback.relay.trace import TraceNode, WorkflowLine, render_mermaid

    hostile = '<img src=x onerror=alert(1)>"]; click p1 "javascript:x" #quot; &lt; `md` |x|'
    child = TraceNode(
        f"gh/acme/{hostile}",
        "22222222-2222-2222-2222-222222222222",
        2,
        hostile,
        f"https://app.circleci.com/pipelines/gh/acme/{hostile}/2",
    )
    root = TraceNode(
        "gh/acme/a",
        "11111111-1111-1111-1111-111111111111",
        1,
        "created",
        "https://app.circleci.com/pipelines/gh/acme/a/1",
        workflows=(WorkflowLine(hostile, hostile, "u"),),
        children=(child,),
    )
    mermaid = render_mermaid(root)
    lines = mermaid.splitlines()
    assert len(lines) == 6
    for line in lines[1:]:
        # What API text may bring, none of it raw: HTML markup and entities, Mermaid's
        # label quote, entity codes, markdown strings and link text.
        for char in "<>\"&'`|":
            if line.startswith("    click"):
                assert line.count('"') == 2
                assert char not in line.split('"')[1]
            elif '["' in line:
                label = line[line.index('["') + 2 : line.rindex('"]')].replace("<br/>", "")
                assert char not in label, (char, line)
                assert "#quot;" not in label
                assert "#35;quot#59;" in label
    assert "#60;img" in mermaid
    assert lines[2] == '    click p111111111111 "https://app.circleci.com/pipelines/gh/acme/a/1"'
    assert "<br/>" in lines[1]
