"""The control API and the server, bounded against a hostile neighbour (issue 12)."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import httpx
import pytest

import circleback.emulator
from circleback.emulator import Emulator
from circleback.emulator.server import make_server
from tests.emulator.helpers import BASE_URL, PROJECTS, TOKEN, Api

JSON = {"Content-Type": "application/json"}


def _control(emu: Emulator, **headers: str) -> httpx.Client:
    return httpx.Client(
        transport=emu.transport(), base_url="http://127.0.0.1/_emulator", headers=headers
    )


def test_served_with_tokens_the_control_api_needs_one(emu: Emulator) -> None:
    with make_server(emu) as server:
        url = f"{server.url}/_emulator/state"
        assert httpx.get(url).status_code == 401
        assert httpx.get(url, headers={"Circle-Token": "wrong"}).status_code == 401
        assert httpx.get(url, headers={"Circle-Token": TOKEN}).status_code == 200
        assert httpx.get(url, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200


def test_control_posts_must_be_json_so_a_web_page_cannot_send_them(emu: Emulator) -> None:
    Api(
        httpx.Client(transport=emu.transport(), base_url=BASE_URL, headers={"Circle-Token": TOKEN})
    ).trigger("gh/acme/a")
    control = _control(emu)
    body = '{"project_slug": "gh/acme/a", "job_name": "build", "status": "success"}'
    for content_type in ("text/plain", "application/x-www-form-urlencoded", ""):
        answer = control.post("/jobs/finish", content=body, headers={"Content-Type": content_type})
        assert answer.status_code == 415, content_type
    assert control.post("/reset").status_code == 415
    assert emu.state_dump()["jobs"][0]["status"] == "running"
    ok = control.post("/jobs/finish", content=body, headers=JSON)
    assert ok.status_code == 200


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8080", "10.0.0.5"])
def test_a_foreign_host_header_is_refused(emu: Emulator, host: str) -> None:
    """DNS rebinding: a page on evil.example whose name now resolves to 127.0.0.1."""
    client = httpx.Client(transport=emu.transport(), base_url=f"http://{host}")
    assert client.get("/_emulator/state").status_code == 421
    assert client.get("/api/v2/me", headers={"Circle-Token": TOKEN}).status_code == 421


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost:9", "[::1]:80"])
def test_loopback_host_headers_are_answered(emu: Emulator, host: str) -> None:
    client = httpx.Client(transport=emu.transport(), base_url="http://127.0.0.1")
    assert client.get("/_emulator/state", headers={"Host": host}).status_code == 200


def test_project_configs_are_confined_to_the_directories_given_at_start(
    emu: Emulator, tmp_path: Path
) -> None:
    emu.config_roots = (tmp_path.resolve(),)
    control = _control(emu, **JSON)
    outside = control.post("/projects", json={"slug": "gh/x/y", "config_path": "/etc/passwd"})
    assert outside.status_code == 403
    sneaky = str(tmp_path / ".." / ".." / "etc" / "passwd")
    assert (
        control.post("/projects", json={"slug": "gh/x/y", "config_path": sneaky}).status_code == 403
    )
    assert "gh/x/y" not in str(emu.state_dump()["projects"])
    inside = tmp_path / "config.yml"
    inside.write_text("version: 2.1\n")
    ok = control.post("/projects", json={"slug": "gh/x/y", "config_path": str(inside)})
    assert ok.status_code == 201


def test_serve_confines_configs_to_the_projects_directories(tmp_path: Path) -> None:
    from circleback.emulator import server as server_module

    seen: dict[str, Any] = {}

    def fake_make_server(emulator: Emulator, host: str, port: int, **_: Any) -> Any:
        seen["roots"] = emulator.config_roots
        raise KeyboardInterrupt

    original = server_module.make_server
    server_module.make_server = fake_make_server  # type: ignore[assignment]
    try:
        with pytest.raises(KeyboardInterrupt):
            server_module.serve(projects={"gh/acme/a": PROJECTS["gh/acme/a"]})
    finally:
        server_module.make_server = original
    assert seen["roots"] == (PROJECTS["gh/acme/a"].resolve().parent,)


@pytest.mark.parametrize("value", ["3\r\nSet-Cookie: a=b", "3\n", "3\x00", "", "x" * 201])
def test_a_fault_header_value_with_control_characters_is_refused(emu: Emulator, value: str) -> None:
    control = _control(emu, **JSON)
    answer = control.post("/faults", json={"kind": "status", "status": 429, "retry_after": value})
    assert answer.status_code == 400
    assert "retry_after" in answer.json()["message"]
    assert emu.faults == []


def test_the_control_api_adds_a_job_artifact(emu: Emulator) -> None:
    client = httpx.Client(
        transport=emu.transport(), base_url=BASE_URL, headers={"Circle-Token": TOKEN}
    )
    Api(client).trigger("gh/acme/a")
    job_id = emu.state_dump()["jobs"][0]["id"]
    control = _control(emu, **JSON)
    added = control.post(
        f"/jobs/{job_id}/artifacts",
        json={"path": "circleback/downstream.json", "content": '{"pipelines": []}'},
    )
    assert added.status_code == 201, added.text
    (artifact,) = client.get("/project/gh/acme/a/1/artifacts").json()["items"]
    assert artifact["path"] == "circleback/downstream.json"
    content = httpx.Client(transport=emu.transport(), headers={"Circle-Token": TOKEN}).get(
        artifact["url"]
    )
    assert content.content == b'{"pipelines": []}'
    for bad in (
        {"path": "../x", "content": "a"},
        {"path": "a"},
        {"path": "a", "content_base64": "!"},
    ):
        assert control.post(f"/jobs/{job_id}/artifacts", json=bad).status_code == 400
    assert (
        control.post("/jobs/nope/artifacts", json={"path": "a", "content": "b"}).status_code == 404
    )


# -- layout ---------------------------------------------------------------------------------


def _emulator_imports() -> dict[str, set[str]]:
    """Every import between the emulator's modules, TYPE_CHECKING and function-level ones
    included (a cycle there is still a web to walk)."""
    package = Path(circleback.emulator.__file__).parent
    modules = {p.stem for p in package.glob("*.py")} - {"__init__"}
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for name in modules:
        tree = ast.parse((package / f"{name}.py").read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                if node.module == "circleback.emulator":
                    graph[name] |= {a.name for a in node.names if a.name in modules}
                elif node.module.startswith("circleback.emulator."):
                    graph[name].add(node.module.split(".")[2])
    return graph


def test_the_emulator_modules_import_without_a_cycle() -> None:
    graph = _emulator_imports()
    assert {"control", "core"} <= graph["app"]  # the graph is really read
    state: dict[str, int] = {}

    def visit(module: str, path: list[str]) -> None:
        if state.get(module) == 1:
            raise AssertionError(f"import cycle: {' -> '.join([*path, module])}")
        if state.get(module) == 2:
            return
        state[module] = 1
        for target in sorted(graph[module]):
            visit(target, [*path, module])
        state[module] = 2

    for module in sorted(graph):
        visit(module, [])


def test_the_cycle_check_catches_a_cycle(monkeypatch: pytest.MonkeyPatch) -> None:
    graph = _emulator_imports()
    graph["state"].add("app")
    monkeypatch.setattr(
        __import__(__name__, fromlist=["_emulator_imports"]), "_emulator_imports", lambda: graph
    )
    with pytest.raises(AssertionError, match="import cycle"):
        test_the_emulator_modules_import_without_a_cycle()


EVERY_INTERFACE = "0.0.0.0"  # noqa: S104 (bound only where the test says it may be)


@pytest.mark.parametrize("host", [EVERY_INTERFACE, "::", "192.0.2.7", "example.org"])
def test_a_non_loopback_bind_needs_an_explicit_flag(emu: Emulator, host: str) -> None:
    # Why: --host 0.0.0.0 bound every interface silently. The Host check stops a browser
    # (DNS rebinding), not another machine's client, which sends any Host it likes.
    with pytest.raises(ValueError, match="allow_remote"):
        make_server(emu, host)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "localhost", "::1", "[::1]"])
def test_loopback_binds_need_no_flag(host: str) -> None:
    from circleback.emulator.server import is_loopback

    assert is_loopback(host)


def test_allow_remote_binds_every_interface_and_warns(
    emu: Emulator, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from circleback.emulator import server as server_module

    with make_server(emu, EVERY_INTERFACE, allow_remote=True) as server:
        assert server.url.startswith("http://0.0.0.0:")
    monkeypatch.setattr(server_module.EmulatorServer, "serve_forever", lambda self: None)
    server_module.serve(EVERY_INTERFACE, allow_remote=True)
    err = capsys.readouterr().err
    assert "reachable from other machines" in err
    assert "--token" in err


def test_the_cli_refuses_a_non_loopback_bind_without_the_flag(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from circleback import _cli

    code = _cli.run(["emulator", "--host", EVERY_INTERFACE])
    err = capsys.readouterr().err
    assert code == 2
    assert "--allow-remote" in err
    assert "Traceback" not in err


def test_a_server_stopped_as_soon_as_started_shuts_down_cleanly(emu: Emulator) -> None:
    # Leaving the block before the serving thread has started its ticker raised
    # "cannot join thread before it is started" (seen within the first tries).
    for _ in range(40):
        with make_server(emu):
            pass
