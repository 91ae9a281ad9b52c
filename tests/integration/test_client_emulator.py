"""The client against the emulator: in-process (WSGI transport) and over loopback."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from circleback import errors
from circleback.client import CircleCIClient, RetryPolicy
from circleback.emulator import Emulator
from circleback.emulator.server import make_server
from circleback.models import JobStatus, JobType, PipelineState, WorkflowStatus

CONFIGS = Path(__file__).parents[1] / "relay" / "configs"
TOKEN = "CCIPAT_integration-token"
#: B passes A's id to a job through environment:, as the docs advise.
CALLBACK = Path(__file__).parents[1] / "emulator" / "configs" / "callback.yml"
PROJECTS = {
    "gh/acme/a": CONFIGS / "a.yml",
    "gh/acme/b": CONFIGS / "b.yml",
    "gh/acme/callback": CALLBACK,
}


class NoSleep:
    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@pytest.fixture(params=["in-process", "loopback"])
def setup(request: pytest.FixtureRequest) -> Iterator[tuple[Emulator, CircleCIClient]]:
    emu = Emulator(projects=PROJECTS, tokens=(TOKEN,), page_size=2)
    if request.param == "in-process":
        with CircleCIClient(
            token=TOKEN, host="http://127.0.0.1", transport=emu.transport(), sleep=NoSleep()
        ) as client:
            yield emu, client
    else:
        with (
            make_server(emu) as server,
            CircleCIClient(token=TOKEN, host=server.url, sleep=NoSleep()) as client,
        ):
            yield emu, client


def test_the_whole_pattern_through_the_client(setup: tuple[Emulator, CircleCIClient]) -> None:
    emu, client = setup
    a = client.trigger_pipeline("gh/acme/a", branch="main")
    assert a.state is PipelineState.PENDING  # created a moment later, as on CircleCI
    assert client.get_pipeline(a.id).state is PipelineState.CREATED
    emu.finish_job_by_name("gh/acme/a", "build", "success")
    emu.finish_job_by_name("gh/acme/a", "trigger", "success")
    b = client.trigger_pipeline(
        "gh/acme/b", branch="main", parameters={"triggering-pipeline-id": a.id}
    )
    assert client.get_pipeline(b.id).trigger_parameters is None  # never echoed
    with httpx.Client(
        transport=emu.transport(),
        base_url="http://127.0.0.1/api/v2",
        headers={"Circle-Token": TOKEN},
    ) as http:
        compiled = http.get(f"/pipeline/{b.id}/config").json()["compiled"]
    assert f"CIRCLEBACK_UPSTREAM_PIPELINE_ID: {a.id}" in compiled  # where A's id can be read
    (wf,) = list(client.list_pipeline_workflows(a.id))
    jobs = list(client.list_workflow_jobs(wf.id))  # 4 jobs over two pages of 2
    assert [j.name for j in jobs] == ["build", "trigger", "wait-for-triggered-pipeline", "check"]
    hold = jobs[2]
    assert (hold.type, hold.status) == (JobType.APPROVAL, JobStatus.ON_HOLD)
    client.approve_job(wf.id, hold.approval_request_id or hold.id)
    assert client.get_workflow(wf.id).status is WorkflowStatus.RUNNING
    b_workflows = list(client.list_pipeline_workflows(b.id))
    assert sorted(w.name for w in b_workflows) == ["lint", "test"]
    assert [p.id for p in client.list_project_pipelines("gh/acme/b", branch="main")] == [b.id]
    client.cancel_workflow(b_workflows[0].id)
    assert client.get_workflow(b_workflows[0].id).status is WorkflowStatus.CANCELED
    rerun = client.rerun_workflow(b_workflows[0].id)
    assert client.get_workflow(rerun).name == b_workflows[0].name


def test_wrong_token_is_an_authentication_error(setup: tuple[Emulator, CircleCIClient]) -> None:
    emu, _ = setup
    with (
        CircleCIClient(token="wrong", host="http://127.0.0.1", transport=emu.transport()) as bad,
        pytest.raises(errors.AuthenticationError),
    ):
        bad.get_pipeline("5034460f-c7c4-4c43-9457-de07e2029e7b")


def test_not_found(setup: tuple[Emulator, CircleCIClient]) -> None:
    _, client = setup
    with pytest.raises(errors.NotFound):
        client.get_workflow("5034460f-c7c4-4c43-9457-de07e2029e7b")


def test_dropped_connections_and_lost_responses(setup: tuple[Emulator, CircleCIClient]) -> None:
    emu, client = setup
    a = client.trigger_pipeline("gh/acme/a")
    emu.add_fault("drop", method="GET", count=2)
    assert client.get_pipeline(a.id).id == a.id  # reads are retried
    emu.add_fault("lost_response", method="POST", path="/pipeline$")
    with pytest.raises(errors.TransportError):
        client.trigger_pipeline("gh/acme/a")  # never re-sent: it may have been created
    assert len(list(client.list_project_pipelines("gh/acme/a"))) == 2


def test_emulator_command_prints_its_url_first(tmp_path: Path) -> None:
    """``circleback emulator`` over loopback, driven by ``circleback`` processes."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CIRCLE")}
    cmd = [
        sys.executable,
        "-m",
        "circleback",
        "emulator",
        "--token",
        TOKEN,
        "--project",
        f"gh/acme/a={CONFIGS / 'a.yml'}",
        "--project",
        f"gh/acme/b={CONFIGS / 'b.yml'}",
    ]
    server = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert server.stdout is not None
        url = server.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        env.update(CIRCLEBACK_TOKEN=TOKEN, CIRCLEBACK_HOST=url)
        with CircleCIClient(token=TOKEN, host=url, retry=RetryPolicy(max_attempts=2)) as client:
            a = client.trigger_pipeline("gh/acme/a")
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "circleback",
                "--log-format",
                "json",
                "trigger",
                "gh/acme/b",
                "--upstream-pipeline-id",
                a.id,
                "--json",
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )
        assert run.returncode == 0, run.stderr
        assert TOKEN not in run.stdout + run.stderr
        assert '"event": "triggered downstream pipeline"' in run.stderr
    finally:
        server.terminate()
        server.wait(timeout=10)
        if server.stdout is not None:
            server.stdout.close()


def _emulator_command(*args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CIRCLE")}
    cmd = [sys.executable, "-m", "circleback", "emulator", "--token", TOKEN, *args]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def test_emulator_command_refuses_an_unknown_switch() -> None:
    server = _emulator_command("--switch", "creation=instantly")
    _, err = server.communicate(timeout=60)
    assert server.returncode == 2
    assert "creation" in err
    assert "async" in err  # names the values it accepts


def test_emulator_command_takes_timing_knobs_and_switches() -> None:
    """A creation delay far longer than the test: the pipeline is still pending."""
    server = _emulator_command(
        "--project",
        f"gh/acme/b={CONFIGS / 'b.yml'}",
        "--creation-delay",
        "3600",
        "--switch",
        "trigger_parameters=namespaces",
        "--switch",
        "creation=async",
    )
    try:
        assert server.stdout is not None
        url = server.stdout.readline().strip()
        with httpx.Client(base_url=url, headers={"Circle-Token": TOKEN}) as http:
            created = http.post("/api/v2/project/gh/acme/b/pipeline", json={})
            assert created.json()["state"] == "pending"
            pipeline = http.get(f"/api/v2/pipeline/{created.json()['id']}").json()
            assert pipeline["state"] == "pending"
            switches = http.get("/_emulator/switches").json()
            assert (switches["creation_delay"], switches["trigger_parameters"]) == (
                3600,
                "namespaces",
            )
    finally:
        server.terminate()
        server.communicate(timeout=10)
