"""The fault matrix, command by scenario, through the CLI against the emulator.

Every cell checks its expected exit code and the invariants that hold under any fault:
no traceback, no token in any output, never a second downstream pipeline, never a hold
approved that should not be (nor one reported approved that is not), and ``status``
never exits 0 for a downstream pipeline that failed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from circleback import _cli
from circleback.emulator.server import make_server
from tests.relay.world import TOKEN, B, Result, World
from tests.reliability import matrix
from tests.reliability.matrix import CELLS, LIST_TARGETS, TARGETS, Expect, Scenario

HOLD = "wait-for-triggered-pipeline"
CALLBACK = "triggering-pipeline-id"


class ShortTimeout(httpx.HTTPTransport):
    """The network, with a client read timeout short enough to test against a slow server."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.extensions["timeout"] = {"connect": 2.0, "read": 0.25, "write": 2.0, "pool": 2.0}
        return super().handle_request(request)


@pytest.fixture
def net(world: World, scenario: Scenario, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    """The world, reached over a real socket when the scenario says so."""
    if not scenario.loopback:
        yield world
        return
    with make_server(world.emu) as server:
        monkeypatch.setenv("CIRCLEBACK_HOST", server.url)
        runtime = _cli.Runtime(
            transport=ShortTimeout(), sleep=world.time.sleep, clock=world.time.clock
        )
        monkeypatch.setattr(_cli, "RUNTIME", runtime)
        yield world


def inject(world: World, scenario: Scenario, command: str) -> None:
    fault = scenario.injection
    if fault.page is not None:
        if command == "trigger":  # the list is read only to reconcile a lost answer
            world.emu.add_fault("lost_response", method="POST", path=TARGETS["trigger"][1])
        world.emu.add_fault(
            "unexpected_shape",
            method="GET",
            path=LIST_TARGETS[command],
            count=fault.count,
            body=matrix.page_body(scenario, command),
        )
        return
    method, path = TARGETS[command]
    world.emu.add_fault(
        fault.kind,  # type: ignore[arg-type]
        method=method,
        path=path,
        count=fault.count,
        status=fault.status,
        retry_after=fault.retry_after,
        seconds=fault.seconds,
    )


def run(world: World, scenario: Scenario, command: str, *args: str) -> Result:
    world.emu.clear_request_log()
    world.time.sleeps.clear()
    inject(world, scenario, command)
    result = world.cli(*args)
    world.emu.clear_faults()
    fired = {r["fault"] for r in world.requests()}
    assert scenario.injection.kind in fired, "the fault never fired"
    return result


def assert_clean(world: World, result: Result, code: int, scenario: Scenario) -> None:
    assert result.code == code, (scenario.id, result.err)
    assert "Traceback" not in result.err
    assert TOKEN not in result.out + result.err
    if code != 0:
        assert "circleback: error: " in result.err
        assert "hint: " in result.err
    if scenario.injection.retry_after is not None and code == 0:
        assert float(scenario.injection.retry_after) in world.time.sleeps


def pipelines_carrying(world: World, upstream: str) -> list[dict[str, Any]]:
    return [
        p
        for p in world.emu.state_dump()["pipelines"]
        if p["project_slug"] == B and p["sent_parameters"].get(CALLBACK) == upstream
    ]


# -- the three commands -------------------------------------------------------------------


def check_trigger(world: World, scenario: Scenario, expect: Expect, tmp_path: Path) -> None:
    a = world.upstream_on_hold()
    if scenario.switches:  # only B's pipelines see the row's layout or delay
        world.emu.set_switches(dict(scenario.switches))
    state = tmp_path / "downstream.json"
    result = run(
        world,
        scenario,
        "trigger",
        "trigger",
        B,
        "--upstream-pipeline-id",
        a,
        "--state-file",
        str(state),
    )
    assert_clean(world, result, expect.code, scenario)
    ours = pipelines_carrying(world, a)
    assert len(ours) <= 1, "a second downstream pipeline was created"
    posts = [r for r in world.requests() if r["method"] == "POST"]
    if expect.posts is not None:
        assert len(posts) == expect.posts, posts
    if expect.code == 0:
        assert len(ours) == 1
        assert result.out.strip() == ours[0]["id"]
        recorded = json.loads(state.read_text())["downstream"]
        assert [d["pipeline_id"] for d in recorded] == [ours[0]["id"]]
    else:
        assert not state.exists()


def check_approve(world: World, scenario: Scenario, expect: Expect, tmp_path: Path) -> None:
    a = world.upstream_on_hold()
    b = world.downstream(a)
    hold_id = next(
        j["id"]
        for j in world.emu.state_dump()["jobs"]
        if j["pipeline_id"] == a and j["name"] == HOLD
    )
    result = run(
        world,
        scenario,
        "approve",
        "approve",
        "--pipeline-id",
        a,
        "--json",
        "--allow-project",
        "gh/acme/*",
        "--downstream-pipeline-id",
        b,
    )
    assert_clean(world, result, expect.code, scenario)
    approves = [r["path"] for r in world.requests() if "/approve/" in r["path"]]
    assert all(p.endswith(f"/approve/{hold_id}") for p in approves), approves
    hold = world.job_status(a, HOLD)
    if expect.code == 0:
        assert hold == "success"
        assert result.json()["outcome"] in {"approved", "already_approved"}
    else:
        assert hold == "on_hold"
        # --json: one document all the same, saying why nothing was released
        document = result.json()
        assert document["outcome"] == "error"
        assert document["error"]
    assert world.job_status(a, "check") == ("running" if hold == "success" else "blocked")


def check_status(world: World, scenario: Scenario, expect: Expect, tmp_path: Path) -> None:
    a = world.upstream_on_hold()
    good = world.trigger(B, **{CALLBACK: a})
    world.finish_all(good, "success")
    bad = world.trigger(B, **{CALLBACK: a})
    world.finish(B, "build-and-test-3.12", "failed", pipeline_id=bad)
    world.finish_all(bad, "success")
    for pid, code in ((good, expect.code), (bad, expect.failed_code)):
        assert code is not None
        result = run(
            world, scenario, "status", "status", "--pipeline-id", pid, "--json", "--timeout", "10m"
        )
        assert_clean(world, result, code, scenario)
        if pid == bad:
            assert result.code != 0, "status passed a failed downstream pipeline"
        if result.out:
            assert result.json()["success"] is (result.code == 0)


CHECKS = {"trigger": check_trigger, "approve": check_approve, "status": check_status}


@pytest.mark.parametrize(("scenario", "command"), CELLS, ids=[f"{c}-{s.id}" for s, c in CELLS])
def test_fault_matrix(net: World, tmp_path: Path, scenario: Scenario, command: str) -> None:
    CHECKS[command](net, scenario, scenario.expect[command], tmp_path)


def test_the_documented_table_is_generated_from_these_scenarios() -> None:
    document = matrix.DOC.read_text(encoding="utf-8")
    assert matrix.replace_table(document) == document, (
        "docs/reliability.md is stale: run .venv/bin/python -m tests.reliability.matrix"
    )


def test_every_command_meets_every_required_fault() -> None:
    kinds = {(s.injection.kind, s.injection.page) for s in matrix.SCENARIOS}
    assert {("status", None), ("drop", None), ("slow", None), ("truncate", None)} <= kinds
    assert {("html", None), ("lost_response", None)} <= kinds
    assert {("unexpected_shape", "repeat"), ("unexpected_shape", "empty")} <= kinds
    statuses = {s.injection.status for s in matrix.SCENARIOS}
    assert {429, 500, 502, 503, 504} <= statuses
    for scenario in matrix.SCENARIOS:
        if scenario.id.startswith("lost-response-"):
            assert set(scenario.expect) == {"trigger"}, scenario.id  # a layout: trigger only
            continue
        expected = set(matrix.COMMANDS) - ({"status"} if scenario.id == "lost-response" else set())
        assert set(scenario.expect) == expected, scenario.id
    layouts = {s.switches.get("trigger_parameters", "absent") for s in matrix.SCENARIOS}
    assert layouts == {"absent", "namespaces", "echo"}  # a lost answer under each layout
