"""Signed bodies and failures the receiver did not plan for: a clear answer, never a 500
with a traceback in the log."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from circleback import _logging
from circleback.serve import app as app_module
from circleback.serve.signature import sign
from tests.webhook.world import SECRET, TOKEN, Receiver, World


@pytest.fixture
def log() -> Iterator[io.StringIO]:
    root = logging.getLogger("circleback")
    saved = (list(root.handlers), root.level, root.propagate)
    stream = io.StringIO()
    _logging.configure(verbose=False, json_format=True, secrets=[TOKEN, SECRET], stream=stream)
    try:
        yield stream
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        root.propagate = saved[2]


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000 + b"]" * 100_000,
        b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
        b'{"type": "workflow-completed", "x": ' + b"[" * 20_000 + b"]" * 20_000 + b"}",
    ],
    ids=["arrays", "objects", "inside-an-event"],
)
def test_a_deeply_nested_signed_body_is_a_bad_request(world: World, body: bytes) -> None:
    answer = world.receiver.post(
        "/webhook", content=body, headers={"circleci-signature": sign(body, SECRET)}
    )

    assert answer.status_code == 400
    assert "JSON" in answer.json()["message"]


def test_an_unexpected_failure_asks_for_another_delivery_and_logs_no_traceback(
    world: World, monkeypatch: pytest.MonkeyPatch, log: io.StringIO
) -> None:
    def broken(client: object, event: object, rules: object) -> object:
        raise RuntimeError(f"boom with {TOKEN} inside")

    monkeypatch.setattr(app_module, "handle", broken)
    world.receiver = Receiver(
        app_module.create_app(client=world.client, rules=world.rules, secrets=world.secrets)
    )

    answer = world.post({"type": "workflow-completed", "id": "e-1"})

    assert answer.status_code == 503
    assert answer.json()["verdict"] == "retry"
    assert TOKEN not in answer.text
    lines = [json.loads(line) for line in log.getvalue().splitlines()]
    assert [entry["level"] for entry in lines] == ["error"]
    assert "RuntimeError" in lines[0]["event"]
    assert lines[0]["event_id"] == "e-1"
    assert "Traceback" not in log.getvalue()
    assert TOKEN not in log.getvalue()


async def _call(app: object, messages: list[dict[str, object]]) -> list[dict[str, object]]:
    """Drive the ASGI app with ``messages`` as the request body's arrival; after the last
    one the client goes quiet (it never sends more, never hangs up)."""
    import asyncio

    pending = list(messages)
    sent: list[dict[str, object]] = []
    quiet = asyncio.Event()

    async def receive() -> dict[str, object]:
        if pending:
            return pending.pop(0)
        await quiet.wait()  # a slow client: the rest of the body never comes
        raise AssertionError("unreachable")

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/webhook",
        "raw_path": b"/webhook",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-length", b"1000"), (b"circleci-signature", b"v1=00")],
        "client": ("203.0.113.7", 5555),
        "server": ("127.0.0.1", 8080),
    }
    await app(scope, receive, send)  # type: ignore[operator]
    return sent


def test_a_body_that_never_finishes_arriving_is_answered_within_the_budget(
    world: World,
) -> None:
    import asyncio

    app = app_module.create_app(
        client=world.client, rules=world.rules, secrets=world.secrets, budget=0.05
    )
    first = {"type": "http.request", "body": b"{", "more_body": True}

    # The 30 s guard only stops a hang from stalling the suite; the budget is 50 ms.
    sent = asyncio.run(asyncio.wait_for(_call(app, [first]), 30))

    assert sent[0]["status"] == 408


def test_a_client_that_hangs_up_mid_body_leaves_no_traceback(
    world: World, log: io.StringIO
) -> None:
    import asyncio

    app = app_module.create_app(client=world.client, rules=world.rules, secrets=world.secrets)
    messages = [
        {"type": "http.request", "body": b"{", "more_body": True},
        {"type": "http.disconnect"},
    ]

    asyncio.run(_call(app, messages))  # raised ClientDisconnect before

    assert "Traceback" not in log.getvalue()
    assert all(json.loads(line)["level"] != "error" for line in log.getvalue().splitlines())


def test_past_its_limit_of_work_in_progress_a_delivery_is_asked_for_again(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Slow API calls must not pile up work without end (each delivery holds a worker
    # thread): past the limit the answer is an immediate 503, and CircleCI delivers again.
    import threading

    from circleback.serve.receiver import Decision, Verdict

    entered, release = threading.Event(), threading.Event()

    def stuck(client: object, event: object, rules: object) -> Decision:
        entered.set()
        release.wait(120)
        return Decision(Verdict.IGNORED, "done")

    monkeypatch.setattr(app_module, "handle", stuck)
    world.receiver = Receiver(
        app_module.create_app(
            client=world.client,
            rules=world.rules,
            secrets=world.secrets,
            max_in_flight=1,
            budget=120,  # the first delivery must not time out, however loaded the machine
        )
    )
    first: list[int] = []
    worker = threading.Thread(
        target=lambda: first.append(world.post({"type": "job-completed", "id": "1"}).status_code)
    )
    worker.start()
    assert entered.wait(30)

    second = world.post({"type": "job-completed", "id": "2"})
    release.set()
    worker.join(120)

    assert second.status_code == 503
    assert second.json()["verdict"] == "retry"
    assert first == [200]
