"""The API surface: auth, routes, trigger bodies, pagination, the request log."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest

from circleback.emulator import Emulator
from tests.emulator.helpers import BASE_URL, TOKEN, Api


def _client(emu: Emulator, **headers: str) -> httpx.Client:
    return httpx.Client(transport=emu.transport(), base_url=BASE_URL, headers=headers)


# -- auth ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Circle-Token": "wrong"},
        {"Circle-Token": ""},
        {"Authorization": "Basic " + base64.b64encode(b"wrong:").decode()},
        {"Authorization": "Basic !!!notbase64"},
    ],
)
def test_missing_or_wrong_token_is_401(emu: Emulator, headers: dict[str, str]) -> None:
    response = _client(emu, **headers).get("/pipeline/x")
    assert (response.status_code, response.json()) == (401, {"message": "You must log in first."})


@pytest.mark.parametrize(
    "headers",
    [
        {"Circle-Token": TOKEN},
        {"Authorization": "Basic " + base64.b64encode(f"{TOKEN}:".encode()).decode()},
        {"Authorization": f"Bearer {TOKEN}"},
    ],
)
def test_token_by_header_basic_or_bearer_is_accepted(
    emu: Emulator, headers: dict[str, str]
) -> None:
    assert _client(emu, **headers).get("/project/gh/acme/a/pipeline").status_code == 200


def test_httpx_basic_auth_with_token_as_user_works(emu: Emulator) -> None:
    client = httpx.Client(transport=emu.transport(), base_url=BASE_URL, auth=(TOKEN, ""))
    assert client.get("/project/gh/acme/a/pipeline").status_code == 200


def test_without_configured_tokens_any_nonempty_token_is_accepted(make_emulator: Any) -> None:
    emu = make_emulator(tokens=())
    assert _client(emu, **{"Circle-Token": "anything"}).get("/pipeline/x").status_code == 404
    assert _client(emu).get("/pipeline/x").status_code == 401


def test_query_parameter_auth_is_refused_and_never_logged(emu: Emulator) -> None:
    response = _client(emu).get("/project/gh/acme/a/pipeline", params={"circle-token": TOKEN})
    assert response.status_code == 401
    assert "query parameter authentication has been deprecated" in response.json()["message"]
    assert emu.request_log[-1]["query"] == "circle-token=REDACTED"
    assert TOKEN not in repr(emu.request_log)


def test_the_request_log_holds_no_tokens_or_headers(api: Api, emu: Emulator) -> None:
    api.trigger("gh/acme/a")
    entry = emu.request_log[-1]
    assert set(entry) == {"time", "method", "path", "query", "status", "fault"}
    assert entry["method"] == "POST"
    assert entry["path"] == "/api/v2/project/gh/acme/a/pipeline"
    assert entry["status"] == 201
    assert TOKEN not in repr(emu.request_log)


# -- triggers --------------------------------------------------------------------------------


def test_legacy_trigger_accepts_an_escaped_slug(client: httpx.Client) -> None:
    response = client.post("/project/gh%2Facme%2Fb/pipeline", json={"branch": "dev"})
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"id", "state", "number", "created_at"}
    assert (body["state"], body["number"]) == ("pending", 1)  # created later, as on CircleCI
    assert client.get(f"/pipeline/{body['id']}").json()["vcs"]["branch"] == "dev"


def test_pipeline_numbers_count_per_project(api: Api) -> None:
    for _ in range(2):
        api.trigger("gh/acme/a")
    api.trigger("gh/acme/b")
    numbers = [
        (p["project_slug"], p["number"]) for p in api.all_pages("/project/gh/acme/a/pipeline")
    ]
    assert numbers == [("gh/acme/a", 2), ("gh/acme/a", 1)]
    b = api.all_pages("/project/gh/acme/b/pipeline")
    assert [p["number"] for p in b] == [1]


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"branch": "a", "tag": "b"}, 400, "branch and tag are mutually exclusive."),
        ({"branch": 5}, 400, "Unexpected request body provided."),
        ({"parameters": []}, 400, "Unexpected request body provided."),
        ({"definition_id": "x"}, 400, "Unexpected request body provided."),
    ],
)
def test_legacy_trigger_rejects_bad_bodies(
    client: httpx.Client, body: dict[str, Any], status: int, message: str
) -> None:
    response = client.post("/project/gh/acme/b/pipeline", json=body)
    assert (response.status_code, response.json()) == (status, {"message": message})


def test_legacy_trigger_rejects_a_body_that_is_not_json(client: httpx.Client) -> None:
    json_type = {"Content-Type": "application/json"}
    response = client.post("/project/gh/acme/b/pipeline", content=b"{nope", headers=json_type)
    assert response.status_code == 400


def test_trigger_for_an_unknown_project_is_404(client: httpx.Client) -> None:
    response = client.post("/project/gh/acme/zzz/pipeline")
    assert (response.status_code, response.json()) == (404, {"message": "Project not found"})


def test_pipeline_run_creates_a_pipeline_with_checkout_ref_and_parameters(
    client: httpx.Client, emu: Emulator
) -> None:
    body = {
        "definition_id": "2338d0ae-5541-4bbf-88a2-55e9f7281f80",
        "config": {"branch": "main"},
        "checkout": {"tag": "v2"},
        "parameters": {"triggering-pipeline-id": "p"},
    }
    response = client.post("/project/circleci/org-id/proj-id/pipeline/run", json=body)
    assert response.status_code == 201
    assert set(response.json()) == {"id", "state", "number", "created_at"}
    pipeline = emu.state_dump()["pipelines"][0]
    assert pipeline["vcs"]["tag"] == "v2"
    assert pipeline["definition_id"] == body["definition_id"]
    assert pipeline["parameters"]["triggering-pipeline-id"] == "p"


def test_pipeline_run_uses_the_config_branch_when_no_checkout_is_given(
    client: httpx.Client, emu: Emulator
) -> None:
    client.post("/project/gh/acme/b/pipeline/run", json={"config": {"branch": "dev"}})
    client.post("/project/gh/acme/b/pipeline/run", json={})
    branches = [p["vcs"]["branch"] for p in emu.state_dump()["pipelines"]]
    assert branches == ["dev", "main"]


@pytest.mark.parametrize(
    "body",
    [
        {"branch": "main"},
        {"config": {"branch": "main", "extra": 1}},
        {"checkout": {"branch": "a", "commit": "b"}},
        {"definition_id": "not-a-uuid"},
        {"parameters": "x"},
        ["list"],
    ],
)
def test_pipeline_run_refuses_anything_outside_its_schema(client: httpx.Client, body: Any) -> None:
    response = client.post("/project/gh/acme/b/pipeline/run", json=body)
    assert (response.status_code, response.json()) == (
        400,
        {"message": "Unexpected request body provided."},
    )


def test_pipeline_run_with_an_escaped_slug_or_unknown_project_is_404(client: httpx.Client) -> None:
    escaped = client.post("/project/gh%2Facme%2Fb/pipeline/run", json={})
    unknown = client.post("/project/gh/acme/nope/pipeline/run", json={})
    provider = client.post("/project/gitlab/acme/b/pipeline/run", json={})
    assert escaped.status_code == 404
    assert unknown.json() == {"message": "Project does not exist."}
    assert provider.status_code == 404


def test_ci_skip_makes_triggers_answer_200_not_created(client: httpx.Client, emu: Emulator) -> None:
    emu.set_ci_skip(True)
    for path in ("/project/gh/acme/b/pipeline/run", "/project/gh/acme/b/pipeline"):
        response = client.post(path, json={})
        assert (response.status_code, response.json()) == (
            200,
            {"message": "Ignoring pipeline due to CI skip in the commit"},
        )
    assert client.post("/project/gh/acme/zzz/pipeline").status_code == 404
    assert emu.state_dump()["pipelines"] == []
    emu.set_ci_skip(False)
    assert client.post("/project/gh/acme/b/pipeline").status_code == 201


# -- reads -----------------------------------------------------------------------------------


def test_pipeline_has_the_spec_fields_and_no_token(api: Api) -> None:
    pipeline_id = api.trigger("gh/acme/b", parameters={"shards": 3})
    body = api.client.get(f"/pipeline/{pipeline_id}").json()
    assert body["trigger"]["type"] == "api"
    assert body["trigger"]["actor"]["login"] == "circleback-emulator"
    assert "trigger_parameters" not in body  # CircleCI never echoes the sent parameters
    assert body["warnings"] == []
    assert body["vcs"]["branch"] == "main"
    assert TOKEN not in repr(body)


def test_pipeline_by_number(api: Api) -> None:
    pipeline_id = api.trigger("gh/acme/b")
    assert api.client.get("/project/gh/acme/b/pipeline/1").json()["id"] == pipeline_id
    assert api.client.get("/project/gh/acme/b/pipeline/2").status_code == 404


def test_project_pipelines_filter_by_branch(api: Api) -> None:
    api.trigger("gh/acme/a", branch="main")
    api.trigger("gh/acme/a", branch="dev")
    api.trigger("gh/acme/a", tag="v1")
    dev = api.all_pages("/project/gh/acme/a/pipeline", branch="dev")
    assert [p["vcs"]["branch"] for p in dev] == ["dev"]
    assert len(api.all_pages("/project/gh/acme/a/pipeline")) == 3


@pytest.mark.parametrize(
    ("method", "path", "status", "message"),
    [
        ("GET", "/pipeline/nope", 404, "Pipeline not found"),
        ("GET", "/pipeline/nope/workflow", 404, "Pipeline not found"),
        ("GET", "/workflow/nope", 404, "Workflow not found"),
        ("GET", "/workflow/nope/job", 404, "Workflow not found"),
        ("POST", "/workflow/nope/cancel", 404, "Workflow not found"),
        ("POST", "/workflow/nope/rerun", 404, "Workflow not found"),
        ("GET", "/project/gh/acme/zzz/pipeline", 404, "Project not found"),
        ("GET", "/nothing/here", 404, "Not found"),
        ("DELETE", "/pipeline/nope", 405, "Method not allowed"),
    ],
)
def test_errors_are_message_bodies_with_sensible_statuses(
    client: httpx.Client, method: str, path: str, status: int, message: str
) -> None:
    response = client.request(method, path)
    assert (response.status_code, response.json()) == (status, {"message": message})


def test_paths_outside_the_api_are_404(client: httpx.Client) -> None:
    assert client.get("http://127.0.0.1/").status_code == 404


# -- pagination ------------------------------------------------------------------------------


def test_every_list_endpoint_paginates_with_opaque_tokens(api: Api, emu: Emulator) -> None:
    emu.set_page_size(2)
    for _ in range(5):
        api.trigger("gh/acme/fail")
    first = api.client.get("/project/gh/acme/fail/pipeline").json()
    assert len(first["items"]) == 2
    assert isinstance(first["next_page_token"], str)
    pipelines = api.all_pages("/project/gh/acme/fail/pipeline")
    assert [p["number"] for p in pipelines] == [5, 4, 3, 2, 1]

    pipeline_id = pipelines[-1]["id"]
    workflow = api.workflow(pipeline_id)
    assert len(api.jobs(workflow["id"])) == 5
    page = api.client.get(f"/workflow/{workflow['id']}/job").json()
    assert [len(page["items"]), page["next_page_token"] is not None] == [2, True]

    emu.finish_job_by_name("gh/acme/fail", "build", "failed", pipeline_id=pipeline_id)
    emu.finish_job_by_name("gh/acme/fail", "cleanup", "success", pipeline_id=pipeline_id)
    for _ in range(2):
        latest = api.all_pages(f"/pipeline/{pipeline_id}/workflow")[0]["id"]
        api.client.post(f"/workflow/{latest}/cancel")
        api.client.post(f"/workflow/{latest}/rerun")
    assert len(api.all_pages(f"/pipeline/{pipeline_id}/workflow")) == 3


def test_a_page_that_is_exactly_full_has_no_next_token(api: Api, emu: Emulator) -> None:
    emu.set_page_size(2)
    api.trigger("gh/acme/a")
    api.trigger("gh/acme/a")
    assert api.client.get("/project/gh/acme/a/pipeline").json()["next_page_token"] is None


def test_pages_stay_stable_when_pipelines_arrive_between_pages(api: Api, emu: Emulator) -> None:
    emu.set_page_size(2)
    for _ in range(3):
        api.trigger("gh/acme/a")
    first = api.client.get("/project/gh/acme/a/pipeline").json()
    api.trigger("gh/acme/a")
    second = api.client.get(
        "/project/gh/acme/a/pipeline", params={"page-token": first["next_page_token"]}
    ).json()
    assert [p["number"] for p in first["items"] + second["items"]] == [3, 2, 1]


def test_an_invalid_page_token_is_400(client: httpx.Client) -> None:
    response = client.get("/project/gh/acme/a/pipeline", params={"page-token": "garbage"})
    assert (response.status_code, response.json()) == (400, {"message": "Invalid page-token."})


def test_page_size_must_be_positive(emu: Emulator) -> None:
    with pytest.raises(Exception, match="page_size must be a positive integer"):
        emu.set_page_size(0)
