"""Logging: one structlog configuration in the CLI, bound context, redaction, silence.

Events are asserted with ``structlog.testing.capture_logs``; what reaches stderr is
asserted on the rendered lines, since stderr is part of the CLI's contract.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from collections.abc import Iterator

import pytest
import structlog
from structlog.testing import capture_logs

from circleback import _cli, _logging, _redact
from circleback.emulator import Emulator
from tests.relay.world import HOST, PROJECTS, TOKEN, A, B, FakeTime, WallClock, World

HOLD = "wait-for-triggered-pipeline"


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Iterator[World]:
    for name in ("CIRCLE_TOKEN", "CIRCLECI_API_KEY", "CI", "CIRCLEBACK_LOG_FORMAT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CIRCLEBACK_TOKEN", TOKEN)
    monkeypatch.setenv("CIRCLEBACK_HOST", HOST)
    fake = FakeTime()
    emu = Emulator(projects=PROJECTS, tokens=(TOKEN,), clock=WallClock(), sleep=fake.sleep)
    runtime = _cli.Runtime(transport=emu.transport(), sleep=fake.sleep, clock=fake.clock)
    monkeypatch.setattr(_cli, "RUNTIME", runtime)
    w = World(emu=emu, time=fake, capsys=capsys)
    yield w
    w.api.close()


def _run(world: World, *args: str) -> tuple[int, str, str]:
    world.capsys.readouterr()
    code = _cli.run(list(args))
    captured = world.capsys.readouterr()
    return code, captured.out, captured.err


def _finished_b(world: World) -> tuple[str, str]:
    a = world.upstream_on_hold()
    b = world.trigger(B, **{"triggering-pipeline-id": a})
    world.finish_all(b)
    return a, b


def test_events_carry_the_command_and_its_pipeline_ids(world: World) -> None:
    a, b = _finished_b(world)
    approve = ["approve", "--pipeline-id", a, "--allow-project", "gh/acme/*"]
    approve += ["--downstream-pipeline-id", b]
    assert _run(world, *approve)[0] == 0
    with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as events:
        code, _, _ = _run(world, *approve)
    assert code == 0
    done = [e for e in events if e["event"] == "already approved; nothing to do"]
    assert done == [
        {
            "event": "already approved; nothing to do",
            "log_level": "info",
            "job": HOLD,
            "command": "approve",
            "upstream_pipeline_id": a,
        }
    ]


def test_json_under_ci_with_library_records_and_bound_context(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, b = _finished_b(world)
    monkeypatch.setenv("CI", "true")
    code, _out, err = _run(world, "-v", "status", "--pipeline-id", b)
    assert code == 0
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    requests = [e for e in lines if e["event"] == "request"]
    assert requests
    for event in requests:
        assert event["logger"] == "circleback.client"
        assert event["command"] == "status"
        assert event["pipeline_id"] == b
        assert event["level"] == "debug"
        assert event["timestamp"].endswith("Z")
        assert list(event)[:3] == ["event", "level", "logger"]


def test_console_lines_on_a_terminal_leave_the_context_out(world: World) -> None:
    _, b = _finished_b(world)
    code, _, err = _run(world, "-v", "status", "--pipeline-id", b)
    assert code == 0
    requests = [line for line in err.splitlines() if line.startswith("circleback: request")]
    assert requests
    for line in requests:
        assert "status=200" in line
        assert "pipeline_id=" not in line
        assert "command=" not in line


def test_an_error_is_one_line_and_a_hint(world: World) -> None:
    code, _, err = _run(world, "status", "--pipeline-id", "nope")
    assert code == 2
    assert err.splitlines() == [
        "circleback: error: pipeline id 'nope' is not a UUID.",
        "  hint: Pass the pipeline id exactly as CircleCI shows it (8-4-4-4-12 hex digits).",
    ]


def test_the_redaction_processor_reaches_into_every_value() -> None:
    _redact.clear()
    _redact.register(TOKEN)
    try:
        event = {
            "event": f"saw {TOKEN}",
            "nested": {"list": [TOKEN, 1], "tuple": (f"x{TOKEN}y",)},
            "error": ValueError(f"bad {TOKEN}"),
        }
        clean = _logging.redact(None, "info", event)
        untouched = {"event": "no secret here", "n": 1, "list": ["a", "*"]}
        assert _logging.redact(None, "info", dict(untouched)) == untouched
    finally:
        _redact.clear()
    assert TOKEN not in repr(clean)
    assert clean["event"] == "saw **********"
    assert clean["nested"] == {"list": ["**********", 1], "tuple": ("x**********y",)}
    assert clean["error"] == "bad **********"


@pytest.mark.parametrize("json_format", [True, False])
def test_the_line_without_structlog_matches_the_configured_chain(json_format: bool) -> None:
    """The no-op approve renders without structlog; a reader must not tell the difference."""
    light, full = io.StringIO(), io.StringIO()
    _logging.emit("info", "nothing to do", json_format=json_format, job="j", stream=light)
    _logging.configure(verbose=False, json_format=json_format, stream=full)
    try:
        structlog.stdlib.get_logger("circleback.cli").info("nothing to do", job="j")
    finally:
        _logging.reset()
    if json_format:
        a, b = json.loads(light.getvalue()), json.loads(full.getvalue())
        assert a.pop("timestamp")[:10] == b.pop("timestamp")[:10]
        assert list(a.items()) == list(b.items())
    else:
        assert light.getvalue() == full.getvalue() == "circleback: nothing to do (job=j)\n"


_SILENT = """
import httpx
from circleback.client import CircleCIClient, RetryPolicy
answers = iter([httpx.Response(500), httpx.Response(404, json={"message": "Not found."})])
transport = httpx.MockTransport(lambda request: next(answers))
with CircleCIClient(token="t" * 40, transport=transport, sleep=lambda s: None) as client:
    try:
        client.get_pipeline("5034460f-c7c4-4c43-9457-de07e2029e7b")
    except Exception as exc:
        assert type(exc).__name__ == "NotFound", exc
"""


def test_the_library_is_silent_unless_configured() -> None:
    """A retry logs at info; nobody configured logging, so nothing may be printed."""
    done = subprocess.run([sys.executable, "-c", _SILENT], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert done.stderr == ""


def test_structlog_is_left_as_found_after_a_cli_run(world: World) -> None:
    a, b = _finished_b(world)
    code, _, err = _run(
        world, "approve", "--pipeline-id", a, "--allow-project", A, "--downstream-pipeline-id", b
    )
    assert code == 0, err
    assert structlog.get_config()["processors"] == structlog.get_config()["processors"][:]
    assert not any(
        p is _logging.redact or isinstance(p, _logging._Renderer)
        for p in structlog.get_config()["processors"]
    )
    assert structlog.contextvars.get_contextvars() == {}
