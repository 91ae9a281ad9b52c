"""The example projects, end to end: A triggers B, holds, B releases A, A checks B.

Each test triggers a real pipeline in an emulator served on loopback; the local executor
runs every job with the circleback orb, whose scripts call the ``circleback`` CLI, which
calls the emulator. Outcomes are read from the emulator's state, the executor's records
and the JUnit report A's check job stored.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import httpx
import pytest

from circleback.demo import run_demo
from circleback.emulator import JobRecord, JobRun, LocalCircleCI, StepRecord
from tests.e2e.conftest import DOWNSTREAM, IDLE_TIMEOUT, UPSTREAM, example

pytestmark = pytest.mark.loopback


def jobs(local: LocalCircleCI, slug: str) -> dict[str, dict[str, Any]]:
    """The newest job of each name in the project, from the emulator's state."""
    return {j["name"]: j for j in local.emulator.state_dump()["jobs"] if j["project_slug"] == slug}


def workflow_status(local: LocalCircleCI, slug: str) -> str:
    statuses = [
        w["status"] for w in local.emulator.state_dump()["workflows"] if w["project_slug"] == slug
    ]
    assert len(statuses) == 1, statuses
    return str(statuses[0])


def junit(record: JobRecord) -> ET.Element:
    """The JUnit report A's check job stored with store_test_results."""
    reports = [p for p in record.test_results if p.name == "junit.xml"]
    assert reports, f"no junit.xml stored by {record.job_name}: {record.test_results}"
    return ET.parse(reports[0]).getroot()


def test_b_succeeds_so_a_checks_it_and_deploys(
    start_local: Callable[..., LocalCircleCI], a_and_b: dict[str, Path]
) -> None:
    local = start_local(a_and_b)
    local.trigger(UPSTREAM)
    assert local.executor.wait_idle(IDLE_TIMEOUT)

    a = jobs(local, UPSTREAM)
    assert {name: j["status"] for name, j in a.items()} == {
        "build": "success",
        "trigger-project-b": "success",
        "wait-for-triggered-pipeline": "success",
        "check-project-b": "success",
        "deploy": "success",
    }
    assert a["wait-for-triggered-pipeline"]["approved_by"]
    assert workflow_status(local, DOWNSTREAM) == "success"
    assert workflow_status(local, UPSTREAM) == "success"

    check = local.executor.record(UPSTREAM, "check-project-b")
    report = junit(check)
    assert report.findall(".//testcase")
    assert not report.findall(".//failure")
    assert "deploying project A" in local.executor.record(UPSTREAM, "deploy").output
    # The trigger job's state file is an artifact, as the API lists it.
    trigger_number = a["trigger-project-b"]["job_number"]
    with local.client() as client:
        listed = client.get(f"/project/{UPSTREAM}/{trigger_number}/artifacts").json()
    assert [item["path"] for item in listed["items"]] == ["circleback/downstream.json"]
    # B received A's pipeline id and the multi-line parameters block, as values.
    b_test = local.executor.record(DOWNSTREAM, "build-and-test")
    assert "testing project B for 'gh/acme/project-a'" in b_test.output


def test_b_fails_so_a_fails_with_bs_failure_in_its_junit(
    start_local: Callable[..., LocalCircleCI], a_and_b: dict[str, Path]
) -> None:
    local = start_local(a_and_b, fail_jobs={(DOWNSTREAM, "build-and-test")})
    local.trigger(UPSTREAM)
    assert local.executor.wait_idle(IDLE_TIMEOUT)

    b = jobs(local, DOWNSTREAM)
    assert b["build-and-test"]["status"] == "failed"
    assert b["approve-upstream"]["status"] == "success"  # it requires build-and-test: terminal
    a = jobs(local, UPSTREAM)
    assert a["wait-for-triggered-pipeline"]["status"] == "success"
    assert a["check-project-b"]["status"] == "failed"
    assert a["deploy"]["status"] == "not_run"

    check = local.executor.record(UPSTREAM, "check-project-b")
    assert check.step("Wait for the downstream pipelines").exit_code == 1
    assert check.step("Uploading test results").status == "success"  # when: always
    failures = junit(check).findall(".//failure")
    assert len(failures) == 1
    assert "failed" in failures[0].get("message", "")
    assert "build-and-test: failed" in (failures[0].text or "")


def test_a_canceled_b_job_still_releases_a_and_as_check_fails(
    start_local: Callable[..., LocalCircleCI], a_and_b: dict[str, Path]
) -> None:
    """Canceling B's job (CircleCI's "cancel job") while it runs: the terminal job runs."""
    server: dict[str, str] = {}

    def cancel_build_and_test(run: JobRun, step: StepRecord) -> None:
        if run.job_name == "build-and-test" and step.kind == "run":
            response = httpx.post(
                f"{server['url']}/_emulator/jobs/{run.job_id}/finish",
                json={"status": "canceled"},
                headers={"Circle-Token": server["token"]},
            )
            assert response.status_code == 200, response.text

    local = start_local(a_and_b, before_step=cancel_build_and_test)
    server["url"], server["token"] = local.server.url, local.token
    local.trigger(UPSTREAM)
    assert local.executor.wait_idle(IDLE_TIMEOUT)

    b_test = local.executor.record(DOWNSTREAM, "build-and-test")
    assert b_test.status == "canceled"
    assert b_test.error is None
    assert jobs(local, DOWNSTREAM)["approve-upstream"]["status"] == "success"
    assert workflow_status(local, DOWNSTREAM) == "canceled"
    a = jobs(local, UPSTREAM)
    assert a["wait-for-triggered-pipeline"]["status"] == "success"
    assert a["check-project-b"]["status"] == "failed"
    failures = junit(local.executor.record(UPSTREAM, "check-project-b")).findall(".//failure")
    assert [f.get("message") for f in failures] == ["workflow test canceled"]


def test_canceling_bs_workflow_stops_its_running_job_cleanly(
    start_local: Callable[..., LocalCircleCI], a_and_b: dict[str, Path]
) -> None:
    """A workflow cancel cancels every job, the terminal one too (as CircleCI's cancel does):
    the executor stops B's job without finishing it, and A is left on hold."""
    server: dict[str, str] = {}

    def cancel_workflow(run: JobRun, step: StepRecord) -> None:
        if run.job_name == "build-and-test" and step.kind == "run":
            response = httpx.post(
                f"{server['api']}/workflow/{run.workflow_id}/cancel",
                headers={"Circle-Token": server["token"]},
            )
            assert response.status_code == 202, response.text

    local = start_local(a_and_b, before_step=cancel_workflow)
    server.update(api=local.api_url, token=local.token)
    local.trigger(UPSTREAM)
    assert local.executor.wait_idle(IDLE_TIMEOUT)

    b_test = local.executor.record(DOWNSTREAM, "build-and-test")
    assert b_test.status == "canceled"
    assert b_test.error is None
    assert {j["status"] for j in jobs(local, DOWNSTREAM).values()} == {"canceled"}
    assert jobs(local, UPSTREAM)["wait-for-triggered-pipeline"]["status"] == "on_hold"


def test_b_alone_approves_nothing_and_installs_nothing(
    start_local: Callable[..., LocalCircleCI], a_and_b: dict[str, Path]
) -> None:
    local = start_local(a_and_b)
    local.emulator.clear_request_log()
    local.trigger(DOWNSTREAM)  # triggering-pipeline-id keeps its default, ""
    assert local.executor.wait_idle(IDLE_TIMEOUT)

    approve = local.executor.record(DOWNSTREAM, "approve-upstream")
    assert approve.status == "success"
    # The cache steps are compiled out; the two run steps stop at their first check.
    assert [s.name for s in approve.steps] == [
        "Install circleback",
        "Approve the upstream hold job",
    ]
    assert "no upstream pipeline id; skipping the install" in approve.steps[0].output
    assert "nothing to approve" in approve.steps[1].output
    assert "+ circleback" not in approve.output
    assert "already on PATH" not in approve.output  # not even `circleback --version` ran
    # No circleback process called the API: the one request is the trigger itself.
    assert [(r["method"], r["status"]) for r in local.emulator.request_log] == [("POST", 201)]


def test_fan_out_releases_both_holds_and_checks_both(
    start_local: Callable[..., LocalCircleCI],
) -> None:
    local = start_local(
        {
            UPSTREAM: example("fan-out", "project-a"),
            "gh/acme/project-c": example("fan-out", "project-c"),
            "gh/acme/project-d": example("fan-out", "project-d"),
        }
    )
    local.trigger(UPSTREAM)
    assert local.executor.wait_idle(IDLE_TIMEOUT)

    a = jobs(local, UPSTREAM)
    for hold in ("wait-for-project-c", "wait-for-project-d"):
        assert a[hold]["status"] == "success"
        assert a[hold]["approved_by"]
    assert a["check-downstream"]["status"] == "success"
    assert a["deploy"]["status"] == "success"
    report = junit(local.executor.record(UPSTREAM, "check-downstream"))
    suites = sorted(s.get("name", "") for s in report.findall("testsuite"))
    assert suites == ["gh/acme/project-c #1", "gh/acme/project-d #1"]
    assert not report.findall(".//failure")


def test_the_demo_shows_a_released_by_b_and_deploying() -> None:
    out = io.StringIO()
    assert run_demo(out=out) == 0
    text = out.getvalue()
    assert "B  pipeline #1 triggered by A" in text
    assert "wait-for-triggered-pipeline: ON HOLD" in text
    assert "wait-for-triggered-pipeline: released by B after" in text
    assert "A  check-project-b: success" in text
    assert "A  deploy: success" in text
    assert "Result: B succeeded, so A's check passed and A deployed." in text
    assert "job-seconds" in text
    # Step output stays out of the timeline when nothing failed.
    assert "+ circleback" not in text
    assert text.index("triggered by A") < text.index("released by B") < text.index("deploy:")


def test_the_demo_with_a_failing_downstream_shows_as_check_failing() -> None:
    out = io.StringIO()
    assert run_demo(fail_downstream=True, out=out) == 0
    text = out.getvalue()
    assert "B  build-and-test: FAILED" in text
    assert "wait-for-triggered-pipeline: released by B after" in text
    assert "A  check-project-b: FAILED" in text
    assert "- build-and-test failed" in text  # the status summary, indented under the step
    assert "A  deploy" not in text
    assert "Result: B failed (build-and-test)" in text
    assert '{"event"' not in text  # JSON log lines are shown as the console shows them
