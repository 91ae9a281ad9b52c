"""The webhook mode end to end: real jobs, a real receiver on loopback, no callback job in B.

The example A (examples/project-a) triggers the webhook example B
(examples/webhook/project-b), which has no callback job, no orb and no token. The
receiver runs under uvicorn on a free port; its webhook is installed on B through the
emulator's API, as ``circleback webhook install`` does. Waits are events, not sleeps.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any
from xml.etree import ElementTree as ET

import httpx
import pytest

from circleback.emulator import JobRun, LocalCircleCI, StepRecord, run_locally
from circleback.serve.local import receive_locally, wait_settled
from tests.e2e.conftest import DOWNSTREAM, IDLE_TIMEOUT, UPSTREAM, example

pytestmark = pytest.mark.loopback

PROJECTS = {UPSTREAM: example("project-a"), DOWNSTREAM: example("webhook", "project-b")}


@pytest.fixture
def start() -> Iterator[Callable[..., LocalCircleCI]]:
    with contextlib.ExitStack() as stack:

        def run(**options: Any) -> LocalCircleCI:
            local = stack.enter_context(run_locally(PROJECTS, **options))
            local.emulator.webhooks.backoff = 0.2
            stack.enter_context(
                receive_locally(local, allow=["gh/acme/*"], downstream=[DOWNSTREAM])
            )
            return local

        yield run


def jobs(local: LocalCircleCI, slug: str) -> dict[str, str]:
    state = local.emulator.state_dump()
    return {j["name"]: j["status"] for j in state["jobs"] if j["project_slug"] == slug}


def test_b_without_a_callback_job_releases_a_through_its_webhook(
    start: Callable[..., LocalCircleCI],
) -> None:
    local = start()
    local.trigger(UPSTREAM)
    assert wait_settled(local, IDLE_TIMEOUT)

    assert jobs(local, DOWNSTREAM) == {"build-and-test": "success"}
    assert jobs(local, UPSTREAM) == {
        "build": "success",
        "trigger-project-b": "success",
        "wait-for-triggered-pipeline": "success",
        "check-project-b": "success",
        "deploy": "success",
    }
    verdicts = [d.body.get("verdict") for d in local.emulator.webhooks.deliveries]
    assert verdicts.count("released") == 1


def test_b_canceled_as_a_whole_releases_a_at_once_and_a_fails_with_the_reason(
    start: Callable[..., LocalCircleCI],
) -> None:
    server: dict[str, str] = {}

    def cancel_workflow(run: JobRun, step: StepRecord) -> None:
        if run.job_name == "build-and-test" and step.kind == "run":
            response = httpx.post(
                f"{server['api']}/workflow/{run.workflow_id}/cancel",
                headers={"Circle-Token": server["token"]},
            )
            assert response.status_code == 202, response.text

    local = start(before_step=cancel_workflow)
    server.update(api=local.api_url, token=local.token)
    local.trigger(UPSTREAM)
    assert wait_settled(local, IDLE_TIMEOUT)

    assert jobs(local, DOWNSTREAM) == {"build-and-test": "canceled"}
    a = jobs(local, UPSTREAM)
    assert a["wait-for-triggered-pipeline"] == "success"  # no sweep needed
    assert a["check-project-b"] == "failed"
    assert a["deploy"] == "not_run"
    check = local.executor.record(UPSTREAM, "check-project-b")
    reports = [p for p in check.test_results if p.name == "junit.xml"]
    failures = ET.parse(reports[0]).getroot().findall(".//failure")
    assert [f.get("message") for f in failures] == ["workflow test canceled"]
