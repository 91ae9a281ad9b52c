"""The API client against respx: endpoints, retries, pagination, errors, secrets."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import httpx
import pytest
import respx

from circleback import errors
from circleback.client import CircleCIClient, RetryPolicy
from circleback.models import JobType, WorkflowStatus
from circleback.settings import Settings

from .payloads import JOB_ID, PIPELINE_ID, WORKFLOW_ID, creation, job, pipeline, workflow

BASE = "https://circleci.com/api/v2"
TOKEN = "CCIPAT_s3cr3t-t0ken"


class FakeTime:
    """A clock that only moves when the client sleeps: retries are free and observable."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def api() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=BASE, assert_all_called=False) as router:
        yield router


@pytest.fixture
def client(fake_time: FakeTime) -> Iterator[CircleCIClient]:
    with CircleCIClient(
        token=TOKEN, sleep=fake_time.sleep, clock=fake_time.clock, rand=lambda: 1.0
    ) as c:
        yield c


# -- endpoints --------------------------------------------------------------------------


def test_trigger_legacy_sends_branch_parameters_and_token(
    api: respx.MockRouter, client: CircleCIClient
) -> None:
    route = api.post("/project/gh/acme/b/pipeline").respond(201, json=creation(12))
    created = client.trigger_pipeline(
        "gh/acme/b", branch="main", parameters={"triggering-pipeline-id": PIPELINE_ID, "n": 3}
    )
    assert created.id == PIPELINE_ID
    assert created.number == 12
    request = route.calls.last.request
    assert request.headers["Circle-Token"] == TOKEN
    assert TOKEN not in str(request.url)
    assert json.loads(request.content) == {
        "branch": "main",
        "parameters": {"triggering-pipeline-id": PIPELINE_ID, "n": 3},
    }


def test_trigger_legacy_refuses_opaque_slugs(client: CircleCIClient) -> None:
    with pytest.raises(errors.ConfigurationError, match="legacy"):
        client.trigger_pipeline(f"circleci/{PIPELINE_ID}/{PIPELINE_ID}")


def test_trigger_refuses_branch_and_tag(client: CircleCIClient) -> None:
    with pytest.raises(errors.ConfigurationError, match="not both"):
        client.trigger_pipeline("gh/acme/b", branch="main", tag="v1")


def test_run_pipeline_sends_three_segments_and_refs(
    api: respx.MockRouter, client: CircleCIClient
) -> None:
    slug = f"circleci/{PIPELINE_ID}/{WORKFLOW_ID}"
    route = api.post(f"/project/{slug}/pipeline/run").respond(201, json=creation())
    client.run_pipeline(slug, definition_id=JOB_ID.upper(), branch="main", parameters={"x": True})
    assert json.loads(route.calls.last.request.content) == {
        "definition_id": JOB_ID,
        "config": {"branch": "main"},
        "checkout": {"branch": "main"},
        "parameters": {"x": True},
    }


def test_run_pipeline_checkout_ref_can_differ(
    api: respx.MockRouter, client: CircleCIClient
) -> None:
    route = api.post("/project/gh/acme/b/pipeline/run").respond(201, json=creation())
    client.run_pipeline("gh/acme/b", tag="v1", checkout_branch="release")
    body = json.loads(route.calls.last.request.content)
    assert body == {"config": {"tag": "v1"}, "checkout": {"branch": "release"}}


def test_run_pipeline_200_means_not_created(api: respx.MockRouter, client: CircleCIClient) -> None:
    api.post("/project/gh/acme/b/pipeline/run").respond(
        200, json={"message": "Ignoring pipeline due to CI skip in the commit"}
    )
    with pytest.raises(errors.NotCreated, match="CI skip"):
        client.run_pipeline("gh/acme/b", branch="main")


def test_trigger_other_2xx_is_unexpected(api: respx.MockRouter, client: CircleCIClient) -> None:
    api.post("/project/gh/acme/b/pipeline").respond(202, json=creation())
    with pytest.raises(errors.UnexpectedResponse, match="not 201"):
        client.trigger_pipeline("gh/acme/b")


def test_trigger_enforces_parameter_limits(client: CircleCIClient) -> None:
    with pytest.raises(errors.ConfigurationError, match="at most 100"):
        client.trigger_pipeline("gh/acme/b", parameters={str(i): i for i in range(101)})
    with pytest.raises(errors.ConfigurationError, match="512"):
        client.trigger_pipeline("gh/acme/b", parameters={"x": "y" * 513})
    with pytest.raises(errors.ConfigurationError, match="128"):
        client.trigger_pipeline("gh/acme/b", parameters={"k" * 129: 1})


def test_get_pipeline_parses_errors_and_tolerates_new_states(
    api: respx.MockRouter, client: CircleCIClient
) -> None:
    body = pipeline(state="brand-new-state", errors=[{"type": "config", "message": "bad"}])
    api.get(f"/pipeline/{PIPELINE_ID}").respond(200, json=body)
    got = client.get_pipeline(PIPELINE_ID)
    assert got.state == "brand-new-state"
    assert got.errors[0].message == "bad"


def test_get_workflow_keeps_known_statuses_as_enums(
    api: respx.MockRouter, client: CircleCIClient
) -> None:
    api.get(f"/workflow/{WORKFLOW_ID}").respond(200, json=workflow(status="failing"))
    got = client.get_workflow(WORKFLOW_ID)
    assert got.status is WorkflowStatus.FAILING
    assert not got.is_final


def test_unknown_workflow_status_is_a_string_and_not_final(
    api: respx.MockRouter, client: CircleCIClient
) -> None:
    api.get(f"/workflow/{WORKFLOW_ID}").respond(200, json=workflow(status="queued-forever"))
    got = client.get_workflow(WORKFLOW_ID)
    assert got.status == "queued-forever"
    assert not isinstance(got.status, WorkflowStatus)
    # Not final: a status this code cannot read is waited on (bounded by a timeout),
    # never taken as the end of B.
    assert not got.is_final


def test_list_project_pipelines_filters_by_branch(
    api: respx.MockRouter, client: CircleCIClient
) -> None:
    route = api.get("/project/gh/acme/b/pipeline").respond(
        200, json={"items": [pipeline()], "next_page_token": None}
    )
    assert [p.id for p in client.list_project_pipelines("gh/acme/b", branch="main")] == [
        PIPELINE_ID
    ]
    assert route.calls.last.request.url.params["branch"] == "main"


def test_list_jobs_parses_types(api: respx.MockRouter, client: CircleCIClient) -> None:
    api.get(f"/workflow/{WORKFLOW_ID}/job").respond(
        200,
        json={
            "items": [job(), job(name="b", type_="build", status="running")],
            "next_page_token": None,
        },
    )
    jobs = list(client.list_workflow_jobs(WORKFLOW_ID))
    assert [j.type for j in jobs] == [JobType.APPROVAL, JobType.BUILD]


def test_approve_rerun_cancel(api: respx.MockRouter, client: CircleCIClient) -> None:
    approve = api.post(f"/workflow/{WORKFLOW_ID}/approve/{JOB_ID}").respond(
        202, json={"message": "Accepted."}
    )
    rerun = api.post(f"/workflow/{WORKFLOW_ID}/rerun").respond(202, json={"workflow_id": JOB_ID})
    cancel = api.post(f"/workflow/{WORKFLOW_ID}/cancel").respond(202, json={"message": "ok"})
    client.approve_job(WORKFLOW_ID, JOB_ID)
    assert client.rerun_workflow(WORKFLOW_ID, from_failed=True) == JOB_ID
    client.cancel_workflow(WORKFLOW_ID)
    assert approve.called
    assert cancel.called
    assert json.loads(rerun.calls.last.request.content) == {"from_failed": True}


def test_rerun_refuses_from_failed_with_jobs(client: CircleCIClient) -> None:
    with pytest.raises(errors.ConfigurationError):
        client.rerun_workflow(WORKFLOW_ID, from_failed=True, jobs=[JOB_ID])


def test_rerun_without_workflow_id_is_unexpected(
    api: respx.MockRouter, client: CircleCIClient
) -> None:
    api.post(f"/workflow/{WORKFLOW_ID}/rerun").respond(202, json={"message": "?"})
    with pytest.raises(errors.UnexpectedResponse):
        client.rerun_workflow(WORKFLOW_ID, jobs=[JOB_ID])


@pytest.mark.parametrize("bad", ["", "null", "../../me", PIPELINE_ID + "?x=1"])
def test_bad_ids_make_no_request(api: respx.MockRouter, client: CircleCIClient, bad: str) -> None:
    for call in (
        lambda: client.get_pipeline(bad),
        lambda: list(client.list_pipeline_workflows(bad)),
        lambda: client.get_workflow(bad),
        lambda: list(client.list_workflow_jobs(bad)),
        lambda: client.approve_job(bad, JOB_ID),
        lambda: client.approve_job(WORKFLOW_ID, bad),
        lambda: client.cancel_workflow(bad),
    ):
        with pytest.raises(errors.ConfigurationError):
            call()
    assert not api.calls


# -- pagination -------------------------------------------------------------------------


def test_pagination_follows_every_page(api: respx.MockRouter, client: CircleCIClient) -> None:
    ids = [f"00000000-0000-4000-8000-00000000000{i}" for i in range(5)]

    def pages(request: httpx.Request) -> httpx.Response:
        token = request.url.params.get("page-token")
        index = 0 if token is None else int(token)
        nxt = str(index + 2) if index + 2 < len(ids) else None
        items = [workflow(wid=w) for w in ids[index : index + 2]]
        return httpx.Response(200, json={"items": items, "next_page_token": nxt})

    route = api.get(f"/pipeline/{PIPELINE_ID}/workflow").mock(side_effect=pages)
    assert [w.id for w in client.list_pipeline_workflows(PIPELINE_ID)] == ids
    assert route.call_count == 3


def test_pagination_is_lazy(api: respx.MockRouter, client: CircleCIClient) -> None:
    route = api.get(f"/workflow/{WORKFLOW_ID}/job").respond(
        200, json={"items": [job()], "next_page_token": "more"}
    )
    first = next(iter(client.list_workflow_jobs(WORKFLOW_ID)))
    assert first.id == JOB_ID
    assert route.call_count == 1


def test_repeated_page_token_is_an_error(api: respx.MockRouter, client: CircleCIClient) -> None:
    api.get(f"/workflow/{WORKFLOW_ID}/job").respond(
        200, json={"items": [job()], "next_page_token": "same"}
    )
    with pytest.raises(errors.PaginationLoop):
        list(client.list_workflow_jobs(WORKFLOW_ID))


def test_empty_page_with_next_token_is_followed(
    api: respx.MockRouter, client: CircleCIClient
) -> None:
    api.get(f"/workflow/{WORKFLOW_ID}/job").mock(
        side_effect=[
            httpx.Response(200, json={"items": [], "next_page_token": "p2"}),
            httpx.Response(200, json={"items": [job()], "next_page_token": None}),
        ]
    )
    assert len(list(client.list_workflow_jobs(WORKFLOW_ID))) == 1


def test_item_with_wrong_shape_is_unexpected(api: respx.MockRouter, client: CircleCIClient) -> None:
    api.get(f"/workflow/{WORKFLOW_ID}/job").respond(
        200, json={"items": [{"id": JOB_ID}], "next_page_token": None}
    )
    with pytest.raises(errors.UnexpectedResponse, match="not a Job"):
        list(client.list_workflow_jobs(WORKFLOW_ID))


# -- retries ----------------------------------------------------------------------------


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_get_retries_then_succeeds(
    api: respx.MockRouter, client: CircleCIClient, fake_time: FakeTime, status: int
) -> None:
    route = api.get(f"/pipeline/{PIPELINE_ID}").mock(
        side_effect=[
            httpx.Response(status),
            httpx.Response(status),
            httpx.Response(200, json=pipeline()),
        ]
    )
    assert client.get_pipeline(PIPELINE_ID).id == PIPELINE_ID
    assert route.call_count == 3
    assert fake_time.sleeps == [0.5, 1.0]


def test_retry_after_is_honoured(
    api: respx.MockRouter, client: CircleCIClient, fake_time: FakeTime
) -> None:
    api.get(f"/pipeline/{PIPELINE_ID}").mock(
        side_effect=[
            httpx.Response(
                429, headers={"Retry-After": "7"}, json={"message": "Rate limit exceeded."}
            ),
            httpx.Response(200, json=pipeline()),
        ]
    )
    client.get_pipeline(PIPELINE_ID)
    assert fake_time.sleeps == [7.0]


@pytest.mark.parametrize(
    "exc", [httpx.ConnectError("x"), httpx.ReadError("x"), httpx.RemoteProtocolError("x")]
)
def test_get_retries_transport_errors(
    api: respx.MockRouter, client: CircleCIClient, exc: Exception
) -> None:
    route = api.get(f"/pipeline/{PIPELINE_ID}").mock(
        side_effect=[exc, httpx.Response(200, json=pipeline())]
    )
    client.get_pipeline(PIPELINE_ID)
    assert route.call_count == 2


def test_get_retries_a_proxy_page(api: respx.MockRouter, client: CircleCIClient) -> None:
    route = api.get(f"/pipeline/{PIPELINE_ID}").mock(
        side_effect=[
            httpx.Response(200, text="<html>Bad gateway</html>"),
            httpx.Response(200, text='{"id": '),
            httpx.Response(200, json=pipeline()),
        ]
    )
    client.get_pipeline(PIPELINE_ID)
    assert route.call_count == 3


def test_retries_are_bounded_in_attempts(api: respx.MockRouter, fake_time: FakeTime) -> None:
    route = api.get(f"/pipeline/{PIPELINE_ID}").respond(503, json={"message": "down"})
    with (
        CircleCIClient(
            token=TOKEN,
            retry=RetryPolicy(max_attempts=3),
            sleep=fake_time.sleep,
            clock=fake_time.clock,
        ) as c,
        pytest.raises(errors.ServerError, match="down") as info,
    ):
        c.get_pipeline(PIPELINE_ID)
    assert route.call_count == 3
    assert info.value.status_code == 503


def test_retries_are_bounded_in_time(api: respx.MockRouter, fake_time: FakeTime) -> None:
    route = api.get(f"/pipeline/{PIPELINE_ID}").respond(429, headers={"Retry-After": "50"})
    policy = RetryPolicy(max_attempts=100, total_budget=120.0)
    with (
        CircleCIClient(
            token=TOKEN, retry=policy, sleep=fake_time.sleep, clock=fake_time.clock
        ) as c,
        pytest.raises(errors.RateLimited),
    ):
        c.get_pipeline(PIPELINE_ID)
    assert route.call_count == 3
    assert fake_time.now <= 120.0


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_trigger_is_not_retried_on_5xx(
    api: respx.MockRouter, client: CircleCIClient, status: int
) -> None:
    route = api.post("/project/gh/acme/b/pipeline").respond(status)
    with pytest.raises(errors.ServerError):
        client.trigger_pipeline("gh/acme/b")
    assert route.call_count == 1


@pytest.mark.parametrize("exc", [httpx.ReadError("x"), httpx.ReadTimeout("x")])
def test_trigger_is_not_retried_when_the_request_may_have_arrived(
    api: respx.MockRouter, client: CircleCIClient, exc: Exception
) -> None:
    route = api.post("/project/gh/acme/b/pipeline").mock(side_effect=exc)
    with pytest.raises(errors.TransportError):
        client.trigger_pipeline("gh/acme/b")
    assert route.call_count == 1


def test_trigger_is_retried_on_429_and_connect_errors(
    api: respx.MockRouter, client: CircleCIClient
) -> None:
    route = api.post("/project/gh/acme/b/pipeline").mock(
        side_effect=[
            httpx.Response(429),
            httpx.ConnectError("refused"),
            httpx.Response(201, json=creation()),
        ]
    )
    client.trigger_pipeline("gh/acme/b")
    assert route.call_count == 3


def test_trigger_non_json_201_is_unexpected_and_not_retried(
    api: respx.MockRouter, client: CircleCIClient
) -> None:
    route = api.post("/project/gh/acme/b/pipeline").respond(201, text="<html>")
    with pytest.raises(errors.UnexpectedResponse):
        client.trigger_pipeline("gh/acme/b")
    assert route.call_count == 1


def test_approve_is_retried_on_5xx(api: respx.MockRouter, client: CircleCIClient) -> None:
    route = api.post(f"/workflow/{WORKFLOW_ID}/approve/{JOB_ID}").mock(
        side_effect=[httpx.Response(502), httpx.Response(202, json={"message": "ok"})]
    )
    client.approve_job(WORKFLOW_ID, JOB_ID)
    assert route.call_count == 2


def test_timeout_after_retries_is_a_request_timeout(
    api: respx.MockRouter, fake_time: FakeTime
) -> None:
    api.get(f"/pipeline/{PIPELINE_ID}").mock(side_effect=httpx.ReadTimeout("slow"))
    with (
        CircleCIClient(
            token=TOKEN,
            retry=RetryPolicy(max_attempts=2),
            sleep=fake_time.sleep,
            clock=fake_time.clock,
        ) as c,
        pytest.raises(errors.RequestTimeout) as info,
    ):
        c.get_pipeline(PIPELINE_ID)
    assert info.value.exit_code == 3


# -- errors -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (401, errors.AuthenticationError),
        (403, errors.PermissionDenied),
        (404, errors.NotFound),
        (400, errors.APIError),
    ],
)
def test_error_statuses_raise_typed_errors_with_hints(
    api: respx.MockRouter, client: CircleCIClient, status: int, cls: type[errors.APIError]
) -> None:
    route = api.get(f"/workflow/{WORKFLOW_ID}").respond(status, json={"message": "Nope."})
    with pytest.raises(cls) as info:
        client.get_workflow(WORKFLOW_ID)
    assert type(info.value) is cls
    assert "Nope." in str(info.value)
    assert info.value.hint
    assert route.call_count == 1


def test_redirects_are_not_followed(api: respx.MockRouter, client: CircleCIClient) -> None:
    api.get(f"/pipeline/{PIPELINE_ID}").respond(302, headers={"Location": "https://evil.example/"})
    evil = respx.get("https://evil.example/").respond(200, json=pipeline())
    with pytest.raises(errors.APIError):
        client.get_pipeline(PIPELINE_ID)
    assert not evil.called


# -- secrets ----------------------------------------------------------------------------


def test_token_never_in_errors_repr_or_logs(
    api: respx.MockRouter, caplog: pytest.LogCaptureFixture, fake_time: FakeTime
) -> None:
    caplog.set_level(logging.DEBUG, logger="circleback")
    api.get(f"/pipeline/{PIPELINE_ID}").respond(401, json={"message": f"Invalid token {TOKEN}"})
    api.get(f"/workflow/{WORKFLOW_ID}").mock(side_effect=httpx.ConnectError(f"boom {TOKEN}"))
    with CircleCIClient(
        token=TOKEN, retry=RetryPolicy(max_attempts=2), sleep=fake_time.sleep, clock=fake_time.clock
    ) as c:
        assert TOKEN not in repr(c)
        with pytest.raises(errors.AuthenticationError) as auth:
            c.get_pipeline(PIPELINE_ID)
        with pytest.raises(errors.TransportError) as transport:
            c.get_workflow(WORKFLOW_ID)
    for err in (auth.value, transport.value):
        assert TOKEN not in str(err)
        assert TOKEN not in repr(err)
        assert TOKEN not in err.hint
    assert caplog.records
    assert TOKEN not in caplog.text


def test_from_settings_requires_a_token(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CIRCLEBACK_TOKEN", "CIRCLE_TOKEN", "CIRCLECI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(errors.ConfigurationError):
        CircleCIClient.from_settings(Settings())
    monkeypatch.setenv("CIRCLE_TOKEN", TOKEN)
    monkeypatch.setenv("CIRCLEBACK_HOST", "http://127.0.0.1:9")
    with CircleCIClient.from_settings(Settings()) as c:
        assert c.base_url == "http://127.0.0.1:9/api/v2"


# -- artifacts --------------------------------------------------------------------------


def test_list_job_artifacts_and_fetch_from_circleci_hosts(
    api: respx.MockRouter, client: CircleCIClient
) -> None:
    api.get("/project/gh/acme/a/12/artifacts").respond(
        200,
        json={
            "items": [{"path": "circleback/downstream.json", "node_index": 0, "url": "https://x"}],
            "next_page_token": None,
        },
    )
    (artifact,) = client.list_job_artifacts("gh/acme/a", 12)
    assert artifact.path == "circleback/downstream.json"
    same = respx.Route(
        method="GET", host="circleci.com", path="/output/job/1/artifacts/0/a"
    ).respond(200, content=b"{}")
    cdn = respx.Route(
        method="GET", host="output.circle-artifacts.com", path="/output/job/1/artifacts/0/a"
    ).respond(200, content=b"[]")
    api.routes.add(same)
    api.routes.add(cdn)
    assert client.get_artifact("https://circleci.com/output/job/1/artifacts/0/a") == b"{}"
    assert (
        client.get_artifact("https://output.circle-artifacts.com/output/job/1/artifacts/0/a")
        == b"[]"
    )
    assert same.calls.last.request.headers["Circle-Token"] == TOKEN
    assert cdn.calls.last.request.headers["Circle-Token"] == TOKEN


@pytest.mark.parametrize(
    "url",
    [
        "https://evil.example/steal",
        "http://output.circle-artifacts.com/x",
        "https://circle-artifacts.com.evil.example/x",
        "http://circleci.com/output/x",
    ],
)
def test_artifacts_elsewhere_never_get_the_token(
    api: respx.MockRouter, client: CircleCIClient, url: str
) -> None:
    with pytest.raises(errors.ConfigurationError, match="Refusing"):
        client.get_artifact(url)
    assert not api.calls


def test_artifact_job_number_is_checked(client: CircleCIClient) -> None:
    with pytest.raises(errors.ConfigurationError):
        list(client.list_job_artifacts("gh/acme/a", -1))
