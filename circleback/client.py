"""A CircleCI API v2 client: one method per endpoint circleback uses.

It authenticates with the ``Circle-Token`` header, retries what is safe to retry, follows
every page of every list, and turns each failure into a typed error from
``circleback.errors``. It reads no settings and never exits: the CLI does both.

Spec: ``shared/reference/circleci-api-v2.openapi.json``; facts and sources:
``shared/reference/circleci-api-notes.md``.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator, Mapping
from types import TracebackType
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, SecretStr, ValidationError

from circleback import _core, errors
from circleback._core import DEFAULT_RETRY, RetryPolicy, Safety
from circleback._version import __version__
from circleback.models import Artifact, Job, Pipeline, PipelineCreation, Workflow
from circleback.settings import DEFAULT_HOST, Settings, api_base_url
from circleback.validation import ProjectSlug, parse_project_slug, parse_uuid, segment

logger = logging.getLogger("circleback.client")

DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
#: A guard against a server that hands out fresh tokens for empty pages forever.
MAX_PAGES = 10_000

ParameterValue = str | int | bool
_M = TypeVar("_M", bound=BaseModel)
_R = TypeVar("_R")


class CircleCIClient:
    """A CircleCI API v2 client; use it as a context manager so connections are closed.

    ``transport`` swaps the network (``httpx.MockTransport``, the emulator's in-process
    transport); ``sleep`` and ``clock`` make retry timing testable without waiting.
    """

    def __init__(
        self,
        *,
        token: SecretStr | str,
        host: str = DEFAULT_HOST,
        transport: httpx.BaseTransport | None = None,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        retry: RetryPolicy = DEFAULT_RETRY,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self._token = token if isinstance(token, SecretStr) else SecretStr(token)
        self.base_url = api_base_url(host)
        self._retry = retry
        self._sleep = sleep
        self._clock = clock
        self._rand = rand
        self._http = httpx.Client(
            base_url=self.base_url,
            transport=transport,
            timeout=timeout,
            # A redirect could carry the token header to another host: never follow one.
            follow_redirects=False,
            headers={
                "Accept": "application/json",
                "User-Agent": f"circleback/{__version__}",
            },
        )

    @classmethod
    def from_settings(cls, settings: Settings, **kwargs: Any) -> CircleCIClient:
        """Build a client from environment settings; fails early when no token is set."""
        return cls(token=settings.require_token(), host=settings.host, **kwargs)

    def __repr__(self) -> str:
        return f"CircleCIClient(base_url={self.base_url!r}, token=SecretStr('**********'))"

    def __enter__(self) -> CircleCIClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    # -- pipelines ---------------------------------------------------------------------

    def trigger_pipeline(
        self,
        project_slug: str,
        *,
        branch: str | None = None,
        tag: str | None = None,
        parameters: Mapping[str, ParameterValue] | None = None,
    ) -> PipelineCreation:
        """Trigger with the legacy endpoint (``triggerPipeline``), for gh/bb OAuth projects."""
        slug = parse_project_slug(project_slug)
        if slug.is_opaque:
            raise errors.ConfigurationError(
                f"{slug} is a GitHub App / GitLab project; the legacy trigger endpoint "
                "does not support it.",
                hint="Use the pipeline/run endpoint (pass --definition-id).",
            )
        _check_ref(branch, tag)
        body: dict[str, Any] = {}
        if branch:
            body["branch"] = branch
        if tag:
            body["tag"] = tag
        if parameters:
            body["parameters"] = _check_parameters(parameters)
        return self._call(
            "POST",
            f"/project/{slug.path}/pipeline",
            lambda status, data: self._created(status, data, slug),
            json=body,
            safety=Safety.CREATES,
        )

    def run_pipeline(
        self,
        project_slug: str,
        *,
        definition_id: str | None = None,
        branch: str | None = None,
        tag: str | None = None,
        checkout_branch: str | None = None,
        checkout_tag: str | None = None,
        parameters: Mapping[str, ParameterValue] | None = None,
    ) -> PipelineCreation:
        """Trigger with ``pipeline/run`` (``triggerPipelineRun``), the recommended endpoint.

        ``branch``/``tag`` select the config; the checkout uses the same ref unless told
        otherwise. A 200 answer means CircleCI chose not to create a pipeline (CI skip):
        that raises ``NotCreated``, since nothing will ever run.
        """
        slug = parse_project_slug(project_slug)
        _check_ref(branch, tag)
        _check_ref(checkout_branch, checkout_tag)
        body: dict[str, Any] = {}
        if definition_id:
            body["definition_id"] = parse_uuid(definition_id, what="pipeline definition id")
        config_ref = _ref(branch, tag)
        if config_ref:
            body["config"] = config_ref
        checkout_ref = _ref(checkout_branch, checkout_tag) or config_ref
        if checkout_ref:
            body["checkout"] = checkout_ref
        if parameters:
            body["parameters"] = _check_parameters(parameters)
        return self._call(
            "POST",
            f"/project/{slug.path}/pipeline/run",
            lambda status, data: self._created(status, data, slug),
            json=body,
            safety=Safety.CREATES,
        )

    def get_pipeline(self, pipeline_id: str) -> Pipeline:
        """One pipeline (``getPipelineById``); it lists no workflows."""
        pid = parse_uuid(pipeline_id, what="pipeline id")
        return self._call("GET", f"/pipeline/{segment(pid)}", _model(Pipeline, f"pipeline {pid}"))

    def list_project_pipelines(
        self, project_slug: str, *, branch: str | None = None
    ) -> Iterator[Pipeline]:
        """A project's pipelines, newest first, every page (``listPipelinesForProject``)."""
        slug = parse_project_slug(project_slug)
        params = {"branch": branch} if branch else {}
        return self._paginate(
            Pipeline, f"/project/{slug.path}/pipeline", params, what=f"pipelines of {slug}"
        )

    def list_pipeline_workflows(self, pipeline_id: str) -> Iterator[Workflow]:
        """Every workflow of a pipeline, reruns included (``listWorkflowsByPipelineId``)."""
        pid = parse_uuid(pipeline_id, what="pipeline id")
        return self._paginate(
            Workflow, f"/pipeline/{segment(pid)}/workflow", {}, what=f"workflows of {pid}"
        )

    # -- artifacts ---------------------------------------------------------------------

    def list_job_artifacts(self, project_slug: str, job_number: int) -> Iterator[Artifact]:
        """A job's artifacts, every page (``getJobArtifacts``)."""
        slug = parse_project_slug(project_slug)
        if isinstance(job_number, bool) or not isinstance(job_number, int) or job_number < 0:
            raise errors.ConfigurationError(f"Job number {job_number!r} is not a job number.")
        return self._paginate(
            Artifact,
            f"/project/{slug.path}/{job_number}/artifacts",
            {},
            what=f"artifacts of {slug} job {job_number}",
        )

    def get_artifact(self, url: str, *, max_bytes: int = 1 << 20) -> bytes:
        """Download an artifact; the token goes only to CircleCI's own hosts.

        Artifact URLs come from the API, but a URL pointing elsewhere must never receive
        the token: it is sent only to the API's host and to ``*.circle-artifacts.com``.
        """
        parts = httpx.URL(url)
        api = httpx.URL(self.base_url)
        same_origin = (parts.scheme, parts.host, parts.port) == (api.scheme, api.host, api.port)
        circle_artifacts = parts.scheme == "https" and parts.host.endswith(".circle-artifacts.com")
        if not (same_origin or circle_artifacts):
            raise errors.ConfigurationError(
                f"Refusing to send the CircleCI token to {parts.host!r} for an artifact.",
                hint="Artifacts are fetched only from CircleCI's own hosts.",
            )
        _, data = self._request("GET", url, raw=True)
        content = data if isinstance(data, bytes) else b""
        if len(content) > max_bytes:
            raise errors.UnexpectedResponse(f"Artifact {parts.path} is over {max_bytes} bytes.")
        return content

    # -- workflows and jobs ------------------------------------------------------------

    def get_workflow(self, workflow_id: str) -> Workflow:
        """One workflow (``getWorkflowById``)."""
        wid = parse_uuid(workflow_id, what="workflow id")
        return self._call("GET", f"/workflow/{segment(wid)}", _model(Workflow, f"workflow {wid}"))

    def list_workflow_jobs(self, workflow_id: str) -> Iterator[Job]:
        """Every job of a workflow, every page (``listWorkflowJobs``)."""
        wid = parse_uuid(workflow_id, what="workflow id")
        return self._paginate(Job, f"/workflow/{segment(wid)}/job", {}, what=f"jobs of {wid}")

    def approve_job(self, workflow_id: str, approval_request_id: str) -> None:
        """Approve a pending approval job (``approvePendingApprovalJobById``, 202).

        Retried like a read: approving twice cannot release anything twice, and the relay
        re-reads the job before it decides what an ambiguous failure meant.
        """
        wid = parse_uuid(workflow_id, what="workflow id")
        jid = parse_uuid(approval_request_id, what="approval request id")
        self._call(
            "POST", f"/workflow/{segment(wid)}/approve/{segment(jid)}", _accepted("an approval")
        )

    def rerun_workflow(
        self, workflow_id: str, *, from_failed: bool = False, jobs: list[str] | None = None
    ) -> str:
        """Rerun a workflow (``rerunWorkflow``); returns the new workflow's id."""
        wid = parse_uuid(workflow_id, what="workflow id")
        if from_failed and jobs:
            raise errors.ConfigurationError(
                "A rerun takes from_failed or a list of jobs, not both.",
                hint="Choose one of from_failed and jobs.",
            )
        body: dict[str, Any] = {}
        if from_failed:
            body["from_failed"] = True
        if jobs:
            body["jobs"] = [parse_uuid(j, what="job id") for j in jobs]
        _, data = self._request(
            "POST", f"/workflow/{segment(wid)}/rerun", json=body, safety=Safety.CREATES
        )
        new_id = data.get("workflow_id") if isinstance(data, dict) else None
        if not isinstance(new_id, str):
            raise errors.UnexpectedResponse(f"The rerun of {wid} did not return a workflow id.")
        return new_id

    def cancel_workflow(self, workflow_id: str) -> None:
        """Cancel a workflow (``cancelWorkflow``, 202); canceling twice is harmless."""
        wid = parse_uuid(workflow_id, what="workflow id")
        self._call("POST", f"/workflow/{segment(wid)}/cancel", _accepted("a cancel"))

    # -- transport ---------------------------------------------------------------------

    def _paginate(
        self, model: type[_M], path: str, params: dict[str, str], *, what: str
    ) -> Iterator[_M]:
        """Yield every item of every page, lazily; a repeated page token is an error.

        Each page is checked whole before any of it is yielded, inside the retry loop: a
        page of the wrong shape (a proxy's JSON, say) is fetched again like a proxy's HTML.
        """
        seen: set[str] = set()
        query = dict(params)

        def read(status: int, data: Any) -> tuple[list[_M], str | None]:
            page = _core.parse_page(data, what=what)
            items = [self._validate(model, item, what=what) for item in page.items]
            return items, page.next_page_token

        for _ in range(MAX_PAGES):
            items, token = self._call("GET", path, read, params=query)
            yield from items
            if token is None:
                return
            if token in seen:
                raise errors.PaginationLoop(f"The API repeated a page token while listing {what}.")
            seen.add(token)
            query = {**params, "page-token": token}
        raise errors.PaginationLoop(f"Listing {what} went past {MAX_PAGES} pages.")

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json: Any = None,
        safety: Safety = Safety.IDEMPOTENT,
        raw: bool = False,
    ) -> tuple[int, Any]:
        """Send one request with the retry rules of ``_core``; a 2xx status and its JSON."""
        return self._call(
            method, path, _status_and_data, params=params, json=json, safety=safety, raw=raw
        )

    def _call(
        self,
        method: str,
        path: str,
        read: Callable[[int, Any], _R],
        *,
        params: Mapping[str, str] | None = None,
        json: Any = None,
        safety: Safety = Safety.IDEMPOTENT,
        raw: bool = False,
    ) -> _R:
        """Send one request with the retry rules of ``_core`` and ``read`` its 2xx answer.

        ``read`` turns the status and JSON into the result, raising ``UnexpectedResponse``
        when they are not what the endpoint documents; that is retried like a body that is
        not JSON. A failure that leaves unknown whether a non-GET was carried out is marked
        ``outcome_unknown``, so the caller can look before repeating it.
        """
        started = self._clock()
        attempt = 0
        while True:
            attempt += 1
            retry_after: float | None = None
            try:
                response = self._http.request(
                    method,
                    path,
                    params=params,
                    json=json,
                    headers={"Circle-Token": self._token.get_secret_value()},
                )
            except httpx.TransportError as exc:
                failure: errors.CirclebackError = _transport_error(exc, method, path)
                # A connection never made is a request never sent: safe to repeat anything.
                never_sent = isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout))
                retryable = safety is Safety.IDEMPOTENT or never_sent
                failure.outcome_unknown = _core.outcome_unknown(method, None, sent=not never_sent)
                logger.debug(
                    "request failed", extra={"method": method, "path": path, "error": str(failure)}
                )
            else:
                logger.debug(
                    "request",
                    extra={"method": method, "path": path, "status": response.status_code},
                )
                status = response.status_code
                if 200 <= status < 300:
                    if raw:
                        return read(status, response.content)
                    try:
                        return read(status, _decode(response, what=f"{method} {path}"))
                    except errors.NotCreated:
                        raise  # CircleCI's own word that nothing was created: final.
                    except errors.UnexpectedResponse as exc:
                        # A read whose body is a proxy's page, cut off, or of the wrong
                        # shape is worth another try; a create is not, since it may have
                        # been acted on.
                        failure = exc
                        retryable = safety is Safety.IDEMPOTENT
                        failure.outcome_unknown = _core.outcome_unknown(method, status, sent=True)
                else:
                    failure = _core.error_for_status(
                        status, response.content, method=method, path=path, redact=self._redact
                    )
                    retryable = _core.status_is_retryable(status, safety)
                    retry_after = _core.parse_retry_after(response.headers.get("Retry-After"))
                    failure.outcome_unknown = _core.outcome_unknown(method, status, sent=True)
            if not retryable or attempt >= self._retry.max_attempts:
                raise failure
            delay = _core.backoff_delay(attempt, retry_after, self._retry, self._rand)
            if self._clock() - started + delay > self._retry.total_budget:
                raise failure
            logger.info(
                f"retrying in {delay:.1f}s",
                extra={"method": method, "path": path, "attempt": attempt + 1},
            )
            self._sleep(delay)

    def _created(self, status: int, data: Any, slug: ProjectSlug) -> PipelineCreation:
        """201 is the only success of a trigger; ``pipeline/run``'s 200 means "not created"."""
        detail = data.get("message") if isinstance(data, dict) else None
        if status == 200 and isinstance(detail, str):
            raise errors.NotCreated(f"CircleCI did not create a pipeline for {slug}: {detail}")
        if status != 201:
            raise errors.UnexpectedResponse(
                f"The trigger of {slug} answered {status}, not 201 Created."
            )
        return self._validate(PipelineCreation, data, what=f"the trigger of {slug}")

    @staticmethod
    def _validate(model: type[_M], data: Any, *, what: str) -> _M:
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            fields = ", ".join(sorted({str(e["loc"][0]) for e in exc.errors() if e["loc"]}))
            raise errors.UnexpectedResponse(
                f"The answer to {what} is not a {model.__name__} "
                f"(missing or malformed: {fields or 'the whole body'})."
            ) from None

    def _redact(self, text: str) -> str:
        secret = self._token.get_secret_value()
        return text.replace(secret, "**********") if secret else text


def _transport_error(exc: httpx.TransportError, method: str, path: str) -> errors.TransportError:
    """A typed error that names the request but never the headers (the token is there)."""
    if isinstance(exc, httpx.TimeoutException):
        return errors.RequestTimeout(f"{method} {path} timed out ({type(exc).__name__}).")
    return errors.TransportError(f"{method} {path} failed: {type(exc).__name__}.")


def _status_and_data(status: int, data: Any) -> tuple[int, Any]:
    return status, data


def _model(model: type[_M], what: str) -> Callable[[int, Any], _M]:
    """A reader that validates a 2xx body as ``model``."""
    return lambda status, data: CircleCIClient._validate(model, data, what=what)


def _accepted(what: str) -> Callable[[int, Any], None]:
    """A reader for 202 Accepted, the documented success of approve and cancel.

    Any other 2xx (a proxy's 200) is not CircleCI accepting anything: treating it as
    success would report a hold released that is still on hold.
    """

    def read(status: int, data: Any) -> None:
        if status != 202:
            raise errors.UnexpectedResponse(f"CircleCI answered {status} to {what}, not 202.")

    return read


def _decode(response: httpx.Response, *, what: str) -> Any:
    """The JSON body of a 2xx answer; an empty body (some 202s) is ``None``."""
    if not response.content.strip():
        return None
    return _core.decode_json(response.content, what=what)


def _ref(branch: str | None, tag: str | None) -> dict[str, str] | None:
    if branch:
        return {"branch": branch}
    if tag:
        return {"tag": tag}
    return None


def _check_ref(branch: str | None, tag: str | None) -> None:
    if branch and tag:
        raise errors.ConfigurationError(
            "A pipeline is triggered on a branch or a tag, not both.",
            hint="Pass only one of --branch and --tag.",
        )


def _check_parameters(parameters: Mapping[str, ParameterValue]) -> dict[str, ParameterValue]:
    """Enforce the documented limits: 100 entries, 128-character keys, 512-character values."""
    if len(parameters) > 100:
        raise errors.ConfigurationError(
            f"{len(parameters)} pipeline parameters given; CircleCI takes at most 100.",
            hint="Pass fewer --parameter values.",
        )
    for key, value in parameters.items():
        if not key or len(key) > 128:
            raise errors.ConfigurationError(
                f"Pipeline parameter name {key[:40]!r} must be 1 to 128 characters.",
                hint="Use the parameter's name as declared in the downstream config.",
            )
        if isinstance(value, str) and len(value) > 512:
            raise errors.ConfigurationError(
                f"Pipeline parameter {key!r} is {len(value)} characters; CircleCI takes 512.",
                hint="Pass a shorter value, or an id that points at the data.",
            )
    return dict(parameters)


__all__ = ["DEFAULT_TIMEOUT", "CircleCIClient", "ProjectSlug", "RetryPolicy"]
