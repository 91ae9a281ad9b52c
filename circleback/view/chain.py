"""What a person wants to see of a chain: every pipeline, its workflows and their jobs.

Built from the tree ``circleback.relay.trace.trace`` returns (which follows the
``circleback/downstream.json`` records, the same ones A's check acted on), adding for each
pipeline its workflows' durations and jobs: ``GET /pipeline/{id}/workflow`` and
``GET /workflow/{id}/job`` per pipeline, ``GET /pipeline/{id}`` for an errored one, and
``GET /user/{id}`` once per user who released a hold (their login; the id alone if that
fails, since a name is a nicety, not worth failing the view for).
Jobs are ordered failed first, then holds, then the rest in CircleCI's order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone

from circleback import errors
from circleback.client import CircleCIClient
from circleback.models import Job, JobStatus, JobType, PipelineState, Workflow
from circleback.relay.records import app_url, job_url, workflow_url
from circleback.relay.trace import TraceNode
from circleback.validation import segment

#: Job statuses shown as failures (first in each workflow).
FAILED_JOB_STATUSES = frozenset(
    {
        JobStatus.FAILED.value,
        JobStatus.INFRASTRUCTURE_FAIL.value,
        JobStatus.TIMEDOUT.value,
        JobStatus.CANCELED.value,
        JobStatus.UNAUTHORIZED.value,
        JobStatus.TERMINATED_UNKNOWN.value,
    }
)


@dataclass(frozen=True)
class JobView:
    """One job of a workflow."""

    name: str
    type: str
    """``build`` or ``approval``."""
    status: str
    url: str
    duration_seconds: float | None
    """Seconds from start to stop (so far, if still running); None before it starts."""
    approved_by: str | None = None
    """For a released approval job: the id of the user whose token released it."""
    approver: str | None = None
    """That user's login (``GET /user/{id}``), when CircleCI told it."""
    released_at: datetime | None = None
    """For a released approval job: when."""

    @property
    def failed(self) -> bool:
        """True for the statuses that make a workflow fail."""
        return self.status in FAILED_JOB_STATUSES

    @property
    def is_hold(self) -> bool:
        """True for an approval job (a hold)."""
        return self.type == JobType.APPROVAL.value


@dataclass(frozen=True)
class WorkflowView:
    """One workflow of a pipeline, its jobs failed first."""

    name: str
    id: str
    status: str
    url: str
    duration_seconds: float | None
    """Seconds from creation to stop (so far, if still going)."""
    jobs: tuple[JobView, ...] = ()

    @property
    def failed_jobs(self) -> tuple[JobView, ...]:
        """The jobs that failed, in the order shown."""
        return tuple(j for j in self.jobs if j.failed)

    @property
    def holds(self) -> tuple[JobView, ...]:
        """The approval jobs (holds)."""
        return tuple(j for j in self.jobs if j.is_hold)


@dataclass(frozen=True)
class PipelineView:
    """A pipeline of the chain and the pipelines it triggered."""

    project_slug: str
    pipeline_id: str
    number: int
    state: str
    url: str
    workflows: tuple[WorkflowView, ...] = ()
    children: tuple[PipelineView, ...] = ()
    errors: tuple[str, ...] = ()
    """Why CircleCI could not run it (an errored pipeline)."""
    note: str = ""
    """Why the chain stops here (depth limit, a cycle), if it does."""

    @property
    def status(self) -> str:
        """``errored``, ``unknown`` (unreadable), the worst workflow status, or its state."""
        if self.state == PipelineState.ERRORED.value:
            return "errored"
        if self.errors:
            return "unknown"  # it could not be read
        statuses = [w.status for w in self.workflows]
        for worst in ("failed", "error", "canceled", "unauthorized", "failing", "on_hold"):
            if worst in statuses:
                return worst
        if statuses and all(s == "success" for s in statuses):
            return "success"
        return "running" if statuses else self.state

    def walk(self) -> list[PipelineView]:
        """This pipeline and every one below it, depth first."""
        found = [self]
        for child in self.children:
            found.extend(child.walk())
        return found


def build_chain(
    client: CircleCIClient,
    root: TraceNode,
    *,
    now: Callable[[], datetime] = lambda: datetime.now(tz=timezone.utc),
) -> PipelineView:
    """Add workflows, durations and jobs to every pipeline of a traced tree.

    A node that only points back at a pipeline shown already (a cycle) is not read again;
    one the token may not read is shown with that reason. Other errors of the client
    (``circleback.errors``: network, 5xx after retries) are raised.
    """
    app = app_url(client.base_url)
    moment = now()
    logins: dict[str, str | None] = {}

    def login(user_id: str) -> str | None:
        if user_id not in logins:
            try:
                _status, data = client._request("GET", f"/user/{segment(user_id)}")
            except errors.CirclebackError:
                data = None
            name = data.get("login") if isinstance(data, dict) else None
            logins[user_id] = str(name) if name else None
        return logins[user_id]

    def view(node: TraceNode) -> PipelineView:
        children = tuple(view(child) for child in node.children)
        base = PipelineView(
            project_slug=node.project_slug,
            pipeline_id=node.pipeline_id,
            number=node.number,
            state=node.state,
            url=node.url,
            children=children,
            note=node.note,
        )
        if node.note.startswith("already"):
            return base
        reasons: tuple[str, ...] = ()
        try:
            if node.state == PipelineState.ERRORED.value:
                pipeline = client.get_pipeline(node.pipeline_id)
                reasons = tuple(f"{e.type}: {e.message}" for e in pipeline.errors)
                reasons = reasons or ("errored",)
            workflows = sorted(client.list_pipeline_workflows(node.pipeline_id), key=_created)
            shown = tuple(_workflow(client, app, node, w, moment, login) for w in workflows)
        except (errors.NotFound, errors.PermissionDenied) as exc:
            # One pipeline the token cannot read must not hide the rest of the chain.
            reasons, shown = (f"cannot read it with this token: {exc.message}",), ()
        return PipelineView(
            project_slug=base.project_slug,
            pipeline_id=base.pipeline_id,
            number=base.number,
            state=base.state,
            url=base.url,
            workflows=shown,
            children=children,
            errors=reasons,
            note=base.note,
        )

    return view(root)


def _created(workflow: Workflow) -> datetime:
    return workflow.created_at


def _workflow(
    client: CircleCIClient,
    app: str,
    node: TraceNode,
    wf: Workflow,
    now: datetime,
    login: Callable[[str], str | None],
) -> WorkflowView:
    jobs = [_job(app, node, wf, j, now, login) for j in client.list_workflow_jobs(wf.id)]
    ordered = sorted(jobs, key=lambda j: 0 if j.failed else 1 if j.is_hold else 2)
    return WorkflowView(
        name=wf.name,
        id=wf.id,
        status=_text(wf.status),
        url=workflow_url(app, node.project_slug, node.number, wf.id),
        duration_seconds=_seconds(wf.created_at, wf.stopped_at, now),
        jobs=tuple(ordered),
    )


def _job(
    app: str,
    node: TraceNode,
    wf: Workflow,
    job: Job,
    now: datetime,
    login: Callable[[str], str | None],
) -> JobView:
    released = job.status == JobStatus.SUCCESS and job.type == JobType.APPROVAL
    approver = login(job.approved_by) if released and job.approved_by else None
    return JobView(
        name=job.name,
        type=_text(job.type),
        status=_text(job.status),
        url=job_url(app, node.project_slug, node.number, wf.id, job.job_number),
        duration_seconds=(
            None if job.started_at is None else _seconds(job.started_at, job.stopped_at, now)
        ),
        approved_by=job.approved_by if released else None,
        approver=approver,
        released_at=job.stopped_at if released else None,
    )


def _seconds(start: datetime, stop: datetime | None, now: datetime) -> float:
    return max(((stop or now) - start).total_seconds(), 0.0)


def _text(value: object) -> str:
    """A status as CircleCI spells it, whether a known enum member or a new string."""
    return str(getattr(value, "value", value))
