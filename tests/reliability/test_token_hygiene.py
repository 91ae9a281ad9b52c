"""The token as loaded: stripped, refused when it cannot be real, redacted on every path.

Each case here failed before: redaction went by variable name over the raw environment, so
a one-letter token mangled every line (``no********** a UUID``), a token echoed in API
data reached the JUnit report and the state file, a token with a trailing newline was
retried for ~15 s as a network error, and a blank ``CIRCLEBACK_TOKEN`` hid a valid
``CIRCLE_TOKEN``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from circleback import _redact
from circleback.relay import Downstream, read_state, record_downstream
from tests.relay.world import TOKEN, B, World
from tests.reliability.conftest import Wire

UUID = "5034460f-c7c4-4c43-9457-de07e2029e7b"


def _echoing_status(world: World, tmp_path: Path) -> tuple[str, list[str]]:
    """B finished, with the token in its workflow names (API data that echoes it)."""
    a = world.upstream_on_hold()
    b = world.trigger(B, **{"triggering-pipeline-id": a})
    world.finish_all(b)
    page = world.api.get(f"/pipeline/{b}/workflow").json()
    for wf in page["items"]:
        wf["name"] = f"{wf['name']}-{TOKEN}"
    world.emu.add_fault("unexpected_shape", method="GET", path="/workflow$", body=page, count=None)
    return b, ["--junit", str(tmp_path / "junit.xml")]


@pytest.mark.parametrize("short", ["t", "x" * 15, " no \n"])
def test_a_token_too_short_to_be_real_is_refused_naming_its_variable(
    world: World, wire: Wire, monkeypatch: pytest.MonkeyPatch, short: str
) -> None:
    monkeypatch.delenv("CIRCLEBACK_TOKEN")
    monkeypatch.setenv("CIRCLE_TOKEN", short)
    result = world.cli("status", "--pipeline-id", UUID)
    assert result.code == 2
    assert "CIRCLE_TOKEN" in result.err
    assert "too short" in result.err
    assert wire.requests == []


def test_a_short_token_never_mangles_other_output(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CIRCLEBACK_TOKEN", "t")
    result = world.cli("status", "--pipeline-id", "nope")
    assert result.code == 2
    assert "'nope' is not a UUID" in result.err
    assert "*" not in result.err


@pytest.mark.parametrize("inner", ["with space inside-0123456789", "tab\tinside-0123456789"])
def test_a_token_that_cannot_be_a_header_is_refused_without_showing_it(
    world: World, wire: Wire, monkeypatch: pytest.MonkeyPatch, inner: str
) -> None:
    monkeypatch.setenv("CIRCLEBACK_TOKEN", inner)
    result = world.cli("status", "--pipeline-id", UUID)
    assert result.code == 2
    assert "CIRCLEBACK_TOKEN" in result.err
    assert inner not in result.err
    assert wire.requests == []


@pytest.mark.parametrize("padded", [f"{TOKEN}\n", f"  {TOKEN}\r\n", f"\t{TOKEN} "])
def test_surrounding_whitespace_is_stripped_and_the_token_works(
    world: World, wire: Wire, monkeypatch: pytest.MonkeyPatch, padded: str
) -> None:
    a = world.upstream_on_hold()
    b = world.trigger(B, **{"triggering-pipeline-id": a})
    world.finish_all(b)
    monkeypatch.setenv("CIRCLEBACK_TOKEN", padded)
    result = world.cli("status", "--pipeline-id", b)
    assert result.code == 0, result.err
    assert world.time.sleeps == []  # no retry: the first request went through
    assert {r.headers["Circle-Token"] for r in wire.requests} == {TOKEN}


@pytest.mark.parametrize("blank", ["", "   ", "\n"])
def test_a_blank_variable_falls_through_to_the_next(
    world: World, monkeypatch: pytest.MonkeyPatch, blank: str
) -> None:
    a = world.upstream_on_hold()
    b = world.trigger(B, **{"triggering-pipeline-id": a})
    world.finish_all(b)
    monkeypatch.setenv("CIRCLEBACK_TOKEN", blank)
    monkeypatch.setenv("CIRCLE_TOKEN", TOKEN)
    result = world.cli("status", "--pipeline-id", b)
    assert result.code == 0, result.err


def test_a_lower_case_variable_is_not_read_and_never_shown(
    world: World, wire: Wire, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Names are case-sensitive, as on Linux: ``circle_token`` is another variable."""
    monkeypatch.delenv("CIRCLEBACK_TOKEN")
    monkeypatch.setenv("circle_token", TOKEN)
    result = world.cli("status", "--pipeline-id", UUID)
    assert result.code == 2
    assert "No CircleCI API token found" in result.err
    assert "case-sensitive" in result.err
    assert TOKEN not in result.out + result.err
    assert wire.requests == []


@pytest.mark.parametrize("source", ["CIRCLEBACK_TOKEN", "CIRCLECI_API_KEY", "env-file"])
def test_the_loaded_token_is_redacted_from_every_output_and_file(
    world: World, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, source: str
) -> None:
    monkeypatch.delenv("CIRCLEBACK_TOKEN")
    if source == "env-file":
        env_file = tmp_path / "circleback.env"
        env_file.write_text(f"CIRCLE_TOKEN={TOKEN}\n")
        monkeypatch.setenv("CIRCLEBACK_ENV_FILE", str(env_file))
    else:
        monkeypatch.setenv(source, f"{TOKEN}\n")
    b, junit_args = _echoing_status(world, tmp_path)
    result = world.cli("status", "--pipeline-id", b, "--json", *junit_args)
    assert result.code == 0, result.err
    junit = (tmp_path / "junit.xml").read_text()
    for text in (result.out, result.err, junit):
        assert TOKEN not in text
    assert "**********" in junit
    assert "**********" in result.out


def test_the_token_is_redacted_from_the_state_file(tmp_path: Path) -> None:
    """The orb stores the state file as an artifact, shown in CircleCI's UI."""
    _redact.clear()
    _redact.register(TOKEN)
    try:
        state = tmp_path / "state.json"
        record = Downstream(
            project_slug=B, pipeline_id=UUID, number=7, state=f"created-{TOKEN}", url=""
        )
        record_downstream(state, record)
    finally:
        _redact.clear()
    text = state.read_text()
    assert TOKEN not in text
    assert read_state(state)[0].state == "created-**********"


def test_text_without_the_token_is_never_altered(world: World, tmp_path: Path) -> None:
    a = world.upstream_on_hold()
    b = world.trigger(B, **{"triggering-pipeline-id": a})
    world.finish_all(b)
    junit = tmp_path / "junit.xml"
    result = world.cli("status", "--pipeline-id", b, "--json", "--junit", str(junit))
    assert result.code == 0, result.err
    assert "*" not in result.out + result.err + junit.read_text()


@given(st.text(), st.text(min_size=16, alphabet=st.characters(min_codepoint=33, max_codepoint=126)))
def test_redaction_changes_only_text_that_holds_the_secret(text: str, secret: str) -> None:
    _redact.clear()
    try:
        _redact.register(secret)
        if secret not in text:
            assert _redact.redact(text) == text
        assert secret not in _redact.redact(text + secret + text)
    finally:
        _redact.clear()


def test_a_token_shorter_than_any_real_one_is_never_a_redaction_pattern() -> None:
    _redact.clear()
    _redact.register("t")
    assert _redact.redact("pipeline id 'nope' is not a UUID") == "pipeline id 'nope' is not a UUID"
    _redact.clear()
