"""The CLI end to end against the emulator: every case the tutorial gets wrong."""

from __future__ import annotations

import json
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from tests.relay.world import TOKEN, A, B, World

HOLD = "wait-for-triggered-pipeline"
OPAQUE = "circleci/8e1a5d2c-0d9d-4bfb-9d4f-1f2b3c4d5e6f/a1b2c3d4-e5f6-4a5b-8c9d-0e1f2a3b4c5d"


def trigger_b(world: World, upstream: str, state: Path, slug: str = B) -> str:
    result = world.cli(
        "trigger", slug, "--upstream-pipeline-id", upstream, "--state-file", str(state)
    )
    assert result.code == 0, result.err
    return result.out.strip()


def approve(
    world: World, upstream: str, *extra: str, downstream: str | None = None
) -> tuple[int, str, str]:
    """Approve as a B pipeline triggered by ``upstream`` (a fresh one unless given)."""
    own = downstream or world.downstream(upstream)
    result = world.cli(
        "approve",
        "--pipeline-id",
        upstream,
        "--allow-project",
        "gh/acme/*",
        "--downstream-pipeline-id",
        own,
        *extra,
    )
    return result.code, result.out, result.err


# -- the happy path ---------------------------------------------------------------------


def test_happy_path(world: World, tmp_path: Path) -> None:
    a = world.upstream_on_hold()
    state = tmp_path / "ws" / "downstream.json"
    b = trigger_b(world, a, state)

    assert world.sent_parameters(b)["triggering-pipeline-id"] == a
    recorded = json.loads(state.read_text())["downstream"]
    assert recorded == [
        {
            "project_slug": B,
            "pipeline_id": b,
            "number": 1,
            "state": "created",
            "url": f"http://127.0.0.1/pipelines/{B}/1",
        }
    ]

    code, _, err = approve(world, a)
    assert code == 0, err
    assert world.job_status(a, HOLD) == "success"
    assert world.job_status(a, "check") == "running"

    # B approved from inside a running job: its workflows are still running at first look.
    world.time.on_sleep = lambda n: world.finish_all(b)
    junit = tmp_path / "results" / "junit.xml"
    result = world.cli("status", "--state-file", str(state), "--junit", str(junit))
    assert result.code == 0, result.err
    assert len(world.time.sleeps) == 1
    assert "all downstream pipelines succeeded" in result.err
    assert "test: success" in result.err
    assert "lint: success" in result.err
    cases = ET.parse(junit).getroot().findall("./testsuite/testcase")
    assert sorted(c.get("name") or "" for c in cases) == ["lint", "test"]
    assert all(c.find("failure") is None for c in cases)
    assert TOKEN not in result.out + result.err


def test_happy_path_request_counts(world: World, tmp_path: Path) -> None:
    a = world.upstream_on_hold()
    world.emu.clear_request_log()
    b = trigger_b(world, a, tmp_path / "s.json")
    trigger_requests = world.requests()
    world.emu.clear_request_log()
    assert approve(world, a)[0] == 0
    approve_requests = world.requests()
    world.finish_all(b)
    world.emu.clear_request_log()
    assert world.cli("status", "--pipeline-id", b).code == 0
    status_requests = world.requests()
    # The guard reads A and A's config (the way up); then the trigger; then B, B's config
    # (it must use the callback parameter) and B's workflows (it must run one).
    assert [(r["method"], r["path"].split("/", 4)[-1]) for r in trigger_requests] == [
        ("GET", a),
        ("GET", f"{a}/config"),
        ("POST", "gh/acme/b/pipeline"),
        ("GET", b),
        ("GET", f"{b}/config"),
        ("GET", f"{b}/workflow"),
    ]
    # A's workflows, the hold workflow's jobs (once), the artifacts of A's finished build
    # jobs (A's trigger record: none stored here), B and B's config (the link: an id B's
    # pushed ref carries is no evidence), the approval.
    assert [r["method"] + " " + r["path"].split("/")[3] for r in approve_requests[1:]] == [
        "GET pipeline",
        "GET workflow",
        "GET project",
        "GET project",
        "GET pipeline",
        "GET pipeline",
        "POST workflow",
    ]
    assert approve_requests[-2]["path"].endswith("/config")
    # the pipeline (for its slug), then one look (its workflows show it was created),
    # then each workflow's jobs for the report (not_run jobs, required jobs)
    assert len(status_requests) == 4


def test_trigger_json_and_parameters(world: World, tmp_path: Path) -> None:
    a = world.upstream_on_hold()
    result = world.cli(
        "trigger", B, "--upstream-pipeline-id", a, "--branch", "dev", "-p", "deploy=true", "--json"
    )
    assert result.code == 0, result.err
    doc = result.json()
    assert set(doc) == {"project_slug", "pipeline_id", "number", "state", "url"}
    params = world.sent_parameters(doc["pipeline_id"])
    assert params["deploy"] is True
    assert params["triggering-pipeline-id"] == a


def test_upstream_id_defaults_to_circle_pipeline_id(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = world.upstream_on_hold()
    monkeypatch.setenv("CIRCLE_PIPELINE_ID", a)
    result = world.cli("trigger", B)
    assert result.code == 0, result.err
    params = world.sent_parameters(result.out.strip())
    assert params["triggering-pipeline-id"] == a


# -- B's outcomes -----------------------------------------------------------------------


def test_b_failed_fails_a_with_the_failed_jobs(world: World, tmp_path: Path) -> None:
    a = world.upstream_on_hold()
    state = tmp_path / "s.json"
    b = trigger_b(world, a, state)
    assert approve(world, a)[0] == 0
    world.finish(B, "build-and-test-3.11", "failed", pipeline_id=b)
    world.finish_all(b)
    junit = tmp_path / "junit.xml"
    result = world.cli("status", "--state-file", str(state), "--junit", str(junit), "--json")
    assert result.code == 1
    doc = result.json()
    assert doc["success"] is False
    test = next(w for w in doc["pipelines"][0]["workflows"] if w["name"] == "test")
    assert test["status"] == "failed"
    assert [j["name"] for j in test["failed_jobs"]] == ["build-and-test-3.11"]
    assert "/jobs/" in test["failed_jobs"][0]["url"]
    failure = ET.parse(junit).getroot().find("./testsuite/testcase[@name='test']/failure")
    assert failure is not None
    assert "build-and-test-3.11: failed" in (failure.text or "")
    assert "- build-and-test-3.11 failed" in result.err
    assert "Downstream pipeline failed" in result.err


def test_b_canceled_fails_a(world: World, tmp_path: Path) -> None:
    a = world.upstream_on_hold()
    b = trigger_b(world, a, tmp_path / "s.json")
    assert approve(world, a)[0] == 0
    for wf in world.workflows(b):
        assert world.api.post(f"/workflow/{wf['id']}/cancel").status_code == 202
    result = world.cli("status", "--pipeline-id", b)
    assert result.code == 1
    assert "canceled" in result.err


def test_b_errored_at_creation_fails_the_trigger(world: World, tmp_path: Path) -> None:
    a = world.upstream_on_hold()
    state = tmp_path / "s.json"
    result = world.cli(
        "trigger", "gh/acme/b-broken", "--upstream-pipeline-id", a, "--state-file", str(state)
    )
    assert result.code == 1
    assert "errored at creation" in result.err
    assert "no-such-job" in result.err
    assert not state.exists()


def test_errored_pipeline_fails_status(world: World) -> None:
    b = world.trigger("gh/acme/b-broken")
    result = world.cli("status", "--pipeline-id", b)
    assert result.code == 1
    assert "error: config" in result.err


def test_undeclared_callback_parameter_is_explained(world: World) -> None:
    # CircleCI as users report it: the pipeline is created, then errors.
    a = world.upstream_on_hold()
    result = world.cli("trigger", "gh/acme/b-undeclared", "--upstream-pipeline-id", a)
    assert result.code == 1
    assert "Unexpected argument(s): triggering-pipeline-id" in result.err
    assert "does not declare 'triggering-pipeline-id'" in result.err


def test_undeclared_parameter_answered_400_names_it(world: World) -> None:
    world.emu.set_switches(parameter_errors="bad_request")
    a = world.upstream_on_hold()
    result = world.cli("trigger", "gh/acme/b-undeclared", "--upstream-pipeline-id", a)
    assert result.code == 3
    assert "does not declare 'triggering-pipeline-id'" in result.err


def test_undeclared_parameter_answered_404_is_not_blamed_on_the_slug(world: World) -> None:
    # Why: a 404 "Project not found" for an undeclared parameter got a hint about the
    # slug and token. The token can read the project's pipelines, so it is the parameter.
    world.emu.set_switches(parameter_errors="not_found")
    a = world.upstream_on_hold()
    result = world.cli("trigger", B, "--upstream-pipeline-id", a, "-p", "requestor=staging")
    assert result.code == 3
    assert "Project not found" in result.err
    assert "the 404 means a parameter its config does not declare" in result.err
    assert "'requestor'" in result.err


def test_404_on_a_project_the_token_cannot_see_mentions_project_tokens(world: World) -> None:
    a = world.upstream_on_hold()
    result = world.cli("trigger", "gh/acme/nope", "--upstream-pipeline-id", a)
    assert result.code == 3
    assert "project API tokens" in result.err


def test_a_type_error_suggests_key_colon_equals(world: World) -> None:
    # Why: -p pull-request-number=39001 to a string parameter got "declare
    # 'triggering-pipeline-id'" instead of "use KEY:=VALUE".
    a = world.upstream_on_hold()
    result = world.cli(
        "trigger", "gh/acme/b-typed", "--upstream-pipeline-id", a, "-p", "pull-request-number=39001"
    )
    assert result.code == 1
    assert "pull-request-number:=39001" in result.err
    assert "declare 'triggering-pipeline-id'" not in result.err


def test_b_waiting_for_its_own_approval_times_out(world: World) -> None:
    a = world.upstream_on_hold()
    b = world.cli("trigger", "gh/acme/b-hold", "--upstream-pipeline-id", a).out.strip()
    result = world.cli("status", "--pipeline-id", b, "--timeout", "2m")
    assert result.code == 4
    assert "waiting for its own approval" in result.err
    assert world.time.now <= 120


def test_status_times_out_while_b_runs(world: World, tmp_path: Path) -> None:
    a = world.upstream_on_hold()
    state = tmp_path / "s.json"
    trigger_b(world, a, state)
    result = world.cli("status", "--state-file", str(state), "--timeout", "90s")
    assert result.code == 4
    assert "Gave up after 90s" in result.err
    assert world.time.now <= 90


def test_several_workflows_in_b_all_must_succeed(world: World, tmp_path: Path) -> None:
    a = world.upstream_on_hold()
    b = trigger_b(world, a, tmp_path / "s.json")
    world.finish(B, "lint", "failed", pipeline_id=b)
    world.finish_all(b)
    result = world.cli("status", "--pipeline-id", b, "--json")
    assert result.code == 1
    statuses = {w["name"]: w["status"] for w in result.json()["pipelines"][0]["workflows"]}
    assert statuses == {"test": "success", "lint": "failed"}


def test_fan_out_status_reports_every_downstream(world: World, tmp_path: Path) -> None:
    a = world.upstream_on_hold()
    state = tmp_path / "s.json"
    b1 = trigger_b(world, a, state)
    b2 = trigger_b(world, a, state, slug="gh/acme/b-hold")
    world.finish_all(b1)
    world.time.on_sleep = lambda n: None
    assert len(json.loads(state.read_text())["downstream"]) == 2
    result = world.cli("status", "--state-file", str(state), "--timeout", "1m", "--json")
    assert result.code == 4
    assert "gh/acme/b-hold" in result.err
    assert b2


# -- approve ----------------------------------------------------------------------------


def test_matrix_double_approve_is_a_quiet_success(world: World) -> None:
    a = world.upstream_on_hold()
    b = world.downstream(a)
    args = ("approve", "--pipeline-id", a, "--allow-project", A, "--downstream-pipeline-id", b)
    first = world.cli(*args, "--json")
    second = world.cli(*args, "--json")
    assert (first.code, second.code) == (0, 0)
    assert first.json()["outcome"] == "approved"
    assert second.json()["outcome"] == "already_approved"
    assert "already approved" in second.err


def test_empty_upstream_id_is_a_no_op(world: World) -> None:
    for args in (["approve"], ["approve", "--pipeline-id", ""], ["approve", "--pipeline-id", " "]):
        result = world.cli(*args)
        assert result.code == 0
        assert "not triggered by an upstream pipeline" in result.err
        assert result.err.count("\n") == 1
    assert world.requests() == []


def test_disallowed_project_is_refused(world: World) -> None:
    a = world.upstream_on_hold("gh/evil/a")
    code, _, err = approve(world, a)
    assert code == 2
    assert "gh/evil/a" in err
    assert "forged" in err
    assert world.job_status(a, HOLD) == "on_hold"


def test_no_allow_rule_is_refused_with_the_risk_explained(world: World) -> None:
    a = world.upstream_on_hold()
    world.emu.clear_request_log()
    result = world.cli("approve", "--pipeline-id", a)
    assert result.code == 2
    assert "forged triggering-pipeline-id" in result.err
    assert world.requests() == []
    assert world.job_status(a, HOLD) == "on_hold"


def test_allow_projects_from_the_environment(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    a = world.upstream_on_hold()
    monkeypatch.setenv("CIRCLEBACK_ALLOW_PROJECTS", "gh/other/x, gh/acme/a")
    monkeypatch.setenv("CIRCLE_PIPELINE_ID", world.downstream(a))  # B's own id, as in a job
    assert world.cli("approve", "--pipeline-id", a).code == 0
    assert world.job_status(a, HOLD) == "success"


def test_same_named_build_job_is_never_approved(world: World) -> None:
    a = world.trigger("gh/acme/impostor")
    code, _, err = approve(world, a)
    assert code == 3
    assert "manual-gate (on_hold)" in err
    assert world.job_status(a, HOLD) == "running"
    assert world.job_status(a, "manual-gate") == "on_hold"


def test_not_found_lists_the_approval_jobs(world: World) -> None:
    a = world.upstream_on_hold()
    code, _, err = approve(world, a, "--job-name", "nope")
    assert code == 3
    assert f"{HOLD} (on_hold) in main" in err


def test_hold_on_page_three(world: World) -> None:
    world.emu.set_page_size(2)
    a = world.trigger("gh/acme/many")
    b = world.downstream(a)
    world.emu.clear_request_log()
    code, _, err = approve(world, a, downstream=b)
    assert code == 0, err
    paths = [r["method"] + " " + r["path"].split("/")[3] for r in world.requests()]
    # workflows, three pages of jobs, each build job's artifacts (A's trigger record),
    # B and B's config (the link), approve
    assert paths == [
        "GET pipeline",
        *["GET workflow"] * 3,
        *["GET project"] * 4,
        *["GET pipeline"] * 2,
        "POST workflow",
    ]
    assert world.job_status(a, HOLD) == "success"


def test_several_workflows_in_a_pick_by_name(world: World) -> None:
    a = world.trigger("gh/acme/a2")
    for _ in range(2):
        world.finish("gh/acme/a2", "trigger", pipeline_id=a)
    code, _, err = approve(world, a, "--workflow-name", "release")
    assert code == 0, err
    assert world.job_status(a, HOLD, workflow="release") == "success"
    assert world.job_status(a, HOLD, workflow="lint") == "on_hold"


def test_a_rerun_before_b_approves(world: World) -> None:
    a = world.trigger(A)
    world.finish(A, "build", "failed", pipeline_id=a)
    (old,) = world.workflows(a)
    rerun = world.api.post(f"/workflow/{old['id']}/rerun", json={"from_failed": True})
    assert rerun.status_code == 202
    new_id = rerun.json()["workflow_id"]
    world.finish(A, "build", pipeline_id=a)
    world.finish(A, "trigger", pipeline_id=a)
    assert world.jobs(new_id)[HOLD]["status"] == "on_hold"
    code, _, err = approve(world, a)
    assert code == 0, err
    assert world.jobs(new_id)[HOLD]["status"] == "success"


def test_finished_upstream_is_nothing_to_release(world: World) -> None:
    a = world.upstream_on_hold()
    for wf in world.workflows(a):
        world.api.post(f"/workflow/{wf['id']}/cancel")
    result = world.cli("approve", "--pipeline-id", a, "--allow-project", A, "--json")
    assert result.code == 0
    assert result.json()["outcome"] == "nothing_to_release"
    assert "nothing left to release" in result.err


def test_approve_waits_for_a_hold_not_reached_yet(world: World) -> None:
    a = world.trigger(A)
    world.finish(A, "build", pipeline_id=a)
    world.time.on_sleep = lambda n: world.finish(A, "trigger", pipeline_id=a) if n == 1 else None
    code, _, err = approve(world, a)
    assert code == 0, err
    assert world.job_status(a, HOLD) == "success"


# -- endpoints and answers --------------------------------------------------------------


def test_definition_id_uses_pipeline_run(world: World) -> None:
    a = world.upstream_on_hold()
    world.emu.clear_request_log()
    definition = "0f9e8d7c-6b5a-4f3e-9d2c-1b0a9f8e7d6c"
    for slug, extra in ((OPAQUE, []), (B, ["--definition-id", definition])):
        result = world.cli("trigger", slug, "--upstream-pipeline-id", a, "--branch", "main", *extra)
        assert result.code == 0, result.err
    posts = [r["path"] for r in world.requests() if r["method"] == "POST"]
    assert posts == [f"/api/v2/project/{OPAQUE}/pipeline/run", f"/api/v2/project/{B}/pipeline/run"]


def test_not_created_is_an_error(world: World) -> None:
    a = world.upstream_on_hold()
    world.emu.set_ci_skip(True)
    result = world.cli("trigger", OPAQUE, "--upstream-pipeline-id", a)
    assert result.code == 3
    assert "did not create a pipeline" in result.err


# -- storms -----------------------------------------------------------------------------


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_storms_during_approve_and_status(world: World, tmp_path: Path, status: int) -> None:
    a = world.upstream_on_hold()
    b = trigger_b(world, a, tmp_path / "s.json")
    world.emu.add_fault("status", status=status, count=3, method="*", path="/api/v2/")
    assert approve(world, a, downstream=b)[0] == 0
    world.finish_all(b)
    world.emu.add_fault("status", status=status, count=3, method="GET", path="/api/v2/")
    assert world.cli("status", "--pipeline-id", b).code == 0


def test_429_storm_during_trigger_is_survived(world: World) -> None:
    a = world.upstream_on_hold()
    world.emu.add_fault("status", status=429, count=3, method="POST", retry_after=2)
    result = world.cli("trigger", B, "--upstream-pipeline-id", a)
    assert result.code == 0, result.err
    assert world.time.sleeps[:3] == [2.0, 2.0, 2.0]


def test_5xx_on_trigger_is_reconciled_before_it_is_sent_again(world: World) -> None:
    a = world.upstream_on_hold()
    world.emu.clear_request_log()
    world.emu.add_fault("status", status=502, count=1, method="POST")
    result = world.cli("trigger", B, "--upstream-pipeline-id", a)
    assert result.code == 0, result.err
    calls = [(r["method"], r["path"]) for r in world.requests()]
    trigger = ("POST", f"/api/v2/project/{B}/pipeline")
    look = ("GET", f"/api/v2/project/{B}/pipeline")
    # the depth and cycle guard reads A and A's config first
    chain = [("GET", f"/api/v2/pipeline/{a}"), ("GET", f"/api/v2/pipeline/{a}/config")]
    assert calls[:5] == [*chain, trigger, look, trigger]


def test_5xx_storm_during_trigger_confirmation_is_survived(world: World) -> None:
    a = world.upstream_on_hold()
    world.emu.add_fault("status", status=503, count=3, method="GET", path="/pipeline/")
    assert world.cli("trigger", B, "--upstream-pipeline-id", a).code == 0
