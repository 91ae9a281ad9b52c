"""Issue 12's token hygiene, through the CLI: the token actually loaded is the one redacted,
whitespace around it never reaches a header, a blank variable falls through to the next,
and a token too short to be real is refused before it can mangle every line of output."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from circleback import _cli
from tests.relay.world import TOKEN, World

REDACTED = "**********"


def _finished_b(world: World) -> str:
    a = world.upstream_on_hold()
    b = world.downstream(a)
    world.finish_all(b)
    return b


def _use(monkeypatch: pytest.MonkeyPatch, **env: str) -> None:
    for name in ("CIRCLEBACK_TOKEN", "CIRCLE_TOKEN", "CIRCLECI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)


def test_a_token_from_a_lower_case_variable_is_redacted_everywhere(
    world: World, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Why: circle_token (lower case) was loaded, yet its value, echoed in API data, went
    # unredacted to stdout, stderr and the JUnit file.
    b = _finished_b(world)
    (wf,) = [w for w in world.workflows(b) if w["name"] == "lint"]
    echoed = {"items": [{**wf, "name": f"lint-{TOKEN}"}], "next_page_token": None}
    world.emu.add_fault("unexpected_shape", path="/workflow$", body=echoed, count=None)
    _use(monkeypatch, circle_token=TOKEN)
    junit = tmp_path / "junit.xml"
    result = world.cli("status", "--pipeline-id", b, "--json", "--junit", str(junit))
    assert result.code == 0, result.err
    assert REDACTED in result.out
    assert TOKEN not in result.out + result.err
    assert TOKEN not in junit.read_text()


class Wire(httpx.BaseTransport):
    """The emulator behind a check a socket makes: h11 refuses a header value with
    surrounding whitespace or a line break before anything is sent."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        value = request.headers.get("Circle-Token", "")
        if value != value.strip() or "\n" in value or "\r" in value:
            raise httpx.LocalProtocolError("Illegal header value", request=request)
        return self.inner.handle_request(request)


@pytest.mark.parametrize("value", [f"{TOKEN}\n", f"  {TOKEN}\t", f"\r\n{TOKEN} "])
def test_whitespace_around_the_token_is_stripped(
    world: World, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    # Why: a token with a trailing newline never left the machine (an invalid header),
    # yet circleback retried ~15 s and blamed the network.
    b = _finished_b(world)
    _use(monkeypatch, CIRCLEBACK_TOKEN=value)
    runtime = _cli.Runtime(
        transport=Wire(world.emu.transport()), sleep=world.time.sleep, clock=world.time.clock
    )
    monkeypatch.setattr(_cli, "RUNTIME", runtime)
    result = world.cli("status", "--pipeline-id", b)
    assert result.code == 0, result.err
    assert world.time.sleeps == []


@pytest.mark.parametrize("blank", [" ", "\n", "\t  "])
def test_a_blank_variable_falls_through_to_the_next(
    world: World, monkeypatch: pytest.MonkeyPatch, blank: str
) -> None:
    # Why: a blank CIRCLEBACK_TOKEN hid a valid CIRCLE_TOKEN ("No CircleCI API token found").
    b = _finished_b(world)
    _use(monkeypatch, CIRCLEBACK_TOKEN=blank, CIRCLE_TOKEN=TOKEN)
    result = world.cli("status", "--pipeline-id", b)
    assert result.code == 0, result.err


@pytest.mark.parametrize("short", ["t", "st", "1234567"])
def test_a_token_too_short_to_be_real_is_refused_naming_the_variable(
    world: World, monkeypatch: pytest.MonkeyPatch, short: str
) -> None:
    # Why: with the token t, "pipeline id 'nope' is no********** a UUID", and every
    # other line of output was mangled the same way.
    b = _finished_b(world)
    _use(monkeypatch, CIRCLE_TOKEN=short)
    world.emu.clear_request_log()
    result = world.cli("status", "--pipeline-id", b, "--json")
    assert result.code == 2, result.err
    assert "CIRCLE_TOKEN" in result.err
    assert "too short" in result.err
    assert REDACTED not in result.out + result.err
    assert world.requests() == []
    bad_input = world.cli("status", "--pipeline-id", "nope")
    assert bad_input.code == 2
    assert "'nope' is not a UUID" in bad_input.err
    assert REDACTED not in bad_input.err
