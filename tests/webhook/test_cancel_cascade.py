"""The optional cancel cascade: A's workflow canceled cancels what A proved it triggered."""

from __future__ import annotations

from circleback.serve.receiver import Rules
from tests.webhook.world import A, World


def cascade(world: World) -> None:
    world.rules = Rules(allow_projects=("gh/acme/*",), cancel_cascade=True)
    world.__post_init__()
    world.install_webhook()
    world.install_webhook(A)


def cancel_a(world: World, a_id: str) -> None:
    for wf in world.workflows(a_id):
        assert world.api.post(f"/workflow/{wf['id']}/cancel").status_code == 202
    world.settle()


def test_a_canceled_cancels_the_b_it_triggered(world: World) -> None:
    cascade(world)
    a_id, b_id = world.a_triggers_b()

    cancel_a(world, a_id)

    assert {w["status"] for w in world.workflows(b_id)} == {"canceled"}
    verdicts = [d.body.get("verdict") for d in world.emu.webhooks.deliveries]
    assert "canceled_downstream" in verdicts


def test_without_the_switch_nothing_is_canceled(world: World) -> None:
    world.install_webhook()
    world.install_webhook(A)
    a_id, b_id = world.a_triggers_b()

    cancel_a(world, a_id)

    assert {w["status"] for w in world.workflows(b_id)} == {"running"}


def test_a_record_naming_a_pipeline_a_did_not_trigger_cancels_nothing(world: World) -> None:
    cascade(world)
    stranger = world.trigger("gh/acme/b")  # carries no upstream id
    a_id, _ = world.a_triggers_b(record=stranger)

    cancel_a(world, a_id)

    assert {w["status"] for w in world.workflows(stranger)} == {"running"}
    refused = [d.body for d in world.emu.webhooks.deliveries if d.body.get("verdict") == "refused"]
    assert refused
    assert "not canceling downstream" in refused[0]["reason"]


def test_a_finished_normally_cancels_nothing(world: World) -> None:
    cascade(world)
    a_id, b_id = world.a_triggers_b()
    world.finish_b(b_id)
    world.settle()
    assert world.hold(a_id) == "success"
    world.emu.finish_job_by_name(A, "check", "success", pipeline_id=a_id)
    world.settle()

    assert {w["status"] for w in world.workflows(b_id)} == {"success"}
    assert "canceled_downstream" not in [
        d.body.get("verdict") for d in world.emu.webhooks.deliveries
    ]
