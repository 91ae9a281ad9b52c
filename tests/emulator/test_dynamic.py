"""Setup workflows and continuation (dynamic config), and serial groups."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from circleback.emulator import Emulator, JobRun
from tests.emulator.helpers import BASE_URL, CONTINUATION, TOKEN, Api, ManualClock

SETUP = "gh/acme/setup"
SERIAL = "gh/acme/serial"


@pytest.fixture
def realistic(make_emulator: Callable[..., Emulator]) -> tuple[Emulator, Api]:
    emu = make_emulator(switches={"creation": "async", "parameter_errors": "errored"})
    client = httpx.Client(
        transport=emu.transport(), base_url=BASE_URL, headers={"Circle-Token": TOKEN}
    )
    return emu, Api(client)


def _state(api: Api, pipeline_id: str) -> str:
    return str(api.client.get(f"/pipeline/{pipeline_id}").json()["state"])


def _continue(api: Api, key: str | None, **parameters: Any) -> httpx.Response:
    return api.client.post(
        "/pipeline/continue",
        json={"continuation-key": key, "configuration": CONTINUATION, "parameters": parameters},
    )


# -- dynamic config -------------------------------------------------------------------------


def test_a_setup_config_runs_a_setup_workflow_then_continues(
    realistic: tuple[Emulator, Api], started: list[JobRun]
) -> None:
    _emu, api = realistic
    response = api.client.post(f"/project/{SETUP}/pipeline", json={})
    assert response.json()["state"] == "pending"
    pipeline_id = response.json()["id"]
    assert _state(api, pipeline_id) == "setup"
    (setup,) = api.all_pages(f"/pipeline/{pipeline_id}/workflow")
    assert setup["tag"] == "setup"
    (generate,) = [run for run in started if run.pipeline_id == pipeline_id]
    assert generate.job_name == "generate"
    assert generate.continuation_key  # the job's CIRCLE_CONTINUATION_KEY
    config = api.client.get(f"/pipeline/{pipeline_id}/config").json()
    assert config["compiled"] == ""  # nothing to show before continuation
    assert "setup: true" in config["setup-config"]
    assert config["compiled-setup-config"].startswith("version: 2\n")

    assert _continue(api, generate.continuation_key, **{"build-docs": True}).status_code == 200
    assert _state(api, pipeline_id) == "created"
    names = {w["name"]: w for w in api.all_pages(f"/pipeline/{pipeline_id}/workflow")}
    assert set(names) == {"setup", "test", "docs"}
    assert "tag" not in names["test"]
    after = api.client.get(f"/pipeline/{pipeline_id}/config").json()
    assert "UPSTREAM:" in after["compiled"]
    assert after["source"] == CONTINUATION
    # The key works once (continuation-orb#12).
    again = _continue(api, generate.continuation_key)
    assert again.json() == {"message": "Pipeline is not in setup state."}
    assert again.status_code == 400


def test_the_continuation_checks_the_parameters_again(
    realistic: tuple[Emulator, Api], started: list[JobRun]
) -> None:
    _emu, api = realistic
    pipeline_id = api.trigger(SETUP)
    key = next(run.continuation_key for run in started if run.pipeline_id == pipeline_id)
    assert _continue(api, key, undeclared=1).status_code == 200
    pipeline = api.client.get(f"/pipeline/{pipeline_id}").json()
    assert pipeline["state"] == "errored"
    assert "Unexpected argument(s): undeclared" in pipeline["errors"][0]["message"]
    assert [w["name"] for w in api.all_pages(f"/pipeline/{pipeline_id}/workflow")] == ["setup"]


def test_the_trigger_parameters_must_be_declared_by_the_continuation_too(
    realistic: tuple[Emulator, Api], started: list[JobRun], tmp_path: Any
) -> None:
    _emu, api = realistic
    pipeline_id = api.trigger(SETUP, parameters={"triggering-pipeline-id": "abc"})
    key = next(run.continuation_key for run in started if run.pipeline_id == pipeline_id)
    bare = "version: 2.1\njobs:\n  t: {docker: [{image: x}], steps: [{run: x}]}\n"
    bare += "workflows:\n  w:\n    jobs: [t]\n"
    answer = api.client.post(
        "/pipeline/continue", json={"continuation-key": key, "configuration": bare}
    )
    assert answer.status_code == 200
    pipeline = api.client.get(f"/pipeline/{pipeline_id}").json()
    assert pipeline["state"] == "errored"
    assert "triggering-pipeline-id" in pipeline["errors"][0]["message"]


def test_a_setup_workflow_may_never_continue_and_cannot_be_rerun(
    realistic: tuple[Emulator, Api],
) -> None:
    emu, api = realistic
    pipeline_id = api.trigger(SETUP)
    emu.finish_job_by_name(SETUP, "generate", "success")
    (setup,) = api.all_pages(f"/pipeline/{pipeline_id}/workflow")
    assert setup["status"] == "success"
    assert _state(api, pipeline_id) == "setup"  # and stays so: nothing else ever runs
    rerun = api.client.post(f"/workflow/{setup['id']}/rerun", json={})
    assert (rerun.status_code, rerun.json()) == (
        400,
        {"message": "Pipeline is not in setup state."},
    )


def test_an_unknown_continuation_key_is_refused(realistic: tuple[Emulator, Api]) -> None:
    _, api = realistic
    assert _continue(api, "not-a-key").status_code == 400


# -- serial groups --------------------------------------------------------------------------


def _jobs(api: Api, pipeline_id: str) -> dict[str, str]:
    return api.statuses(api.workflow(pipeline_id)["id"])


def test_a_second_job_of_a_serial_group_waits_queued(realistic: tuple[Emulator, Api]) -> None:
    emu, api = realistic
    first, second = api.trigger(SERIAL), api.trigger(SERIAL)
    emu.finish_job_by_name(SERIAL, "build", "success", pipeline_id=first)
    emu.finish_job_by_name(SERIAL, "build", "success", pipeline_id=second)
    assert _jobs(api, first)["deploy"] == "running"
    assert _jobs(api, second)["deploy"] == "queued"
    assert api.workflow(second)["status"] == "queued"
    emu.finish_job_by_name(SERIAL, "deploy", "success", pipeline_id=first)
    assert _jobs(api, second)["deploy"] == "running"
    assert api.workflow(second)["status"] == "running"


def test_a_newer_pipeline_preempts_an_older_waiting_one(realistic: tuple[Emulator, Api]) -> None:
    emu, api = realistic
    first, second, third = (api.trigger(SERIAL) for _ in range(3))
    for pipeline_id in (first, second, third):
        emu.finish_job_by_name(SERIAL, "build", "success", pipeline_id=pipeline_id)
    assert _jobs(api, second)["deploy"] == "not_run"  # skipped, removed from the queue
    assert _jobs(api, third)["deploy"] == "queued"
    # What requires a serial-group job runs whatever that job ended with.
    assert _jobs(api, second)["smoke"] == "running"
    emu.finish_job_by_name(SERIAL, "smoke", "success", pipeline_id=second)
    workflow = api.workflow(second)
    assert workflow["status"] == "success"  # preempted, yet the workflow succeeds
    assert api.client.get(f"/pipeline/{second}").json()["state"] == "created"


def test_an_older_pipeline_reaching_the_group_after_a_newer_one_does_not_run(
    realistic: tuple[Emulator, Api],
) -> None:
    emu, api = realistic
    older, newer = api.trigger(SERIAL), api.trigger(SERIAL)
    emu.finish_job_by_name(SERIAL, "build", "success", pipeline_id=newer)
    emu.finish_job_by_name(SERIAL, "build", "success", pipeline_id=older)
    assert _jobs(api, newer)["deploy"] == "running"
    assert _jobs(api, older)["deploy"] == "not_run"


def test_not_run_through_the_control_api_releases_the_group(
    realistic: tuple[Emulator, Api],
) -> None:
    emu, api = realistic
    control = httpx.Client(transport=emu.transport(), base_url="http://127.0.0.1/_emulator")
    first, second = api.trigger(SERIAL), api.trigger(SERIAL)
    for pipeline_id in (first, second):
        emu.finish_job_by_name(SERIAL, "build", "success", pipeline_id=pipeline_id)
    deploy = api.jobs(api.workflow(first)["id"])["deploy"]
    answer = control.post(f"/jobs/{deploy['id']}/finish", json={"status": "not_run"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "not_run"
    assert _jobs(api, first)["deploy"] == "not_run"
    assert _jobs(api, second)["deploy"] == "running"


def test_continuation_parameters_may_not_repeat_the_triggers(
    realistic: tuple[Emulator, Api], started: list[JobRun]
) -> None:
    _, api = realistic
    pipeline_id = api.trigger(SETUP, parameters={"triggering-pipeline-id": "abc"})
    key = next(run.continuation_key for run in started if run.pipeline_id == pipeline_id)
    answer = _continue(api, key, **{"triggering-pipeline-id": "forged"})
    assert answer.status_code == 400
    assert "overlap" in answer.json()["message"]
    assert _state(api, pipeline_id) == "setup"


def test_a_pipeline_can_only_be_continued_within_six_hours(
    make_emulator: Callable[..., Emulator], started: list[JobRun]
) -> None:
    clock = ManualClock()
    emu = make_emulator(clock=clock)
    api = Api(
        httpx.Client(transport=emu.transport(), base_url=BASE_URL, headers={"Circle-Token": TOKEN})
    )
    pipeline_id = api.trigger(SETUP)
    key = next(run.continuation_key for run in started if run.pipeline_id == pipeline_id)
    clock.advance(6 * 3600 + 1)
    assert _continue(api, key).status_code == 400


@pytest.mark.parametrize(
    "configuration",
    [
        # "billion laughs": nine levels of ten aliases each, 10**9 values once expanded
        "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
        + "".join(
            f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]\n"
            for i in range(8)
        )
        + "version: 2.1\nworkflows: {w: {jobs: [*i]}}\n",
        "version: 2.1\nx: " + "[" * 200 + "]" * 200 + "\n",
    ],
    ids=["alias-bomb", "deep"],
)
def test_a_hostile_continuation_config_errors_the_pipeline_without_stalling(
    realistic: tuple[Emulator, Api], started: list[JobRun], configuration: str
) -> None:
    _, api = realistic
    pipeline_id = api.trigger(SETUP)
    key = next(run.continuation_key for run in started if run.pipeline_id == pipeline_id)
    answer = api.client.post(
        "/pipeline/continue", json={"continuation-key": key, "configuration": configuration}
    )
    assert answer.status_code == 200
    pipeline = api.client.get(f"/pipeline/{pipeline_id}").json()
    assert pipeline["state"] == "errored"
    assert "Config" in pipeline["errors"][0]["message"]
