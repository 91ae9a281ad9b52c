"""Who may release a hold (issue 12's link proof) and a sweep that survives a failing page.

Attacks from issue 12's "Why": approve releasing the hold of a pipeline that triggered a
different project; sweep releasing a forged hold whose record names someone else's B.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from circleback import _cli
from circleback.relay.discovery import RECORD_ARTIFACT
from tests.relay.world import A, B, World

HOLD = "wait-for-triggered-pipeline"
C = "gh/acme/b-hold"


def store_record(world: World, pipeline_id: str, state: Path) -> None:
    """What the orb's trigger job does: store the state file as an artifact."""
    (wf,) = [w for w in world.workflows(pipeline_id) if "trigger" in world.jobs(w["id"])]
    job_id = world.jobs(wf["id"])["trigger"]["id"]
    world.emu.add_artifact(job_id, RECORD_ARTIFACT, state.read_bytes())


def triggered(world: World, a: str, slug: str, state: Path) -> str:
    result = world.cli("trigger", slug, "--upstream-pipeline-id", a, "--state-file", str(state))
    assert result.code == 0, result.err
    return result.out.strip()


def approve_as(world: World, a: str, b: str) -> tuple[int, str]:
    result = world.cli(
        "approve", "--pipeline-id", a, "--allow-project", "gh/acme/*",
        "--downstream-pipeline-id", b, "--json",
    )  # fmt: skip
    return result.code, result.err


def test_approve_refuses_a_b_that_a_did_not_trigger(world: World, tmp_path: Path) -> None:
    # Why: A triggers gh/acme/c and waits; anyone who triggers gh/acme/b with A's id got
    # A's hold released, because the allow-list gh/acme/* was the only check.
    a = world.upstream_on_hold()
    state = tmp_path / "a.json"
    triggered(world, a, C, state)
    store_record(world, a, state)
    forged = world.downstream(a)  # B, triggered by someone else with A's id
    code, err = approve_as(world, a, forged)
    assert code == 2, err
    assert "Nothing was released" in err
    assert f"lists {C} #1, not this pipeline" in err
    assert world.job_status(a, HOLD) == "on_hold"


def test_approve_releases_the_b_that_a_recorded(world: World, tmp_path: Path) -> None:
    a = world.upstream_on_hold()
    state = tmp_path / "a.json"
    b = triggered(world, a, B, state)
    store_record(world, a, state)
    world.emu.clear_request_log()
    code, err = approve_as(world, a, b)
    assert code == 0, err
    assert world.job_status(a, HOLD) == "success"
    # A's record settled it: B's config was not even read.
    assert not any(r["path"].endswith("/config") for r in world.requests())


def test_approve_refuses_a_b_whose_config_does_not_carry_a(world: World) -> None:
    a = world.upstream_on_hold()
    other = world.upstream_on_hold()
    b = world.downstream(other)  # B of another A: its config carries that A's id
    code, err = approve_as(world, a, b)
    assert code == 2, err
    assert "does not carry upstream id" in err
    assert world.job_status(a, HOLD) == "on_hold"


def test_approve_without_its_own_id_releases_nothing(world: World) -> None:
    a = world.upstream_on_hold()
    world.downstream(a)
    result = world.cli("approve", "--pipeline-id", a, "--allow-project", A)
    assert result.code == 3
    assert "own id is not known" in result.err
    assert world.job_status(a, HOLD) == "on_hold"


def test_sweep_never_releases_a_forged_hold(world: World, tmp_path: Path) -> None:
    # Why: a contributor pipeline of A that stores its own downstream.json naming any
    # finished B pipeline, then waits on a hold, was released by sweep.
    honest = world.upstream_on_hold()
    honest_state = tmp_path / "honest.json"
    b = triggered(world, honest, B, honest_state)
    store_record(world, honest, honest_state)
    world.finish_all(b, "failed")  # B finished without calling back
    forger = world.upstream_on_hold()
    store_record(world, forger, honest_state)  # names the honest pipeline's B
    result = world.cli("sweep", A, "--grace", "0s", "--json")
    assert result.code == 0, result.err
    findings = {f["pipeline_id"]: f for f in result.json()["findings"]}
    assert findings[honest]["action"] == "released"
    assert findings[forger]["action"] == "not_proven"
    assert "does not carry this pipeline's id" in findings[forger]["reason"]
    assert world.job_status(honest, HOLD) == "success"
    assert world.job_status(forger, HOLD) == "on_hold"


@pytest.mark.parametrize("ref", ["branch", "tag"])
def test_sweep_never_takes_a_pushed_ref_for_a_carried_id(
    world: World, tmp_path: Path, ref: str
) -> None:
    # A contributor of A needs no trigger rights to plant "evidence": pushing a branch (or
    # a tag) named after their held pipeline's id to any project whose config uses
    # << pipeline.git.branch >> puts that id into the compiled config of a pipeline they
    # then name in their own record. That id was pushed, not passed by a trigger.
    forger = world.upstream_on_hold()
    response = world.api.post("/project/gh/acme/b-branch/pipeline", json={ref: f"x/{forger}"})
    assert response.status_code == 201, response.text
    planted = response.json()["id"]
    world.finish_all(planted, "success")
    number = response.json()["number"]
    record = {"project_slug": "gh/acme/b-branch", "pipeline_id": planted, "number": number}
    state = tmp_path / "forged.json"
    state.write_text(json.dumps({"version": 1, "downstream": [record]}))
    store_record(world, forger, state)
    result = world.cli("sweep", A, "--grace", "0s", "--json")
    findings = {f["pipeline_id"]: f for f in result.json()["findings"]}
    assert findings[forger]["action"] == "not_proven", findings[forger]
    assert world.job_status(forger, HOLD) == "on_hold"


class FailingPages(httpx.BaseTransport):
    """The emulator, but the first ``failures`` requests for a later page of A's
    pipelines answer 500."""

    def __init__(self, inner: httpx.BaseTransport, failures: int) -> None:
        self.inner = inner
        self.failures = failures

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        later_page = "page-token" in request.url.params
        if later_page and request.url.path.endswith(f"{A}/pipeline") and self.failures > 0:
            self.failures -= 1
            return httpx.Response(500, json={"message": "Internal Server Error"})
        return self.inner.handle_request(request)


def _two_orphans(world: World, tmp_path: Path) -> list[str]:
    held = []
    for n in range(2):
        a = world.upstream_on_hold()
        state = tmp_path / f"{n}.json"
        b = triggered(world, a, B, state)
        store_record(world, a, state)
        world.finish_all(b, "canceled")
        held.append(a)
    world.emu.set_page_size(1)
    return held


def _with_failures(world: World, monkeypatch: pytest.MonkeyPatch, failures: int) -> None:
    runtime = _cli.Runtime(
        transport=FailingPages(world.emu.transport(), failures),
        sleep=world.time.sleep,
        clock=world.time.clock,
    )
    monkeypatch.setattr(_cli, "RUNTIME", runtime)


def test_sweep_carries_on_past_a_failing_page_and_says_so(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Why: a failing second page ended the sweep with exit 3 after it had already
    # released a hold, and no --json document said what was done.
    older, newer = _two_orphans(world, tmp_path)
    _with_failures(world, monkeypatch, failures=10**6)
    result = world.cli("sweep", A, "--grace", "0s", "--json")
    assert result.code == 3, result.err
    doc = result.json()
    assert doc["complete"] is False
    assert [(f["pipeline_id"], f["action"]) for f in doc["findings"]] == [(newer, "released")]
    (problem,) = doc["problems"]
    assert "after the first 1 could not be listed" in problem
    assert world.job_status(newer, HOLD) == "success"
    assert world.job_status(older, HOLD) == "on_hold"


def test_sweep_retries_a_failing_page(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    older, newer = _two_orphans(world, tmp_path)
    # More failures than the client's own attempts (6): the sweep tries the page again.
    _with_failures(world, monkeypatch, failures=9)
    result = world.cli("sweep", A, "--grace", "0s", "--json")
    assert result.code == 0, result.err
    doc = result.json()
    assert doc["complete"] is True
    assert {f["pipeline_id"] for f in doc["findings"] if f["action"] == "released"} == {
        older,
        newer,
    }


def test_fan_in_does_not_count_a_sibling_waiting_for_its_continuation_as_done(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Why: a dynamic-config sibling between its setup workflow and the continuation was
    # counted as done, so the shared hold was released before its tests ran.
    a = world.upstream_on_hold()
    state = tmp_path / "fan.json"
    b = triggered(world, a, B, state)
    dynamic = triggered(world, a, "gh/acme/b-dynamic", state)
    store_record(world, a, state)
    world.finish("gh/acme/b-dynamic", "generate", pipeline_id=dynamic)  # setup done
    world.finish_all(b)
    monkeypatch.setenv("CIRCLE_JOB", "approve-upstream")
    monkeypatch.setenv("CIRCLE_PIPELINE_ID", b)
    result = world.cli("approve", "--pipeline-id", a, "--allow-project", A, "--fan-in", "--json")
    assert result.code == 0, result.err
    assert result.json()["outcome"] == "left_for_siblings"
    assert "waiting for the continuation" in result.err
    assert world.job_status(a, HOLD) == "on_hold"


def test_approve_releases_the_hold_of_the_workflow_whose_record_lists_b(
    world: World, tmp_path: Path
) -> None:
    # A has two workflows, each with a trigger and a hold; B was triggered by "lint". Its
    # config carries A's id either way: the record decides which hold is B's to release.
    a = world.trigger("gh/acme/a2")
    for _ in range(2):
        world.finish("gh/acme/a2", "trigger", pipeline_id=a)
    state = tmp_path / "lint.json"
    b = triggered(world, a, B, state)
    (lint,) = [w for w in world.workflows(a) if w["name"] == "lint"]
    world.emu.add_artifact(
        world.jobs(lint["id"])["trigger"]["id"], RECORD_ARTIFACT, state.read_bytes()
    )
    code, err = approve_as(world, a, b)
    assert code == 0, err
    assert world.job_status(a, HOLD, workflow="lint") == "success"
    assert world.job_status(a, HOLD, workflow="release") == "on_hold"
