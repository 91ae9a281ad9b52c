"""Every response shape the emulator produces, validated against CircleCI's OpenAPI document.

The document (vendored: ``tests/data/circleci-api-v2.openapi.json``, provenance beside it) is
Swagger-flavoured OpenAPI 3.0: it marks nullable fields ``x-nullable``, which 3.0 validators
ignore, so those become ``nullable`` before validating. Further allowances, each where
captured responses or CircleCI's docs show CircleCI departing from its spec (docs/emulator.md,
fidelity table):

- a job's ``started_at`` is null until it starts (the spec requires the key; real output has
  null), and 2020-era approval jobs have null too;
- ``requires`` statuses may be ``not_run`` and ``unauthorized`` (``terminal`` expands to
  them; the 2026 spec adds both to the enum);
- ``stopped_at`` of a running workflow or job is left out (captured), though the spec
  requires the workflow's; a workflow may be ``queued`` (serial groups, documented, not in
  the enum); 2020-era approval jobs have no ``job_number``;
- ``next_page_token`` may be left out on the last page (reported).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import pytest
from openapi_schema_validator import OAS30Validator, oas30_format_checker

from circleback.emulator import Emulator
from tests.emulator.helpers import BASE_URL, CONTINUATION, TOKEN, Api

SPEC_PATH = Path(__file__).resolve().parents[1] / "data" / "circleci-api-v2.openapi.json"


@cache
def _spec() -> dict[str, Any]:
    return json.loads(SPEC_PATH.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def _inline(node: Any) -> Any:
    """Resolve local ``$ref`` pointers and turn ``x-nullable`` into ``nullable``."""
    if isinstance(node, list):
        return [_inline(n) for n in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target: Any = _spec()
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        return _inline(target)
    result = {k: _inline(v) for k, v in node.items() if k != "x-nullable"}
    if node.get("x-nullable"):
        result["nullable"] = True
    return result


def _response_schema(path: str, method: str, status: str) -> dict[str, Any]:
    responses = _spec()["paths"][path][method]["responses"]
    response = _inline(responses.get(status) or responses["default"])
    return response["content"]["application/json"]["schema"]  # type: ignore[no-any-return]


def _allow_documented_gaps(path: str, schema: dict[str, Any]) -> dict[str, Any]:
    """The departures from the spec that public evidence shows (module docstring)."""
    props = schema.get("properties", {})
    if "next_page_token" in props:
        schema["required"] = [r for r in schema["required"] if r != "next_page_token"]
        item = props["items"]["items"]
    else:
        item = schema
    if path == "/workflow/{id}/job":
        job = item["properties"]
        job["started_at"]["nullable"] = True
        job["requires"]["additionalProperties"]["items"]["enum"] += ["not_run", "unauthorized"]
    if path in ("/workflow/{id}", "/pipeline/{pipeline-id}/workflow"):
        item["required"] = [r for r in item["required"] if r != "stopped_at"]
        item["properties"]["status"]["enum"] = [*item["properties"]["status"]["enum"], "queued"]
    return schema


def check(response: httpx.Response, path: str, method: str, status: int | None = None) -> None:
    """Assert the status is the expected one and the body fits the spec's schema for it."""
    if status is not None:
        assert response.status_code == status, response.text
    key = str(response.status_code)
    declared = _spec()["paths"][path][method]["responses"]
    schema = _response_schema(path, method, key if key in declared else "default")
    if response.status_code < 300:
        schema = _allow_documented_gaps(path, schema)
    validator = OAS30Validator(schema, format_checker=oas30_format_checker)
    errors = [e.message for e in validator.iter_errors(response.json())]
    assert errors == [], f"{method.upper()} {path} -> {response.status_code}: {errors}"


LEGACY = "/project/{project-slug}/pipeline"
RUN = "/project/{provider}/{organization}/{project}/pipeline/run"


@pytest.fixture
def scenario(api: Api, emu: Emulator) -> dict[str, Any]:
    """A pipeline in every interesting state: held, approved, canceled, rerun, errored."""
    upstream = api.trigger("gh/acme/a", parameters={})
    workflow = api.workflow(upstream)
    emu.finish_job_by_name("gh/acme/a", "build", "success")
    emu.finish_job_by_name("gh/acme/a", "trigger", "success")
    downstream = api.trigger("gh/acme/b", parameters={"triggering-pipeline-id": upstream})
    down_wf = api.workflow(downstream, "build-and-test")
    errored = api.trigger("gh/acme/broken")
    tagged = api.trigger("gh/acme/filters", tag="v1.0.0")
    return {
        "upstream": upstream,
        "workflow": workflow,
        "downstream": downstream,
        "down_wf": down_wf,
        "errored": errored,
        "tagged": tagged,
    }


def test_trigger_responses_conform(client: httpx.Client, emu: Emulator) -> None:
    check(client.post("/project/gh/acme/b/pipeline", json={"branch": "x"}), LEGACY, "post", 201)
    check(client.post("/project/gh%2Facme%2Fbroken/pipeline"), LEGACY, "post", 201)
    check(client.post("/project/gh/acme/b/pipeline/run", json={}), RUN, "post", 201)
    check(client.post("/project/gh/acme/b/pipeline/run", json={"x": 1}), RUN, "post", 400)
    check(client.post("/project/gh/acme/zz/pipeline/run", json={}), RUN, "post", 404)
    check(client.post("/project/gh/acme/zz/pipeline"), LEGACY, "post", 404)
    check(
        httpx.Client(transport=emu.transport(), base_url=BASE_URL).post(
            "/project/gh/acme/b/pipeline/run", json={}
        ),
        RUN,
        "post",
        401,
    )
    emu.set_ci_skip(True)
    check(client.post("/project/gh/acme/b/pipeline/run", json={}), RUN, "post", 200)


def test_pipeline_reads_conform(api: Api, scenario: dict[str, Any]) -> None:
    get: Callable[[str], httpx.Response] = api.client.get
    for key in ("upstream", "downstream", "errored", "tagged"):
        check(get(f"/pipeline/{scenario[key]}"), "/pipeline/{pipeline-id}", "get", 200)
    check(get("/pipeline/nope"), "/pipeline/{pipeline-id}", "get", 404)
    check(get("/project/gh/acme/a/pipeline"), LEGACY, "get", 200)
    check(get("/project/gh/acme/zz/pipeline"), LEGACY, "get", 404)
    check(
        get("/project/gh/acme/b/pipeline/1"),
        "/project/{project-slug}/pipeline/{pipeline-number}",
        "get",
        200,
    )


def test_workflow_and_job_reads_conform(api: Api, emu: Emulator, scenario: dict[str, Any]) -> None:
    get = api.client.get
    workflows = "/pipeline/{pipeline-id}/workflow"
    check(get(f"/pipeline/{scenario['upstream']}/workflow"), workflows, "get", 200)
    check(get(f"/pipeline/{scenario['errored']}/workflow"), workflows, "get", 200)
    check(get("/pipeline/nope/workflow"), workflows, "get", 404)
    held = scenario["workflow"]["id"]
    check(get(f"/workflow/{held}"), "/workflow/{id}", "get", 200)
    check(get(f"/workflow/{held}/job"), "/workflow/{id}/job", "get", 200)
    api.client.post(f"/workflow/{scenario['down_wf']['id']}/cancel")
    check(get(f"/workflow/{scenario['down_wf']['id']}"), "/workflow/{id}", "get", 200)
    check(get(f"/workflow/{scenario['down_wf']['id']}/job"), "/workflow/{id}/job", "get", 200)
    check(get("/workflow/nope"), "/workflow/{id}", "get", 404)
    check(get("/workflow/nope/job"), "/workflow/{id}/job", "get", 404)


def test_actions_conform(api: Api, emu: Emulator, scenario: dict[str, Any]) -> None:
    post = api.client.post
    approve = "/workflow/{id}/approve/{approval_request_id}"
    held = scenario["workflow"]["id"]
    hold = api.jobs(held)["wait-for-triggered-pipeline"]
    check(post(f"/workflow/{held}/approve/{hold['id']}"), approve, "post", 202)
    check(post(f"/workflow/{held}/approve/{hold['id']}"), approve, "post", 409)
    check(get_job_list(api, held), "/workflow/{id}/job", "get", 200)
    check(post(f"/workflow/{held}/cancel"), "/workflow/{id}/cancel", "post", 202)
    check(post(f"/workflow/{held}/rerun", json={}), "/workflow/{id}/rerun", "post", 202)
    check(post(f"/workflow/{held}/rerun", json={"jobs": 1}), "/workflow/{id}/rerun", "post", 400)
    check(post("/workflow/nope/cancel"), "/workflow/{id}/cancel", "post", 404)


def get_job_list(api: Api, workflow_id: str) -> httpx.Response:
    return api.client.get(f"/workflow/{workflow_id}/job")


def test_pages_conform(api: Api, emu: Emulator) -> None:
    emu.set_page_size(1)
    for _ in range(2):
        api.trigger("gh/acme/a")
    first = api.client.get("/project/gh/acme/a/pipeline")
    check(first, LEGACY, "get", 200)
    assert first.json()["next_page_token"]
    last = api.client.get(
        "/project/gh/acme/a/pipeline", params={"page-token": first.json()["next_page_token"]}
    )
    check(last, LEGACY, "get", 200)
    assert last.json()["next_page_token"] is None


def test_the_check_catches_a_wrong_shape() -> None:
    """Guard against a checker that passes everything (a missing required field, a bad enum)."""
    wrong = httpx.Response(200, json={"id": "not-a-uuid", "status": "sleeping"})
    with pytest.raises(AssertionError, match="required property"):
        check(wrong, "/workflow/{id}", "get", 200)


# -- the endpoints and variants added for realism (issue 10) -------------------------------

CONFIG = "/pipeline/{pipeline-id}/config"
VALUES = "/pipeline/{pipeline-id}/values"
DETAILS = "/project/{project-slug}/job/{job-number}"
CANCEL_JOB = "/project/{project-slug}/job/{job-number}/cancel"
ALL_SWITCHES = [
    {},
    {
        "creation": "async",
        "trigger_parameters": "absent",
        "parameter_errors": "errored",
        "timestamps": "observed",
        "empty_keys": "absent",
        "pipeline_warnings": "empty",
        "last_page_token": "omit",
    },
    {"trigger_parameters": "namespaces", "approval_jobs": "legacy", "empty_keys": "null"},
]


@pytest.mark.parametrize("switches", ALL_SWITCHES)
def test_every_read_conforms_under_every_switch(
    make_emulator: Callable[..., Emulator], switches: dict[str, str]
) -> None:
    emu = make_emulator(switches=switches)
    with httpx.Client(
        transport=emu.transport(), base_url=BASE_URL, headers={"Circle-Token": TOKEN}
    ) as client:
        api = Api(client)
        upstream = api.trigger("gh/acme/a")
        emu.tick()
        workflow = api.workflow(upstream)
        emu.finish_job_by_name("gh/acme/a", "build", "success")
        get = client.get
        check(get(f"/pipeline/{upstream}"), "/pipeline/{pipeline-id}", "get", 200)
        check(get("/project/gh/acme/a/pipeline"), LEGACY, "get", 200)
        check(get(f"/pipeline/{upstream}/workflow"), "/pipeline/{pipeline-id}/workflow", "get")
        check(get(f"/workflow/{workflow['id']}"), "/workflow/{id}", "get", 200)
        check(get(f"/workflow/{workflow['id']}/job"), "/workflow/{id}/job", "get", 200)
        check(get("/pipeline", params={"org-slug": "gh/acme"}), "/pipeline", "get", 200)
        check(get(f"/pipeline/{upstream}/config"), CONFIG, "get", 200)
        check(get(f"/pipeline/{upstream}/values"), VALUES, "get", 200)
        check(get("/project/gh/acme/a/job/1"), DETAILS, "get", 200)
        check(get("/project/gh%2Facme%2Fa/job/2"), DETAILS, "get", 200)
        check(get("/me"), "/me", "get", 200)


def test_new_actions_and_errors_conform(api: Api, emu: Emulator) -> None:
    post, get = api.client.post, api.client.get
    api.trigger("gh/acme/a")
    check(post("/project/gh/acme/a/job/1/cancel"), CANCEL_JOB, "post", 200)
    check(post("/project/gh/acme/a/job/99/cancel"), CANCEL_JOB, "post", 404)
    second = api.trigger("gh/acme/a")
    jobs = api.jobs(api.workflow(second)["id"])
    running = next(j for j in jobs.values() if j["status"] == "running")
    check(post(f"/jobs/{running['id']}/cancel"), "/jobs/{job-id}/cancel", "post", 200)
    check(get("/pipeline/nope/config"), CONFIG, "get", 404)
    check(get("/pipeline/nope/values"), VALUES, "get", 404)
    check(get("/project/gh/acme/a/job/999"), DETAILS, "get", 404)
    check(post("/pipeline/continue", json={"x": 1}), "/pipeline/continue", "post", 400)


def test_setup_pipeline_config_and_continuation_conform(api: Api, emu: Emulator) -> None:
    pipeline = api.trigger("gh/acme/setup")
    emu.tick()
    (setup,) = api.all_pages(f"/pipeline/{pipeline}/workflow")
    check(
        api.client.get(f"/pipeline/{pipeline}/workflow"), "/pipeline/{pipeline-id}/workflow", "get"
    )
    check(api.client.get(f"/workflow/{setup['id']}"), "/workflow/{id}", "get", 200)
    body = api.client.get(f"/pipeline/{pipeline}/config")
    check(body, CONFIG, "get", 200)
    assert set(body.json()) == {"source", "compiled", "setup-config", "compiled-setup-config"}
    key = emu.state_dump()["pipelines"][0]["continuation_key"]
    continued = api.client.post(
        "/pipeline/continue",
        json={"continuation-key": key, "configuration": CONTINUATION, "parameters": {}},
    )
    check(continued, "/pipeline/continue", "post", 200)
    check(api.client.get(f"/pipeline/{pipeline}"), "/pipeline/{pipeline-id}", "get", 200)
