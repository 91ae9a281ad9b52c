"""The emulator's webhooks: the API routes fit CircleCI's spec, the deliveries its docs."""

from __future__ import annotations

import hashlib
import hmac
import json

import httpx

from circleback.emulator.webhooks import project_id
from tests.emulator.test_conformance import check
from tests.webhook.world import SECRET, URL, A, B, World


def create(world: World, **overrides: object) -> httpx.Response:
    body = {
        "name": "circleback",
        "events": ["workflow-completed", "job-completed"],
        "url": URL,
        "verify-tls": True,
        "signing-secret": SECRET,
        "scope": {"id": project_id(B), "type": "project"},
        **overrides,
    }
    return world.api.post("/webhook", json=body)


def test_webhook_routes_conform_to_the_spec(world: World) -> None:
    check(world.api.get(f"/project/{B}"), "/project/{project-slug}", "get", 200)
    created = create(world)
    check(created, "/webhook", "post", 201)
    hook_id = created.json()["id"]
    listed = world.api.get("/webhook", params={"scope-id": project_id(B), "scope-type": "project"})
    check(listed, "/webhook", "get", 200)
    check(world.api.get(f"/webhook/{hook_id}"), "/webhook/{webhook-id}", "get", 200)
    updated = world.api.put(f"/webhook/{hook_id}", json={"signing-secret": "whsec-rotated"})
    check(updated, "/webhook/{webhook-id}", "put", 200)
    assert "whsec-rotated" not in updated.text
    assert world.api.put(f"/webhook/{hook_id}", json={"events": []}).status_code == 400
    check(world.api.delete(f"/webhook/{hook_id}"), "/webhook/{webhook-id}", "delete", 200)
    check(world.api.get(f"/webhook/{hook_id}"), "/webhook/{webhook-id}", "get", 404)
    assert SECRET not in listed.text


def test_webhooks_are_refused_as_circleci_refuses_them(world: World) -> None:
    assert create(world, url="http://hooks.example.com/x").status_code == 400
    assert create(world, events=["pipeline-created"]).status_code == 400
    assert (
        create(world, scope={"id": project_id("gh/acme/nope"), "type": "project"}).status_code
        == 404
    )
    for n in range(5):
        assert create(world, url=f"{URL}{n}").status_code == 201
    assert create(world).status_code == 400  # the sixth


def test_deliveries_carry_the_documented_fields_and_a_valid_signature(world: World) -> None:
    world.install_webhook()
    hook = world.emu.webhooks.in_scope(project_id(B))[0]
    hook.events = ("workflow-completed", "job-completed")
    a_id, b_id = world.a_triggers_b()
    world.finish_b(b_id, "failed")
    world.settle()

    sent = world.emu.webhooks.sent
    kinds = [d.event_type for d in sent]
    assert kinds.count("job-completed") == 2
    assert kinds.count("workflow-completed") == 2
    # A workflow's jobs are announced before the workflow itself.
    assert kinds.index("job-completed") < kinds.index("workflow-completed")
    for delivery in sent:
        expected = hmac.new(SECRET.encode(), delivery.body, hashlib.sha256).hexdigest()
        assert delivery.headers["circleci-signature"] == f"v1={expected}"
        assert delivery.headers["circleci-event-type"] == delivery.event_type
        event = json.loads(delivery.body)
        assert set(event) >= {
            "id",
            "type",
            "happened_at",
            "webhook",
            "project",
            "organization",
            "workflow",
            "pipeline",
        }
        assert event["project"]["slug"] == B
        assert event["pipeline"]["id"] == b_id
        assert set(event["workflow"]) == {"id", "name", "status", "created_at", "stopped_at", "url"}
        assert "parameters" not in json.dumps(event["pipeline"])
        assert a_id not in delivery.body.decode()  # B's parameters never travel
        if event["type"] == "job-completed":
            assert set(event["job"]) == {
                "id",
                "number",
                "name",
                "status",
                "started_at",
                "stopped_at",
            }
    statuses = {
        json.loads(d.body)["workflow"]["status"]
        for d in sent
        if d.event_type == "workflow-completed"
    }
    assert statuses == {"failed"}


def test_a_pipeline_that_errors_before_any_workflow_sends_nothing(world: World) -> None:
    world.install_webhook()
    broken = world.api.post(f"/project/{B}/pipeline", json={"parameters": {"undeclared": "x"}})
    # Created, then errored (CircleCI's observed answer): a pipeline exists to send about.
    assert broken.status_code == 201, broken.text
    world.emu.tick()
    assert world.pipeline(broken.json()["id"])["state"] == "errored"
    world.settle()
    assert world.emu.webhooks.sent == []


def test_non_2xx_answers_are_retried(world: World) -> None:
    world.install_webhook()
    world.emu.webhooks.attempts = 3
    answers = iter([500, 502, 200])

    class Flaky(httpx.BaseTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            return httpx.Response(next(answers), json={})

    world.emu.webhooks.transport = Flaky()
    world.emu.webhooks.reset()
    world.install_webhook()
    _, b_id = world.a_triggers_b()
    world.emu.finish_job_by_name(B, "lint", "success", pipeline_id=b_id)
    world.settle()

    assert [(d.attempt, d.status) for d in world.emu.webhooks.deliveries] == [
        (1, 500),
        (2, 502),
        (3, 200),
    ]


def test_a_webhook_hears_only_of_what_ends_after_it_exists(world: World) -> None:
    # CircleCI sends an event to the webhooks that exist when it happens: installing one
    # later must not deliver (and so release A for) a B that had finished before.
    a_id, b_id = world.a_triggers_b()
    world.finish_b(b_id)

    world.install_webhook()
    world.emu.finish_job_by_name(A, "build", "success", pipeline_id=world.trigger(A))
    world.settle()

    assert world.emu.webhooks.sent == []
    assert world.hold(a_id) == "on_hold"

    # What ends afterwards is heard as usual.
    _, later = world.a_triggers_b()
    world.finish_b(later)
    world.settle()
    assert {json.loads(d.body)["pipeline"]["id"] for d in world.emu.webhooks.sent} == {later}
