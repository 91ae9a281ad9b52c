"""``status``: A waits until every workflow of B is final, then passes only if all succeeded.

The tutorial reads ``items[0].status`` once. But B usually approves A from inside a job
that is still running, so A's first look often sees ``running``; and B may have several
workflows. Here A polls (with backoff, bounded by a timeout) until every workflow of
every downstream pipeline is final, and only ``success`` everywhere passes: ``failed``,
``error``, ``canceled``, ``unauthorized``, ``not_run`` and any status this code does not
know all fail.

A poll looks at every pending downstream pipeline at once (a bounded thread pool; the
client is thread-safe), so a fan-out of 20 costs about one round trip per poll, not 20.
A pipeline whose record came from ``trigger`` is looked at with one request when it has
workflows: the workflows carry its project and number, and a pipeline that ran workflows
did not error at creation; only a pipeline with no workflows yet is read itself.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from circleback import errors
from circleback.client import CircleCIClient
from circleback.models import (
    JobStatus,
    Pipeline,
    PipelineState,
    Workflow,
    WorkflowStatus,
)
from circleback.progress import WaitProgress, describe
from circleback.relay.records import Downstream, app_url, job_url, workflow_url

logger = logging.getLogger("circleback.relay")

DEFAULT_TIMEOUT = 30 * 60.0
#: Downstream pipelines looked at concurrently in one poll; a wider fan-out takes
#: ceil(n / this) round trips per poll, which keeps a burst within CircleCI's rate limits.
DEFAULT_CONCURRENCY = 20
#: Job statuses worth naming when a workflow fails.
_FAILED_JOB_STATUSES = frozenset(
    {
        JobStatus.FAILED,
        JobStatus.INFRASTRUCTURE_FAIL,
        JobStatus.TIMEDOUT,
        JobStatus.CANCELED,
        JobStatus.UNAUTHORIZED,
        JobStatus.TERMINATED_UNKNOWN,
    }
)


@dataclass(frozen=True)
class PollPolicy:
    """How often ``status`` looks: starts quick, slows down, never hammers the API."""

    first_delay: float = 5.0
    """Seconds before the second look."""
    factor: float = 1.5
    """Each wait is this much longer than the last."""
    max_delay: float = 60.0
    """The longest wait between looks."""


@dataclass(frozen=True)
class FailedJob:
    """A job that made a downstream workflow fail."""

    name: str
    status: str
    url: str


@dataclass(frozen=True)
class WorkflowReport:
    """One downstream workflow's final word."""

    name: str
    id: str
    status: str
    url: str
    duration_seconds: float | None
    failed_jobs: tuple[FailedJob, ...] = ()

    @property
    def succeeded(self) -> bool:
        """Only ``success`` counts as success."""
        return self.status == WorkflowStatus.SUCCESS.value


@dataclass(frozen=True)
class PipelineReport:
    """One downstream pipeline's result."""

    project_slug: str
    pipeline_id: str
    number: int
    state: str
    url: str
    workflows: tuple[WorkflowReport, ...] = ()
    errors: tuple[str, ...] = ()
    superseded: tuple[str, ...] = field(default=())
    """Ids of workflows replaced by a newer rerun of the same name (not judged)."""

    @property
    def succeeded(self) -> bool:
        """True when the pipeline ran workflows and every one of them succeeded."""
        return not self.errors and bool(self.workflows) and all(w.succeeded for w in self.workflows)


@dataclass(frozen=True)
class StatusReport:
    """The result over every downstream pipeline."""

    pipelines: tuple[PipelineReport, ...]

    @property
    def succeeded(self) -> bool:
        """True only when every downstream pipeline succeeded."""
        return bool(self.pipelines) and all(p.succeeded for p in self.pipelines)

    def to_json(self) -> dict[str, Any]:
        """The report as a JSON document (``status --json``)."""
        return {
            "success": self.succeeded,
            "pipelines": [
                {
                    "project_slug": p.project_slug,
                    "pipeline_id": p.pipeline_id,
                    "number": p.number,
                    "state": p.state,
                    "url": p.url,
                    "success": p.succeeded,
                    "errors": list(p.errors),
                    "workflows": [
                        {
                            "name": w.name,
                            "id": w.id,
                            "status": w.status,
                            "url": w.url,
                            "duration_seconds": w.duration_seconds,
                            "failed_jobs": [
                                {"name": j.name, "status": j.status, "url": j.url}
                                for j in w.failed_jobs
                            ],
                        }
                        for w in p.workflows
                    ],
                }
                for p in self.pipelines
            ],
        }


def downstream_from_id(client: CircleCIClient, pipeline_id: str) -> Downstream:
    """A downstream record for a bare pipeline id (``status --pipeline-id``)."""
    pipeline = client.get_pipeline(pipeline_id)
    return _record(client, pipeline)


def _record(client: CircleCIClient, pipeline: Pipeline) -> Downstream:
    app = app_url(client.base_url)
    return Downstream(
        project_slug=pipeline.project_slug,
        pipeline_id=pipeline.id,
        number=pipeline.number,
        state=_text(pipeline.state),
        url=f"{app}/pipelines/{pipeline.project_slug}/{pipeline.number}",
    )


def wait_for_downstream(
    client: CircleCIClient,
    downstream: Sequence[Downstream],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    poll: PollPolicy = PollPolicy(),
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    concurrency: int = DEFAULT_CONCURRENCY,
    progress: Callable[[WaitProgress], None] | None = None,
) -> StatusReport:
    """Wait until every workflow of every downstream pipeline is final; report them all.

    Raises ``WaitTimeout`` when ``timeout`` passes first, even in the middle of a request
    (the client's ``deadline``). Does not raise on failure: the caller decides from
    ``StatusReport.succeeded`` (the CLI exits 1). ``concurrency`` bounds the pipelines
    looked at in parallel (1: one after another). ``progress``, if given, is told after
    each look what is still awaited (instead of a log line).
    """
    if not downstream:
        raise errors.ConfigurationError(
            "No downstream pipeline to check.",
            hint="Pass --pipeline-id, or a --state-file that 'circleback trigger' wrote to.",
        )
    with client.deadline(timeout):
        return _wait(client, downstream, timeout, poll, sleep, clock, concurrency, progress)


def _wait(
    client: CircleCIClient,
    downstream: Sequence[Downstream],
    timeout: float,
    poll: PollPolicy,
    sleep: Callable[[float], None],
    clock: Callable[[], float],
    concurrency: int,
    progress: Callable[[WaitProgress], None] | None,
) -> StatusReport:
    started = clock()
    deadline = started + timeout
    delay = poll.first_delay
    finished: dict[str, PipelineReport] = {}
    empty_seen: set[str] = set()
    while True:
        waiting: list[str] = []
        pending = [r for r in downstream if r.pipeline_id not in finished]
        try:
            looks = _look_all(client, pending, empty_seen, concurrency)
        except errors.DeadlinePassed as exc:
            # The timeout holds inside a request: an answer still arriving is given up on.
            raise errors.WaitTimeout(f"Gave up after {timeout:.0f}s: {exc.message}") from None
        for record, (report, why) in zip(pending, looks, strict=True):
            if report is not None:
                finished[record.pipeline_id] = report
            else:
                if why == "no workflows yet":
                    empty_seen.add(record.pipeline_id)
                waiting.append(f"{record.project_slug} #{record.number}: {why}")
        if not waiting:
            return StatusReport(tuple(finished[d.pipeline_id] for d in downstream))
        if clock() + delay > deadline:
            raise errors.WaitTimeout(
                f"Gave up after {timeout:.0f}s waiting for: {'; '.join(waiting)}."
            )
        state = WaitProgress(
            elapsed=clock() - started,
            waiting=tuple(waiting),
            done=len(finished),
            total=len(downstream),
            next_look=delay,
        )
        if progress is not None:
            progress(state)
        else:
            logger.info(describe(state))
        sleep(delay)
        delay = min(delay * poll.factor, poll.max_delay)


def _look_all(
    client: CircleCIClient, pending: list[Downstream], empty_seen: set[str], concurrency: int
) -> list[tuple[PipelineReport | None, str]]:
    """One look at each pending pipeline, in parallel, in ``pending``'s order.

    The first error (in that order) propagates once every look has ended, as it would
    have from a sequential loop; nothing is left running behind the caller's back.
    """

    def look(record: Downstream) -> tuple[PipelineReport | None, str]:
        return _look(client, record, record.pipeline_id in empty_seen)

    workers = max(1, min(concurrency, len(pending)))
    if workers == 1:
        return [look(record) for record in pending]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="circleback-status") as pool:
        futures = [pool.submit(look, record) for record in pending]
        return [future.result() for future in futures]


def _look(
    client: CircleCIClient, record: Downstream, empty_before: bool
) -> tuple[PipelineReport | None, str]:
    """One look at one pipeline: its final report, or why it is not final yet."""
    workflows = list(client.list_pipeline_workflows(record.pipeline_id)) if record.url else None
    if workflows:
        return _judge(client, record, workflows)
    pipeline = client.get_pipeline(record.pipeline_id)
    url = record.url or _record(client, pipeline).url
    base = PipelineReport(
        project_slug=pipeline.project_slug,
        pipeline_id=pipeline.id,
        number=pipeline.number,
        state=_text(pipeline.state),
        url=url,
    )
    if pipeline.state == PipelineState.ERRORED:
        reasons = tuple(f"{e.type}: {e.message}" for e in pipeline.errors) or ("errored",)
        return replace(base, errors=reasons), ""
    if workflows is None:
        workflows = list(client.list_pipeline_workflows(pipeline.id))
    if not workflows:
        if pipeline.state == PipelineState.CREATED and empty_before:
            return replace(base, errors=("the pipeline ran no workflows",)), ""
        return None, "no workflows yet"
    return _judge(client, replace(record, url=url, state=base.state), workflows)


def _judge(
    client: CircleCIClient, record: Downstream, workflows: list[Workflow]
) -> tuple[PipelineReport | None, str]:
    """Final report or reason to wait, from a pipeline's workflows (never empty)."""
    first = workflows[0]
    pipeline = _WorkflowsPipeline(first.project_slug, record.pipeline_id, first.pipeline_number)
    base = PipelineReport(
        project_slug=pipeline.project_slug,
        pipeline_id=pipeline.id,
        number=pipeline.number,
        state=record.state,
        url=record.url,
    )
    live, superseded = _newest_by_name(workflows)
    active = [w for w in live if not w.is_final]
    if active:
        parts = []
        for w in active:
            if w.status == WorkflowStatus.ON_HOLD:
                parts.append(f"{w.name} is on_hold (B is waiting for its own approval)")
            else:
                parts.append(f"{w.name} is {_text(w.status)}")
        return None, ", ".join(parts)
    reports = tuple(_workflow_report(client, pipeline, w) for w in live)
    return replace(base, workflows=reports, superseded=superseded), ""


def _newest_by_name(workflows: list[Workflow]) -> tuple[list[Workflow], tuple[str, ...]]:
    """The newest workflow of each name; older same-named ones were replaced by a rerun."""
    newest: dict[str, Workflow] = {}
    for wf in workflows:
        best = newest.get(wf.name)
        if best is None or wf.created_at > best.created_at:
            newest[wf.name] = wf
    live_ids = {w.id for w in newest.values()}
    ordered = sorted(newest.values(), key=lambda w: w.created_at)
    return ordered, tuple(w.id for w in workflows if w.id not in live_ids)


@dataclass(frozen=True)
class _WorkflowsPipeline:
    """What a report needs of a pipeline, as its workflows tell it (no extra request)."""

    project_slug: str
    id: str
    number: int


def _workflow_report(
    client: CircleCIClient, pipeline: _WorkflowsPipeline, wf: Workflow
) -> WorkflowReport:
    app = app_url(client.base_url)
    failed: tuple[FailedJob, ...] = ()
    if wf.status != WorkflowStatus.SUCCESS:
        failed = tuple(
            FailedJob(
                name=j.name,
                status=_text(j.status),
                url=job_url(app, pipeline.project_slug, pipeline.number, wf.id, j.job_number),
            )
            for j in client.list_workflow_jobs(wf.id)
            if j.status in _FAILED_JOB_STATUSES
        )
    return WorkflowReport(
        name=wf.name,
        id=wf.id,
        status=_text(wf.status),
        url=workflow_url(app, pipeline.project_slug, pipeline.number, wf.id),
        duration_seconds=_duration(wf.created_at, wf.stopped_at),
        failed_jobs=failed,
    )


def _duration(start: datetime, stop: datetime | None) -> float | None:
    return None if stop is None else max((stop - start).total_seconds(), 0.0)


def _text(status: object) -> str:
    """A status as CircleCI spells it, whether a known enum member or a new string."""
    return str(getattr(status, "value", status))


def cancel_downstream(client: CircleCIClient, downstream: Sequence[Downstream]) -> list[str]:
    """Cancel every workflow of these pipelines that is still going; returns what it hit.

    Used when A gives up waiting: B would otherwise run on, billed, with nobody left to
    act on its result.
    """
    canceled: list[str] = []
    for record in downstream:
        for workflow in client.list_pipeline_workflows(record.pipeline_id):
            if workflow.is_final:
                continue
            client.cancel_workflow(workflow.id)
            canceled.append(f"{record.project_slug} #{record.number} {workflow.name}")
            logger.warning(
                "canceled downstream workflow on timeout",
                extra={"project": record.project_slug, "workflow": workflow.name},
            )
    return canceled
