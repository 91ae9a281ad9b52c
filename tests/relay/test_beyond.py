"""Beyond the tutorial: orphaned holds (sweep), the chain (trace), upstream discovery."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from circleback.client import CircleCIClient
from circleback.relay.chain import upstream_chain
from circleback.relay.discovery import RECORD_ARTIFACT
from circleback.relay.sweep import Action, sweep
from circleback.relay.trace import render_mermaid, render_text, trace
from tests.relay.world import HOST, TOKEN, A, B, World

HOLD = "wait-for-triggered-pipeline"


@pytest.fixture
def client(world: World) -> CircleCIClient:
    return CircleCIClient(token=TOKEN, host=HOST, transport=world.emu.transport())


def _store_record(world: World, pipeline_id: str, job: str, state: Path) -> None:
    """What the orb's trigger job does: store the state file as an artifact."""
    (wf,) = [w for w in world.workflows(pipeline_id) if job in world.jobs(w["id"])]
    job_id = world.jobs(wf["id"])[job]["id"]
    world.emu.add_artifact(job_id, RECORD_ARTIFACT, state.read_bytes())


def _a_waiting_on_b(world: World, tmp_path: Path) -> tuple[str, str]:
    a = world.upstream_on_hold()
    state = tmp_path / f"{a}.json"
    result = world.cli("trigger", B, "--upstream-pipeline-id", a, "--state-file", str(state))
    assert result.code == 0, result.err
    _store_record(world, a, "trigger", state)
    return a, result.out.strip()


def _later(world: World, seconds: float) -> datetime:
    return world.emu.now() + timedelta(seconds=seconds)


def test_sweep_releases_a_hold_whose_downstream_was_canceled(
    world: World, tmp_path: Path, client: CircleCIClient
) -> None:
    a, b = _a_waiting_on_b(world, tmp_path)
    for wf in world.workflows(b):
        world.api.post(f"/workflow/{wf['id']}/cancel")
    (finding,) = sweep(client, A, grace=600, now=lambda: _later(world, 3600)).findings
    assert finding.action is Action.RELEASED
    assert finding.pipeline_id == a
    assert [d.pipeline_id for d in finding.downstream] == [b]
    assert world.job_status(a, HOLD) == "success"
    # A's check now runs and fails with the real reason.
    result = world.cli("status", "--pipeline-id", b)
    assert result.code == 1
    assert "canceled" in result.err


def test_sweep_leaves_running_and_recent_downstreams_alone(
    world: World, tmp_path: Path, client: CircleCIClient
) -> None:
    a, b = _a_waiting_on_b(world, tmp_path)
    (running,) = sweep(client, A, grace=600, now=lambda: _later(world, 3600)).findings
    assert running.action is Action.LEFT
    assert "still running" in running.reason
    world.finish_all(b, "failed")
    (recent,) = sweep(client, A, grace=600, now=lambda: _later(world, 60)).findings
    assert recent.action is Action.LEFT
    assert "within the grace" in recent.reason
    assert world.job_status(a, HOLD) == "on_hold"


def test_sweep_cancel_and_dry_run(world: World, tmp_path: Path, client: CircleCIClient) -> None:
    a, b = _a_waiting_on_b(world, tmp_path)
    world.finish_all(b, "failed")
    (dry,) = sweep(
        client, A, grace=0, cancel=True, dry_run=True, now=lambda: _later(world, 5)
    ).findings
    assert dry.action is Action.WOULD_CANCEL
    assert world.job_status(a, HOLD) == "on_hold"
    (done,) = sweep(client, A, grace=0, cancel=True, now=lambda: _later(world, 5)).findings
    assert done.action is Action.CANCELED
    assert world.workflows(a)[0]["status"] == "canceled"


def test_sweep_ignores_holds_without_a_record(world: World, client: CircleCIClient) -> None:
    world.upstream_on_hold()
    (finding,) = sweep(client, A, grace=0, now=lambda: _later(world, 5)).findings
    assert finding.action is Action.LEFT
    assert "no downstream record" in finding.reason


def test_sweep_errored_downstream(world: World, tmp_path: Path, client: CircleCIClient) -> None:
    a = world.upstream_on_hold()
    b = world.trigger("gh/acme/b-broken")
    state = tmp_path / "s.json"
    state.write_text(
        json.dumps(
            {
                "version": 1,
                "downstream": [
                    {
                        "project_slug": "gh/acme/b-broken",
                        "pipeline_id": b,
                        "number": 1,
                        "state": "errored",
                        "url": "x",
                    }
                ],
            }
        )
    )
    _store_record(world, a, "trigger", state)
    # An errored B shows no compiled config, so the link cannot be proven: the hold is
    # never released on the record's word alone, but it may be canceled (runs nothing).
    (finding,) = sweep(client, A, grace=60, now=lambda: _later(world, 3600)).findings
    assert finding.action is Action.NOT_PROVEN
    assert "--cancel" in finding.reason
    assert world.job_status(a, HOLD) == "on_hold"
    later = lambda: _later(world, 3600)  # noqa: E731
    (canceled,) = sweep(client, A, grace=60, cancel=True, now=later).findings
    assert canceled.action is Action.CANCELED


def test_trace_shows_the_tree(world: World, tmp_path: Path, client: CircleCIClient) -> None:
    a, b = _a_waiting_on_b(world, tmp_path)
    # B in turn triggers another pipeline of the hold project, recorded on a B job.
    c_state = tmp_path / "c.json"
    result = world.cli(
        "trigger", "gh/acme/b-hold", "--upstream-pipeline-id", b, "--state-file", str(c_state)
    )
    assert result.code == 0, result.err
    c = result.out.strip()
    _store_record(world, b, "lint", c_state)
    tree = trace(client, a)
    assert [child.pipeline_id for child in tree.children] == [b]
    assert [g.pipeline_id for g in tree.children[0].children] == [c]
    text = render_text(tree)
    assert text.splitlines()[0].startswith(f"{A} #1 (created, still running: main is on_hold")
    assert f"└── {B} #1" in text
    assert "· gated: on_hold" in text
    mermaid = render_mermaid(tree)
    assert mermaid.startswith("flowchart TD")
    assert mermaid.count("-->|triggered|") == 2
    shallow = trace(client, a, max_depth=0)
    assert shallow.children == ()
    assert "--max-depth" in shallow.note


def test_upstream_chain_follows_the_callback_parameter(
    world: World, tmp_path: Path, client: CircleCIClient
) -> None:
    a, b = _a_waiting_on_b(world, tmp_path)
    c = world.cli("trigger", "gh/acme/b-hold", "--upstream-pipeline-id", b).out.strip()
    assert [p.id for p in upstream_chain(client, c).pipelines] == [c, b, a]


# -- through the CLI ----------------------------------------------------------------------


def _chain(world: World) -> tuple[str, str, str]:
    """A → B → b-hold, each triggered through the CLI."""
    a = world.upstream_on_hold()
    b = world.cli("trigger", B, "--upstream-pipeline-id", a).out.strip()
    c = world.cli("trigger", "gh/acme/b-hold", "--upstream-pipeline-id", b).out.strip()
    assert all((a, b, c))
    return a, b, c


def test_trigger_refuses_a_cycle_with_the_chain_printed(world: World) -> None:
    _, _, c = _chain(world)
    world.emu.clear_request_log()
    result = world.cli("trigger", "github/ACME/a", "--upstream-pipeline-id", c)
    assert result.code == 2
    assert "cycle" in result.err
    assert f"{A} #1 → {B} #1 → gh/acme/b-hold #1 → github/ACME/a" in result.err
    assert {r["method"] for r in world.requests()} == {"GET"}  # reads only


def test_trigger_refuses_a_chain_deeper_than_max_depth(world: World) -> None:
    a, b, _ = _chain(world)
    result = world.cli("trigger", "gh/acme/b-hold", "--upstream-pipeline-id", b, "--max-depth", "2")
    assert result.code == 2
    assert "3 pipelines deep, over --max-depth 2" in result.err
    assert world.cli("trigger", "gh/acme/b-hold", "--upstream-pipeline-id", b).code == 0
    assert world.cli("trigger", B, "--upstream-pipeline-id", a, "--max-depth", "1").code == 2
    # --max-depth 0 switches the guard off: A → B → A is then allowed.
    assert world.cli("trigger", A, "--upstream-pipeline-id", b, "--max-depth", "0").code == 0


def test_status_cancels_downstream_on_timeout_when_asked(world: World) -> None:
    a = world.upstream_on_hold()
    b = world.cli("trigger", B, "--upstream-pipeline-id", a).out.strip()
    plain = world.cli("status", "--pipeline-id", b, "--timeout", "30s")
    assert plain.code == 4
    assert all(w["status"] == "running" for w in world.workflows(b))
    result = world.cli(
        "status", "--pipeline-id", b, "--timeout", "30s", "--cancel-downstream-on-timeout"
    )
    assert result.code == 4
    assert "Canceled 2 downstream workflow(s)" in result.err
    assert sorted(w["status"] for w in world.workflows(b)) == ["canceled", "canceled"]


def test_sweep_and_trace_commands(world: World, tmp_path: Path) -> None:
    a, b = _a_waiting_on_b(world, tmp_path)
    for wf in world.workflows(b):
        world.api.post(f"/workflow/{wf['id']}/cancel")
    dry = world.cli("sweep", A, "--grace", "0s", "--dry-run", "--json")
    assert dry.code == 0, dry.err
    (finding,) = dry.json()["findings"]
    assert finding["action"] == "would_release"
    assert "would_release" in dry.err
    assert world.job_status(a, HOLD) == "on_hold"
    real = world.cli("sweep", A, "--grace", "0s")
    assert real.code == 0
    assert world.job_status(a, HOLD) == "success"
    text = world.cli("trace", a)
    assert text.code == 0
    assert f"└── {B} #1" in text.out
    assert "no downstream pipelines recorded" not in text.err
    lone = world.cli("trace", b)
    assert lone.code == 0
    assert "no downstream pipelines recorded" in lone.err
    assert "circleback/downstream.json" in lone.err
    mermaid = world.cli("trace", a, "--format", "mermaid")
    assert mermaid.out.startswith("flowchart TD")
    assert world.cli("trace", a, "--format", "dot").code == 2
    assert world.cli("sweep", "gh/acme", "--grace", "1h").code == 2


def _two_siblings(world: World, tmp_path: Path) -> tuple[str, str, str]:
    """A with one shared hold, waiting on B and b2 (another pipeline of B's project)."""
    a = world.upstream_on_hold()
    state = tmp_path / "fan.json"
    b1 = world.cli("trigger", B, "--upstream-pipeline-id", a, "--state-file", str(state))
    b2 = world.cli(
        "trigger",
        "gh/acme/b-undeclared-twin",
        "--upstream-pipeline-id",
        a,
        "--state-file",
        str(state),
    )
    assert b1.code == 0, b1.err
    assert b2.code == 0, b2.err
    _store_record(world, a, "trigger", state)
    return a, b1.out.strip(), b2.out.strip()


def test_fan_in_the_last_downstream_releases_the_shared_hold(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b1, b2 = _two_siblings(world, tmp_path)
    monkeypatch.setenv("CIRCLE_JOB", "approve-upstream")
    # b1 finishes first: b2 still runs, so b1 leaves the hold alone.
    world.finish_all(b1)
    monkeypatch.setenv("CIRCLE_PIPELINE_ID", b1)
    first = world.cli("approve", "--pipeline-id", a, "--allow-project", A, "--fan-in", "--json")
    assert first.code == 0, first.err
    assert first.json()["outcome"] == "left_for_siblings"
    assert "gh/acme/b-undeclared-twin #1" in first.err
    assert world.job_status(a, HOLD) == "on_hold"
    # b2 finishes last and releases it.
    world.finish_all(b2, "failed")
    monkeypatch.setenv("CIRCLE_PIPELINE_ID", b2)
    last = world.cli("approve", "--pipeline-id", a, "--allow-project", A, "--fan-in", "--json")
    assert last.json()["outcome"] == "approved"
    assert world.job_status(a, HOLD) == "success"
    status = world.cli("status", "--state-file", str(tmp_path / "fan.json"), "--json")
    assert status.code == 1
    assert [p["success"] for p in status.json()["pipelines"]] == [True, False]


def test_fan_in_needs_to_know_who_it_is(world: World, tmp_path: Path) -> None:
    a, _, _ = _two_siblings(world, tmp_path)
    result = world.cli("approve", "--pipeline-id", a, "--allow-project", A, "--fan-in")
    assert result.code == 2
    assert "CIRCLE_PIPELINE_ID" in result.err
