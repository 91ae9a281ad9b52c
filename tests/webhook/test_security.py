"""Nothing is released by a delivery that is unsigned, wrongly signed, replayed, forged,
off the allow-list, or for a B that A did not trigger."""

from __future__ import annotations

import json

import pytest

from circleback import errors
from circleback.serve.app import create_app
from circleback.serve.receiver import Rules
from circleback.serve.signature import sign, verify
from tests.webhook.world import EVIL_A, SECRET, B, World, event_for


def test_a_wrong_signature_is_refused_and_releases_nothing(world: World) -> None:
    a_id, b_id = world.a_triggers_b()
    world.finish_b(b_id)

    answer = world.post(event_for(world, b_id), secret="not-the-secret")

    assert answer.status_code == 401
    assert world.hold(a_id) == "on_hold"
    assert world.approvals() == 0


def test_a_missing_signature_header_is_refused(world: World) -> None:
    a_id, b_id = world.a_triggers_b()
    world.finish_b(b_id)

    answer = world.post(event_for(world, b_id), secret=None)

    assert answer.status_code == 401
    assert world.hold(a_id) == "on_hold"


@pytest.mark.parametrize("header", ["", "v1=", "v0=abc", "sha256=abc", "v1=zz,v2=" + "0" * 64])
def test_malformed_signature_headers_are_refused(world: World, header: str) -> None:
    a_id, b_id = world.a_triggers_b()
    world.finish_b(b_id)

    assert world.post(event_for(world, b_id), header=header).status_code == 401
    assert world.hold(a_id) == "on_hold"


def test_the_signature_covers_the_raw_bytes(world: World) -> None:
    a_id, b_id = world.a_triggers_b()
    world.finish_b(b_id)
    body = json.dumps(event_for(world, b_id)).encode()
    header = sign(body, SECRET)

    # Same JSON, other bytes (re-serialised with other spacing): not what was signed.
    reformatted = json.dumps(json.loads(body), indent=1).encode()
    answer = world.receiver.post(
        "/webhook", content=reformatted, headers={"circleci-signature": header}
    )

    assert answer.status_code == 401
    assert world.hold(a_id) == "on_hold"


def test_a_replayed_delivery_of_an_old_b_does_not_release_a_newer_a(world: World) -> None:
    world.install_webhook()
    a1, b1 = world.a_triggers_b()
    world.finish_b(b1)
    world.settle()
    assert world.hold(a1) == "success"
    captured = world.emu.webhooks.sent[-1]

    a2, _ = world.a_triggers_b()  # B's new pipeline is still running
    replay = world.receiver.post("/webhook", content=captured.body, headers=captured.headers)

    assert replay.status_code == 200
    assert replay.json()["verdict"] == "already_released"
    assert world.hold(a2) == "on_hold"
    assert world.approvals() == 1


def test_a_forged_payload_status_is_never_believed(world: World) -> None:
    a_id, b_id = world.a_triggers_b()  # B is still running

    answer = world.post(event_for(world, b_id, status="success"))

    assert answer.status_code == 202
    assert answer.json()["verdict"] == "waiting"
    assert world.hold(a_id) == "on_hold"


def test_an_upstream_project_off_the_allow_list_is_not_released(world: World) -> None:
    a_id, b_id = world.a_triggers_b(EVIL_A)
    world.finish_b(b_id)

    answer = world.post(event_for(world, b_id))

    assert answer.json()["verdict"] == "refused"
    assert "not on the allow-list" in answer.json()["reason"]
    assert world.hold(a_id) == "on_hold"
    assert world.approvals() == 0


def test_a_b_that_a_did_not_trigger_cannot_release_a(world: World) -> None:
    # B claims A's id (anyone who can trigger B can pass it), but A's trigger record names
    # another pipeline: the link is not proven.
    other = world.trigger(B)
    a_id, b_id = world.a_triggers_b(record=other)
    world.finish_b(b_id)

    answer = world.post(event_for(world, b_id))

    assert answer.json()["verdict"] == "refused"
    assert "link is not proven" in answer.json()["reason"]
    assert world.hold(a_id) == "on_hold"


@pytest.mark.parametrize(
    "slug",
    ["gh/acme/other", "gh/acme/*", "gh/acme/?", "gh/acme/b gh/acme/c", "gh/acme", "bb/acme/b"],
)
def test_a_payload_whose_project_disagrees_with_the_api_is_refused(world: World, slug: str) -> None:
    a_id, b_id = world.a_triggers_b()
    world.finish_b(b_id)

    answer = world.post(event_for(world, b_id, slug=slug))

    assert answer.json()["verdict"] == "refused"
    assert world.hold(a_id) == "on_hold"


def test_events_of_projects_not_accepted_here_are_refused(world: World) -> None:
    world.rules = Rules(allow_projects=("gh/acme/*",), downstream_projects=("gh/acme/c",))
    world.__post_init__()
    a_id, b_id = world.a_triggers_b()
    world.finish_b(b_id)

    answer = world.post(event_for(world, b_id))

    assert answer.json()["verdict"] == "refused"
    assert world.hold(a_id) == "on_hold"


@pytest.mark.parametrize(
    "event",
    [
        [],
        {"type": "workflow-completed"},
        {"type": "workflow-completed", "pipeline": {"id": "x"}, "project": {"slug": B}},
        {"type": "workflow-completed", "pipeline": {"id": 7}, "project": {"slug": B}},
    ],
)
def test_signed_nonsense_changes_nothing(world: World, event: object) -> None:
    a_id, b_id = world.a_triggers_b()
    world.finish_b(b_id)

    answer = world.post(event)

    assert answer.status_code == 200
    assert answer.json()["verdict"] in {"ignored", "refused"}
    assert world.hold(a_id) == "on_hold"


def test_a_body_that_is_not_json_is_a_bad_request(world: World) -> None:
    body = b"not json"
    answer = world.receiver.post(
        "/webhook", content=body, headers={"circleci-signature": sign(body, SECRET)}
    )
    assert answer.status_code == 400


def test_an_oversized_body_is_refused_before_it_is_read_whole(world: World) -> None:
    body = b"{" + b" " * (2 << 20) + b"}"
    answer = world.receiver.post(
        "/webhook", content=body, headers={"circleci-signature": sign(body, SECRET)}
    )
    assert answer.status_code == 413


def test_the_receiver_fails_closed_without_a_secret(world: World) -> None:
    with pytest.raises(errors.ConfigurationError, match="signing secret"):
        create_app(client=world.client, rules=world.rules, secrets=["", ""])


def test_the_receiver_refuses_to_start_without_an_allow_list(world: World) -> None:
    with pytest.raises(errors.ConfigurationError, match="allow-project"):
        create_app(client=world.client, rules=Rules(allow_projects=()), secrets=[SECRET])


def test_rotation_accepts_every_configured_secret() -> None:
    body = b'{"type": "workflow-completed"}'
    assert verify(body, sign(body, "new"), ["old", "new"])
    assert verify(body, sign(body, "old"), ["old", "new"])
    assert not verify(body, sign(body, "older"), ["old", "new"])
    assert not verify(body, sign(body, "new"), [])
    assert verify(body, "v2=abc, " + sign(body, "new"), ["new"])


def test_an_event_for_a_pipeline_the_token_cannot_see_is_refused_with_a_hint(
    world: World,
) -> None:
    a_id, b_id = world.a_triggers_b()
    world.finish_b(b_id)
    event = event_for(world, b_id)
    event["pipeline"]["id"] = "00000000-0000-4000-8000-000000000000"

    answer = world.post(event)

    assert answer.json()["verdict"] == "refused"
    assert "token" in answer.json()["reason"]
    assert world.hold(a_id) == "on_hold"


def test_replaying_a_delivery_this_receiver_answered_costs_no_api_request(
    world: World,
) -> None:
    # The signature has no timestamp: a captured delivery can be sent again and again, and
    # each evaluation spends about a dozen reads of the receiver token's rate limit.
    world.install_webhook()
    a_id, b_id = world.a_triggers_b()
    world.finish_b(b_id)
    world.settle()
    assert world.hold(a_id) == "success"
    captured = world.emu.webhooks.sent[-1]
    before = len(world.emu.request_log)

    replays = [
        world.receiver.post("/webhook", content=captured.body, headers=captured.headers)
        for _ in range(20)
    ]

    assert {(r.status_code, r.json()["verdict"]) for r in replays} == {(200, "already_released")}
    assert len(world.emu.request_log) == before
    assert world.approvals() == 1


def test_another_replica_judges_a_replay_from_the_api_alone(world: World) -> None:
    # What one replica remembers only saves reads: a replica that never saw the delivery
    # reaches the same answer from the API.
    from tests.webhook.world import Receiver

    world.install_webhook()
    a_id, b_id = world.a_triggers_b()
    world.finish_b(b_id)
    world.settle()
    assert world.hold(a_id) == "success"
    captured = world.emu.webhooks.sent[-1]
    other = Receiver(create_app(client=world.client, rules=world.rules, secrets=world.secrets))
    before = len(world.emu.request_log)

    replay = other.post("/webhook", content=captured.body, headers=captured.headers)

    assert replay.json()["verdict"] == "already_released"
    assert len(world.emu.request_log) > before
    assert world.approvals() == 1
