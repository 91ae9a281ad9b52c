"""Job and workflow lifecycle: start, hold, approve, finish, failing, cancel, rerun."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from circleback.emulator import Emulator, EmulatorError, JobRun
from tests.emulator.helpers import Api


def _approve(api: Api, workflow: dict[str, Any], job: dict[str, Any]) -> httpx.Response:
    return api.client.post(f"/workflow/{workflow['id']}/approve/{job['approval_request_id']}")


def test_circleback_upstream_runs_to_a_hold_and_approval_releases_it(
    api: Api, emu: Emulator, started: list[JobRun]
) -> None:
    pipeline_id = api.trigger("gh/acme/a")
    workflow = api.workflow(pipeline_id)
    assert api.statuses(workflow["id"]) == {
        "build": "running",
        "trigger": "blocked",
        "wait-for-triggered-pipeline": "blocked",
        "check-status": "blocked",
    }
    jobs = api.jobs(workflow["id"])
    emu.finish_job(jobs["build"]["id"], "success")
    emu.finish_job(jobs["trigger"]["id"], "success")
    assert api.status(workflow["id"]) == "on_hold"
    hold = api.jobs(workflow["id"])["wait-for-triggered-pipeline"]
    assert (hold["type"], hold["status"], hold["approval_request_id"]) == (
        "approval",
        "on_hold",
        hold["id"],
    )
    assert hold["job_number"] == 3  # approval jobs are numbered too

    response = _approve(api, workflow, hold)
    assert (response.status_code, response.json()) == (202, {"message": "Accepted."})

    jobs = api.jobs(workflow["id"])
    assert jobs["wait-for-triggered-pipeline"]["status"] == "success"
    assert jobs["wait-for-triggered-pipeline"]["approved_by"]
    assert jobs["check-status"]["status"] == "running"
    assert [r.job_name for r in started] == ["build", "trigger", "check-status"]
    emu.finish_job(jobs["check-status"]["id"], "success")
    final = api.client.get(f"/workflow/{workflow['id']}").json()
    assert final["status"] == "success"
    assert final["stopped_at"] is not None


def test_job_run_describes_the_job_for_an_executor(api: Api, started: list[JobRun]) -> None:
    pipeline_id = api.trigger("gh/acme/b", branch="feature/x", parameters={"shards": 3})
    run = started[0]
    workflow = api.workflow(pipeline_id, "build-and-test")
    assert run.project_slug == "gh/acme/b"
    assert (run.pipeline_id, run.pipeline_number) == (pipeline_id, 1)
    assert (run.branch, run.tag) == ("feature/x", None)
    assert (run.workflow_id, run.workflow_name) == (workflow["id"], "build-and-test")
    assert (run.job_name, run.job_ref, run.job_number) == ("build", "build", 1)
    assert run.config["jobs"]["build"]["steps"] == [{"run": "make"}]
    assert run.build_url == (
        f"https://app.circleci.com/pipelines/gh/acme/b/1/workflows/{workflow['id']}/jobs/1"
    )
    with pytest.raises(TypeError):
        run.parameters["x"] = 1  # type: ignore[index]


def test_blocked_jobs_have_no_number_or_start_time(api: Api) -> None:
    jobs = api.jobs(api.workflow(api.trigger("gh/acme/fail"))["id"])
    assert jobs["unit"]["status"] == "blocked"
    assert jobs["unit"]["started_at"] is None
    assert "job_number" not in jobs["unit"]
    assert jobs["build"]["started_at"] is not None


def test_a_failure_while_others_run_makes_the_workflow_failing_then_failed(
    api: Api, emu: Emulator
) -> None:
    workflow = api.workflow(api.trigger("gh/acme/fail"))
    emu.finish_job(api.jobs(workflow["id"])["build"]["id"], "success")
    jobs = api.jobs(workflow["id"])
    emu.finish_job(jobs["unit"]["id"], "failed")
    assert api.status(workflow["id"]) == "failing"
    statuses = api.statuses(workflow["id"])
    assert statuses["on-failure"] == "running"  # requires unit: failed
    assert statuses["cleanup"] == "blocked"  # e2e still running
    emu.finish_job(jobs["e2e"]["id"], "success")
    emu.finish_job_by_name("gh/acme/fail", "on-failure", "success")
    emu.finish_job_by_name("gh/acme/fail", "cleanup", "success")
    assert api.status(workflow["id"]) == "failed"


def test_an_unmeetable_requirement_makes_the_job_not_run_and_terminal_jobs_still_run(
    api: Api, emu: Emulator
) -> None:
    workflow = api.workflow(api.trigger("gh/acme/fail"))
    emu.finish_job_by_name("gh/acme/fail", "build", "failed")
    assert api.statuses(workflow["id"]) == {
        "build": "failed",
        "unit": "not_run",
        "e2e": "not_run",
        "on-failure": "not_run",  # unit ended not_run, not failed
        "cleanup": "running",  # requires unit and e2e as terminal, and not_run is terminal
    }
    emu.finish_job_by_name("gh/acme/fail", "cleanup", "success")
    assert api.status(workflow["id"]) == "failed"


def test_a_canceled_job_counts_as_terminal(api: Api, emu: Emulator) -> None:
    pipeline_id = api.trigger("gh/acme/b")
    workflow = api.workflow(pipeline_id, "build-and-test")
    emu.finish_job_by_name("gh/acme/b", "build", "canceled")
    statuses = api.statuses(workflow["id"])
    assert statuses == {"build": "canceled", "test": "not_run", "approve-upstream": "running"}
    assert api.jobs(workflow["id"])["build"]["canceled_by"]
    emu.finish_job_by_name("gh/acme/b", "approve-upstream", "success")
    assert api.status(workflow["id"]) == "canceled"


def test_cancel_stops_every_unfinished_job(api: Api, emu: Emulator) -> None:
    workflow = api.workflow(api.trigger("gh/acme/a"))
    emu.finish_job_by_name("gh/acme/a", "build", "success")
    response = api.client.post(f"/workflow/{workflow['id']}/cancel")
    assert (response.status_code, response.json()) == (202, {"message": "Accepted."})
    assert api.statuses(workflow["id"]) == {
        "build": "success",
        "trigger": "canceled",
        "wait-for-triggered-pipeline": "canceled",
        "check-status": "canceled",
    }
    body = api.client.get(f"/workflow/{workflow['id']}").json()
    assert body["status"] == "canceled"
    assert body["canceled_by"]
    assert body["stopped_at"]
    # Canceling again is accepted and changes nothing.
    assert api.client.post(f"/workflow/{workflow['id']}/cancel").status_code == 202


def test_cancel_while_on_hold_cancels_the_hold(api: Api, emu: Emulator) -> None:
    workflow = api.workflow(api.trigger("gh/acme/a"))
    emu.finish_job_by_name("gh/acme/a", "build", "success")
    emu.finish_job_by_name("gh/acme/a", "trigger", "success")
    api.client.post(f"/workflow/{workflow['id']}/cancel")
    hold = api.jobs(workflow["id"])["wait-for-triggered-pipeline"]
    assert hold["status"] == "canceled"
    assert _approve(api, workflow, hold).status_code == 409


def test_approving_twice_is_409_and_a_build_job_is_400(api: Api, emu: Emulator) -> None:
    workflow = api.workflow(api.trigger("gh/acme/a"))
    emu.finish_job_by_name("gh/acme/a", "build", "success")
    emu.finish_job_by_name("gh/acme/a", "trigger", "success")
    jobs = api.jobs(workflow["id"])
    assert _approve(api, workflow, jobs["wait-for-triggered-pipeline"]).status_code == 202
    again = _approve(api, workflow, jobs["wait-for-triggered-pipeline"])
    assert again.status_code == 409
    assert again.json() == {
        "message": "Job wait-for-triggered-pipeline is not on hold (status: success)."
    }
    build = api.client.post(f"/workflow/{workflow['id']}/approve/{jobs['build']['id']}")
    assert build.status_code == 400
    assert build.json() == {"message": "Job build is not an approval job."}


def test_approving_a_job_of_another_workflow_or_unknown_ids_is_404(api: Api) -> None:
    a = api.workflow(api.trigger("gh/acme/a"))
    b = api.workflow(api.trigger("gh/acme/fail"))
    build_b = api.jobs(b["id"])["build"]
    assert api.client.post(f"/workflow/{a['id']}/approve/{build_b['id']}").status_code == 404
    assert api.client.post(f"/workflow/nope/approve/{build_b['id']}").json() == {
        "message": "Workflow not found"
    }


def test_approval_job_that_is_still_blocked_cannot_be_approved(api: Api) -> None:
    workflow = api.workflow(api.trigger("gh/acme/a"))
    hold = api.jobs(workflow["id"])["wait-for-triggered-pipeline"]
    response = _approve(api, workflow, hold)
    assert response.status_code == 409
    assert "status: blocked" in response.json()["message"]


def test_finish_job_refuses_unknown_jobs_bad_statuses_and_jobs_not_running(
    api: Api, emu: Emulator
) -> None:
    workflow = api.workflow(api.trigger("gh/acme/a"))
    jobs = api.jobs(workflow["id"])
    with pytest.raises(EmulatorError) as unknown:
        emu.finish_job("nope", "success")
    with pytest.raises(EmulatorError) as bad:
        emu.finish_job(jobs["build"]["id"], "done")
    with pytest.raises(EmulatorError) as blocked:
        emu.finish_job(jobs["trigger"]["id"], "success")
    assert [unknown.value.status, bad.value.status, blocked.value.status] == [404, 400, 409]


def test_job_numbers_count_per_project_across_pipelines(api: Api, emu: Emulator) -> None:
    first = api.workflow(api.trigger("gh/acme/fail"))
    second = api.workflow(api.trigger("gh/acme/fail"))
    other = api.workflow(api.trigger("gh/acme/a"))
    assert api.jobs(first["id"])["build"]["job_number"] == 1
    assert api.jobs(second["id"])["build"]["job_number"] == 2
    assert api.jobs(other["id"])["build"]["job_number"] == 1
    emu.finish_job(api.jobs(first["id"])["build"]["id"], "success")
    assert {j.get("job_number") for j in api.jobs(first["id"]).values()} == {1, 3, 4, None}


# -- rerun -----------------------------------------------------------------------------------


def _failed_fail_workflow(api: Api, emu: Emulator) -> dict[str, Any]:
    workflow = api.workflow(api.trigger("gh/acme/fail"))
    emu.finish_job_by_name("gh/acme/fail", "build", "success")
    emu.finish_job_by_name("gh/acme/fail", "unit", "failed")
    emu.finish_job_by_name("gh/acme/fail", "e2e", "success")
    emu.finish_job_by_name("gh/acme/fail", "on-failure", "success")
    emu.finish_job_by_name("gh/acme/fail", "cleanup", "success")
    assert api.status(workflow["id"]) == "failed"
    return workflow


def test_rerun_creates_a_new_workflow_with_the_same_name_in_the_same_pipeline(
    api: Api, emu: Emulator
) -> None:
    old = _failed_fail_workflow(api, emu)
    response = api.client.post(f"/workflow/{old['id']}/rerun", json={})
    assert response.status_code == 202
    new_id = response.json()["workflow_id"]
    assert new_id != old["id"]
    listed = api.all_pages(f"/pipeline/{old['pipeline_id']}/workflow")
    assert [w["id"] for w in listed] == [new_id, old["id"]]  # newest first
    assert {w["name"] for w in listed} == {"pipeline"}
    assert api.statuses(new_id) == {
        "build": "running",
        "unit": "blocked",
        "e2e": "blocked",
        "on-failure": "blocked",
        "cleanup": "blocked",
    }
    assert api.status(old["id"]) == "failed"


def test_rerun_from_failed_keeps_successful_jobs_and_reruns_failed_ones_and_dependents(
    api: Api, emu: Emulator, started: list[JobRun]
) -> None:
    old = _failed_fail_workflow(api, emu)
    old_jobs = api.jobs(old["id"])
    started.clear()
    response = api.client.post(f"/workflow/{old['id']}/rerun", json={"from_failed": True})
    new_id = response.json()["workflow_id"]
    new_jobs = api.jobs(new_id)
    assert api.statuses(new_id) == {
        "build": "success",
        "unit": "running",
        "e2e": "success",
        "on-failure": "blocked",
        "cleanup": "blocked",
    }
    assert new_jobs["build"]["id"] == old_jobs["build"]["id"]  # the record is reused
    assert new_jobs["unit"]["id"] != old_jobs["unit"]["id"]
    assert [r.job_name for r in started] == ["unit"]
    assert started[0].workflow_id == new_id
    emu.finish_job(new_jobs["unit"]["id"], "success")
    assert api.statuses(new_id)["on-failure"] == "not_run"
    emu.finish_job_by_name("gh/acme/fail", "cleanup", "success")
    assert api.status(new_id) == "success"


def test_rerun_selected_jobs_reruns_them_and_their_dependents(api: Api, emu: Emulator) -> None:
    old = _failed_fail_workflow(api, emu)
    e2e = api.jobs(old["id"])["e2e"]["id"]
    new_id = api.client.post(f"/workflow/{old['id']}/rerun", json={"jobs": [e2e]}).json()[
        "workflow_id"
    ]
    statuses = api.statuses(new_id)
    assert statuses["e2e"] == "running"
    assert statuses["cleanup"] == "blocked"
    assert statuses["unit"] == "failed"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"from_failed": True, "jobs": ["x"]}, "from_failed and jobs are mutually exclusive."),
        ({"enable_ssh": True}, "enable_ssh and sparse_tree require jobs."),
        ({"from_failed": "yes"}, "Unexpected request body provided."),
        ({"jobs": ["not-a-job"]}, "Job(s) not in this workflow: not-a-job"),
    ],
)
def test_rerun_rejects_bad_bodies(
    api: Api, emu: Emulator, body: dict[str, Any], message: str
) -> None:
    old = _failed_fail_workflow(api, emu)
    response = api.client.post(f"/workflow/{old['id']}/rerun", json=body)
    assert (response.status_code, response.json()) == (400, {"message": message})


def test_rerun_refuses_a_running_workflow_and_from_failed_without_failures(
    api: Api, emu: Emulator
) -> None:
    workflow = api.workflow(api.trigger("gh/acme/fail"))
    running = api.client.post(f"/workflow/{workflow['id']}/rerun")
    assert running.status_code == 400
    api.client.post(f"/workflow/{workflow['id']}/cancel")
    response = api.client.post(f"/workflow/{workflow['id']}/rerun", json={"from_failed": True})
    assert response.json() == {"message": "Workflow has no failed jobs to rerun."}
    assert api.client.post(f"/workflow/{workflow['id']}/rerun").status_code == 202


def test_on_job_start_runs_outside_the_lock_and_may_call_back_into_the_emulator(
    make_emulator: Any,
) -> None:
    """An executor that finishes each job as soon as it starts drives a whole workflow."""
    emu: Emulator

    def executor(run: JobRun) -> None:
        emu.finish_job(run.job_id, "success")

    emu = make_emulator(on_job_start=executor)
    client = httpx.Client(
        transport=emu.transport(),
        base_url="http://127.0.0.1/api/v2",
        headers={"Circle-Token": "s3cret-token-value"},
    )
    api = Api(client)
    workflow = api.workflow(api.trigger("gh/acme/b"), "build-and-test")
    assert api.status(workflow["id"]) == "success"


def test_a_failing_on_job_start_callback_does_not_fail_the_request(
    make_emulator: Any, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(run: JobRun) -> None:
        raise RuntimeError("executor exploded")

    emu = make_emulator(on_job_start=broken)
    client = httpx.Client(
        transport=emu.transport(),
        base_url="http://127.0.0.1/api/v2",
        headers={"Circle-Token": "s3cret-token-value"},
    )
    assert client.post("/project/gh/acme/fail/pipeline").status_code == 201
    assert "on_job_start failed for job build" in caplog.text
