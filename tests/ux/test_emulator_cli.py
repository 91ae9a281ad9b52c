"""``circleback emulator`` as a newcomer runs it: refusals, the banner, links, root pipelines."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from circleback.emulator.web import page
from tests.relay.world import CONFIGS, World

A_CONFIG = CONFIGS / "a.yml"
B_CONFIG = CONFIGS / "b.yml"


def _refused(world: World, *args: str) -> str:
    result = world.cli("emulator", *args)
    assert result.code == 2, result.err
    lines = result.err.strip().splitlines()
    assert lines[0].startswith("circleback: error: "), result.err
    assert lines[1].startswith("  hint: "), result.err
    assert "Traceback" not in result.err
    assert "circleback bug" not in result.err
    assert result.out == ""
    return result.err


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--port", "99999"], "--port 99999 is not a TCP port"),
        (["--port", "-1"], "--port -1 is not a TCP port"),
        (["--host", "0.0.0.0"], "--allow-remote"),  # noqa: S104 - the refusal under test
        (["--project", "gh/acme/b=does/not/exist.yml"], "does not exist"),
        (["--project", f"gh/acme/b={CONFIGS}"], "is a directory"),
        (["--project", f"github.com/acme/b={B_CONFIG}"], "Did you mean gh/acme/b?"),
        (["--project", f"gh/acme/b={B_CONFIG}", "--project", f"gh/acme/b={A_CONFIG}"], "twice"),
        (["--project", f"gh/acme/b={B_CONFIG}", "--start", "gh/acme/a"], "--start gh/acme/a"),
        (["--page-size", "0"], "--page-size"),
    ],
)
def test_bad_options_are_refused_before_binding(world: World, args: list[str], said: str) -> None:
    assert said in _refused(world, *args)


def test_a_busy_port_is_a_clear_refusal(world: World) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        err = _refused(world, "--port", str(port))
    assert f"Port {port} on 127.0.0.1 is already in use" in err


class Served:
    def __init__(self, process: subprocess.Popen[str], url: str, banner: list[str]) -> None:
        self.process, self.url, self.banner = process, url, banner


def _serve(*args: str) -> Iterator[Served]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CIRCLE") and k != "CI"}
    process = subprocess.Popen(
        [sys.executable, "-m", "circleback", "emulator", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        assert process.stderr is not None
        url = process.stdout.readline().strip()
        banner: list[str] = []
        while not any(line.startswith("circleback: Ctrl-C") for line in banner):
            line = process.stderr.readline()
            assert line, f"the emulator ended early: {banner}"
            banner.append(line.rstrip("\n"))
        if "--start" in args:
            banner.append(process.stderr.readline().rstrip("\n"))
        yield Served(process, url, banner)
    finally:
        process.terminate()
        process.communicate(timeout=10)


@pytest.fixture
def served() -> Iterator[Served]:
    yield from _serve(
        "--project",
        f"gh/acme/a={A_CONFIG}",
        "--project",
        f"gh/acme/b={B_CONFIG}",
        "--start",
        "gh/acme/a",
        "--token",
        "s3cret-emulator-token",
    )


@pytest.mark.loopback
def test_the_banner_says_what_to_export_and_starts_the_root(served: Served) -> None:
    assert served.url.startswith("http://127.0.0.1:")
    text = "\n".join(served.banner)
    assert f"export CIRCLEBACK_HOST={served.url}" in text
    assert "export CIRCLEBACK_TOKEN=<one of the --token values>" in text
    assert "s3cret-emulator-token" not in text
    (started,) = [line for line in served.banner if "started gh/acme/a #1" in line]
    link = started.rsplit(" ", 1)[1]
    assert link == f"{served.url}/pipelines/gh/acme/a/1"
    assert "/_emulator/jobs/finish" in text


@pytest.mark.loopback
def test_the_links_circleback_prints_resolve_on_the_emulator(served: Served) -> None:
    root = httpx.get(f"{served.url}/pipelines/gh/acme/a/1")
    assert root.status_code == 200
    assert "text/html" in root.headers["content-type"]
    assert "gh/acme/a #1" in root.text
    state = httpx.get(
        f"{served.url}/_emulator/state", headers={"Circle-Token": "s3cret-emulator-token"}
    ).json()
    (workflow,) = state["workflows"]
    (job,) = [j for j in state["jobs"] if j["name"] == "build"]
    wf_link = f"{served.url}/pipelines/gh/acme/a/1/workflows/{workflow['id']}"
    assert httpx.get(wf_link).status_code == 200
    job_page = httpx.get(f"{wf_link}/jobs/{job['job_number']}")
    assert job_page.status_code == 200
    assert "running" in job_page.text
    assert "gh/acme/a #1" in httpx.get(f"{served.url}/").text
    assert httpx.get(f"{served.url}/pipelines/gh/acme/a/9").status_code == 404
    # The API itself is unchanged underneath.
    api = httpx.get(f"{served.url}/api/v2/pipeline/x", headers={"Circle-Token": "wrong"})
    assert api.status_code == 401


@pytest.mark.loopback
def test_a_wildcard_bind_needs_the_flag_and_prints_a_url_the_cli_accepts(
    tmp_path: Path,
) -> None:
    for served in _serve(
        "--host",
        "0.0.0.0",  # noqa: S104 - the point of the test
        "--allow-remote",
        "--project",
        f"gh/acme/a={A_CONFIG}",
        "--start",
        "gh/acme/a",
    ):
        assert served.url.startswith("http://127.0.0.1:")
        assert any("beyond this machine" in line for line in served.banner)
        (started,) = [line for line in served.banner if "started gh/acme/a #1" in line]
        pipeline_id = started.split("(pipeline ", 1)[1].split(")", 1)[0]
        env = {
            **os.environ,
            "CIRCLEBACK_HOST": served.url,
            "CIRCLEBACK_TOKEN": "circleback-emulator-token",
        }
        env.pop("CI", None)
        trace = subprocess.run(
            [sys.executable, "-m", "circleback", "trace", pipeline_id],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )
        assert trace.returncode == 0, trace.stderr
        assert f"{served.url}/pipelines/gh/acme/a/1" in trace.stdout


def test_pages_for_what_is_not_there_are_404_with_a_way_back() -> None:
    dump = {"projects": [], "pipelines": [], "workflows": [], "jobs": []}
    for path in [
        "/pipelines/",
        "/pipelines/gh/acme/a",
        "/pipelines/gh/acme/a/1",
        "/pipelines/gh/acme/a/x/workflows/y",
    ]:
        status, body = page(path, dump)
        assert status.startswith("404"), path
        assert 'href="/"' in body
    status, body = page("/", dump)
    assert status == "200 OK"
    assert "No pipelines yet." in body


def test_pages_for_a_pipeline_its_workflow_and_job_in_process() -> None:
    from circleback.emulator import Emulator
    from circleback.emulator.launch import banner, start_pipelines
    from circleback.emulator.web import with_web_pages

    emu = Emulator(projects={"gh/acme/a": A_CONFIG}, tokens=("t0ken-for-pages",))
    (line,) = start_pipelines(emu, "http://127.0.0.1:1", ["gh/acme/a"], {})
    assert line.endswith("http://127.0.0.1:1/pipelines/gh/acme/a/1")
    app = with_web_pages(emu.app, emu.state_dump)
    with httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://127.0.0.1") as web:
        pipeline = web.get("/pipelines/gh/acme/a/1")
        assert pipeline.status_code == 200
        assert "default-src 'none'" in pipeline.headers["content-security-policy"]
        (workflow,) = emu.state_dump()["workflows"]
        wf = web.get(f"/pipelines/gh/acme/a/1/workflows/{workflow['id']}")
        assert "build" in wf.text
        assert (
            web.get(f"/pipelines/gh/acme/a/1/workflows/{workflow['id']}/jobs/1").status_code == 200
        )
        assert (
            web.get(f"/pipelines/gh/acme/a/1/workflows/{workflow['id']}/jobs/99").status_code == 404
        )
        assert web.get("/pipelines/gh/acme/a/1/workflows/nope").status_code == 404
        assert web.post("/pipelines/gh/acme/a/1").status_code == 404  # only GET is a page
        wrong = web.get("/api/v2/pipeline/x", headers={"Circle-Token": "wrong"})
        assert wrong.status_code == 401  # the API underneath answers as before
    lines = banner("http://127.0.0.1:1", projects=[], tokens=[])
    assert any("no --token: any is accepted" in x for x in lines)
    assert any("POST /_emulator/projects" in x for x in lines)


@pytest.mark.parametrize("token", ["ZQX", "ZQX-short-tok", " ZQX-padded-emulator-token"])
def test_a_token_the_cli_would_refuse_is_refused_before_binding(
    capsys: pytest.CaptureFixture[str], token: str
) -> None:
    # Why: `--token t` was accepted, the banner said to export it, and every circleback
    # command then exited 2 ("too short to be a CircleCI token").
    from circleback import _cli

    code = _cli.run(["emulator", "--port", "0", "--token", "a-long-enough-token", "--token", token])
    err = capsys.readouterr().err
    assert code == 2
    assert "--token number 2" in err
    assert token.strip() not in err
    assert "Traceback" not in err
