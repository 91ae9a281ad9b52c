"""A chain to look at: A triggered B, B triggered C, B failed a job and released A's hold."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from circleback.relay.discovery import RECORD_ARTIFACT
from tests.relay.world import B, World

C = "gh/acme/b-hold"


@dataclass(frozen=True)
class Chain:
    a: str
    b: str
    c: str


def store_record(world: World, pipeline_id: str, job: str, state: Path) -> None:
    """What the orb's trigger job does: store the state file as an artifact."""
    (wf,) = [w for w in world.workflows(pipeline_id) if job in world.jobs(w["id"])]
    job_id = world.jobs(wf["id"])[job]["id"]
    world.emu.add_artifact(job_id, RECORD_ARTIFACT, state.read_bytes())


def failed_chain(world: World, tmp_path: Path) -> Chain:
    """A (released, checking) → B (one matrix leg failed) → C (waiting on its own gate)."""
    a = world.upstream_on_hold()
    a_state = tmp_path / "a.json"
    made = world.cli("trigger", B, "--upstream-pipeline-id", a, "--state-file", str(a_state))
    assert made.code == 0, made.err
    b = made.out.strip()
    store_record(world, a, "trigger", a_state)
    c_state = tmp_path / "b.json"
    made = world.cli("trigger", C, "--upstream-pipeline-id", b, "--state-file", str(c_state))
    assert made.code == 0, made.err
    c = made.out.strip()
    store_record(world, b, "lint", c_state)
    world.finish(B, "build-and-test-3.11", "failed", pipeline_id=b)
    world.finish_all(b)
    released = world.cli(
        "approve",
        "--pipeline-id",
        a,
        "--allow-project",
        "gh/acme/*",
        "--downstream-pipeline-id",
        b,
    )
    assert released.code == 0, released.err
    return Chain(a, b, c)
