"""Issue 11's "Why" cases, end to end through the CLI on the emulator's realistic defaults.

Each test is one way circleback broke its promises on CircleCI as it is observed: async
creation, no parameters in ``trigger_parameters``, errored pipelines for undeclared
parameters, dynamic config, serial groups, slow workflow creation.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import httpx
import pytest

from circleback import _cli
from tests.relay.world import CONFIGS, A, B, World

HOLD = "wait-for-triggered-pipeline"
NIL = "00000000-0000-0000-0000-000000000000"


def posts(world: World) -> list[dict[str, Any]]:
    return [r for r in world.requests() if r["method"] == "POST"]


def pipeline_dump(world: World, pipeline_id: str) -> dict[str, Any]:
    return next(p for p in world.emu.state_dump()["pipelines"] if p["id"] == pipeline_id)


# -- trigger makes sure B will call back ----------------------------------------------------


def test_trigger_fails_when_b_runs_no_workflow_on_that_branch(world: World) -> None:
    a = world.upstream_on_hold()
    result = world.cli("trigger", "gh/acme/b-filtered", "--upstream-pipeline-id", a)
    assert result.code == 1, result.err
    assert "will never call back" in result.err
    assert "ran no workflow" in result.err


def test_trigger_fails_when_a_tag_trigger_hits_jobs_without_tag_filters(world: World) -> None:
    a = world.upstream_on_hold()
    result = world.cli("trigger", B, "--upstream-pipeline-id", a, "--tag", "v1.0.0")
    assert result.code == 1, result.err
    assert "ran no workflow" in result.err
    assert "tag" in result.err


def test_trigger_fails_when_b_never_uses_the_callback_parameter(world: World) -> None:
    a = world.upstream_on_hold()
    result = world.cli("trigger", "gh/acme/b-no-callback", "--upstream-pipeline-id", a)
    assert result.code == 2, result.err
    assert "does not use 'triggering-pipeline-id' anywhere" in result.err
    assert "environment:" in result.err


def test_trigger_refuses_an_upstream_id_that_does_not_exist(world: World) -> None:
    world.emu.clear_request_log()
    result = world.cli("trigger", B, "--upstream-pipeline-id", NIL)
    assert result.code == 2, result.err
    assert f"Upstream pipeline {NIL} does not exist" in result.err
    assert posts(world) == []  # nothing created


def test_trigger_waits_while_b_is_pending_then_confirms(world: World) -> None:
    a = world.upstream_on_hold()
    world.emu.set_switches(creation_delay=20.0, workflow_delay=10.0)
    result = world.cli("trigger", B, "--upstream-pipeline-id", a)
    assert result.code == 0, result.err
    assert world.time.sleeps  # it waited, backing off
    assert world.time.sleeps == sorted(world.time.sleeps)


def test_trigger_names_the_parameter_b_errored_on(world: World) -> None:
    a = world.upstream_on_hold()
    result = world.cli("trigger", B, "--upstream-pipeline-id", a, "-p", "requestor=prod")
    assert result.code == 1, result.err
    assert "Unexpected argument(s): requestor" in result.err
    assert "does not declare 'requestor'" in result.err


# -- status: the completion rule ------------------------------------------------------------


def test_status_does_not_pass_a_dynamic_config_before_its_continuation(world: World) -> None:
    # Why: between B's setup workflow and the continuation, only the setup workflow exists
    # and the pipeline is not `created`; status passed A although B's tests later failed.
    a = world.upstream_on_hold()
    b = world.cli("trigger", "gh/acme/b-dynamic", "--upstream-pipeline-id", a).out.strip()
    world.finish("gh/acme/b-dynamic", "generate", pipeline_id=b)
    key = pipeline_dump(world, b)["continuation_key"]
    continuation = (CONFIGS / "b_dynamic_continue.yml").read_text()

    def later(n: int) -> None:
        if n == 2:
            world.emu.continue_pipeline(key, continuation, {})
        if n == 3:
            world.finish("gh/acme/b-dynamic", "tests", "failed", pipeline_id=b)

    world.time.sleeps.clear()
    world.time.on_sleep = later
    result = world.cli("status", "--pipeline-id", b, "--json")
    assert result.code == 1, result.err
    assert len(world.time.sleeps) >= 3  # it waited through the continuation
    doc = result.json()
    assert [w["name"] for w in doc["pipelines"][0]["workflows"]] == ["setup", "tests"]


def test_status_waits_for_a_workflow_queued_behind_a_serial_group(world: World) -> None:
    # Why: a B workflow `queued` behind a serial group was taken as final and failed A.
    a = world.upstream_on_hold()
    first = world.downstream(a, "gh/acme/b-serial")
    second = world.downstream(a, "gh/acme/b-serial")
    world.finish("gh/acme/b-serial", "build", pipeline_id=first)
    world.finish("gh/acme/b-serial", "build", pipeline_id=second)
    assert world.workflows(second)[0]["status"] == "queued"

    def later(n: int) -> None:
        if n == 1:
            world.finish_all(first)  # the first deploy ends; the second one starts
        else:
            world.finish_all(first)
            world.finish_all(second)

    world.time.sleeps.clear()
    world.time.on_sleep = later
    result = world.cli("status", "--pipeline-id", second)
    assert result.code == 0, result.err  # queued was taken as final: exit 1 at once
    assert "release is queued" in result.err  # it said what it waited for


def test_a_preempted_serial_group_job_is_reported_and_can_be_required(
    world: World, tmp_path: Path
) -> None:
    # Why: a preempted job (not_run inside a `success` workflow) passed A silently.
    a = world.upstream_on_hold()
    older, newer, newest = (world.downstream(a, "gh/acme/b-serial") for _ in range(3))
    for pid in (older, newer, newest):
        world.finish("gh/acme/b-serial", "build", pipeline_id=pid)
    world.finish_all(newer)  # newer's deploy was preempted by newest: not_run
    world.finish_all(newer)
    assert world.workflows(newer)[0]["status"] == "success"
    junit = tmp_path / "junit.xml"
    plain = world.cli("status", "--pipeline-id", newer, "--junit", str(junit))
    assert plain.code == 0, plain.err
    assert "deploy did not run (not_run)" in plain.err
    assert "not_run: deploy" in junit.read_text()
    strict = world.cli("status", "--pipeline-id", newer, "--require-job", "deploy", "--json")
    assert strict.code == 1
    assert strict.json()["required_jobs"] == [
        {"name": "deploy", "statuses": ["not_run"], "success": False}
    ]
    assert "required job deploy" in strict.err
    missing = world.cli("status", "--pipeline-id", newer, "--require-job", "no-such-job")
    assert missing.code == 1
    assert "not found in any downstream workflow" in missing.err


def test_status_does_not_decide_no_workflows_after_two_quick_looks(world: World) -> None:
    # Why: "ran no workflows" after two looks 5 s apart fails a slow CircleCI.
    a = world.upstream_on_hold()
    world.emu.set_switches(workflow_delay=40.0)
    b = world.downstream(a)
    world.time.on_sleep = lambda n: world.finish_all(b)
    result = world.cli("status", "--pipeline-id", b)
    assert result.code == 0, result.err


def test_status_fails_a_created_pipeline_that_never_runs_a_workflow(world: World) -> None:
    a = world.upstream_on_hold()
    b = world.downstream(a, "gh/acme/b-filtered")
    result = world.cli("status", "--pipeline-id", b)
    assert result.code == 1, result.err
    assert "ran no workflow" in result.err
    assert world.time.now >= 60  # decided only after the grace


class UnknownStatus(httpx.BaseTransport):
    """The emulator, with every workflow's status replaced by one circleback does not know."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if not request.url.path.endswith("/workflow"):
            return response
        response.read()
        body = response.json()
        for item in body.get("items", []):
            item["status"] = "paused-by-policy"
        return httpx.Response(response.status_code, json=body)


def test_an_unknown_workflow_status_is_waited_on_then_times_out(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = world.upstream_on_hold()
    b = world.downstream(a)
    world.finish_all(b)
    runtime = _cli.Runtime(
        transport=UnknownStatus(world.emu.transport()),
        sleep=world.time.sleep,
        clock=world.time.clock,
    )
    monkeypatch.setattr(_cli, "RUNTIME", runtime)
    result = world.cli("status", "--pipeline-id", b, "--timeout", "2m")
    assert result.code == 4, result.err
    assert "a status circleback does not know" in result.err
    assert world.time.now >= 120


# -- status never gives up early, and reports on timeout -------------------------------------


def test_status_never_stops_before_its_timeout_and_still_reports(
    world: World, tmp_path: Path
) -> None:
    # Why: --timeout 12s gave up after 6.7 s, printed no --json and wrote no --junit.
    a = world.upstream_on_hold()
    b = world.downstream(a)
    junit = tmp_path / "out" / "junit.xml"
    result = world.cli(
        "status", "--pipeline-id", b, "--timeout", "12s", "--json", "--junit", str(junit)
    )
    assert result.code == 4, result.err
    assert world.time.now >= 12
    assert "Gave up after 12s" in result.err
    doc = result.json()
    assert doc["timed_out"] is True
    assert doc["pipelines"][0]["finished"] is False
    assert "running" in doc["pipelines"][0]["waiting_for"]
    case = ET.parse(junit).getroot().find("./testsuite/testcase")
    assert case is not None
    failure = case.find("failure")
    assert failure is not None
    assert "still running" in (failure.get("message") or "")


def test_status_timeout_says_what_it_was_waiting_for(world: World) -> None:
    # Its last look was due at the deadline, so it always "gave up waiting for: an answer
    # still arriving (Stopped at the deadline during GET ...)", not for B's workflows.
    a = world.upstream_on_hold()
    b = world.downstream(a)
    result = world.cli("status", "--pipeline-id", b, "--timeout", "12s")
    assert result.code == 4, result.err
    error = result.err[result.err.index("error: Gave up") :]
    assert "gh/acme/b #" in error
    assert "is running" in error
    assert "an answer still arriving" not in error


def test_status_default_timeout_is_not_cut_short(world: World) -> None:
    a = world.upstream_on_hold()
    b = world.downstream(a)
    result = world.cli("status", "--pipeline-id", b)
    assert result.code == 4
    assert world.time.now >= 30 * 60


# -- output paths ---------------------------------------------------------------------------


def test_an_unwritable_state_file_is_refused_before_anything_is_created(
    world: World, tmp_path: Path
) -> None:
    a = world.upstream_on_hold()
    blocker = tmp_path / "ws"
    blocker.write_text("a file where a directory should be")
    world.emu.clear_request_log()
    result = world.cli(
        "trigger", B, "--upstream-pipeline-id", a, "--state-file", str(blocker / "s.json")
    )
    assert result.code == 2, result.err
    assert "cannot be written" in result.err
    assert world.requests() == []


def test_an_unwritable_junit_is_refused_before_the_wait(world: World, tmp_path: Path) -> None:
    a = world.upstream_on_hold()
    b = world.downstream(a)
    world.emu.clear_request_log()
    result = world.cli("status", "--pipeline-id", b, "--junit", str(tmp_path))
    assert result.code == 2
    assert world.requests() == []


def test_a_junit_write_failure_after_the_wait_keeps_the_result(
    world: World, tmp_path: Path
) -> None:
    # Why: an unwritable --junit discarded the report and turned exit 1 into 3.
    a = world.upstream_on_hold()
    b = world.downstream(a)
    world.finish_all(b, "failed")
    junit = tmp_path / "out" / "junit.xml"

    def break_the_path(n: int) -> None:
        if junit.parent.is_dir():
            junit.parent.rmdir()
            junit.parent.write_text("now a file")

    world.time.on_sleep = break_the_path
    world.finish_all(b, "failed")
    # B is already failed: make the wait take one look by failing a fresh pipeline later.
    c = world.downstream(a)
    world.time.on_sleep = lambda n: (break_the_path(n), world.finish_all(c, "failed"))
    result = world.cli("status", "--pipeline-id", c, "--junit", str(junit), "--json")
    assert result.code == 1, result.err
    assert "could not write the JUnit report" in result.err
    assert result.json()["success"] is False


def test_two_downstreams_of_one_project_are_both_judged(world: World, tmp_path: Path) -> None:
    # Why: two triggers into the same project kept one entry; status judged one and
    # passed although the other failed.
    a = world.upstream_on_hold()
    state = tmp_path / "s.json"
    for _ in range(2):
        assert (
            world.cli("trigger", B, "--upstream-pipeline-id", a, "--state-file", str(state)).code
            == 0
        )
    first, second = (d["pipeline_id"] for d in json.loads(state.read_text())["downstream"])
    world.finish_all(first, "failed")
    world.finish_all(second)
    result = world.cli("status", "--state-file", str(state))
    assert result.code == 1
    assert f"{B} #1" in result.err


# -- the chain guard on evidence CircleCI exposes --------------------------------------------


def test_the_chain_guard_refuses_a_b_a_cycle_without_trigger_parameters(world: World) -> None:
    # Why: the guard walked up through trigger_parameters, which never carry the callback
    # parameter on CircleCI, so A → B → A passed silently.
    a = world.upstream_on_hold()
    b = world.cli("trigger", B, "--upstream-pipeline-id", a).out.strip()
    assert "trigger_parameters" not in world.api.get(f"/pipeline/{b}").json()
    world.emu.clear_request_log()
    result = world.cli("trigger", A, "--upstream-pipeline-id", b)
    assert result.code == 2, result.err
    assert f"{A} #1 → {B} #1 → {A}" in result.err
    assert posts(world) == []


def test_the_chain_guard_says_when_it_cannot_see_further_up(world: World) -> None:
    # A was itself triggered with an id nobody can read: the guard stops there, says so,
    # and lets the trigger go (it refuses only what it can prove).
    a = world.trigger(A, **{"triggering-pipeline-id": "5034460f-c7c4-4c43-9457-de07e2029e7b"})
    result = world.cli("trigger", B, "--upstream-pipeline-id", a)
    assert result.code == 0, result.err
    assert "cannot see further up" in result.err
    assert "cannot read upstream pipeline 5034460f-c7c4-4c43-9457-de07e2029e7b" in result.err


# -- creation delays on fake time -----------------------------------------------------------


@pytest.fixture
def slow(world: World, monkeypatch: pytest.MonkeyPatch) -> World:
    """The world, with an emulator whose clock moves exactly as the CLI sleeps."""
    from circleback.emulator import Emulator, clock_following
    from tests.relay.world import PROJECTS, TOKEN

    emu = Emulator(projects=PROJECTS, tokens=(TOKEN,), clock=clock_following(world.time.clock))
    monkeypatch.setattr(
        _cli,
        "RUNTIME",
        _cli.Runtime(transport=emu.transport(), sleep=world.time.sleep, clock=world.time.clock),
    )
    world.api.close()
    slowed = World(emu=emu, time=world.time, capsys=world.capsys)
    a = slowed.trigger(A)
    slowed.emu.set_switches(creation_delay=20.0, workflow_delay=10.0)
    slowed.upstream = a  # type: ignore[attr-defined]
    return slowed


def test_trigger_waits_out_creation_and_workflow_delays(slow: World) -> None:
    # Why: a trigger answers `pending`; B's workflows come seconds later. trigger must not
    # report success before it knows B will call back, nor give up at the first look.
    result = slow.cli("trigger", B, "--upstream-pipeline-id", slow.upstream)  # type: ignore[attr-defined]
    assert result.code == 0, result.err
    assert slow.time.now >= 30  # created after 20 s, workflows 10 s later
    assert "could not yet confirm" not in result.err


def test_trigger_goes_on_with_a_warning_when_b_stays_pending(slow: World) -> None:
    slow.emu.set_switches(creation_delay=3600.0)
    result = slow.cli("trigger", B, "--upstream-pipeline-id", slow.upstream)  # type: ignore[attr-defined]
    assert result.code == 0, result.err
    assert "could not yet confirm" in result.err  # status judges it later
    assert slow.time.now <= 130  # bounded by the confirmation wait (120 s)
