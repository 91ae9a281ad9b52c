"""A B with dynamic config: its setup workflow's completion releases nothing."""

from __future__ import annotations

import pytest

from circleback.emulator import Emulator, JobRun
from circleback.emulator.switches import CHOICES
from tests.emulator.helpers import CONTINUATION
from tests.webhook.world import CONFIGS, PROJECTS, TOKEN, World

B_SETUP = "gh/acme/b-setup"


@pytest.mark.parametrize("trigger_parameters", CHOICES["trigger_parameters"])
def test_the_setup_workflow_completing_is_not_b_done(trigger_parameters: str) -> None:
    started: list[JobRun] = []
    emu = Emulator(
        projects={**PROJECTS, B_SETUP: CONFIGS / "b_setup.yml"},
        tokens=(TOKEN,),
        on_job_start=started.append,
        switches={"trigger_parameters": trigger_parameters},
    )
    world = World(emu)
    try:
        world.install_webhook(B_SETUP)
        a_id, b_id = world.a_triggers_b(b_slug=B_SETUP)
        generate = next(r for r in started if r.pipeline_id == b_id)
        emu.finish_job(generate.job_id, "success")
        world.settle()

        # The setup workflow succeeded; B waits for its continuation: A stays on hold.
        assert world.hold(a_id) == "on_hold"
        first = world.emu.webhooks.deliveries
        assert [d.body.get("verdict") for d in first] == ["waiting"]
        assert "setup workflow" in first[0].body["reason"]

        continued = world.api.post(
            "/pipeline/continue",
            json={
                "continuation-key": generate.continuation_key,
                "configuration": CONTINUATION,  # uses triggering-pipeline-id, set at trigger
            },
        )
        assert continued.status_code == 200, continued.text
        world.finish_b(b_id)
        world.settle()

        assert world.hold(a_id) == "success"
    finally:
        world.close()
