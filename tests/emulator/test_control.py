"""The control API under /_emulator/, and serving over loopback."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import httpx
import pytest

from circleback.emulator import Emulator
from circleback.emulator.server import make_server
from tests.emulator.helpers import CONFIGS, TOKEN, Api


def test_state_shows_projects_pipelines_with_parameters_workflows_and_jobs(
    api: Api, control: httpx.Client
) -> None:
    pipeline_id = api.trigger("gh/acme/b", parameters={"shards": 4})
    state = control.get("/state").json()
    assert {p["slug"] for p in state["projects"]} >= {"gh/acme/a", "gh/acme/b"}
    (pipeline,) = state["pipelines"]
    assert pipeline["id"] == pipeline_id
    assert pipeline["parameters"]["shards"] == 4
    assert pipeline["sent_parameters"] == {"shards": 4}
    assert [w["name"] for w in state["workflows"]] == ["build-and-test"]
    assert {j["name"]: j["job_ref"] for j in state["jobs"]}["build"] == "build"
    assert state["page_size"] == 20
    assert state["ci_skip"] is False


def test_finish_by_id_and_by_name(api: Api, control: httpx.Client) -> None:
    pipeline_id = api.trigger("gh/acme/fail")
    build = api.jobs(api.workflow(pipeline_id)["id"])["build"]
    response = control.post(f"/jobs/{build['id']}/finish", json={"status": "success"})
    assert (response.status_code, response.json()["status"]) == (200, "success")
    by_name = control.post(
        "/jobs/finish",
        json={"project_slug": "gh/acme/fail", "job_name": "unit", "status": "failed"},
    )
    assert by_name.json()["name"] == "unit"
    assert by_name.json()["status"] == "failed"


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/jobs/nope/finish", {"status": "success"}, 404),
        ("/jobs/nope/finish", {}, 400),
        (
            "/jobs/finish",
            {"project_slug": "gh/acme/fail", "job_name": "zz", "status": "success"},
            404,
        ),
        ("/jobs/finish", {"job_name": "x"}, 400),
        ("/page-size", {"page_size": 0}, 400),
        ("/ci-skip", {"enabled": "yes"}, 400),
        ("/faults", {"kind": "nope"}, 400),
        ("/projects", {"slug": 1}, 400),
        ("/nowhere", {}, 404),
    ],
)
def test_control_errors(
    api: Api, control: httpx.Client, path: str, body: dict[str, Any], status: int
) -> None:
    api.trigger("gh/acme/fail")
    response = control.post(path, json=body)
    assert response.status_code == status
    assert "message" in response.json()


def test_request_log_can_be_read_and_cleared(api: Api, control: httpx.Client) -> None:
    api.trigger("gh/acme/a")
    items = control.get("/requests").json()["items"]
    assert [(i["method"], i["status"]) for i in items] == [("POST", 201)]
    assert control.delete("/requests").status_code == 200
    assert control.get("/requests").json()["items"] == []


def test_page_size_ci_skip_and_faults_via_control(
    api: Api, control: httpx.Client, emu: Emulator
) -> None:
    assert control.post("/page-size", json={"page_size": 1}).json() == {"page_size": 1}
    assert emu.page_size == 1
    assert control.post("/ci-skip", json={"enabled": True}).json() == {"ci_skip": True}
    assert api.client.post("/project/gh/acme/a/pipeline").status_code == 200
    control.post("/ci-skip", json={"enabled": False})
    created = control.post("/faults", json={"kind": "status", "status": 500, "count": 1})
    assert created.status_code == 201
    assert control.get("/faults").json()["items"][0]["status"] == 500
    assert control.delete("/faults").status_code == 200
    assert control.get("/faults").json()["items"] == []


def test_reset_forgets_pipelines_and_restarts_numbering(
    api: Api, control: httpx.Client, emu: Emulator
) -> None:
    api.trigger("gh/acme/a")
    emu.set_page_size(3)
    emu.add_fault("drop", path="nothing-matches")
    assert control.post("/reset").status_code == 200
    state = emu.state_dump()
    assert (state["pipelines"], state["faults"], state["page_size"]) == ([], [], 20)
    assert emu.request_log == []
    pipeline_id = api.trigger("gh/acme/a")
    assert api.client.get(f"/pipeline/{pipeline_id}").json()["number"] == 1


def test_projects_can_be_added_at_run_time(control: httpx.Client, api: Api) -> None:
    body = {"slug": "gh/acme/new", "config_path": str(CONFIGS / "failure_paths.yml")}
    assert control.post("/projects", json=body).status_code == 201
    assert api.workflow(api.trigger("gh/acme/new"))["name"] == "pipeline"


@pytest.mark.loopback
def test_loopback_end_to_end_with_basic_auth(emu: Emulator) -> None:
    with (
        make_server(emu) as server,
        httpx.Client(base_url=server.api_url, auth=(TOKEN, "")) as client,
    ):
        assert server.url.startswith("http://127.0.0.1:")
        api = Api(client)
        pipeline_id = api.trigger("gh%2Facme%2Fa")
        workflow = api.workflow(pipeline_id)
        finish = {"project_slug": "gh/acme/a", "job_name": "build", "status": "success"}
        # Served with tokens, the control API wants one too (issue 12: anyone reaching the
        # port could otherwise finish B's jobs as they like).
        refused = httpx.post(f"{server.url}/_emulator/jobs/finish", json=finish)
        assert refused.status_code == 401
        assert api.statuses(workflow["id"])["build"] == "running"
        httpx.post(
            f"{server.url}/_emulator/jobs/finish", json=finish, headers={"Circle-Token": TOKEN}
        )
        assert api.statuses(workflow["id"])["trigger"] == "running"
        assert client.get("/pipeline/x", auth=("wrong", "")).status_code == 401


@pytest.mark.loopback
def test_serve_prints_the_url_first_and_never_the_token(tmp_path: Any) -> None:
    code = (
        "from circleback.emulator.server import serve\n"
        f"serve('127.0.0.1', 0, {{'gh/acme/a': {str(CONFIGS / 'upstream.yml')!r}}}, ['{TOKEN}'])\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        response = httpx.post(
            f"{url}/api/v2/project/gh/acme/a/pipeline", headers={"Circle-Token": TOKEN}
        )
        assert response.status_code == 201
        httpx.get(f"{url}/api/v2/pipeline/x", headers={"Circle-Token": "nope"})
    finally:
        process.terminate()
        out, err = process.communicate(timeout=10)
    assert TOKEN not in out + err
    assert "nope" not in out + err
