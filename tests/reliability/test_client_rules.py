"""The client rules the fault matrix depends on, one response at a time.

Which failures leave a create's outcome unknown (``outcome_unknown``), that approve and
cancel succeed only on 202, that a 2xx of the wrong shape is retried like a proxy's page,
and that a 200 without CircleCI's message is not mistaken for "not created".
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest

from circleback import _core, errors
from circleback.client import CircleCIClient, RetryPolicy
from tests.relay.world import FakeTime

PIPELINE_ID = "5034460f-c7c4-4c43-9457-de07e2029e7b"
WORKFLOW_ID = "6a8f1b0e-3a59-4b7c-9d3f-2a1e0c9b8d7f"
JOB_ID = "7b9e2c1f-4b6a-4c8d-8e4f-3b2f1d0c9e8a"
CREATION = {
    "id": PIPELINE_ID,
    "state": "created",
    "number": 1,
    "created_at": "2026-11-22T12:00:00Z",
}
PIPELINE = {
    "id": PIPELINE_ID,
    "number": 1,
    "project_slug": "gh/acme/b",
    "state": "created",
    "created_at": "2026-11-22T12:00:00Z",
    "errors": [],
    "trigger": {"type": "api", "received_at": "2026-11-22T12:00:00Z", "actor": {"login": "x"}},
}
Handler = Callable[[httpx.Request], httpx.Response]


class Script:
    """Answer each request with the next scripted response (or raise it)."""

    def __init__(self, *answers: httpx.Response | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


@pytest.fixture
def make() -> Iterator[Callable[[Script], CircleCIClient]]:
    clients: list[CircleCIClient] = []

    def build(script: Script) -> CircleCIClient:
        fake = FakeTime()
        client = CircleCIClient(
            token="t0ken",
            transport=httpx.MockTransport(script),
            retry=RetryPolicy(max_attempts=3),
            sleep=fake.sleep,
            clock=fake.clock,
        )
        clients.append(client)
        return client

    yield build
    for client in clients:
        client.close()


@pytest.mark.parametrize(
    ("method", "status", "sent", "unknown"),
    [
        ("POST", None, True, True),
        ("POST", None, False, False),
        ("POST", 500, True, True),
        ("POST", 504, True, True),
        ("POST", 201, True, True),
        ("POST", 429, True, False),
        ("POST", 400, True, False),
        ("POST", 409, True, False),
        ("GET", 503, True, False),
        ("GET", None, True, False),
    ],
)
def test_outcome_unknown(method: str, status: int | None, sent: bool, unknown: bool) -> None:
    assert _core.outcome_unknown(method, status, sent=sent) is unknown


@pytest.mark.parametrize(
    ("answer", "error", "unknown"),
    [
        (httpx.Response(502), errors.ServerError, True),
        (httpx.ReadTimeout("slow"), errors.RequestTimeout, True),
        (httpx.RemoteProtocolError("gone"), errors.TransportError, True),
        (httpx.ConnectError("refused"), errors.TransportError, False),
        (httpx.Response(201, text='{"id": "5034'), errors.UnexpectedResponse, True),
        (httpx.Response(201, json={"unexpected": True}), errors.UnexpectedResponse, True),
        (httpx.Response(200, json={"unexpected": True}), errors.UnexpectedResponse, True),
        (httpx.Response(200, json={"message": "CI skip"}), errors.NotCreated, False),
        (httpx.Response(400, json={"message": "bad"}), errors.APIError, False),
        (httpx.Response(429), errors.RateLimited, False),
    ],
)
def test_a_trigger_failure_says_whether_its_outcome_is_unknown(
    make: Callable[[Script], CircleCIClient],
    answer: httpx.Response | Exception,
    error: type[errors.CirclebackError],
    unknown: bool,
) -> None:
    client = make(Script(answer))
    with pytest.raises(error) as info:
        client.trigger_pipeline("gh/acme/b", branch="main")
    assert type(info.value) is error
    assert info.value.outcome_unknown is unknown


@pytest.mark.parametrize("status", [200, 201, 204])
def test_approve_and_cancel_succeed_only_on_202(
    make: Callable[[Script], CircleCIClient], status: int
) -> None:
    script = Script(httpx.Response(status, json={"message": "ok"}), httpx.Response(202))
    make(script).approve_job(WORKFLOW_ID, JOB_ID)
    assert len(script.requests) == 2
    never = Script(httpx.Response(status, json={"message": "ok"}))
    with pytest.raises(errors.UnexpectedResponse, match="not 202"):
        make(never).cancel_workflow(WORKFLOW_ID)
    assert len(never.requests) == 3


def test_a_read_of_the_wrong_shape_is_retried(make: Callable[[Script], CircleCIClient]) -> None:
    script = Script(
        httpx.Response(200, json={"unexpected": True}), httpx.Response(200, json=PIPELINE)
    )
    assert make(script).get_pipeline(PIPELINE_ID).number == 1
    pages = Script(
        httpx.Response(200, json={"items": [{"id": 1}], "next_page_token": None}),
        httpx.Response(200, json={"items": [PIPELINE], "next_page_token": None}),
    )
    assert [p.id for p in make(pages).list_project_pipelines("gh/acme/b")] == [PIPELINE_ID]
    assert len(pages.requests) == 2


def test_a_read_that_stays_wrong_is_a_clean_error(make: Callable[[Script], CircleCIClient]) -> None:
    script = Script(httpx.Response(200, json=[1, 2]))
    with pytest.raises(errors.UnexpectedResponse) as info:
        make(script).get_pipeline(PIPELINE_ID)
    assert not info.value.outcome_unknown
    assert len(script.requests) == 3
