"""Outbound webhooks, as CircleCI sends them: signed ``workflow-completed``/``job-completed``.

What is modelled, with sources (CircleCI docs, "Outbound webhooks" and "Outbound webhooks
reference"; the Webhook endpoints of the API v2 OpenAPI document):

- webhooks are registered per project through ``POST /webhook`` (``scope`` is the project
  id), listed with ``GET /webhook?scope-id=…&scope-type=project``, read, updated (``PUT``)
  and deleted through ``/webhook/{id}``; at most 5 per project; the signing secret is
  never shown again;
- an event is sent when a job or a workflow reaches a final status, canceled ones included;
  a pipeline that errors before any workflow sends nothing;
- the body carries ``id``, ``type``, ``happened_at``, ``webhook``, ``project``,
  ``organization``, ``workflow``, ``pipeline`` (and ``job``), never the pipeline's
  parameters nor its other workflows; headers ``circleci-signature: v1=<hex HMAC-SHA256 of
  the body>``, ``circleci-event-type`` and a ``CircleCI-Webhook`` user agent;
- a delivery without a 2xx answer within 10 s is sent again later (the policy is not
  documented: here ``attempts`` tries with doubling ``backoff``), so duplicates happen;
  ``duplicates=True`` sends every event twice to make that visible in tests.

Not modelled: delivery order between different workflows is not guaranteed by CircleCI
(here it is the order things happened); TLS (``http://`` is accepted for loopback URLs only,
where CircleCI accepts only ``https://``).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeVar
from urllib.parse import urlsplit

from circleback.emulator.state import JOB_FINAL, EmulatorError, State, iso

if TYPE_CHECKING:
    import httpx

_logger = logging.getLogger("circleback.emulator")

EVENTS = ("workflow-completed", "job-completed")
MAX_PER_PROJECT = 5
#: Seconds CircleCI waits for an answer before it counts the delivery as failed.
DELIVERY_TIMEOUT = 10.0
#: A workflow status after which nothing changes; the emulator's stopped workflows.
_WORKFLOW_FINAL = frozenset({"success", "failed", "error", "canceled", "unauthorized", "not_run"})
_PROVIDERS = {"gh": "github", "github": "github", "bb": "bitbucket", "bitbucket": "bitbucket"}


_T = TypeVar("_T")


class Host(Protocol):
    """What the API routes need of the emulator (its core), without importing it."""

    webhooks: WebhookHub

    def locked(self, action: Callable[[State], _T]) -> _T: ...


def project_id(slug: str) -> str:
    """The emulated project's UUID (stable per slug), as ``GET /project/{slug}`` gives it."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"circleback-emulator:project:{slug}"))


def organization_id(slug: str) -> str:
    org = "/".join(slug.split("/")[:2])
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"circleback-emulator:org:{org}"))


def project_json(slug: str) -> dict[str, Any]:
    """``GET /project/{project-slug}`` (getProjectBySlug)."""
    vcs, org, name = [*slug.split("/", 2), "", ""][:3]
    return {
        "slug": slug,
        "name": name,
        "id": project_id(slug),
        "organization_name": org,
        "organization_slug": f"{vcs}/{org}",
        "organization_id": organization_id(slug),
        "vcs_info": {
            "vcs_url": f"https://github.com/{org}/{name}",
            "provider": "Bitbucket" if _PROVIDERS.get(vcs) == "bitbucket" else "GitHub",
            "default_branch": "main",
        },
    }


@dataclass
class Webhook:
    id: str
    name: str
    url: str
    events: tuple[str, ...]
    scope_id: str
    signing_secret: str
    verify_tls: bool
    created_at: datetime
    updated_at: datetime

    def to_json(self) -> dict[str, Any]:
        """The spec's ``Webhook`` shape; the secret masked, as CircleCI returns it."""
        return {
            "id": self.id,
            "name": self.name,
            "url": self.url,
            "events": list(self.events),
            "scope": {"id": self.scope_id, "type": "project"},
            "signing-secret": "****" + self.signing_secret[-4:] if self.signing_secret else "",
            "verify-tls": self.verify_tls,
            "created-at": iso(self.created_at),
            "updated-at": iso(self.updated_at),
        }


@dataclass(frozen=True)
class Delivery:
    """One event for one webhook, ready to send."""

    url: str
    body: bytes
    headers: dict[str, str]
    event_type: str
    event_id: str


@dataclass
class DeliveryLog:
    """What was sent and answered (tests read it through :attr:`WebhookHub.deliveries`)."""

    event_id: str
    event_type: str
    url: str
    attempt: int
    status: int | None
    body: dict[str, Any] = field(default_factory=dict)


class WebhookHub:
    """The emulator's webhooks: registrations, event detection, and a delivery thread.

    :meth:`collect` runs under the emulator's lock after every change and returns the
    deliveries for what reached a final status since the last call; :meth:`send` queues
    them for the delivery thread (outside the lock: the receiver calls the API back).
    """

    def __init__(
        self,
        *,
        attempts: int = 5,
        backoff: float = 1.0,
        duplicates: bool = False,
        sleep: Callable[[float], None] = time.sleep,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.attempts = attempts
        self.backoff = backoff
        self.duplicates = duplicates
        self.sleep = sleep
        self.transport = transport
        self._hooks: dict[str, Webhook] = {}
        self._announced: set[str] = set()
        self._queue: queue.Queue[Delivery | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._log: list[DeliveryLog] = []
        self._sent: list[Delivery] = []
        self._log_lock = threading.Lock()
        self._idle = threading.Condition(self._log_lock)
        self._pending = 0

    # -- registrations (under the emulator's lock) ----------------------------------------

    def create(self, state: State, body: Any) -> Webhook:
        if not isinstance(body, dict):
            raise EmulatorError(400, "Invalid request body.")
        missing = [
            k
            for k in ("name", "events", "url", "verify-tls", "signing-secret", "scope")
            if k not in body
        ]
        if missing:
            raise EmulatorError(400, f"Missing required field(s): {', '.join(missing)}")
        scope = body["scope"]
        events = body["events"]
        url = body["url"]
        if (
            not isinstance(scope, dict)
            or scope.get("type") != "project"
            or not isinstance(events, list)
            or not events
            or any(e not in EVENTS for e in events)
            or not isinstance(url, str)
            or not isinstance(body["name"], str)
            or not isinstance(body["signing-secret"], str)
            or not isinstance(body["verify-tls"], bool)
        ):
            raise EmulatorError(400, "Invalid request body.")
        _check_url(url)
        scope_id = str(scope.get("id", ""))
        if not any(project_id(slug) == scope_id for slug in state.projects):
            raise EmulatorError(404, "Project not found")
        if sum(1 for h in self._hooks.values() if h.scope_id == scope_id) >= MAX_PER_PROJECT:
            raise EmulatorError(400, f"A project can have at most {MAX_PER_PROJECT} webhooks.")
        now = state.clock()
        hook = Webhook(
            id=str(uuid.uuid4()),
            name=body["name"],
            url=url,
            events=tuple(dict.fromkeys(events)),
            scope_id=scope_id,
            signing_secret=body["signing-secret"],
            verify_tls=body["verify-tls"],
            created_at=now,
            updated_at=now,
        )
        self._hooks[hook.id] = hook
        self._forget_the_past(state)
        return hook

    def _forget_the_past(self, state: State) -> None:
        """What ended before a webhook existed is never sent to it (CircleCI sends an event
        to the webhooks that exist when it happens). ``collect`` runs after every change, so
        whatever is final now was already sent to the webhooks that existed then."""
        for workflow in state.workflows.values():
            if workflow.stopped_at is not None and workflow.status in _WORKFLOW_FINAL:
                self._announced.add(workflow.id)
            for job_id in workflow.job_ids:
                job = state.jobs[job_id]
                if job.status in JOB_FINAL and job.started_at is not None:
                    self._announced.add(job.id)

    def in_scope(self, scope_id: str) -> list[Webhook]:
        return [h for h in self._hooks.values() if h.scope_id == scope_id]

    def get(self, webhook_id: str) -> Webhook:
        try:
            return self._hooks[webhook_id]
        except KeyError:
            raise EmulatorError(404, "Webhook not found") from None

    def update(self, state: State, webhook_id: str, body: Any) -> Webhook:
        """``PUT /webhook/{id}``: every field optional, each checked as for a create."""
        hook = self.get(webhook_id)
        if not isinstance(body, dict):
            raise EmulatorError(400, "Invalid request body.")
        events = body.get("events", list(hook.events))
        name = body.get("name", hook.name)
        url = body.get("url", hook.url)
        secret = body.get("signing-secret", hook.signing_secret)
        verify_tls = body.get("verify-tls", hook.verify_tls)
        if (
            not isinstance(events, list)
            or not events
            or any(e not in EVENTS for e in events)
            or not isinstance(url, str)
            or not isinstance(name, str)
            or not isinstance(secret, str)
            or not isinstance(verify_tls, bool)
        ):
            raise EmulatorError(400, "Invalid request body.")
        _check_url(url)
        hook.events = tuple(dict.fromkeys(events))
        hook.name, hook.url, hook.signing_secret, hook.verify_tls = name, url, secret, verify_tls
        hook.updated_at = state.clock()
        return hook

    def delete(self, webhook_id: str) -> None:
        self.get(webhook_id)
        del self._hooks[webhook_id]

    def reset(self) -> None:
        self._hooks.clear()
        self._announced.clear()

    # -- events (under the emulator's lock) -------------------------------------------------

    def collect(self, state: State) -> list[Delivery]:
        """Deliveries for jobs and workflows that became final since the last call."""
        if not self._hooks:
            return []
        found: list[Delivery] = []
        for workflow in list(state.workflows.values()):
            if workflow.id in self._announced:
                continue
            for job_id in workflow.job_ids:
                job = state.jobs[job_id]
                if job.workflow_id != workflow.id or job.id in self._announced:
                    continue
                if job.status in JOB_FINAL and job.started_at is not None:
                    self._announced.add(job.id)
                    found += self._deliveries(state, "job-completed", workflow, job)
            if workflow.stopped_at is not None and workflow.status in _WORKFLOW_FINAL:
                self._announced.add(workflow.id)
                found += self._deliveries(state, "workflow-completed", workflow, None)
        return found

    def _deliveries(self, state: State, kind: str, workflow: Any, job: Any) -> list[Delivery]:
        pipeline = state.pipelines[workflow.pipeline_id]
        slug = pipeline.project_slug
        scope = project_id(slug)
        hooks = [h for h in self._hooks.values() if h.scope_id == scope and kind in h.events]
        result = []
        for hook in hooks:
            happened = job.stopped_at if job is not None else workflow.stopped_at
            event: dict[str, Any] = {
                "id": str(uuid.uuid4()),
                "type": kind,
                "happened_at": iso(happened or state.clock()),
                "webhook": {"id": hook.id, "name": hook.name},
                "project": {"id": project_id(slug), "name": slug.split("/")[-1], "slug": slug},
                "organization": {"id": organization_id(slug), "name": slug.split("/")[1]},
                "workflow": {
                    "id": workflow.id,
                    "name": workflow.name,
                    "status": workflow.status,
                    "created_at": iso(workflow.created_at),
                    "stopped_at": iso(workflow.stopped_at) if workflow.stopped_at else None,
                    "url": f"https://app.circleci.com/pipelines/{slug}/{pipeline.number}"
                    f"/workflows/{workflow.id}",
                },
                "pipeline": _pipeline_part(pipeline),
            }
            if job is not None:
                event["job"] = {
                    "id": job.id,
                    "number": job.job_number,
                    "name": job.name,
                    "status": job.status,
                    "started_at": iso(job.started_at) if job.started_at else None,
                    "stopped_at": iso(job.stopped_at) if job.stopped_at else None,
                }
            body = json.dumps(event, separators=(",", ":")).encode()
            digest = hmac.new(hook.signing_secret.encode(), body, hashlib.sha256).hexdigest()
            headers = {
                "content-type": "application/json",
                "user-agent": "CircleCI-Webhook/1.0",
                "circleci-event-type": kind,
                "circleci-signature": f"v1={digest}",
            }
            result.append(Delivery(hook.url, body, headers, kind, event["id"]))
        return result

    # -- delivery (outside the lock) --------------------------------------------------------

    def send(self, deliveries: list[Delivery]) -> None:
        """Queue deliveries for the delivery thread, in order (twice each with duplicates)."""
        if not deliveries:
            return
        with self._log_lock:
            for delivery in deliveries:
                for _ in range(2 if self.duplicates else 1):
                    self._pending += 1
                    self._queue.put(delivery)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="circleback-webhooks", daemon=True
                )
                self._thread.start()

    @property
    def sent(self) -> list[Delivery]:
        """Every delivery as sent (body and headers), once each: what a replay would reuse."""
        with self._log_lock:
            return list(self._sent)

    @property
    def deliveries(self) -> list[DeliveryLog]:
        with self._log_lock:
            return list(self._log)

    def wait_idle(self, timeout: float) -> bool:
        """Wait until every queued delivery has been sent (or given up on)."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout=timeout)

    def close(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=DELIVERY_TIMEOUT)

    def _run(self) -> None:
        import httpx

        with httpx.Client(timeout=DELIVERY_TIMEOUT, transport=self.transport) as http:
            while True:
                delivery = self._queue.get()
                if delivery is None:
                    return
                try:
                    self._deliver(http, delivery)
                finally:
                    with self._idle:
                        self._pending -= 1
                        self._idle.notify_all()

    def _deliver(self, http: httpx.Client, delivery: Delivery) -> None:
        import httpx

        with self._log_lock:
            self._sent.append(delivery)

        delay = self.backoff
        for attempt in range(1, self.attempts + 1):
            status: int | None = None
            answer: dict[str, Any] = {}
            try:
                response = http.post(delivery.url, content=delivery.body, headers=delivery.headers)
                status = response.status_code
                with contextlib.suppress(ValueError):
                    parsed = response.json()
                    answer = parsed if isinstance(parsed, dict) else {}
            except httpx.HTTPError as exc:
                _logger.info("webhook delivery failed: %s", type(exc).__name__)
            with self._log_lock:
                self._log.append(DeliveryLog(*_where(delivery), attempt, status, answer))
            if status is not None and 200 <= status < 300:
                return
            if attempt < self.attempts:
                self.sleep(delay)
                delay *= 2


def _pipeline_part(pipeline: Any) -> dict[str, Any]:
    """The payload's ``pipeline``: no parameters (CircleCI never sends them)."""
    slug = pipeline.project_slug
    vcs, org, repo = [*slug.split("/", 2), "", ""][:3]
    part: dict[str, Any] = {
        "id": pipeline.id,
        "number": pipeline.number,
        "created_at": iso(pipeline.created_at),
        "trigger": {"type": "api"},
    }
    if vcs in _PROVIDERS:
        url = f"https://github.com/{org}/{repo}"
        vcs_part: dict[str, Any] = {
            "provider_name": _PROVIDERS[vcs],
            "origin_repository_url": url,
            "target_repository_url": url,
            "revision": pipeline.revision,
            "commit": {"subject": "Triggered by the circleback emulator", "body": ""},
        }
        if pipeline.tag is not None:
            vcs_part["tag"] = pipeline.tag
        else:
            vcs_part["branch"] = pipeline.branch
        part["vcs"] = vcs_part
    return part


def _check_url(url: str) -> None:
    """HTTPS only, as CircleCI; plain http only to loopback (the emulator's own tests)."""
    from circleback.settings import is_loopback

    parts = urlsplit(url)
    if not parts.hostname or parts.scheme not in {"http", "https"}:
        raise EmulatorError(400, "url must be an absolute https:// URL.")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise EmulatorError(400, "url must use https (only https is supported).")


# -- the API routes (``/webhook``, ``/project/{slug}``): called by the emulator's app ---------


def api(
    emulator: Host, method: str, seg: list[str], query: dict[str, list[str]], body: Any
) -> tuple[int, Any]:
    """Answer a Webhook endpoint of the API: (status, JSON body)."""
    hub = emulator.webhooks
    if seg == ["webhook"] and method == "POST":
        hook = emulator.locked(lambda s: hub.create(s, body))
        return 201, hook.to_json()
    if seg == ["webhook"] and method == "GET":
        scope_id = (query.get("scope-id") or [""])[0]
        if (query.get("scope-type") or [""])[0] != "project" or not scope_id:
            raise EmulatorError(400, "scope-id and scope-type=project are required.")
        items = emulator.locked(lambda s: [h.to_json() for h in hub.in_scope(scope_id)])
        return 200, {"items": items, "next_page_token": None}
    if len(seg) == 2 and method == "GET":
        return 200, emulator.locked(lambda s: hub.get(seg[1]).to_json())
    if len(seg) == 2 and method == "PUT":
        return 200, emulator.locked(lambda s: hub.update(s, seg[1], body).to_json())
    if len(seg) == 2 and method == "DELETE":
        emulator.locked(lambda s: hub.delete(seg[1]))
        return 200, {"message": "Webhook deleted."}
    raise EmulatorError(405 if len(seg) <= 2 else 404, "Not found")


def get_project(emulator: Host, slug: str) -> tuple[int, Any]:
    """``GET /project/{project-slug}``: 404 "Project not found" for an unknown project."""
    emulator.locked(lambda s: s.project(slug))
    return 200, project_json(slug)


def _where(delivery: Delivery) -> tuple[str, str, str]:
    return delivery.event_id, delivery.event_type, delivery.url
