"""``sweep``: release holds whose downstream pipeline will never call back.

If B never approves (canceled before its callback ran, errored after creation, its
approve job failed), A sits on hold until CircleCI cancels it after 90 days. The sweeper,
meant for a scheduled pipeline, finds A's workflows holding on a circleback approval job
whose downstream pipelines have all been final (or errored) for longer than a grace
period, and releases the hold so that A's check runs and fails with the real reason — or
cancels A's workflow with ``cancel=True``. It learns each hold's downstream pipelines only
from public API data: the state file the trigger job stored as an artifact.

That record is written by the held pipeline itself, so it proves nothing on its own: a
hold is released only when every recorded downstream pipeline carries *that* held
pipeline's id in its compiled config (``circleback.relay.link``). Downstream pipelines are
judged done by the shared completion rule.

A failing page of pipelines is tried again, then the sweep carries on with what it has;
every hold it met is reported as released, left, or could not be judged, with why.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone

from circleback import errors
from circleback.client import CircleCIClient
from circleback.models import JobStatus, JobType, Pipeline, Workflow, WorkflowStatus
from circleback.relay import completion, link
from circleback.relay.approve import DEFAULT_JOB_NAME
from circleback.relay.discovery import downstream_from_jobs
from circleback.relay.records import Downstream

logger = logging.getLogger("circleback.relay")

DEFAULT_GRACE = 3600.0
DEFAULT_MAX_PIPELINES = 50
#: Extra tries of a page of pipelines that keeps failing (after the client's own retries).
PAGE_RETRIES = 2


class Action(str, enum.Enum):
    """What the sweeper did with a hold."""

    RELEASED = "released"
    CANCELED = "canceled"
    WOULD_RELEASE = "would_release"
    WOULD_CANCEL = "would_cancel"
    LEFT = "left"
    """Left alone; ``reason`` says why (still running, within grace, no record)."""
    NOT_PROVEN = "not_proven"
    """Left alone: its record names pipelines not proven to be the ones it triggered."""
    COULD_NOT_JUDGE = "could_not_judge"
    """Left alone because the API could not be read; ``reason`` says what failed."""


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


@dataclass
class SweepResult:
    """Every hold the sweep met, and what it could not look at."""

    findings: list[Finding] = field(default_factory=list)
    """One per held workflow, whatever was done with it."""
    problems: list[str] = field(default_factory=list)
    """Parts of the project the sweep could not read (a page of pipelines, a pipeline)."""

    @property
    def complete(self) -> bool:
        """True when every hold could be judged and every page read."""
        return not self.problems and all(
            f.action is not Action.COULD_NOT_JUDGE for f in self.findings
        )

    def to_json(self, project_slug: str) -> dict[str, object]:
        """The ``sweep --json`` document."""
        return {
            "project_slug": project_slug,
            "complete": self.complete,
            "findings": [f.to_json() for f in self.findings],
            "problems": list(self.problems),
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
    sleep: Callable[[float], None] = time.sleep,
) -> SweepResult:
    """Look at the newest ``max_pipelines`` pipelines of A and act on orphaned holds.

    Never raises for an API failure after it started: what it could not read is in
    ``SweepResult.problems`` or a ``COULD_NOT_JUDGE`` finding, and it carries on.
    """
    result = SweepResult()
    for pipeline in _pipelines(client, project_slug, max_pipelines, result, sleep):
        try:
            workflows = list(client.list_pipeline_workflows(pipeline.id))
        except errors.CirclebackError as exc:
            result.problems.append(f"{project_slug} #{pipeline.number}: {exc.message}")
            continue
        for workflow in workflows:
            if workflow.status != WorkflowStatus.ON_HOLD:
                continue
            try:
                finding = _judge(client, workflow, job_names, grace, cancel, dry_run, now)
            except errors.CirclebackError as exc:
                finding = _unjudged(workflow, exc)
            if finding is not None:
                result.findings.append(finding)
    return result


def _pipelines(
    client: CircleCIClient,
    project_slug: str,
    limit: int,
    result: SweepResult,
    sleep: Callable[[float], None],
) -> Iterator[Pipeline]:
    """The newest ``limit`` pipelines, page by page; a failing page is tried again."""
    token: str | None = None
    count = 0
    while count < limit:
        for attempt in range(PAGE_RETRIES + 1):
            try:
                items, token = client.project_pipelines_page(project_slug, page_token=token)
                break
            except errors.CirclebackError as exc:
                if attempt == PAGE_RETRIES:
                    result.problems.append(
                        f"pipelines of {project_slug} after the first {count} could not be "
                        f"listed: {exc.message}"
                    )
                    return
                sleep(5.0 * (attempt + 1))
        for pipeline in items:
            if count >= limit:
                return
            count += 1
            yield pipeline
        if not token:
            return


def _unjudged(workflow: Workflow, exc: errors.CirclebackError) -> Finding:
    return Finding(
        workflow.pipeline_id,
        workflow.pipeline_number,
        workflow.id,
        workflow.name,
        (),
        (),
        Action.COULD_NOT_JUDGE,
        f"could not be judged: {exc.message}",
    )


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
        ended = _finished_at(client, record, now)
        if ended is None:
            return finding(Action.LEFT, f"{record.project_slug} #{record.number} still running")
        finished.append(ended)
    idle = (now() - max(finished)).total_seconds()
    if idle < grace:
        return finding(Action.LEFT, f"downstream final for {idle:.0f}s, within the grace")
    proof = link.prove_sweep(client, workflow.pipeline_id, records)
    reason = f"downstream final for {idle:.0f}s and never called back"
    if not proof.proven and not cancel:
        # Releasing would run whatever sits behind the hold as the sweeper's user; a
        # cancel runs nothing, so it needs no proof (see docs/security.md).
        return finding(
            Action.NOT_PROVEN,
            f"not released: {proof.reason} (--cancel would cancel it instead; that runs nothing)",
        )
    if not proof.proven:
        reason += f"; the link is not proven ({proof.reason}), so canceled, never released"
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


def _finished_at(
    client: CircleCIClient, record: Downstream, now: Callable[[], datetime]
) -> datetime | None:
    """When the downstream pipeline was done (completion rule), or None while it is not.

    A pipeline with no workflow counts as empty since its creation (by CircleCI's clock).
    """
    pipeline = client.get_pipeline(record.pipeline_id)
    workflows = list(client.list_pipeline_workflows(pipeline.id))
    age = (now() - pipeline.created_at).total_seconds()
    verdict = completion.judge(pipeline.state, workflows, empty_for=age)
    if verdict.phase is completion.Phase.ERRORED:
        return pipeline.created_at
    if not verdict.done:
        return None
    stops = [w.stopped_at or w.created_at for w in verdict.workflows]
    return max(stops, default=pipeline.created_at)
