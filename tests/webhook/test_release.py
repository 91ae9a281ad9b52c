"""The receiver releases A from B's webhook, once, and only when the API says B is done."""

from __future__ import annotations

import pytest

from tests.webhook.world import B, Receiver, World


def test_b_done_releases_a_through_the_emulators_own_webhook(world: World) -> None:
    world.install_webhook()
    a_id, b_id = world.a_triggers_b()
    world.emu.finish_job_by_name(B, "lint", "success", pipeline_id=b_id)
    world.settle()
    assert world.hold(a_id) == "on_hold"  # B's other workflow still runs

    world.finish_b(b_id)
    world.settle()
    assert world.hold(a_id) == "success"
    answers = [d.body.get("verdict") for d in world.emu.webhooks.deliveries]
    assert answers == ["waiting", "released"]
    assert world.approvals() == 1


def test_nothing_is_released_while_b_still_runs(world: World) -> None:
    world.install_webhook()
    a_id, b_id = world.a_triggers_b()
    world.emu.finish_job_by_name(B, "lint", "success", pipeline_id=b_id)
    world.settle()

    assert world.hold(a_id) == "on_hold"
    assert [d.body.get("verdict") for d in world.emu.webhooks.deliveries] == ["waiting"]


def test_duplicate_deliveries_release_once(world: World) -> None:
    world.emu.webhooks.duplicates = True
    world.install_webhook()
    a_id, b_id = world.a_triggers_b()
    world.finish_b(b_id)
    world.settle()

    assert world.hold(a_id) == "success"
    verdicts = [d.body.get("verdict") for d in world.emu.webhooks.deliveries]
    assert verdicts.count("released") == 1
    assert verdicts[-1] == "already_released"
    assert world.approvals() == 1


def test_a_failed_b_still_releases_a(world: World) -> None:
    world.install_webhook()
    a_id, b_id = world.a_triggers_b()
    world.finish_b(b_id, "failed")
    world.settle()

    assert world.hold(a_id) == "success"


def test_b_canceled_as_a_whole_releases_a_at_once(world: World) -> None:
    world.install_webhook()
    a_id, b_id = world.a_triggers_b()
    for wf in world.workflows(b_id):
        assert world.api.post(f"/workflow/{wf['id']}/cancel").status_code == 202
    world.settle()

    assert world.hold(a_id) == "success"
    statuses = {w["status"] for w in world.workflows(b_id)}
    assert statuses == {"canceled"}


def test_a_waits_for_every_pipeline_it_recorded(world: World) -> None:
    world.install_webhook()
    a_id, b1 = world.a_triggers_b()
    b2 = world.trigger(B, **{"triggering-pipeline-id": a_id})
    world.record("gh/acme/a", a_id, [b1, b2])
    world.finish_b(b1)
    world.settle()
    assert world.hold(a_id) == "on_hold"
    assert "A also waits for gh/acme/b #2" in world.emu.webhooks.deliveries[-1].body["reason"]

    world.finish_b(b2)
    world.settle()
    assert world.hold(a_id) == "success"


def test_job_completed_events_are_ignored(world: World) -> None:
    world.install_webhook()
    hook = world.emu.webhooks.in_scope(world.client.get_project_id(B))[0]
    hook.events = ("job-completed",)
    a_id, b_id = world.a_triggers_b()
    world.finish_b(b_id)
    world.settle()

    assert world.hold(a_id) == "on_hold"
    deliveries = world.emu.webhooks.deliveries
    assert deliveries
    assert {d.event_type for d in deliveries} == {"job-completed"}
    assert {d.body["verdict"] for d in deliveries} == {"ignored"}


def test_a_hold_not_reached_yet_asks_circleci_to_deliver_again(world: World) -> None:
    world.install_webhook()
    a_id = world.trigger("gh/acme/a")
    world.emu.finish_job_by_name("gh/acme/a", "build", "success", pipeline_id=a_id)
    b_id = world.trigger(B, **{"triggering-pipeline-id": a_id})
    world.record("gh/acme/a", a_id, [b_id])
    world.emu.webhooks.attempts = 2
    world.finish_b(b_id)  # A's trigger job is still running: its hold is blocked
    world.settle()

    last = world.emu.webhooks.deliveries[-2:]
    assert [(d.attempt, d.status) for d in last] == [(1, 503), (2, 503)]
    assert world.hold(a_id) == "blocked"


def test_health_endpoint_answers_without_the_api(world: World) -> None:
    before = len(world.emu.request_log)
    answer = world.receiver.get("/healthz")
    assert answer.status_code == 200
    assert answer.json()["status"] == "ok"
    assert len(world.emu.request_log) == before


def test_each_delivery_is_one_structured_log_line_without_secrets(world: World) -> None:
    import io
    import json
    import logging

    from circleback import _logging
    from tests.webhook.world import SECRET, TOKEN

    root = logging.getLogger("circleback")
    saved = (list(root.handlers), root.level, root.propagate)
    stream = io.StringIO()
    _logging.configure(verbose=False, json_format=True, secrets=[TOKEN, SECRET], stream=stream)
    try:
        world.install_webhook()
        a_id, b_id = world.a_triggers_b()
        world.finish_b(b_id)
        world.settle()
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        root.propagate = saved[2]

    assert world.hold(a_id) == "success"
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    released = [e for e in lines if e.get("verdict") == "released"]
    assert len(released) == 1
    entry = released[0]
    assert entry["logger"] == "circleback.serve"
    assert entry["downstream_pipeline_id"] == b_id
    assert entry["upstream_pipeline_id"] == a_id
    assert entry["event_type"] == "workflow-completed"
    assert entry["event_id"]
    assert SECRET not in stream.getvalue()
    assert TOKEN not in stream.getvalue()


def test_a_delivery_still_working_when_its_answer_is_due_asks_for_another(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    from circleback.serve import app as app_module
    from circleback.serve.receiver import Decision, Verdict

    release = threading.Event()

    def slow(client: object, event: object, rules: object) -> Decision:
        # Ends well after the 10 ms budget (the answer cannot wait for it); the test's
        # client shuts its event loop down only once this thread has ended.
        release.wait(1.0)
        return Decision(Verdict.IGNORED, "done late")

    monkeypatch.setattr(app_module, "handle", slow)
    app = app_module.create_app(
        client=world.client, rules=world.rules, secrets=world.secrets, budget=0.01
    )
    world.receiver = Receiver(app)
    answer = world.post({"type": "workflow-completed"})

    assert answer.status_code == 503
    assert answer.json()["verdict"] == "retry"


@pytest.mark.parametrize("approval_jobs", ["current", "legacy"])
@pytest.mark.parametrize("creation", ["sync", "async"])
def test_release_on_every_modelled_variant(approval_jobs: str, creation: str) -> None:
    from circleback.emulator import Emulator
    from tests.webhook.world import PROJECTS, TOKEN

    switches = {
        "approval_jobs": approval_jobs,
        "creation": creation,
        "trigger_parameters": "absent",
    }
    w = World(Emulator(projects=PROJECTS, tokens=(TOKEN,), switches=switches))
    try:
        w.install_webhook()
        a_id, b_id = w.a_triggers_b()
        w.finish_b(b_id)
        w.settle()
        assert w.hold(a_id) == "success"
    finally:
        w.close()


def test_concurrent_deliveries_to_several_replicas_release_once(world: World) -> None:
    # Three stateless replicas behind one URL, each handed the same delivery three times at
    # once (CircleCI's retries and duplicates): one release, every other answer a no-op.
    import json
    import threading

    from circleback.serve.app import create_app
    from circleback.serve.signature import sign
    from tests.webhook.world import SECRET, event_for

    a_id, b_id = world.a_triggers_b()
    world.finish_b(b_id)
    replicas = [
        Receiver(create_app(client=world.client, rules=world.rules, secrets=world.secrets))
        for _ in range(3)
    ]
    body = json.dumps(event_for(world, b_id)).encode()
    headers = {"circleci-signature": sign(body, SECRET)}
    start = threading.Barrier(9)
    answers: list[tuple[int, str]] = []

    def deliver(replica: Receiver) -> None:
        start.wait()
        answer = replica.post("/webhook", content=body, headers=headers)
        answers.append((answer.status_code, answer.json()["verdict"]))

    threads = [threading.Thread(target=deliver, args=(replicas[n % 3],)) for n in range(9)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert world.hold(a_id) == "success"
    assert sorted(answers) == [(200, "already_released")] * 8 + [(200, "released")]


@pytest.mark.parametrize("slug", ["gh/ACME/B", "github/acme/b"])
def test_a_payload_slug_spelled_differently_from_the_apis_is_the_same_project(
    world: World, slug: str
) -> None:
    # CircleCI's names are case-insensitive and gh/github are one provider: a payload that
    # spells B's slug otherwise than the API does names the same project, not a forgery.
    from tests.webhook.world import event_for

    a_id, b_id = world.a_triggers_b()
    world.finish_b(b_id)

    answer = world.post(event_for(world, b_id, slug=slug))

    assert answer.json()["verdict"] == "released", answer.json()
    assert world.hold(a_id) == "success"
