"""``status``: A waits until every downstream pipeline is done, then passes only if all succeeded.

The tutorial reads ``items[0].status`` once. But B usually approves A from inside a job
that is still running, so A's first look often sees ``running``; and B may have several
workflows, a dynamic config whose real workflows start only after its setup workflow, or
a workflow ``queued`` behind a serial group. Here A polls (with backoff) until the
completion rule (``circleback.relay.completion``) says every downstream pipeline is done,
and only ``success`` everywhere passes.

The wait never ends before ``timeout``: the last look is taken at the deadline. When it
passes, ``StatusTimeout`` carries the report so far (pipelines still running included),
so ``--json`` and ``--junit`` still say what was seen.

A successful workflow can hide jobs that never ran (a preempted serial-group job ends
``not_run`` inside a ``success`` workflow): they are listed in the report, and
``required_jobs`` fails the check unless each named job succeeded.

A poll looks at every pending downstream pipeline at once (a bounded thread pool; the
client is thread-safe), so a fan-out of 20 costs about one round trip per poll, not 20.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from circleback import errors
from circleback.client import CircleCIClient
from circleback.models import Job, JobStatus, Pipeline, Workflow, WorkflowStatus
from circleback.relay.completion import (
    DEFAULT_NO_WORKFLOW_GRACE,
    Completion,
    Phase,
    Watch,
    status_text,
)
from circleback.relay.records import Downstream, app_url, job_url, pipeline_url, workflow_url

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
    no_workflow_grace: float = DEFAULT_NO_WORKFLOW_GRACE
    """Seconds a created pipeline must list no workflow before it "ran no workflows"."""


@dataclass(frozen=True)
class FailedJob:
    """A job that made a downstream workflow fail, or that did not run in it."""

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
    not_run_jobs: tuple[FailedJob, ...] = ()
    """Jobs that ended ``not_run`` (e.g. preempted in a serial group), even in a success."""
    job_statuses: tuple[tuple[str, str], ...] = ()
    """Every job's (name, status), for ``required_jobs``."""

    @property
    def succeeded(self) -> bool:
        """Only ``success`` counts as success."""
        return self.status == WorkflowStatus.SUCCESS.value


@dataclass(frozen=True)
class PipelineReport:
    """One downstream pipeline's result (or, on a timeout, what it still waits for)."""

    project_slug: str
    pipeline_id: str
    number: int
    state: str
    url: str
    workflows: tuple[WorkflowReport, ...] = ()
    errors: tuple[str, ...] = ()
    superseded: tuple[str, ...] = field(default=())
    """Ids of workflows replaced by a newer rerun of the same name (not judged)."""
    waiting: str = ""
    """Not done: what it was still waiting for when the wait gave up."""

    @property
    def finished(self) -> bool:
        """False for a pipeline still running when the wait gave up."""
        return not self.waiting

    @property
    def succeeded(self) -> bool:
        """True when the pipeline is done, ran workflows, and every one succeeded."""
        return (
            self.finished
            and not self.errors
            and bool(self.workflows)
            and all(w.succeeded for w in self.workflows)
        )


@dataclass(frozen=True)
class RequiredJob:
    """A job ``required_jobs`` named, and what became of it across the downstream pipelines."""

    name: str
    statuses: tuple[str, ...]
    """Each status found for a job of that name (empty: no such job ran anywhere)."""

    @property
    def succeeded(self) -> bool:
        """Found, and every job of that name succeeded."""
        return bool(self.statuses) and all(s == JobStatus.SUCCESS.value for s in self.statuses)


@dataclass(frozen=True)
class StatusReport:
    """The result over every downstream pipeline."""

    pipelines: tuple[PipelineReport, ...]
    required: tuple[RequiredJob, ...] = ()
    timed_out: bool = False
    """True when the wait gave up before every pipeline was done."""

    @property
    def succeeded(self) -> bool:
        """True only when every downstream pipeline and every required job succeeded."""
        return (
            not self.timed_out
            and bool(self.pipelines)
            and all(p.succeeded for p in self.pipelines)
            and all(r.succeeded for r in self.required)
        )

    def to_json(self) -> dict[str, Any]:
        """The report as a JSON document (``status --json``)."""
        return {
            "success": self.succeeded,
            "timed_out": self.timed_out,
            "required_jobs": [
                {"name": r.name, "statuses": list(r.statuses), "success": r.succeeded}
                for r in self.required
            ],
            "pipelines": [
                {
                    "project_slug": p.project_slug,
                    "pipeline_id": p.pipeline_id,
                    "number": p.number,
                    "state": p.state,
                    "url": p.url,
                    "finished": p.finished,
                    "waiting_for": p.waiting or None,
                    "success": p.succeeded,
                    "errors": list(p.errors),
                    "workflows": [
                        {
                            "name": w.name,
                            "id": w.id,
                            "status": w.status,
                            "url": w.url,
                            "duration_seconds": w.duration_seconds,
                            "failed_jobs": [_job_json(j) for j in w.failed_jobs],
                            "not_run_jobs": [_job_json(j) for j in w.not_run_jobs],
                        }
                        for w in p.workflows
                    ],
                }
                for p in self.pipelines
            ],
        }


def _job_json(job: FailedJob) -> dict[str, str]:
    return {"name": job.name, "status": job.status, "url": job.url}


class StatusTimeout(errors.WaitTimeout):
    """Raised when the wait gives up; ``report`` holds what was seen, running ones too."""

    def __init__(self, message: str, report: StatusReport) -> None:
        super().__init__(message)
        self.report = report


def downstream_from_id(client: CircleCIClient, pipeline_id: str) -> Downstream:
    """A downstream record for a bare pipeline id (``status --pipeline-id``)."""
    pipeline = client.get_pipeline(pipeline_id)
    return _record(client, pipeline)


def _record(client: CircleCIClient, pipeline: Pipeline) -> Downstream:
    return Downstream(
        project_slug=pipeline.project_slug,
        pipeline_id=pipeline.id,
        number=pipeline.number,
        state=status_text(pipeline.state),
        url=pipeline_url(app_url(client.base_url), pipeline.project_slug, pipeline.number),
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
    required_jobs: Sequence[str] = (),
) -> StatusReport:
    """Wait until every downstream pipeline is done; report them all.

    Raises ``StatusTimeout`` (exit 4) when ``timeout`` passes first: never earlier, and
    not later either, even in the middle of a request (the client's ``deadline``). Does
    not raise on failure: the caller decides from ``StatusReport.succeeded`` (the CLI
    exits 1). ``concurrency`` bounds the pipelines looked at in parallel (1: in turn).
    """
    if not downstream:
        raise errors.ConfigurationError(
            "No downstream pipeline to check.",
            hint="Pass --pipeline-id, or a --state-file that 'circleback trigger' wrote to.",
        )
    with client.deadline(timeout):
        return _wait(client, downstream, timeout, poll, sleep, clock, concurrency, required_jobs)


def _wait(
    client: CircleCIClient,
    downstream: Sequence[Downstream],
    timeout: float,
    poll: PollPolicy,
    sleep: Callable[[float], None],
    clock: Callable[[], float],
    concurrency: int,
    required_jobs: Sequence[str],
) -> StatusReport:
    started = clock()
    deadline = started + timeout
    delay = poll.first_delay
    watch = Watch(clock=clock, no_workflow_grace=poll.no_workflow_grace)
    finished: dict[str, PipelineReport] = {}
    last: dict[str, PipelineReport] = {}
    warned: set[str] = set()
    while True:
        pending = [r for r in downstream if r.pipeline_id not in finished]
        waiting: list[str] = []
        try:
            looks = _look_all(client, pending, watch, concurrency)
        except errors.DeadlinePassed as exc:
            # The timeout holds inside a request: an answer still arriving is given up on,
            # and the report says what was seen before (the last look, due at the
            # deadline, is usually the one cut short: name what the one before saw).
            seen = [
                f"{r.project_slug} #{r.number}: {last[r.pipeline_id].waiting}"
                for r in pending
                if r.pipeline_id in last
            ]
            if len(seen) < len(pending):
                seen.append(f"an answer still arriving ({exc.message})")
            raise _timeout(
                downstream,
                finished,
                last,
                started,
                timeout,
                clock,
                required_jobs,
                "; ".join(seen),
            ) from None
        for record, (report, verdict) in zip(pending, looks, strict=True):
            for unknown in verdict.unknown:
                if f"{record.pipeline_id}:{unknown}" not in warned:
                    warned.add(f"{record.pipeline_id}:{unknown}")
                    logger.warning(
                        "a downstream workflow has a status circleback does not know; "
                        "waiting for a known final one",
                        extra={
                            "pipeline": f"{record.project_slug} #{record.number}",
                            "workflow": unknown,
                        },
                    )
            if report.finished:
                finished[record.pipeline_id] = report
            else:
                last[record.pipeline_id] = report
                waiting.append(f"{record.project_slug} #{record.number}: {report.waiting}")
        if not waiting:
            reports = tuple(finished[d.pipeline_id] for d in downstream)
            return StatusReport(reports, _required(reports, required_jobs))
        remaining = deadline - clock()
        if remaining <= 0:
            raise _timeout(
                downstream,
                finished,
                last,
                started,
                timeout,
                clock,
                required_jobs,
                "; ".join(waiting),
            )
        wait = min(delay, remaining)
        logger.info("waiting for downstream", extra={"waiting": waiting, "delay": wait})
        sleep(wait)
        delay = min(delay * poll.factor, poll.max_delay)


def _timeout(
    downstream: Sequence[Downstream],
    finished: dict[str, PipelineReport],
    last: dict[str, PipelineReport],
    started: float,
    timeout: float,
    clock: Callable[[], float],
    required_jobs: Sequence[str],
    waiting: str,
) -> StatusTimeout:
    """The timeout, carrying the report so far (a pipeline never seen says so)."""

    def so_far(d: Downstream) -> PipelineReport:
        seen = finished.get(d.pipeline_id) or last.get(d.pipeline_id)
        if seen is not None:
            return seen
        return PipelineReport(
            d.project_slug, d.pipeline_id, d.number, d.state, d.url, waiting="not looked at yet"
        )

    reports = tuple(so_far(d) for d in downstream)
    report = StatusReport(reports, _required(reports, required_jobs), timed_out=True)
    return StatusTimeout(
        f"Gave up after {clock() - started:.0f}s (--timeout {timeout:.0f}s) waiting for: "
        f"{waiting}.",
        report,
    )


def _required(reports: Sequence[PipelineReport], names: Sequence[str]) -> tuple[RequiredJob, ...]:
    result = []
    for name in dict.fromkeys(names):
        statuses = tuple(
            status
            for p in reports
            for w in p.workflows
            for job, status in w.job_statuses
            if job == name
        )
        result.append(RequiredJob(name, statuses))
    return tuple(result)


def _look_all(
    client: CircleCIClient, pending: list[Downstream], watch: Watch, concurrency: int
) -> list[tuple[PipelineReport, Completion]]:
    """One look at each pending pipeline, in parallel, in ``pending``'s order.

    The first error (in that order) propagates once every look has ended, as it would
    have from a sequential loop; nothing is left running behind the caller's back.
    """

    def look(record: Downstream) -> tuple[PipelineReport, Completion]:
        return _look(client, record, watch)

    workers = max(1, min(concurrency, len(pending)))
    if workers == 1:
        return [look(record) for record in pending]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="circleback-status") as pool:
        futures = [pool.submit(look, record) for record in pending]
        return [future.result() for future in futures]


def _look(
    client: CircleCIClient, record: Downstream, watch: Watch
) -> tuple[PipelineReport, Completion]:
    """One look at one pipeline under the completion rule (usually one request: the
    workflows carry the project and number, and show the pipeline was created)."""
    found, workflows, verdict = watch.look_workflows(client, record.pipeline_id)
    if found is not None:
        slug, number = found.project_slug, found.number
    else:
        slug, number = workflows[0].project_slug, workflows[0].pipeline_number
    url = record.url or pipeline_url(app_url(client.base_url), slug, number)
    pipeline = _Where(slug, number)
    base = PipelineReport(
        project_slug=slug,
        pipeline_id=record.pipeline_id,
        number=number,
        state=verdict.state,
        url=url,
        superseded=verdict.superseded,
    )
    if verdict.phase is Phase.WAITING:
        partial = tuple(
            _workflow_report(client, pipeline, w, with_jobs=False) for w in verdict.workflows
        )
        return _with(base, workflows=partial, waiting=verdict.reason or "not done"), verdict
    if verdict.phase is Phase.ERRORED:
        errored = found.errors if found is not None else ()
        reasons = tuple(f"{e.type}: {e.message}" for e in errored) or ("errored",)
        return _with(base, errors=reasons), verdict
    reports = tuple(_workflow_report(client, pipeline, w) for w in verdict.workflows)
    if verdict.phase in {Phase.NO_WORKFLOWS, Phase.SETUP_FAILED}:
        return _with(base, workflows=reports, errors=(verdict.reason,)), verdict
    return _with(base, workflows=reports), verdict


def _with(base: PipelineReport, **changes: Any) -> PipelineReport:
    from dataclasses import replace

    return replace(base, **changes)


@dataclass(frozen=True)
class _Where:
    """What a report needs of a pipeline: its project and number."""

    project_slug: str
    number: int


def _workflow_report(
    client: CircleCIClient, pipeline: _Where, wf: Workflow, *, with_jobs: bool = True
) -> WorkflowReport:
    app = app_url(client.base_url)

    def ref(job: Job) -> FailedJob:
        return FailedJob(
            name=job.name,
            status=status_text(job.status),
            url=job_url(app, pipeline.project_slug, pipeline.number, wf.id, job.job_number),
        )

    jobs = list(client.list_workflow_jobs(wf.id)) if with_jobs else []
    return WorkflowReport(
        name=wf.name,
        id=wf.id,
        status=status_text(wf.status),
        url=workflow_url(app, pipeline.project_slug, pipeline.number, wf.id),
        duration_seconds=_duration(wf.created_at, wf.stopped_at),
        failed_jobs=tuple(ref(j) for j in jobs if j.status in _FAILED_JOB_STATUSES),
        not_run_jobs=tuple(ref(j) for j in jobs if j.status == JobStatus.NOT_RUN),
        job_statuses=tuple((j.name, status_text(j.status)) for j in jobs),
    )


def _duration(start: datetime, stop: datetime | None) -> float | None:
    return None if stop is None else max((stop - start).total_seconds(), 0.0)


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
