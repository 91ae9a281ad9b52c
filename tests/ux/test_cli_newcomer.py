"""The CLI as a new user meets it: help, usage errors, CI, progress, outputs and files."""

from __future__ import annotations

import json
import re

import pytest

from circleback import _cli, _cli_help
from tests.relay.world import B, World

PID = "5034460f-c7c4-4c43-9457-de07e2029e7b"


def _every_command() -> list[list[str]]:
    """Every command of the CLI, as typed (``orb pack``), whoever added it."""
    found: list[list[str]] = []
    stack: list[tuple[list[str], object]] = [([], _cli.typer.main.get_command(_cli.app))]
    while stack:
        path, group = stack.pop()
        for name, cmd in getattr(group, "commands", {}).items():
            if hasattr(cmd, "commands"):
                stack.append(([*path, name], cmd))
            else:
                found.append([*path, name])
    return sorted(found)


COMMANDS = _every_command()
API_COMMANDS = {"trigger", "approve", "status", "sweep", "trace", "doctor"}


# -- --help ------------------------------------------------------------------------------


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_help_shows_words_variables_and_exit_codes(world: World, command: list[str]) -> None:
    result = world.cli(*command, "--help")
    assert result.code == 0
    text = result.out
    assert not re.search(r"<(?:list\[)?(?:str|int|path|bool|float)\]?>", text), text
    assert "--no-" not in text
    assert "Exit codes:" in text
    assert re.search(r"^\s+0 ", text, re.MULTILINE)
    if command[0] in API_COMMANDS:
        assert "CIRCLEBACK_TOKEN" in text
        assert "CIRCLEBACK_HOST" in text


def test_main_help_has_the_environment_and_every_exit_code(world: World) -> None:
    text = world.cli("--help").out
    for code in range(5):
        assert re.search(rf"^\s+{code} ", text, re.MULTILINE), code
    assert "CIRCLE_TOKEN" in text
    assert "CIRCLECI_API_KEY" in text
    assert "--log-format console|json" in text


def test_allow_project_help_documents_the_separator(world: World) -> None:
    text = " ".join(world.cli("approve", "--help").out.split())
    assert "CIRCLEBACK_ALLOW_PROJECTS" in text
    assert "separated by commas or spaces" in text


# -- global options after the command, and usage errors ----------------------------------


def test_a_global_option_after_the_command_works(world: World) -> None:
    result = world.cli("approve", "-v", "--pipeline-id", "", "--json")
    assert result.code == 0, result.err
    assert json.loads(result.out)["outcome"] == "not_triggered"
    json_logs = world.cli("status", "--pipeline-id", "x", "--log-format", "json")
    assert json_logs.code == 2
    (line,) = json_logs.err.strip().splitlines()
    assert json.loads(line)["level"] == "error"


def test_hoisting_never_takes_an_options_value(world: World) -> None:
    command = _cli_help.polish(_cli.typer.main.get_command(_cli.app))
    hoist = _cli_help.hoist_global_options
    assert hoist(command, ["approve", "--job-name", "-v", "-v"]) == [
        "-v",
        "approve",
        "--job-name",
        "-v",
    ]
    assert hoist(command, ["orb", "pack", "--log-format=json"]) == [
        "--log-format=json",
        "orb",
        "pack",
    ]
    assert hoist(command, ["trace", PID, "--", "-v"]) == ["trace", PID, "--", "-v"]
    assert hoist(command, ["-v", "status"]) == ["-v", "status"]


@pytest.mark.parametrize(
    "args",
    [["approve", "--bogus"], ["trigger"], ["status", "--timeout"], ["nope"], ["--bogus"]],
)
def test_usage_errors_look_like_every_other_error(world: World, args: list[str]) -> None:
    result = world.cli(*args)
    assert result.code == 2
    lines = result.err.strip().splitlines()
    assert lines[0].startswith("circleback: error: "), result.err
    assert lines[1].startswith("  hint: Run 'circleback"), result.err
    assert "Usage:" not in result.err
    assert result.out == ""


def test_usage_errors_under_ci_are_json_lines(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CI", "true")
    capsys.readouterr()
    assert _cli.run(["approve", "--bogus"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    event = json.loads(line)
    assert event["level"] == "error"
    assert "--bogus" in event["event"]
    assert "--help" in event["hint"]


@pytest.mark.parametrize(
    ("value", "json_lines"),
    [("true", True), ("1", True), ("yes", True), ("false", False), ("0", False), ("", False)],
)
def test_ci_false_means_not_ci(
    world: World,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    value: str,
    json_lines: bool,
) -> None:
    monkeypatch.setenv("CI", value)
    capsys.readouterr()
    assert _cli.run(["status"]) == 2
    first = capsys.readouterr().err.splitlines()[0]
    assert first.startswith("{") is json_lines, first


# -- approve and status output -------------------------------------------------------------


def test_approve_json_when_not_triggered_has_every_documented_field(world: World) -> None:
    result = world.cli("approve", "--pipeline-id", "", "--json")
    assert result.code == 0
    assert result.json() == {
        "outcome": "not_triggered",
        "upstream_pipeline_id": None,
        "project_slug": None,
        "workflow_id": None,
        "workflow_name": None,
        "job_id": None,
        "job_name": None,
        "warnings": [],
    }


def test_a_workflow_name_that_does_not_exist_lists_the_ones_that_do(world: World) -> None:
    a = world.trigger("gh/acme/a2")
    result = world.cli(
        "approve", "--pipeline-id", a, "--allow-project", "gh/acme/*", "--workflow-name", "nope"
    )
    assert result.code == 3
    assert "no workflow named 'nope'" in result.err
    assert "Its workflows: 'lint', 'release'." in result.err
    assert [r["method"] for r in world.requests()] == ["POST", "GET"]  # nothing approved


def _b_fails_while_status_waits(world: World) -> str:
    a = world.upstream_on_hold()
    b = world.cli("trigger", B, "--upstream-pipeline-id", a).out.strip()

    def on_sleep(n: int) -> None:
        if n == 3:
            world.finish(B, "build-and-test-3.11", "failed", pipeline_id=b)
            world.finish_all(b)

    world.time.on_sleep = on_sleep
    return b


def test_progress_lines_are_words_not_python(world: World) -> None:
    b = _b_fails_while_status_waits(world)
    result = world.cli("status", "--pipeline-id", b)
    assert result.code == 1
    waiting = [line for line in result.err.splitlines() if "waited" in line]
    assert waiting == [
        "circleback: waited 0s for 1 pipeline (next look in 5s): gh/acme/b #1: test is "
        "running, lint is running"
    ]
    assert not re.search(r"\[\'|\d\.\d|delay=", waiting[0])


def test_a_failed_status_says_the_failure_once(world: World) -> None:
    b = _b_fails_while_status_waits(world)
    result = world.cli("status", "--pipeline-id", b)
    assert result.code == 1
    assert result.err.count("gh/acme/b #1.") == 1
    assert "downstream failed" not in result.err
    assert result.err.count("build-and-test-3.11 failed") == 1


def test_status_on_a_terminal_redraws_one_line_then_clears_it(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    b = _b_fails_while_status_waits(world)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    result = world.cli("status", "--pipeline-id", b)
    assert result.code == 1
    frames = result.err.split("\r\033[K")
    live = [f for f in frames if f.startswith("circleback: waited")]
    assert len(live) > 5  # redrawn each second of the waits
    assert "next look in 1s" in result.err
    assert re.match(r"FAILED +gh/acme/b pipeline #1", frames[-1])  # cleared before the summary
    assert world.time.sleeps[:3] == [1.0, 1.0, 1.0]


def test_a_group_alone_prints_its_help_not_an_error(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert _cli.run([]) == 2
    bare = capsys.readouterr()
    assert bare.out.startswith("Usage: circleback [OPTIONS] COMMAND")
    assert bare.err == ""
    orb = world.cli("orb")
    assert orb.code == 2
    assert orb.out.startswith("Usage: circleback orb")
    assert "error" not in orb.err
    missing = world.cli()  # only a global option: a usage error like any other
    assert missing.err.startswith("circleback: error: Missing command.")
