"""The emulator behaves as CircleCI is observed to, and offers each variant the evidence shows.

Each test names the behaviour of issue 10 it covers; the sources are in docs/emulator.md.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from circleback.emulator import Emulator, JobRun, clock_following
from circleback.emulator.compiled import packed_circleback_orb
from circleback.emulator.steps import plan_job
from tests.emulator.helpers import BASE_URL, TOKEN, Api, ManualClock

REALISTIC = {
    "creation": "async",
    "trigger_parameters": "absent",
    "parameter_errors": "errored",
    "timestamps": "observed",
    "empty_keys": "absent",
    "pipeline_warnings": "empty",
}


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def world(
    make_emulator: Callable[..., Emulator], clock: ManualClock
) -> Callable[..., tuple[Emulator, Api]]:
    """An emulator on a clock that only moves when told, and an API client for it."""

    def make(**switches: Any) -> tuple[Emulator, Api]:
        emu = make_emulator(clock=clock, switches={**REALISTIC, **switches})
        client = httpx.Client(
            transport=emu.transport(), base_url=BASE_URL, headers={"Circle-Token": TOKEN}
        )
        return emu, Api(client)

    return make


@pytest.fixture(autouse=True)
def _close(world: Any) -> Iterator[None]:
    return


def _pipeline(api: Api, pipeline_id: str) -> dict[str, Any]:
    response = api.client.get(f"/pipeline/{pipeline_id}")
    assert response.status_code == 200, response.text
    return dict(response.json())


def _workflows(api: Api, pipeline_id: str) -> list[dict[str, Any]]:
    return api.all_pages(f"/pipeline/{pipeline_id}/workflow")


# -- 1. creation is asynchronous ------------------------------------------------------------


def test_a_trigger_answers_pending_and_the_pipeline_is_created_after_the_delays(
    world: Any, clock: ManualClock
) -> None:
    _emu, api = world(creation_delay=3, workflow_delay=5)
    response = api.client.post("/project/gh/acme/b/pipeline", json={})
    assert response.status_code == 201
    assert response.json()["state"] == "pending"
    pipeline_id = response.json()["id"]
    assert _pipeline(api, pipeline_id)["state"] == "pending"
    assert _workflows(api, pipeline_id) == []
    clock.advance(3)
    assert _pipeline(api, pipeline_id)["state"] == "created"
    assert _workflows(api, pipeline_id) == []  # created, but no workflow yet
    clock.advance(4.9)
    assert _workflows(api, pipeline_id) == []
    clock.advance(0.1)
    assert [w["name"] for w in _workflows(api, pipeline_id)] == ["build-and-test"]


def test_with_no_delay_the_trigger_still_says_pending_but_the_next_read_sees_workflows(
    world: Any,
) -> None:
    _, api = world()
    response = api.client.post("/project/gh/acme/b/pipeline", json={})
    assert response.json()["state"] == "pending"
    assert _pipeline(api, response.json()["id"])["state"] == "created"
    assert len(_workflows(api, response.json()["id"])) == 1


def test_the_sync_variant_answers_created_with_workflows_in_place(world: Any) -> None:
    emu, api = world(creation="sync", creation_delay=30)
    response = api.client.post("/project/gh/acme/b/pipeline", json={})
    assert response.json()["state"] == "created"
    assert emu.state_dump()["workflows"]


def test_delays_are_timing_knobs_on_the_control_api(world: Any, clock: ManualClock) -> None:
    emu, api = world()
    control = httpx.Client(
        transport=emu.transport(),
        base_url="http://127.0.0.1/_emulator",
        headers={"Content-Type": "application/json"},
    )
    answer = control.post("/switches", json={"creation_delay": 2, "workflow_delay": 1})
    assert answer.status_code == 200
    assert (answer.json()["creation_delay"], answer.json()["workflow_delay"]) == (2, 1)
    pipeline_id = api.trigger("gh/acme/b")
    clock.advance(2)
    assert control.post("/tick").status_code == 200
    assert emu.state_dump()["pipelines"][0]["state"] == "created"
    assert emu.state_dump()["workflows"] == []
    clock.advance(1)
    emu.tick()
    assert [w["pipeline_id"] for w in emu.state_dump()["workflows"]] == [pipeline_id]
    bad = control.post("/switches", json={"creation_delay": -1})
    assert bad.status_code == 400
    assert "creation_delay" in bad.json()["message"]
    assert control.post("/switches", json={"nope": 1}).status_code == 400


def test_an_errored_pipeline_stays_pending_until_the_creation_delay_passes(
    world: Any, clock: ManualClock
) -> None:
    _, api = world(creation_delay=2)
    pipeline_id = api.trigger("gh/acme/broken")
    assert _pipeline(api, pipeline_id)["state"] == "pending"
    clock.advance(2)
    assert _pipeline(api, pipeline_id)["state"] == "errored"


# -- 2. trigger_parameters does not carry the parameters -------------------------------------

SENT = {"triggering-pipeline-id": "1f5e5b4a-0000-4000-8000-000000000001"}


def test_trigger_parameters_is_absent_by_default(world: Any) -> None:
    _, api = world()
    pipeline = _pipeline(api, api.trigger("gh/acme/b", parameters=SENT))
    assert "trigger_parameters" not in pipeline
    listed = api.client.get("/project/gh/acme/b/pipeline").json()["items"][0]
    assert "trigger_parameters" not in listed


def test_trigger_parameters_holds_only_circleci_namespaces_in_that_variant(world: Any) -> None:
    _, api = world(trigger_parameters="namespaces")
    pipeline = _pipeline(api, api.trigger("gh/acme/b", parameters=SENT))
    assert set(pipeline["trigger_parameters"]) == {"git", "circleci"}
    assert SENT["triggering-pipeline-id"] not in str(pipeline)


def test_the_echo_variant_is_the_old_unobserved_layout(world: Any) -> None:
    _, api = world(trigger_parameters="echo")
    assert _pipeline(api, api.trigger("gh/acme/b", parameters=SENT))["trigger_parameters"] == SENT


# -- 3. what CircleCI does expose -------------------------------------------------------------


def test_config_shows_the_source_and_the_compiled_config_with_values_in_place(
    world: Any,
) -> None:
    _, api = world()
    unused = "value-nobody-uses"
    pipeline_id = api.trigger("gh/acme/callback", parameters={**SENT, "unused": unused})
    config = api.client.get(f"/pipeline/{pipeline_id}/config").json()
    assert set(config) == {"source", "compiled"}
    assert "<< pipeline.parameters.triggering-pipeline-id >>" in config["source"]
    compiled, _, original = config["compiled"].partition("\n# Original config.yml file:\n")
    assert compiled.startswith("version: 2\n")
    assert not re.search(r"^(parameters|orbs|commands|executors):", compiled, re.M)
    assert "<<" not in compiled
    # A sent value appears literally only where the config uses it.
    assert f"CIRCLEBACK_UPSTREAM_PIPELINE_ID: {SENT['triggering-pipeline-id']}" in compiled
    assert unused not in config["compiled"]
    assert all(line.startswith("#") or not line for line in original.splitlines())
    assert "# parameters:" in original


def test_the_compiled_config_is_what_the_executor_runs(world: Any, started: list[JobRun]) -> None:
    """Compiled job steps equal the executor's plan of the same job, step for step."""
    _, api = world()
    pipeline_id = api.trigger("gh/acme/a")
    compiled = api.client.get(f"/pipeline/{pipeline_id}/config").json()["compiled"]
    build = next(run for run in started if run.job_name == "build")
    plan = plan_job(build, packed_circleback_orb())
    import yaml

    jobs = yaml.safe_load(compiled)["jobs"]
    shown = [next(iter(step)) for step in jobs["build"]["steps"]]
    assert shown == [step.kind for step in plan.steps] == ["checkout", "run"]
    assert "trigger" in jobs  # the orb job circleback/trigger, expanded into plain steps
    assert all("circleback/" not in str(next(iter(s))) for s in jobs["trigger"]["steps"])


def test_compiled_is_empty_while_pending_and_for_an_errored_pipeline(
    world: Any, clock: ManualClock
) -> None:
    _, api = world(creation_delay=1)
    pending = api.trigger("gh/acme/b")
    assert api.client.get(f"/pipeline/{pending}/config").json()["compiled"] == ""
    errored = api.trigger("gh/acme/broken")
    clock.advance(1)
    body = api.client.get(f"/pipeline/{errored}/config").json()
    assert body["compiled"] == ""
    assert body["source"]


def test_values_are_the_pipeline_values_without_parameters(world: Any) -> None:
    _, api = world()
    pipeline_id = api.trigger("gh/acme/b", parameters=SENT)
    values = api.client.get(f"/pipeline/{pipeline_id}/values").json()
    assert values["pipeline.id"] == pipeline_id
    assert values["pipeline.git.branch"] == "main"
    assert not any(k.startswith("pipeline.parameters.") for k in values)


def test_job_details_by_number_for_a_running_build_job(world: Any) -> None:
    _, api = world()
    pipeline_id = api.trigger("gh/acme/a")
    details = api.client.get("/project/gh/acme/a/job/1")
    assert details.status_code == 200
    body = details.json()
    assert (body["number"], body["name"], body["status"]) == (1, "build", "running")
    assert body["pipeline"] == {"id": pipeline_id}
    assert api.client.get("/project/gh/acme/a/job/7").status_code == 404


def test_the_org_wide_pipeline_list(world: Any) -> None:
    _, api = world()
    a = api.trigger("gh/acme/a")
    b = api.trigger("gh/acme/b")
    for org in ("gh/acme", "gh%2Facme", "github/acme"):
        ids = [p["id"] for p in api.all_pages("/pipeline", **{"org-slug": org})]
        assert ids[:2] == [b, a], org
    assert api.all_pages("/pipeline", **{"org-slug": "gh/other"}) == []


def test_me(world: Any) -> None:
    _, api = world()
    me = api.client.get("/me").json()
    assert set(me) == {"id", "login", "name", "avatar_url"}


def test_cancel_a_job_by_number_and_its_dependents_do_not_run(world: Any) -> None:
    _, api = world()
    pipeline_id = api.trigger("gh/acme/a")
    response = api.client.post("/project/gh%2Facme%2Fa/job/1/cancel")
    assert response.status_code == 200
    workflow = api.workflow(pipeline_id)
    assert api.statuses(workflow["id"])["build"] == "canceled"
    assert api.statuses(workflow["id"])["trigger"] == "not_run"


# -- 4. undeclared or mistyped parameters ----------------------------------------------------


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({"nope": "x"}, "Unexpected argument(s): nope"),
        ({"shards": "four"}, "shards"),
    ],
)
def test_a_parameter_the_config_does_not_accept_errors_the_created_pipeline(
    world: Any, parameters: dict[str, Any], message: str
) -> None:
    _, api = world()
    response = api.client.post("/project/gh/acme/b/pipeline", json={"parameters": parameters})
    assert (response.status_code, response.json()["state"]) == (201, "pending")
    pipeline = _pipeline(api, response.json()["id"])
    assert pipeline["state"] == "errored"
    ((error,),) = [pipeline["errors"]]
    assert error["type"] == "config"
    assert message in error["message"]
    assert _workflows(api, pipeline["id"]) == []


@pytest.mark.parametrize(
    ("variant", "status", "message"),
    [("not_found", 404, "Project not found"), ("bad_request", 400, "Unexpected argument(s)")],
)
def test_the_404_and_400_variants_create_nothing(
    world: Any, variant: str, status: int, message: str
) -> None:
    emu, api = world(parameter_errors=variant)
    response = api.client.post("/project/gh/acme/b/pipeline", json={"parameters": {"x": 1}})
    assert response.status_code == status
    assert message in response.json()["message"]
    assert emu.state_dump()["pipelines"] == []


# -- 7. shapes --------------------------------------------------------------------------------


def test_observed_shapes_whole_seconds_absent_keys_and_warnings(world: Any) -> None:
    _, api = world()
    pipeline_id = api.trigger("gh/acme/a")
    pipeline = _pipeline(api, pipeline_id)
    assert pipeline["warnings"] == []
    workflow = api.workflow(pipeline_id)
    assert "stopped_at" not in workflow
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", workflow["created_at"])
    job = api.jobs(workflow["id"])["build"]
    assert "stopped_at" not in job
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", job["started_at"])


def test_the_last_page_token_may_be_left_out(world: Any) -> None:
    emu, api = world(last_page_token="omit")
    emu.set_page_size(1)
    api.trigger("gh/acme/a")
    api.trigger("gh/acme/a")
    first = api.client.get("/project/gh/acme/a/pipeline").json()
    assert first["next_page_token"]
    last = api.client.get(
        "/project/gh/acme/a/pipeline", params={"page-token": first["next_page_token"]}
    ).json()
    assert "next_page_token" not in last
    assert len(last["items"]) == 1


def test_legacy_approval_jobs_have_no_request_id_or_number(world: Any) -> None:
    emu, api = world(approval_jobs="legacy")
    pipeline_id = api.trigger("gh/acme/a")
    emu.finish_job_by_name("gh/acme/a", "build", "success")
    emu.finish_job_by_name("gh/acme/a", "trigger", "success")
    hold = api.jobs(api.workflow(pipeline_id)["id"])["wait-for-triggered-pipeline"]
    assert hold["status"] == "on_hold"
    assert "approval_request_id" not in hold
    assert "job_number" not in hold
    assert hold["started_at"] is None
    approve = api.client.post(f"/workflow/{api.workflow(pipeline_id)['id']}/approve/{hold['id']}")
    assert approve.status_code == 202


def test_an_escaped_slug_works_on_artifacts_and_job_details(world: Any) -> None:
    emu, api = world()
    api.trigger("gh/acme/a")
    job_id = emu.state_dump()["jobs"][0]["id"]
    emu.add_artifact(job_id, "circleback/downstream.json", b"{}")
    plain = api.client.get("/project/gh/acme/a/1/artifacts")
    escaped = api.client.get("/project/gh%2Facme%2Fa/1/artifacts")
    assert escaped.status_code == plain.status_code == 200
    assert escaped.json() == plain.json()
    assert api.client.get("/project/gh%2Facme%2Fa/job/1").status_code == 200


def test_github_and_gh_name_the_same_project(world: Any) -> None:
    _emu, api = world()
    pipeline_id = api.trigger("github/acme/b")
    assert _pipeline(api, pipeline_id)["project_slug"] == "gh/acme/b"
    assert api.client.get("/project/github/acme/b/pipeline/1").json()["id"] == pipeline_id
    assert api.client.get("/project/github%2Facme%2Fb/pipeline").status_code == 200


# -- 8. errors --------------------------------------------------------------------------------


def test_429_can_be_plain_text_or_an_empty_object(world: Any) -> None:
    emu, api = world()
    emu.add_fault("status", status=429, body="Rate limited.")
    emu.add_fault("status", status=429, body={})
    first = api.client.get("/me")
    assert (first.status_code, first.text) == (429, "Rate limited.")
    assert first.headers["content-type"].startswith("text/plain")
    second = api.client.get("/me")
    assert (second.status_code, second.json()) == (429, {})


def test_401_says_you_must_log_in_first(emu: Emulator) -> None:
    client = httpx.Client(transport=emu.transport(), base_url=BASE_URL)
    assert client.get("/me").json() == {"message": "You must log in first."}


def test_a_token_without_access_gets_project_not_found(
    make_emulator: Callable[..., Emulator],
) -> None:
    emu = make_emulator(tokens=(TOKEN, "limited"), token_projects={"limited": ["gh/acme/a"]})
    owner = Api(
        httpx.Client(transport=emu.transport(), base_url=BASE_URL, headers={"Circle-Token": TOKEN})
    )
    b = owner.trigger("gh/acme/b")
    limited = httpx.Client(
        transport=emu.transport(), base_url=BASE_URL, headers={"Circle-Token": "limited"}
    )
    for response in (
        limited.post("/project/gh/acme/b/pipeline", json={}),
        limited.get("/project/gh/acme/b/pipeline"),
        limited.get("/project/gh/acme/b/1/artifacts"),
    ):
        assert (response.status_code, response.json()) == (404, {"message": "Project not found"})
    assert limited.get(f"/pipeline/{b}").status_code == 404
    assert limited.post("/project/gh/acme/a/pipeline", json={}).status_code == 201
    orgwide = limited.get("/pipeline", params={"org-slug": "gh/acme"}).json()["items"]
    assert {p["project_slug"] for p in orgwide} == {"gh/acme/a"}


def test_a_trigger_body_without_a_json_content_type_is_ignored(world: Any) -> None:
    emu, api = world(trigger_parameters="echo")
    body = b'{"branch": "feature", "parameters": {"shards": 7}}'
    response = api.client.post(
        "/project/gh/acme/b/pipeline",
        content=body,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 201
    (pipeline,) = emu.state_dump()["pipelines"]
    assert pipeline["parameters"]["shards"] == 2  # the default, not 7
    assert pipeline["vcs"]["branch"] == "main"
    with_json = api.client.post("/project/gh/acme/b/pipeline", json={"parameters": {"shards": 7}})
    assert with_json.status_code == 201
    assert emu.state_dump()["pipelines"][1]["parameters"]["shards"] == 7


def test_a_project_token_is_not_an_api_v2_token(make_emulator: Callable[..., Emulator]) -> None:
    emu = make_emulator(project_tokens=("project-token",))
    owner = httpx.Client(
        transport=emu.transport(), base_url=BASE_URL, headers={"Circle-Token": TOKEN}
    )
    pipeline_id = Api(owner).trigger("gh/acme/a")
    project = httpx.Client(
        transport=emu.transport(), base_url=BASE_URL, headers={"Circle-Token": "project-token"}
    )
    assert project.get("/me").json() == {"message": "You must log in first."}
    trigger = project.post("/project/gh/acme/a/pipeline", json={})
    assert (trigger.status_code, trigger.json()) == (404, {"message": "Project not found"})
    assert project.get(f"/pipeline/{pipeline_id}").status_code == 404
    assert owner.get("/me").status_code == 200


def test_a_clock_following_fake_time_lets_delays_pass_as_the_client_sleeps(
    make_emulator: Callable[..., Emulator],
) -> None:
    fake = {"now": 100.0}
    emu = make_emulator(
        clock=clock_following(lambda: fake["now"]),
        switches={"creation_delay": 4, "workflow_delay": 2},
    )
    api = Api(
        httpx.Client(transport=emu.transport(), base_url=BASE_URL, headers={"Circle-Token": TOKEN})
    )
    pipeline_id = api.trigger("gh/acme/b")
    fake["now"] += 3.5
    assert _pipeline(api, pipeline_id)["state"] == "pending"
    fake["now"] += 0.5
    assert _pipeline(api, pipeline_id)["state"] == "created"
    assert _workflows(api, pipeline_id) == []
    fake["now"] += 2
    assert len(_workflows(api, pipeline_id)) == 1


def test_a_page_token_can_answer_404(world: Any) -> None:
    """circleci-docs#6472: "occasionally a next-page-token simply returns Not Found"."""
    emu, api = world()
    emu.set_page_size(1)
    api.trigger("gh/acme/a")
    api.trigger("gh/acme/a")
    emu.add_fault("status", status=404, body={"message": "Not Found"}, query="page-token=")
    first = api.client.get("/project/gh/acme/a/pipeline")
    assert first.status_code == 200  # no page token: the fault does not match
    token = first.json()["next_page_token"]
    second = api.client.get("/project/gh/acme/a/pipeline", params={"page-token": token})
    assert (second.status_code, second.json()) == (404, {"message": "Not Found"})
