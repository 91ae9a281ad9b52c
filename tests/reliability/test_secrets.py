"""The token appears nowhere: not in any output path, not in a URL, not on another host.

Every command runs in every output mode (plain, ``-v``, ``--json``, JSON logs) on its
success path and on error paths where the server itself echoes the token back; an
unexpected exception carrying the token is forced. Each request is recorded at the
transport, so "never in a URL" and "always in the header" are checked on the wire.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from circleback import errors
from circleback.client import CircleCIClient
from circleback.settings import Settings
from tests.relay.world import TOKEN, B, Result, World
from tests.reliability.conftest import Wire

HOLD = "wait-for-triggered-pipeline"
MODES = {
    "plain": [],
    "verbose": ["-v"],
    "json-logs": ["--log-format", "json"],
    "verbose-json-logs": ["-v", "--log-format", "json"],
}


def cli(world: World, mode: str, *args: str) -> Result:
    # World.cli forces console logs; the mode's own options come after and win.
    return world.cli(*MODES[mode], *args)


def assert_no_token(world: World, wire: Wire, *results: Result) -> None:
    for result in results:
        assert TOKEN not in result.out
        assert TOKEN not in result.err
        assert "Traceback" not in result.err
    for request in wire.requests:
        assert TOKEN not in str(request.url)
        assert request.headers["Circle-Token"] == TOKEN
        assert "authorization" not in request.headers
    for entry in world.emu.request_log:
        assert TOKEN not in json.dumps(entry)


def commands(world: World, tmp_path: Path) -> dict[str, list[str]]:
    a = world.upstream_on_hold()
    b = world.trigger(B, **{"triggering-pipeline-id": a})
    world.finish_all(b)
    state = tmp_path / "s.json"
    return {
        "trigger": ["trigger", B, "--upstream-pipeline-id", a, "--state-file", str(state)],
        "approve": [
            "approve",
            "--pipeline-id",
            a,
            "--allow-project",
            "gh/acme/*",
            "--downstream-pipeline-id",
            b,
        ],
        "status": ["status", "--pipeline-id", b],
    }


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json-out"])
def test_success_paths_never_show_the_token(
    world: World, wire: Wire, tmp_path: Path, mode: str, as_json: bool
) -> None:
    results = []
    for args in commands(world, tmp_path).values():
        result = cli(world, mode, *args, *(["--json"] if as_json else []))
        assert result.code == 0, result.err
        results.append(result)
    assert_no_token(world, wire, *results)
    assert wire.requests


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("status", [400, 401, 404, 500])
def test_a_server_that_echoes_the_token_in_an_error_is_redacted(
    world: World, wire: Wire, tmp_path: Path, mode: str, status: int
) -> None:
    echo = {"message": f"token {TOKEN} is not valid here"}
    results = []
    for command, args in commands(world, tmp_path).items():
        world.emu.add_fault("status", status=status, body=echo, count=None)
        result = cli(world, mode, *args)
        world.emu.clear_faults()
        # trigger refuses an upstream pipeline CircleCI says does not exist (exit 2)
        assert result.code == (2 if (command, status) == ("trigger", 404) else 3)
        assert "**********" in result.err
        results.append(result)
    assert_no_token(world, wire, *results)


@pytest.mark.parametrize("mode", MODES)
def test_an_unexpected_exception_never_shows_the_token(
    world: World, wire: Wire, tmp_path: Path, mode: str
) -> None:
    class Exploding(httpx.BaseTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            raise ValueError(f"bug while sending with {request.headers['Circle-Token']}")

    wire.inner = Exploding()
    results = []
    for args in commands(world, tmp_path).values():
        result = cli(world, mode, *args)
        assert result.code == 3
        assert "circleback bug" in result.err
        results.append(result)
    assert_no_token(world, wire, *results)


def test_a_token_echoed_in_api_data_is_redacted_from_status_output(
    world: World, wire: Wire, tmp_path: Path
) -> None:
    a = world.upstream_on_hold()
    b = world.trigger(B, **{"triggering-pipeline-id": a})
    world.finish_all(b)
    page = world.api.get(f"/pipeline/{b}/workflow").json()
    for wf in page["items"]:
        wf["name"] = f"{wf['name']}-{TOKEN}"
    world.emu.add_fault("unexpected_shape", method="GET", path="/workflow$", body=page, count=None)
    result = world.cli("status", "--pipeline-id", b, "--json")
    assert result.code == 0, result.err
    assert TOKEN not in result.out + result.err


@pytest.mark.parametrize(
    "host",
    [
        "http://circleci.com",
        "http://example.com:8080",
        "http://127.0.0.1.evil.example",
        "http://localhost.evil.example",
        "http://10.0.0.1",
        "http://[::ffff:8.8.8.8]",
        "http://0x7f000001",
        "http://user:pw@127.0.0.1",
        "https://circleci.com/?circle-token=x",
        "ftp://127.0.0.1",
    ],
)
def test_plain_http_and_odd_hosts_are_refused_before_any_request(
    world: World, wire: Wire, monkeypatch: pytest.MonkeyPatch, host: str
) -> None:
    monkeypatch.setenv("CIRCLEBACK_HOST", host)
    result = world.cli("status", "--pipeline-id", "5034460f-c7c4-4c43-9457-de07e2029e7b")
    assert result.code == 2
    assert wire.requests == []
    assert TOKEN not in result.err


@pytest.mark.parametrize("host", ["http://127.0.0.1", "http://localhost:1", "http://[::1]:9"])
def test_loopback_may_use_plain_http(
    world: World, monkeypatch: pytest.MonkeyPatch, host: str
) -> None:
    monkeypatch.setenv("CIRCLEBACK_HOST", host)
    with CircleCIClient.from_settings(Settings()) as client:
        assert client.base_url.startswith(host)


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
@pytest.mark.parametrize("where", ["https://evil.example/api/v2/x", "//evil.example/x"])
def test_a_redirect_is_never_followed_so_the_token_stays_home(status: int, where: str) -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(status, headers={"Location": where})

    with (
        CircleCIClient(token=TOKEN, transport=httpx.MockTransport(answer)) as client,
        pytest.raises(errors.APIError) as info,
    ):
        client.trigger_pipeline(B, branch="main")
    assert [r.url.host for r in seen] == ["circleci.com"]
    assert TOKEN not in str(info.value) + repr(info.value)
    assert info.value.exit_code == errors.EXIT_API


def test_objects_never_show_the_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CIRCLEBACK_TOKEN", TOKEN)
    settings = Settings()
    with CircleCIClient.from_settings(settings) as client:
        shown = repr(client) + str(client) + repr(settings) + str(settings.model_dump())
    assert TOKEN not in shown
