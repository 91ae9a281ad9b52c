"""``sweep``: release holds whose downstream pipeline will never call back.

If B never approves (canceled before its callback ran, errored after creation, its
approve job failed), A sits on hold until CircleCI cancels it after 90 days. The sweeper,
meant for a scheduled pipeline, finds A's workflows holding on a circleback approval job
whose downstream pipelines have all been final (or errored) for longer than a grace
period, and releases the hold so that A's check runs and fails with the real reason — or
cancels A's workflow with ``cancel=True``. It learns each hold's downstream pipelines only
from public API data: the state file the trigger job stored as an artifact.
"""

from __future__ import annotations

import enum
import itertools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

from circleback import errors
from circleback.client import CircleCIClient
from circleback.models import JobStatus, JobType, PipelineState, Workflow, WorkflowStatus
from circleback.relay.approve import DEFAULT_JOB_NAME
from circleback.relay.discovery import downstream_from_jobs
from circleback.relay.records import Downstream

logger = logging.getLogger("circleback.relay")

DEFAULT_GRACE = 3600.0
DEFAULT_MAX_PIPELINES = 50


class Action(str, enum.Enum):
    """What the sweeper did with a hold."""

    RELEASED = "released"
    CANCELED = "canceled"
    WOULD_RELEASE = "would_release"
    WOULD_CANCEL = "would_cancel"
    LEFT = "left"
    """Left alone; ``reason`` says why (still running, within grace, no record)."""


@dataclass(frozen=True)
class Finding:
    """One of A's held workflows and what the sweeper made of it."""

    pipeline_id: str
    pipeline_number: int
    workflow_id: str
    workflow_name: str
    holds: tuple[str, ...]
    downstream: tuple[Downstream, ...]
    action: Action
    reason: str

    def to_json(self) -> dict[str, object]:
        """The finding as a JSON object (``sweep --json``)."""
        return {
            "pipeline_id": self.pipeline_id,
            "pipeline_number": self.pipeline_number,
            "workflow_id": self.workflow_id,
            "workflow_name": self.workflow_name,
            "holds": list(self.holds),
            "downstream": [d.to_json() for d in self.downstream],
            "action": self.action.value,
            "reason": self.reason,
        }


def sweep(
    client: CircleCIClient,
    project_slug: str,
    *,
    job_names: Sequence[str] = (DEFAULT_JOB_NAME,),
    grace: float = DEFAULT_GRACE,
    cancel: bool = False,
    dry_run: bool = False,
    max_pipelines: int = DEFAULT_MAX_PIPELINES,
    now: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
) -> list[Finding]:
    """Look at the newest ``max_pipelines`` pipelines of A and act on orphaned holds."""
    findings: list[Finding] = []
    pipelines = itertools.islice(client.list_project_pipelines(project_slug), max_pipelines)
    for pipeline in pipelines:
        for workflow in client.list_pipeline_workflows(pipeline.id):
            if workflow.status != WorkflowStatus.ON_HOLD:
                continue
            finding = _judge(client, workflow, job_names, grace, cancel, dry_run, now)
            if finding is not None:
                findings.append(finding)
    return findings


def _judge(
    client: CircleCIClient,
    workflow: Workflow,
    job_names: Sequence[str],
    grace: float,
    cancel: bool,
    dry_run: bool,
    now: Callable[[], datetime],
) -> Finding | None:
    jobs = list(client.list_workflow_jobs(workflow.id))
    holds = [
        j
        for j in jobs
        if j.type == JobType.APPROVAL and j.status == JobStatus.ON_HOLD and j.name in job_names
    ]
    if not holds:
        return None
    records = tuple(downstream_from_jobs(client, workflow.project_slug, jobs))

    def finding(action: Action, reason: str) -> Finding:
        return Finding(
            workflow.pipeline_id,
            workflow.pipeline_number,
            workflow.id,
            workflow.name,
            tuple(h.name for h in holds),
            records,
            action,
            reason,
        )

    if not records:
        return finding(Action.LEFT, "no downstream record (not triggered by circleback?)")
    finished: list[datetime] = []
    for record in records:
        ended = _finished_at(client, record)
        if ended is None:
            return finding(Action.LEFT, f"{record.project_slug} #{record.number} still running")
        finished.append(ended)
    idle = (now() - max(finished)).total_seconds()
    if idle < grace:
        return finding(Action.LEFT, f"downstream final for {idle:.0f}s, within the grace")
    reason = f"downstream final for {idle:.0f}s and never called back"
    if dry_run:
        return finding(Action.WOULD_CANCEL if cancel else Action.WOULD_RELEASE, reason)
    if cancel:
        client.cancel_workflow(workflow.id)
        logger.info("canceled an orphaned hold", extra={"workflow": workflow.name})
        return finding(Action.CANCELED, reason)
    for hold in holds:
        try:
            client.approve_job(workflow.id, hold.approval_request_id or hold.id)
        except errors.APIError as exc:  # released meanwhile (B called back late): fine
            logger.info("could not release a hold", extra={"job": hold.name, "why": str(exc)})
    logger.info("released an orphaned hold", extra={"workflow": workflow.name})
    return finding(Action.RELEASED, reason)


def _finished_at(client: CircleCIClient, record: Downstream) -> datetime | None:
    """When the downstream pipeline became final, or None while it still runs."""
    pipeline = client.get_pipeline(record.pipeline_id)
    if pipeline.state == PipelineState.ERRORED:
        return pipeline.created_at
    workflows = list(client.list_pipeline_workflows(pipeline.id))
    if not workflows:
        return pipeline.created_at if pipeline.state == PipelineState.CREATED else None
    if any(not w.is_final for w in workflows):
        return None
    return max(w.stopped_at or w.created_at for w in workflows)
