"""A CircleCI API v2 client: one method per endpoint circleback uses.

It authenticates with the ``Circle-Token`` header, retries what is safe to retry, follows
every page of every list, and turns each failure into a typed error from
``circleback.errors``. It reads no settings and never exits: the CLI does both.

Spec: the official OpenAPI document, vendored as ``tests/data/circleci-api-v2.openapi.json``
(source and date beside it); what CircleCI is observed to do, with sources: the fidelity
table in ``docs/emulator.md``.
"""

from __future__ import annotations

import contextlib
import logging
import random
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
from pydantic import BaseModel, SecretStr, ValidationError

from circleback import _core, _read, errors
from circleback._core import DEFAULT_RETRY, RetryPolicy, Safety
from circleback._hosts import DEFAULT_HOST, api_base_url, is_loopback
from circleback._read import DEFAULT_LIMITS, Limits, ListLimit
from circleback._version import __version__
from circleback.models import (
    Artifact,
    Job,
    Pipeline,
    PipelineConfig,
    PipelineCreation,
    Webhook,
    Workflow,
)
from circleback.validation import ProjectSlug, parse_project_slug, parse_uuid, segment

if TYPE_CHECKING:
    from circleback.settings import Settings

logger = logging.getLogger("circleback.client")

DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)

ParameterValue = str | int | bool
#: A project's webhooks: CircleCI allows 5, so a long list is not CircleCI's.
_WEBHOOK_LIST = ListLimit(pages=5, items=50)
_M = TypeVar("_M", bound=BaseModel)
_R = TypeVar("_R")


class CircleCIClient:
    """A CircleCI API v2 client; use it as a context manager so connections are closed.

    ``transport`` swaps the network (``httpx.MockTransport``, the emulator's in-process
    transport); ``sleep`` and ``clock`` make retry timing testable without waiting.

    Whatever the server sends, the work is bounded by ``limits`` (bytes per answer, pages
    and items per list, seconds per request) and by ``deadline``, if one is set.
    """

    limits: Limits = DEFAULT_LIMITS
    """Caps on answers, lists and requests; assign a ``Limits`` to change them."""
    _deadline: float | None = None

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
        mounts: dict[str, httpx.BaseTransport | None] | None = None
        if transport is None and _is_loopback_http(self.base_url):
            transport, mounts = _loopback_transports()
        self._http = httpx.Client(
            base_url=self.base_url,
            transport=transport,
            mounts=mounts,
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

    def get_pipeline_config(self, pipeline_id: str) -> PipelineConfig:
        """A pipeline's source and compiled config (``getPipelineConfigById``).

        The compiled text is the one public place where a parameter's value can be read
        back (``trigger_parameters`` does not carry them): ``circleback.relay.link``
        proves who triggered whom from it.
        """
        pid = parse_uuid(pipeline_id, what="pipeline id")
        return self._call(
            "GET",
            f"/pipeline/{segment(pid)}/config",
            _model(PipelineConfig, f"the config of pipeline {pid}"),
        )

    def list_project_pipelines(
        self, project_slug: str, *, branch: str | None = None
    ) -> Iterator[Pipeline]:
        """A project's pipelines, newest first, every page (``listPipelinesForProject``)."""
        slug = parse_project_slug(project_slug)
        params = {"branch": branch} if branch else {}
        return self._paginate(
            Pipeline,
            f"/project/{slug.path}/pipeline",
            params,
            what=f"pipelines of {slug}",
            limit=self.limits.pipelines,
        )

    def project_pipelines_page(
        self, project_slug: str, *, page_token: str | None = None, branch: str | None = None
    ) -> tuple[list[Pipeline], str | None]:
        """One page of a project's pipelines and the next page's token (None: the last).

        For callers that must survive a page that keeps failing (``sweep`` retries it and
        carries on with what it has) rather than lose the whole listing.
        """
        slug = parse_project_slug(project_slug)
        what = f"pipelines of {slug}"
        params = {"branch": branch} if branch else {}
        if page_token:
            params["page-token"] = page_token

        def read(status: int, data: Any) -> tuple[list[Pipeline], str | None]:
            page = _core.parse_page(data, what=what)
            return [
                self._validate(Pipeline, i, what=what) for i in page.items
            ], page.next_page_token

        return self._call("GET", f"/project/{slug.path}/pipeline", read, params=params)

    def list_pipeline_workflows(self, pipeline_id: str) -> Iterator[Workflow]:
        """Every workflow of a pipeline, reruns included (``listWorkflowsByPipelineId``)."""
        pid = parse_uuid(pipeline_id, what="pipeline id")
        return self._paginate(
            Workflow,
            f"/pipeline/{segment(pid)}/workflow",
            {},
            what=f"workflows of {pid}",
            limit=self.limits.workflows,
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
            limit=self.limits.artifacts,
        )

    def get_artifact(self, url: str, *, max_bytes: int = 1 << 20) -> bytes:
        """Download an artifact of at most ``max_bytes``; the token goes only to CircleCI.

        Artifact URLs come from the API, but a URL pointing elsewhere must never receive
        the token: it is sent only to the API's host and to ``*.circle-artifacts.com``.
        The size is checked against ``Content-Length`` before the download and while it
        runs: ``ResponseTooLarge`` is raised one chunk past the cap, never after it.
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
        content: bytes = self._call(
            "GET", url, lambda status, data: data, raw=True, max_bytes=max_bytes
        )
        return content

    # -- workflows and jobs ------------------------------------------------------------

    def get_workflow(self, workflow_id: str) -> Workflow:
        """One workflow (``getWorkflowById``)."""
        wid = parse_uuid(workflow_id, what="workflow id")
        return self._call("GET", f"/workflow/{segment(wid)}", _model(Workflow, f"workflow {wid}"))

    def list_workflow_jobs(self, workflow_id: str) -> Iterator[Job]:
        """Every job of a workflow, every page (``listWorkflowJobs``)."""
        wid = parse_uuid(workflow_id, what="workflow id")
        return self._paginate(
            Job, f"/workflow/{segment(wid)}/job", {}, what=f"jobs of {wid}", limit=self.limits.jobs
        )

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

    # -- projects and outbound webhooks --------------------------------------------------

    def get_project_id(self, project_slug: str) -> str:
        """A project's UUID (``getProjectBySlug``): webhooks are scoped by it, not the slug."""
        slug = parse_project_slug(project_slug)
        _, data = self._request("GET", f"/project/{slug.path}")
        project_id = data.get("id") if isinstance(data, dict) else None
        if not isinstance(project_id, str):
            raise errors.UnexpectedResponse(f"The project {slug} came back without an id.")
        return parse_uuid(project_id, what="project id")

    def list_webhooks(self, project_id: str) -> Iterator[Webhook]:
        """A project's outbound webhooks (``getWebhooks``)."""
        pid = parse_uuid(project_id, what="project id")
        params = {"scope-id": pid, "scope-type": "project"}
        return self._paginate(
            Webhook, "/webhook", params, what=f"webhooks of project {pid}", limit=_WEBHOOK_LIST
        )

    def create_webhook(
        self,
        project_id: str,
        *,
        name: str,
        url: str,
        events: Sequence[str],
        signing_secret: SecretStr,
        verify_tls: bool = True,
    ) -> Webhook:
        """Register an outbound webhook on a project (``createWebhook``, 201).

        Not retried after it may have been acted on: a repeat could register it twice.
        """
        body = {
            "name": name,
            "events": list(events),
            "url": url,
            "verify-tls": verify_tls,
            "signing-secret": signing_secret.get_secret_value(),
            "scope": {"id": parse_uuid(project_id, what="project id"), "type": "project"},
        }
        return self._call(
            "POST", "/webhook", _model(Webhook, "a new webhook"), json=body, safety=Safety.CREATES
        )

    def update_webhook(
        self,
        webhook_id: str,
        *,
        signing_secret: SecretStr | None = None,
        events: Sequence[str] | None = None,
    ) -> Webhook:
        """Change a webhook's signing secret and/or events (``updateWebhook``, PUT, 200).

        Idempotent (the same body twice leaves the same webhook), so it is retried as a read.
        """
        wid = parse_uuid(webhook_id, what="webhook id")
        body: dict[str, Any] = {}
        if signing_secret is not None:
            body["signing-secret"] = signing_secret.get_secret_value()
        if events is not None:
            body["events"] = list(events)
        return self._call(
            "PUT", f"/webhook/{segment(wid)}", _model(Webhook, "an updated webhook"), json=body
        )

    def delete_webhook(self, webhook_id: str) -> None:
        """Remove an outbound webhook (``deleteWebhook``)."""
        wid = parse_uuid(webhook_id, what="webhook id")
        self._request("DELETE", f"/webhook/{segment(wid)}")

    # -- transport ---------------------------------------------------------------------

    @contextlib.contextmanager
    def deadline(self, seconds: float) -> Iterator[None]:
        """Within the ``with`` block, all work of this client ends ``seconds`` from now.

        A request still under way then is abandoned, even mid-body or mid-headers, and
        raises ``DeadlinePassed`` (a ``RequestTimeout``); a retry that would start after
        the deadline is not made (the last failure is raised). Blocks nest; the earlier
        deadline holds. Seconds are of the client's ``clock``.
        """
        previous = self._deadline
        at = self._clock() + seconds
        self._deadline = at if previous is None else min(previous, at)
        try:
            yield
        finally:
            self._deadline = previous

    def set_deadline(self, seconds: float | None) -> None:
        """Bound all further work of this client to ``seconds`` from now (None: unbounded).

        The CLI sets one per command, so that no command outlives its purpose whatever
        the server does; ``deadline`` is the scoped form.
        """
        self._deadline = None if seconds is None else self._clock() + seconds

    def _paginate(
        self, model: type[_M], path: str, params: dict[str, str], *, what: str, limit: ListLimit
    ) -> Iterator[_M]:
        """Yield every item of every page, lazily; a repeated page token is an error.

        Each page is checked whole before any of it is yielded, inside the retry loop: a
        page of the wrong shape (a proxy's JSON, say) is fetched again like a proxy's HTML.
        A list longer than ``limit`` (pages, items) or than ``Limits.list_bytes`` in all
        raises ``ListTooLong`` before the excess is held in memory.
        """
        seen: set[str] = set()
        query = dict(params)
        meter = _Meter()
        items_read = 0

        def read(status: int, data: Any) -> tuple[list[_M], str | None]:
            page = _core.parse_page(data, what=what, max_token_chars=self.limits.page_token_chars)
            items = [self._validate(model, item, what=what) for item in page.items]
            return items, page.next_page_token

        for _ in range(limit.pages):
            room = self.limits.list_bytes - meter.total
            try:
                items, token = self._call(
                    "GET",
                    path,
                    read,
                    params=query,
                    max_bytes=min(self.limits.json_bytes, room),
                    meter=meter,
                )
            except errors.ResponseTooLarge:
                if room >= self.limits.json_bytes:
                    raise
                raise errors.ListTooLong(
                    f"Listing {what} went past {_read._size(self.limits.list_bytes)} in all, "
                    "more than circleback reads of one list."
                ) from None
            items_read += len(items)
            if items_read > limit.items:
                raise errors.ListTooLong(
                    f"Listing {what} went past {limit.items} items, more than circleback "
                    "reads of one list."
                )
            yield from items
            if token is None:
                return
            if token in seen:
                raise errors.PaginationLoop(f"The API repeated a page token while listing {what}.")
            seen.add(token)
            query = {**params, "page-token": token}
        raise errors.ListTooLong(
            f"Listing {what} went past {limit.pages} pages, more than circleback reads of one list."
        )

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
        max_bytes: int | None = None,
        meter: _Meter | None = None,
    ) -> _R:
        """Send one request with the retry rules of ``_core`` and ``read`` its 2xx answer.

        ``read`` turns the status and JSON into the result, raising ``UnexpectedResponse``
        when they are not what the endpoint documents; that is retried like a body that is
        not JSON, as is a body that cannot be decoded (broken gzip, JSON nested too deep)
        or is over ``max_bytes`` (default ``Limits.json_bytes``): each try reads at most
        that much. A failure that leaves unknown whether a non-GET was
        carried out is marked ``outcome_unknown``, so the caller can look before
        repeating it. Every attempt ends within ``Limits.request_seconds`` and the
        client's deadline, if any (``DeadlinePassed``).
        """
        cap = self.limits.json_bytes if max_bytes is None else max_bytes
        started = self._clock()
        attempt = 0
        while True:
            attempt += 1
            retry_after: float | None = None
            self._check_deadline(method, path, None)
            sent_at = self._clock()
            try:
                status, headers, body = self._exchange(method, path, params, json, cap)
            except httpx.TransportError as exc:
                failure: errors.CirclebackError = _transport_error(exc, method, path)
                # A connection never made is a request never sent: safe to repeat anything.
                never_sent = isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout))
                retryable = safety is Safety.IDEMPOTENT or never_sent
                failure.outcome_unknown = _core.outcome_unknown(method, None, sent=not never_sent)
                logger.debug(
                    "request failed", extra={"method": method, "path": path, "error": str(failure)}
                )
            except _read.Overtime:
                # Cut at the per-request limit or at the command's deadline, if sooner.
                failure = errors.RequestTimeout(
                    f"{method} {path} did not finish within "
                    f"{self._clock() - sent_at:.3g}s (the server is sending too slowly)."
                )
                retryable = safety is Safety.IDEMPOTENT
                failure.outcome_unknown = _core.outcome_unknown(method, None, sent=True)
            except errors.UnexpectedResponse as exc:
                # A 2xx whose body cannot be read: a proxy's, cut off, or hostile.
                failure = exc
                retryable = safety is Safety.IDEMPOTENT
                failure.outcome_unknown = _core.outcome_unknown(method, 200, sent=True)
            else:
                logger.debug(
                    "request",
                    extra={"method": method, "path": path, "status": status},
                )
                if 200 <= status < 300:
                    try:
                        data = body if raw else _decode(body, what=f"{method} {path}")
                        result = read(status, data)
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
                        if meter is not None:
                            meter.total += len(body)
                        return result
                else:
                    failure = _core.error_for_status(
                        status, body, method=method, path=path, redact=self._redact
                    )
                    retryable = _core.status_is_retryable(status, safety)
                    retry_after = _core.parse_retry_after(headers.get("Retry-After"))
                    failure.outcome_unknown = _core.outcome_unknown(method, status, sent=True)
            self._check_deadline(method, path, failure)
            if not retryable or attempt >= self._retry.max_attempts:
                raise failure
            delay = _core.backoff_delay(attempt, retry_after, self._retry, self._rand)
            if self._clock() - started + delay > self._retry.total_budget:
                raise failure
            if self._deadline is not None and self._clock() + delay >= self._deadline:
                raise failure
            logger.info(
                f"retrying in {delay:.1f}s",
                extra={"method": method, "path": path, "attempt": attempt + 1},
            )
            self._sleep(delay)

    def _exchange(
        self, method: str, path: str, params: Mapping[str, str] | None, json: Any, cap: int
    ) -> tuple[int, httpx.Headers, bytes]:
        """One attempt: send, then stream the body under ``cap`` and one deadline.

        The attempt's deadline is ``Limits.request_seconds`` from now, or the client's
        deadline if that comes first. It is checked after every chunk of the body on the
        client's clock, and the caller stops waiting at it whatever httpx is doing.
        """
        request = self._http.build_request(
            method,
            path,
            params=params,
            json=json,
            headers={
                "Circle-Token": self._token.get_secret_value(),
                # Only encodings decoded under the cap here; never brotli or zstd.
                "Accept-Encoding": "gzip, deflate",
            },
        )
        until = self._clock() + self.limits.request_seconds
        if self._deadline is not None:
            until = min(until, self._deadline)
        what = f"{method} {path}"

        def attempt(abandoned: Callable[[], bool]) -> tuple[int, httpx.Headers, bytes]:
            response = self._http.send(request, stream=True)
            try:
                ok = 200 <= response.status_code < 300
                chunks: Iterable[bytes] = response.iter_raw()
                coding = response.headers.get("Content-Encoding")
                if response.is_stream_consumed:
                    # A Response built in memory with ``content=`` (a test's transport):
                    # httpx has read and decoded it already; no network is involved.
                    chunks, coding = [response.content], None
                body = _read.read_body(
                    chunks,
                    content_encoding=coding,
                    content_length=response.headers.get("Content-Length"),
                    max_bytes=cap if ok else self.limits.error_bytes,
                    what=what,
                    truncate=not ok,
                    overtime=lambda: abandoned() or self._clock() >= until,
                )
            finally:
                response.close()
            return response.status_code, response.headers, body

        return _read.within(until - self._clock(), attempt)

    def _check_deadline(
        self, method: str, path: str, failure: errors.CirclebackError | None
    ) -> None:
        """Raise ``DeadlinePassed`` once the client's deadline has passed."""
        if self._deadline is None or self._clock() < self._deadline:
            return
        text = f"Stopped at the deadline during {method} {path}"
        if failure is not None:
            text += f" ({failure.message})"
        passed = errors.DeadlinePassed(text + ".")
        passed.outcome_unknown = failure.outcome_unknown if failure is not None else False
        raise passed

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


def _is_loopback_http(base_url: str) -> bool:
    url = httpx.URL(base_url)
    return url.scheme == "http" and is_loopback(url.host)


class _Deferred(httpx.BaseTransport):
    """A transport built on its first request."""

    def __init__(self, build: Callable[[], httpx.BaseTransport]) -> None:
        self._build = build
        self._inner: httpx.BaseTransport | None = None

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self._inner is None:
            self._inner = self._build()
        return self._inner.handle_request(request)

    def close(self) -> None:
        if self._inner is not None:
            self._inner.close()


def _loopback_transports() -> tuple[httpx.BaseTransport, dict[str, httpx.BaseTransport | None]]:
    """Transports for a plain-http loopback API (the emulator), without loading CA certificates.

    httpx builds a verifying TLS context from certifi for every client, 35-60 ms, even when
    every request is plain http. Here http needs no TLS at all, so its transport gets a bare
    context that trusts nothing (any https through it would fail verification: fail safe),
    and https (an artifact URL) gets a normal verifying transport, built only if used.
    Proxies from the environment are not consulted: none belongs between us and loopback.
    """
    import ssl

    bare = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    return httpx.HTTPTransport(verify=bare), {"https://": _Deferred(httpx.HTTPTransport)}


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


def _decode(body: bytes, *, what: str) -> Any:
    """The JSON body of a 2xx answer; an empty body (some 202s) is ``None``."""
    if not body.strip():
        return None
    return _core.decode_json(body, what=what)


class _Meter:
    """Decoded bytes read so far, over every page of one list."""

    total = 0


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


__all__ = ["DEFAULT_TIMEOUT", "CircleCIClient", "Limits", "ListLimit", "ProjectSlug", "RetryPolicy"]
