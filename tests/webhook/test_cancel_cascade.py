"""The optional cancel cascade: A's workflow canceled cancels what A proved it triggered."""

from __future__ import annotations

from circleback.serve.receiver import Rules
from tests.webhook.world import A, B, World


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


def test_with_the_cascade_on_a_b_canceled_as_a_whole_still_releases_a(world: World) -> None:
    # The allow-list gh/acme/* covers B too (as in the docs' example): B's canceled
    # workflow is first looked at as an upstream's; it triggered nothing, and A must still
    # be released at once, as without the cascade.
    cascade(world)
    a_id, b_id = world.a_triggers_b()

    for wf in world.workflows(b_id):
        assert world.api.post(f"/workflow/{wf['id']}/cancel").status_code == 202
    world.settle()

    assert world.hold(a_id) == "success"
    verdicts = [d.body.get("verdict") for d in world.emu.webhooks.deliveries]
    assert verdicts.count("released") == 1


def test_a_middle_pipeline_canceled_cancels_what_it_triggered_and_releases_its_upstream(
    world: World,
) -> None:
    # A chain: A triggered B (proven), and B's own workflow, which triggered C, is canceled.
    # The cascade cancels C, and B's cancellation still releases A.
    cascade(world)
    a_id, b_id = world.a_triggers_b()
    c_id = world.trigger(B, **{"triggering-pipeline-id": b_id})
    b_job = world.jobs(b_id)["build-and-test"]["id"]
    world.record_on_job(b_job, [c_id])

    for wf in world.workflows(b_id):
        assert world.api.post(f"/workflow/{wf['id']}/cancel").status_code == 202
    world.settle()

    assert world.hold(a_id) == "success"
    assert {w["status"] for w in world.workflows(c_id)} == {"canceled"}
