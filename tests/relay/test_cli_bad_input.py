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


#: The fields each ``--json`` document has (README, "--json documents"), failure or not.
JSON_FIELDS = {
    "approve": {"outcome", "upstream_pipeline_id", "project_slug", "workflow_id"}
    | {"workflow_name", "job_id", "job_name", "warnings"},
    "trigger": {"number", "pipeline_id", "project_slug", "state", "url"},
    "status": {"success", "timed_out", "required_jobs", "pipelines"},
    "sweep": {"project_slug", "complete", "problems", "findings"},
}


def _one_json_document(result: object, command: str) -> dict[str, object]:
    import json

    out = result.out  # type: ignore[attr-defined]
    document = json.loads(out)  # the whole of stdout: one document, nothing else
    assert isinstance(document, dict)
    assert JSON_FIELDS[command] | {"error"} <= set(document), document
    assert isinstance(document["error"], str)
    assert document["error"]
    assert TOKEN not in out
    assert "Traceback" not in result.err  # type: ignore[attr-defined]
    return document


@pytest.mark.parametrize(
    "args",
    [
        ["approve", "--pipeline-id", "../../workflow", "--allow-project", "gh/acme/*"],
        ["approve", "--pipeline-id", PID, "--allow-project", "gh/acme"],
        ["approve", "--pipeline-id", PID],
        ["trigger", "gh/acme", "--upstream-pipeline-id", PID],
        ["trigger", "gh/acme/b", "--upstream-pipeline-id", PID, "-p", "novalue"],
        ["status", "--pipeline-id", "not-a-uuid"],
        ["status"],
        ["status", "--pipeline-id", PID, "--timeout", "soon"],
        ["sweep", "gh/acme"],
        ["sweep", "gh/acme/a", "--grace", "soon"],
    ],
)
def test_a_json_refusal_is_one_document_with_the_error(world: World, args: list[str]) -> None:
    result = world.cli(*args, "--json")
    assert result.code == 2, result.err
    document = _one_json_document(result, args[0])
    assert document["error"] in result.err
    assert world.requests() == []


@pytest.mark.parametrize(
    ("args", "module", "name"),
    [
        (["approve", "--pipeline-id", PID, "--allow-project", "gh/acme/*"], "relay", "approve"),
        (["trigger", "gh/acme/b", "--upstream-pipeline-id", PID], "relay", "trigger"),
        (["status", "--pipeline-id", PID], "relay.status", "downstream_from_id"),
        (["sweep", "gh/acme/a"], "relay.sweep", "sweep"),
    ],
)
def test_a_json_api_failure_is_one_document_with_the_error_and_no_token(
    world: World, monkeypatch: pytest.MonkeyPatch, args: list[str], module: str, name: str
) -> None:
    import importlib

    from circleback import errors

    def fail(*_args: object, **_kwargs: object) -> None:
        raise errors.APIError(f"CircleCI said no to {TOKEN}", status_code=500)

    monkeypatch.setattr(importlib.import_module(f"circleback.{module}"), name, fail)
    result = world.cli(*args, "--json")
    assert result.code == 3, result.err
    document = _one_json_document(result, args[0])
    assert document["error"] == "CircleCI said no to **********"


def test_a_json_status_timed_out_before_any_look_says_so(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from circleback import errors
    from circleback.relay import status

    def slow(*_args: object, **_kwargs: object) -> None:
        raise errors.WaitTimeout("Gave up after 90s: no answer.")

    monkeypatch.setattr(status, "downstream_from_id", slow)
    result = world.cli("status", "--pipeline-id", PID, "--json")
    assert result.code == 4, result.err
    document = _one_json_document(result, "status")
    assert document["timed_out"] is True
    assert document["success"] is False
