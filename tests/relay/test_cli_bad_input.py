"""Every bad input exits 2 with one error line and a hint, no traceback, and no request."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.relay.world import TOKEN, World

PID = "5034460f-c7c4-4c43-9457-de07e2029e7b"


def _assert_clean_refusal(world: World, args: list[str]) -> str:
    result = world.cli(*args)
    assert result.code == 2, (args, result.err)
    assert "Traceback" not in result.err
    lines = result.err.strip().splitlines()
    assert lines[0].startswith("circleback: error: "), result.err
    assert lines[1].startswith("  hint: "), result.err
    assert len(lines) == 2, result.err
    assert result.out == ""
    assert world.requests() == []
    return result.err


@pytest.mark.parametrize(
    "args",
    [
        ["trigger", "gh/acme", "--upstream-pipeline-id", PID],
        ["trigger", "gh/../b", "--upstream-pipeline-id", PID],
        ["trigger", "gh/acme/b?x=1", "--upstream-pipeline-id", PID],
        ["trigger", "gl/acme/b", "--upstream-pipeline-id", PID],
        ["trigger", "gh/acme/b", "--upstream-pipeline-id", "null"],
        ["trigger", "gh/acme/b", "--upstream-pipeline-id", ""],
        ["trigger", "gh/acme/b"],
        ["trigger", "gh/acme/b", "--upstream-pipeline-id", PID, "--definition-id", "x"],
        ["trigger", "gh/acme/b", "--upstream-pipeline-id", PID, "-p", "novalue"],
        ["trigger", "gh/acme/b", "--upstream-pipeline-id", PID, "-p", "bad key=1"],
        ["trigger", "gh/acme/b", "--upstream-pipeline-id", PID, "--branch", "a", "--tag", "b"],
        ["trigger", "gh/acme/b", "--upstream-pipeline-id", PID, "--callback-parameter", "a b"],
        ["approve", "--pipeline-id", "../../workflow", "--allow-project", "gh/acme/*"],
        ["approve", "--pipeline-id", PID, "--allow-project", "gh/acme"],
        ["approve", "--pipeline-id", PID],
        ["status", "--pipeline-id", "not-a-uuid"],
        ["status"],
        ["status", "--pipeline-id", PID, "--state-file", "x.json"],
        ["status", "--pipeline-id", PID, "--timeout", "soon"],
        ["--log-format", "xml", "status", "--pipeline-id", PID],
        ["emulator", "--project", "gh/acme/b"],
    ],
)
def test_bad_arguments(world: World, args: list[str]) -> None:
    _assert_clean_refusal(world, args)


@pytest.mark.parametrize(
    "args",
    [
        ["trigger", "gh/acme/b", "--upstream-pipeline-id", PID],
        ["approve", "--pipeline-id", PID, "--allow-project", "gh/acme/*"],
        ["status", "--pipeline-id", PID],
    ],
)
def test_missing_token(world: World, monkeypatch: pytest.MonkeyPatch, args: list[str]) -> None:
    monkeypatch.delenv("CIRCLEBACK_TOKEN")
    assert "CIRCLEBACK_TOKEN" in _assert_clean_refusal(world, args)


@pytest.mark.parametrize("host", ["http://circleci.example.com", "ftp://x", "https://u:p@x.io"])
def test_bad_host(world: World, monkeypatch: pytest.MonkeyPatch, host: str) -> None:
    monkeypatch.setenv("CIRCLEBACK_HOST", host)
    _assert_clean_refusal(world, ["status", "--pipeline-id", PID])


@pytest.mark.parametrize(
    "content", ["", "{", '{"version": 1, "downstream": [{"project_slug": "x"}]}', "[]"]
)
def test_unreadable_state_file(world: World, tmp_path: Path, content: str) -> None:
    state = tmp_path / "state.json"
    state.write_text(content)
    _assert_clean_refusal(world, ["status", "--state-file", str(state)])
    # trigger refuses to add to a broken file before it creates anything
    _assert_clean_refusal(
        world, ["trigger", "gh/acme/b", "--upstream-pipeline-id", PID, "--state-file", str(state)]
    )


def test_missing_state_file(world: World, tmp_path: Path) -> None:
    err = _assert_clean_refusal(world, ["status", "--state-file", str(tmp_path / "nope.json")])
    assert "does not exist" in err


def test_usage_errors_exit_2(world: World) -> None:
    result = world.cli("approve", "--no-such-option")
    assert result.code == 2
    assert "No such option" in result.err
    assert world.cli("trigger").code == 2


def test_version(world: World) -> None:
    result = world.cli("--version")
    assert result.code == 0
    assert result.out.strip() == "circleback 0.1.0"


def test_an_unexpected_exception_is_one_redacted_line(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from circleback import relay

    def explode(*args: object, **kwargs: object) -> None:
        raise RuntimeError(f"boom with {TOKEN} inside")

    monkeypatch.setattr(relay, "approve", explode)
    result = world.cli("approve", "--pipeline-id", PID, "--allow-project", "gh/acme/*")
    assert result.code == 3
    assert "Traceback" not in result.err
    assert TOKEN not in result.err
    assert "unexpected RuntimeError: boom with ********** inside" in result.err
    assert "circleback bug" in result.err
