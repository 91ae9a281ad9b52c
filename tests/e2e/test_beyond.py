"""Beyond the tutorial, end to end: fan-in, chains and cycles, the sweep, trace, and
canceling downstream on timeout.

As in ``test_circleback.py``, every job really runs in the local executor with the orb's
scripts calling the ``circleback`` CLI over loopback; the configs are the ones under
``examples/`` (and, for what no example should show, ``tests/e2e/configs/``). Outcomes are
read from the emulator's state, its request log and the executor's records.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from circleback.emulator import JobRun, LocalCircleCI, StepRecord
from tests.e2e.conftest import DOWNSTREAM, IDLE_TIMEOUT, UPSTREAM, example

pytestmark = pytest.mark.loopback

PROJECT_C = "gh/acme/project-c"
PROJECT_D = "gh/acme/project-d"
CONFIGS = Path(__file__).parent / "configs"
CIRCLEBACK = Path(sys.executable).parent / "circleback"


def jobs(local: LocalCircleCI, slug: str, pipeline_id: str | None = None) -> dict[str, str]:
    """Job name → status in the project (in one pipeline), from the emulator's state."""
    return {
        j["name"]: j["status"]
        for j in local.emulator.state_dump()["jobs"]
        if j["project_slug"] == slug and pipeline_id in (None, j["pipeline_id"])
    }


def workflows(local: LocalCircleCI, slug: str) -> dict[str, str]:
    """Workflow name → status in the project (every pipeline of it)."""
    return {
        w["name"]: w["status"]
        for w in local.emulator.state_dump()["workflows"]
        if w["project_slug"] == slug
    }


def approvals_accepted(local: LocalCircleCI) -> list[str]:
    """The approve requests the emulator accepted (202), in order."""
    return [
        r["path"]
        for r in local.emulator.request_log
        if r["method"] == "POST" and "/approve/" in r["path"] and r["status"] == 202
    ]


def wait_until(condition: Callable[[], bool], timeout: float = IDLE_TIMEOUT) -> bool:
    """Look again every few milliseconds until ``condition`` holds (False on timeout)."""
    pause = threading.Event()
    for _ in range(int(timeout / 0.02)):
        if condition():
            return True
        pause.wait(0.02)
    return condition()


# -- fan-in: one hold shared by two downstream pipelines -----------------------------------


@pytest.fixture
def fan_in() -> dict[str, Path]:
    return {
        UPSTREAM: example("fan-in", "project-a"),
        PROJECT_C: example("fan-in", "project-c"),
        PROJECT_D: example("fan-in", "project-d"),
    }


def test_fan_in_the_last_downstream_releases_the_shared_hold_once(
    start_local: Callable[..., LocalCircleCI], fan_in: dict[str, Path]
) -> None:
    """D's tests start only once C's callback is over, so C finishes first: it must leave
    the hold to D, and D, the last, releases it."""
    holder: dict[str, LocalCircleCI] = {}

    def c_callback_done() -> bool:
        status = jobs(holder["local"], PROJECT_C).get("approve-upstream")
        return status not in (None, "blocked", "running")

    def hold_d_until_c_called_back(run: JobRun, step: StepRecord) -> None:
        if run.project_slug == PROJECT_D and run.job_name == "test" and step.kind == "run":
            assert wait_until(c_callback_done), "C's approve job never finished"

    local = start_local(fan_in, before_step=hold_d_until_c_called_back)
    holder["local"] = local
    local.trigger(UPSTREAM)
    assert local.executor.wait_idle(IDLE_TIMEOUT)

    c_approve = local.executor.record(PROJECT_C, "approve-upstream")
    assert c_approve.status == "success"
    assert "--fan-in" in c_approve.output
    assert "another downstream pipeline will release the shared hold" in c_approve.output
    assert "gh/acme/project-d #1 (test)" in c_approve.output  # what C saw still running
    d_approve = local.executor.record(PROJECT_D, "approve-upstream")
    assert d_approve.status == "success"
    assert "approved upstream hold" in d_approve.output
    assert len(approvals_accepted(local)) == 1  # released once, by D

    assert jobs(local, UPSTREAM) == {
        "build": "success",
        "trigger-downstream": "success",
        "wait-for-triggered-pipelines": "success",
        "check-downstream": "success",
        "deploy": "success",
    }
    check = local.executor.record(UPSTREAM, "check-downstream")
    assert "gh/acme/project-c pipeline #1" in check.output
    assert "gh/acme/project-d pipeline #1" in check.output
    assert "all downstream pipelines succeeded" in check.output


def test_fan_in_with_one_downstream_failing_fails_as_check_naming_it(
    start_local: Callable[..., LocalCircleCI], fan_in: dict[str, Path]
) -> None:
    local = start_local(fan_in, fail_jobs={(PROJECT_D, "test")})
    local.trigger(UPSTREAM)
    assert local.executor.wait_idle(IDLE_TIMEOUT)

    assert workflows(local, PROJECT_C) == {"test": "success"}
    assert workflows(local, PROJECT_D) == {"test": "failed"}
    a = jobs(local, UPSTREAM)
    assert a["wait-for-triggered-pipelines"] == "success"  # released all the same
    assert a["check-downstream"] == "failed"
    assert a["deploy"] == "not_run"
    step = local.executor.record(UPSTREAM, "check-downstream").step(
        "Wait for the downstream pipelines"
    )
    assert step.exit_code == 1
    assert "Downstream pipeline failed: gh/acme/project-d #1." in step.output
    assert "gh/acme/project-c #1" not in step.output.split("Downstream pipeline failed")[1]


# -- a chain A → B → C, and a C that would close a cycle -----------------------------------


def chain(c_config: str) -> dict[str, Path]:
    return {
        UPSTREAM: example("chain", "project-a"),
        DOWNSTREAM: example("chain", "project-b"),
        PROJECT_C: example("chain", c_config),
    }


def test_a_chain_a_b_c_succeeds_end_to_end(start_local: Callable[..., LocalCircleCI]) -> None:
    local = start_local(chain("project-c"))
    local.trigger(UPSTREAM)
    assert local.executor.wait_idle(IDLE_TIMEOUT)

    assert jobs(local, PROJECT_C) == {"test": "success", "approve-upstream": "success"}
    assert jobs(local, DOWNSTREAM) == {
        "build-and-test": "success",
        "trigger-project-c": "success",
        "wait-for-triggered-pipeline": "success",
        "check-project-c": "success",
        "approve-upstream": "success",
    }
    assert jobs(local, UPSTREAM)["check-project-b"] == "success"
    assert jobs(local, UPSTREAM)["deploy"] == "success"
    # B triggered C with a depth guard of 3: A → B → C is exactly that deep.
    assert "--max-depth 3" in local.executor.record(DOWNSTREAM, "trigger-project-c").output
    # C carries B's id, B carries A's: the chain the guard follows upward (read from
    # their compiled configs; the emulator's own record shows what was sent).
    pipelines = {p["project_slug"]: p for p in local.emulator.state_dump()["pipelines"]}
    c_params = pipelines[PROJECT_C]["sent_parameters"]
    b_params = pipelines[DOWNSTREAM]["sent_parameters"]
    assert c_params["triggering-pipeline-id"] == pipelines[DOWNSTREAM]["id"]
    assert b_params["triggering-pipeline-id"] == pipelines[UPSTREAM]["id"]


def test_a_cycle_is_refused_and_the_failure_travels_up_the_chain(
    start_local: Callable[..., LocalCircleCI],
) -> None:
    local = start_local(chain("project-c-cycle"))
    local.trigger(UPSTREAM)
    assert local.executor.wait_idle(IDLE_TIMEOUT)

    # C refuses to trigger A (nothing is sent: A has only its own pipeline) ...
    trigger = local.executor.record(PROJECT_C, "trigger-project-a")
    assert trigger.status == "failed"
    step = trigger.step("Trigger a pipeline of gh/acme/project-a")
    assert step.exit_code == 2
    assert "--max-depth 4" in step.output  # the orb's default
    (refusal,) = [json.loads(line) for line in step.output.splitlines() if "cycle" in line]
    assert refusal["level"] == "error"
    assert refusal["event"].endswith(
        "this would be a cycle: gh/acme/project-a #1 → gh/acme/project-b #1 → "
        "gh/acme/project-c #1 → gh/acme/project-a."
    )
    assert len(local.emulator.state_dump()["pipelines"]) == 3
    # ... its approve job still releases B, so B checks C and finds it failed ...
    assert jobs(local, PROJECT_C) == {
        "test": "success",
        "trigger-project-a": "failed",
        "wait-for-triggered-pipeline": "not_run",
        "check-project-a": "not_run",
        "approve-upstream": "success",
    }
    assert workflows(local, PROJECT_C) == {"test": "failed"}
    b = jobs(local, DOWNSTREAM)
    assert b["wait-for-triggered-pipeline"] == "success"
    assert b["check-project-c"] == "failed"
    assert b["approve-upstream"] == "success"  # it requires the check as terminal
    b_check = local.executor.record(DOWNSTREAM, "check-project-c")
    assert "trigger-project-a" in b_check.output  # B names C's failed job
    # ... and B, releasing A, fails A's check in turn: nothing hangs, nothing deploys.
    a = jobs(local, UPSTREAM)
    assert a["wait-for-triggered-pipeline"] == "success"
    assert a["check-project-b"] == "failed"
    assert a["deploy"] == "not_run"
    a_check = local.executor.record(UPSTREAM, "check-project-b")
    assert "Downstream pipeline failed: gh/acme/project-b #1." in a_check.output
    assert "check-project-c" in a_check.output


# -- the sweep, and trace -------------------------------------------------------------------


def test_the_sweep_releases_a_hold_b_never_could_and_trace_shows_b_under_a(
    start_local: Callable[..., LocalCircleCI], a_and_b: dict[str, Path]
) -> None:
    """B's whole workflow is canceled while it runs: not even its terminal approve job
    runs, and A stays on hold. A's sweep workflow releases the hold; A's check fails."""
    server: dict[str, str] = {}

    def cancel_bs_workflow(run: JobRun, step: StepRecord) -> None:
        if run.job_name == "build-and-test" and step.kind == "run":
            response = httpx.post(
                f"{server['api']}/workflow/{run.workflow_id}/cancel",
                headers={"Circle-Token": server["token"]},
            )
            assert response.status_code == 202, response.text

    local = start_local(a_and_b, before_step=cancel_bs_workflow)
    server.update(api=local.api_url, token=local.token)
    first = local.trigger(UPSTREAM)
    assert local.executor.wait_idle(IDLE_TIMEOUT)
    assert workflows(local, DOWNSTREAM) == {"test": "canceled"}
    assert jobs(local, UPSTREAM, first)["wait-for-triggered-pipeline"] == "on_hold"

    sweep = local.trigger(UPSTREAM, parameters={"run-sweep": True, "sweep-grace": "0s"})
    assert local.executor.wait_idle(IDLE_TIMEOUT)

    assert jobs(local, UPSTREAM, sweep) == {"sweep-holds": "success"}  # only the sweep ran
    swept = local.executor.record(UPSTREAM, "sweep-holds")
    assert "+ circleback sweep gh/acme/project-a --grace 0s" in swept.output
    assert "released: gh/acme/project-a #1 build-and-deploy" in swept.output
    a = jobs(local, UPSTREAM, first)
    assert a["wait-for-triggered-pipeline"] == "success"
    assert a["check-project-b"] == "failed"
    assert a["deploy"] == "not_run"
    check = local.executor.record(UPSTREAM, "check-project-b", pipeline_id=first)
    waited = check.step("Wait for the downstream pipelines")
    assert waited.exit_code == 1
    assert "test: canceled" in waited.output

    traced = subprocess.run(
        [str(CIRCLEBACK), "trace", first],
        env={
            "PATH": os.environ.get("PATH", ""),
            "CIRCLEBACK_HOST": local.server.url,
            "CIRCLEBACK_TOKEN": local.token,
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert traced.returncode == 0, traced.stderr
    lines = traced.stdout.splitlines()
    assert lines[0].startswith("gh/acme/project-a #1 (created)")
    assert "  · build-and-deploy: failed" in lines
    assert any(line.startswith("└── gh/acme/project-b #1 (created)") for line in lines)
    assert "      · test: canceled" in lines


# -- cancel downstream when A gives up waiting ----------------------------------------------


def test_as_check_timing_out_cancels_a_b_that_never_finishes(
    start_local: Callable[..., LocalCircleCI],
) -> None:
    local = start_local(
        {
            UPSTREAM: CONFIGS / "upstream-short-timeout.yml",
            DOWNSTREAM: CONFIGS / "downstream-never-finishes.yml",
        }
    )
    local.trigger(UPSTREAM)
    assert local.executor.wait_idle(IDLE_TIMEOUT)

    step = local.executor.record(UPSTREAM, "check-project-b").step(
        "Wait for the downstream pipelines"
    )
    assert step.exit_code == 4
    assert "--cancel-downstream-on-timeout" in step.output
    assert "Canceled 1 downstream workflow(s): gh/acme/project-b #1 test." in step.output
    a = jobs(local, UPSTREAM)
    assert a["wait-for-triggered-pipeline"] == "success"  # B released A, then never finished
    assert a["check-project-b"] == "failed"
    assert workflows(local, DOWNSTREAM) == {"test": "canceled"}
    b = jobs(local, DOWNSTREAM)
    assert b["build-and-test"] == "success"
    # B's approve job may still be exiting when A looks, and is then canceled with the rest.
    assert b["approve-upstream"] in {"success", "canceled"}
    assert b["wait-for-manual-qa"] == "canceled"
    assert b["release"] == "canceled"
