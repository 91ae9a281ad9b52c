"""``approve``: B finds A's hold job and releases it, once, and only where allowed.

Where the tutorial approves ``items[0]`` of A's workflows from the first page of jobs,
this looks through every workflow of A (newest first, so a rerun of A is handled) and
every page of jobs, approves only a job of ``type: approval`` that is ``on_hold``, treats
"already approved" as success (a matrix of B approves N times), and refuses to act on a
pipeline whose project is not on the allow-list: B's token can approve anything it can
reach, so a forged ``triggering-pipeline-id`` must not point it at, say, a deploy gate.

The allow-list only narrows which projects may ever be released; it proves nothing. A
hold is released only when this B pipeline is proven to be one A triggered
(``circleback.relay.link``): A's trigger record in the hold's workflow lists it, or B's
compiled config carries A's id and A's record does not contradict it. Otherwise nothing
is released and the error says why.
"""

from __future__ import annotations

import enum
import logging
import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from circleback import errors
from circleback.client import CircleCIClient
from circleback.models import Job, JobStatus, JobType, Workflow
from circleback.relay import completion, link
from circleback.relay.discovery import JobIndex, downstream_for_hold
from circleback.relay.records import Downstream
from circleback.validation import parse_uuid

logger = logging.getLogger("circleback.relay")

DEFAULT_JOB_NAME = "wait-for-triggered-pipeline"
#: How long to wait for a hold that exists but is not yet ``on_hold`` (A still busy).
DEFAULT_HOLD_WAIT = 300.0

FORGED_ID_RISK = (
    "Refusing to approve without --allow-project: anyone who can trigger this pipeline "
    "could pass a forged triggering-pipeline-id and make it approve any approval job this "
    "token can reach (a production deploy gate, say)."
)

_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
# GitHub and Bitbucket have two spellings of the same provider.
_PROVIDER_ALIASES = {"github": "gh", "bitbucket": "bb"}
# Job statuses after which a job has nothing left to do.
_SETTLED_JOB_STATUSES = frozenset(
    {
        JobStatus.SUCCESS,
        JobStatus.FAILED,
        JobStatus.CANCELED,
        JobStatus.NOT_RUN,
        JobStatus.UNAUTHORIZED,
        JobStatus.INFRASTRUCTURE_FAIL,
        JobStatus.TIMEDOUT,
        JobStatus.TERMINATED_UNKNOWN,
        JobStatus.RETRIED,
    }
)
# Job statuses of a hold that has not been reached yet but may still be.
_PENDING = frozenset({JobStatus.BLOCKED, JobStatus.QUEUED, JobStatus.NOT_RUNNING})


class Outcome(str, enum.Enum):
    """What ``approve`` did."""

    APPROVED = "approved"
    """This call released the hold."""
    ALREADY_APPROVED = "already_approved"
    """The hold had been released before (a matrix leg, a rerun of B, a concurrent B)."""
    NOTHING_TO_RELEASE = "nothing_to_release"
    """A's workflow is canceled or finished; there is no hold left to release."""
    NOT_TRIGGERED = "not_triggered"
    """B was not triggered by an upstream pipeline; nothing to do."""
    LEFT_FOR_SIBLINGS = "left_for_siblings"
    """Fan-in: other downstream pipelines of A still run; the last one releases the hold."""


@dataclass(frozen=True)
class FanIn:
    """A shared hold: release it only when every sibling downstream pipeline is done.

    A sibling counts as done when it is final, errored, or has nothing left to run but
    its own callback job (named ``callback_job``, like ours): so when two siblings reach
    their callbacks together, both release (approve is idempotent) instead of each
    waiting for the other.
    """

    own_pipeline_id: str
    """This (downstream) pipeline's id: it is not its own sibling."""
    callback_job: str
    """The name of the siblings' callback job, usually this job's own name."""


@dataclass(frozen=True)
class ApproveResult:
    """The outcome of ``approve`` and the hold it concerned."""

    outcome: Outcome
    """What happened."""
    upstream_pipeline_id: str = ""
    """A's pipeline id."""
    project_slug: str = ""
    """A's project."""
    workflow: Workflow | None = None
    """The workflow holding the job, when one was found."""
    job: Job | None = None
    """The hold job, when one was found."""
    warnings: tuple[str, ...] = field(default=())
    """Things a person should know although nothing failed."""


def parse_allow_patterns(patterns: Iterable[str]) -> tuple[str, ...]:
    """Normalise allow-list patterns (``gh/acme/*``); split comma/space separated values."""
    result: list[str] = []
    for raw in patterns:
        for pattern in raw.replace(",", " ").split():
            parts = pattern.split("/")
            if len(parts) != 3 or not all(parts):
                raise errors.ConfigurationError(
                    f"--allow-project {pattern[:60]!r} is not a slug pattern.",
                    hint="Write vcs/org/repo with * as a wildcard within a part, e.g. gh/acme/*.",
                )
            result.append(_normalise_slug(pattern))
    return tuple(result)


def project_allowed(project_slug: str, patterns: Sequence[str]) -> bool:
    """True when the slug matches a pattern part by part; ``*`` never crosses a ``/``.

    Matching is case-insensitive, as GitHub and Bitbucket names are, so ``gh/ACME/x`` is
    judged as the project it really is; ``gh/acme/*`` never matches ``gh/acme-evil/x``.
    """
    slug = _normalise_slug(project_slug)
    return any(_pattern_regex(pattern).fullmatch(slug) for pattern in patterns)


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """``*`` matches within one part of the slug; every other character is literal."""
    return re.compile("[^/]*".join(re.escape(chunk) for chunk in pattern.split("*")))


def _normalise_slug(slug: str) -> str:
    # ASCII-only case folding: str.lower() would turn the Kelvin sign into "k" and let a
    # look-alike name pass; GitHub and Bitbucket names are ASCII anyway.
    parts = slug.translate(_ASCII_LOWER).split("/")
    if parts and parts[0] in _PROVIDER_ALIASES:
        parts[0] = _PROVIDER_ALIASES[parts[0]]
    return "/".join(parts)


def approve(
    client: CircleCIClient,
    upstream_pipeline_id: str | None,
    *,
    allow_projects: Sequence[str],
    job_name: str = DEFAULT_JOB_NAME,
    workflow_name: str | None = None,
    hold_wait: float = DEFAULT_HOLD_WAIT,
    fan_in: FanIn | None = None,
    downstream_pipeline_id: str | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> ApproveResult:
    """Release A's hold job named ``job_name``; see the module docstring for the rules.

    ``downstream_pipeline_id`` is this (B's) pipeline id, the one whose link to A must be
    proven (``$CIRCLE_PIPELINE_ID`` in the CLI); without it nothing can be proven and
    nothing is released (``link.LinkNotProven``, exit 3). With ``fan_in``, the hold is
    shared by several downstream pipelines and is released by the last of them to finish
    (see ``FanIn``).
    """
    if not upstream_pipeline_id or not upstream_pipeline_id.strip():
        return ApproveResult(Outcome.NOT_TRIGGERED)
    pipeline_id = parse_uuid(upstream_pipeline_id, what="upstream pipeline id")
    patterns = parse_allow_patterns(allow_projects)
    if not patterns:
        raise errors.ConfigurationError(
            FORGED_ID_RISK,
            hint="Pass --allow-project with the upstream project's slug (e.g. gh/acme/*), "
            "or set CIRCLEBACK_ALLOW_PROJECTS.",
        )
    if not job_name.strip():
        raise errors.ConfigurationError("--job-name is empty.", hint="Name A's approval job.")
    own = fan_in.own_pipeline_id if fan_in is not None else downstream_pipeline_id
    own = parse_uuid(own, what="downstream pipeline id") if own and own.strip() else ""
    deadline = clock() + hold_wait
    delay = 2.0
    while True:
        result = _find_and_approve(
            client, pipeline_id, patterns, job_name, workflow_name, fan_in, own
        )
        if result is not None:
            return result
        if clock() + delay > deadline:
            raise errors.CirclebackError(
                f"A's job {job_name!r} exists but did not reach on_hold within {hold_wait:.0f}s.",
                hint="A's jobs before the hold are still running or blocked; approve later.",
            )
        logger.info(f"hold {job_name!r} not reached yet; looking again in {delay:.0f}s")
        sleep(delay)
        delay = min(delay * 2, 30.0)


def _find_and_approve(
    client: CircleCIClient,
    pipeline_id: str,
    patterns: Sequence[str],
    job_name: str,
    workflow_name: str | None,
    fan_in: FanIn | None = None,
    own: str = "",
) -> ApproveResult | None:
    """One pass over A's workflows; None means "the hold exists but is not on hold yet"."""
    workflows = list(client.list_pipeline_workflows(pipeline_id))
    if not workflows:
        raise errors.NotFound(
            f"Upstream pipeline {pipeline_id} has no workflows.",
            status_code=404,
            hint="Check that B was triggered with the right upstream pipeline id.",
        )
    project = workflows[0].project_slug
    if not project_allowed(project, patterns):
        raise errors.ConfigurationError(
            f"Upstream pipeline {pipeline_id} belongs to {project}, which --allow-project "
            "does not allow. Nothing was approved.",
            hint="If that project may release holds here, add it to --allow-project; "
            "otherwise the upstream id may be forged.",
        )
    candidates = [w for w in workflows if workflow_name is None or w.name == workflow_name]
    if not candidates:
        names = ", ".join(sorted({repr(w.name) for w in workflows}))
        raise errors.NotFound(
            f"Upstream pipeline {pipeline_id} ({project}) has no workflow named "
            f"{workflow_name!r}. Its workflows: {names}.",
            status_code=404,
            hint="Pass one of those as --workflow-name, or leave it out to search them all.",
        )
    candidates.sort(key=lambda w: w.created_at, reverse=True)
    # Only a workflow still going can have a job on hold, so those are searched first
    # (newest first within each group, as before): once A's other workflows have finished,
    # finding the hold costs one job list instead of one per workflow. Jobs are streamed
    # page by page and the search stops at the hold, so memory stays flat.
    candidates.sort(key=lambda w: w.is_final)
    seen: list[tuple[Workflow, Job]] = []
    approvals: list[tuple[Workflow, Job]] = []
    holds: list[tuple[Workflow, Job, list[Downstream]]] = []
    for wf in candidates:
        if holds and wf.is_final:
            break  # a finished workflow holds nothing left to release
        index = JobIndex()
        jobs = iter(client.list_workflow_jobs(wf.id))
        for job in jobs:
            index.add(job)
            if job.type == JobType.APPROVAL:
                approvals.append((wf, job))
            if job.name != job_name:
                continue
            if job.type != JobType.APPROVAL:
                logger.warning(
                    "a job with the hold's name is not an approval job; not touching it",
                    extra={"job": job.name, "workflow": wf.name, "type": str(job.type)},
                )
                continue
            if job.status == JobStatus.ON_HOLD:
                holds.append((wf, job, _records(client, wf, job, index, jobs, own, fan_in)))
            else:
                seen.append((wf, job))
            break
        if holds and _lists(holds[-1][2], own):
            break  # the workflow whose record names this B: no need to look further
    chosen, refused = _choose(client, pipeline_id, own, holds)
    if chosen is not None:
        wf, job, records = chosen
        pending = _pending_siblings(client, records, fan_in) if fan_in else []
        if pending:
            return ApproveResult(
                Outcome.LEFT_FOR_SIBLINGS,
                pipeline_id,
                project,
                wf,
                job,
                (
                    "Leaving the shared hold to the last downstream pipeline; still "
                    f"running: {', '.join(pending)}.",
                ),
            )
        return _release(client, wf, job, project, pipeline_id)
    if refused is not None and not seen:
        hold, proof = refused
        link.require(proof, f"release {hold.name!r} of {project} pipeline {pipeline_id}")
    return _judge_without_hold(seen, approvals, project, pipeline_id, job_name, workflow_name)


def _lists(records: Sequence[Downstream], own: str) -> bool:
    return bool(own) and any(r.pipeline_id.lower() == own.lower() for r in records)


def _choose(
    client: CircleCIClient,
    pipeline_id: str,
    own: str,
    holds: list[tuple[Workflow, Job, list[Downstream]]],
) -> tuple[tuple[Workflow, Job, list[Downstream]] | None, tuple[Job, link.Link] | None]:
    """The hold this B may release, or why none: a hold whose workflow's record lists B
    first; else the first whose link B's compiled config proves (its workflow keeps no
    record that contradicts it). B's config is read at most once."""
    for hold in holds:
        if _lists(hold[2], own):
            return hold, None
    evidence: link.ConfigEvidence | None = None
    refused: tuple[Job, link.Link] | None = None
    for hold in holds:
        _, job, records = hold
        if not records and own and evidence is None:
            evidence = link.read_config_evidence(client, own)
        proof = link.judge_approval(pipeline_id, own, records, None if records else evidence)
        if proof.proven:
            return hold, None
        refused = refused or (job, proof)
    return None, refused


def _records(
    client: CircleCIClient,
    wf: Workflow,
    hold: Job,
    index: JobIndex,
    rest: Iterator[Job],
    own: str,
    fan_in: FanIn | None,
) -> list[Downstream]:
    """A's trigger records that can have fed this hold: only the jobs it depends on.

    A record in a job the hold does not depend on never counts (a parallel job could
    store a forged one). The walk stops at the first record naming this B, unless the
    hold is shared (``fan_in``): then every ancestor's records are read, since the
    siblings the release waits for may be recorded by other trigger jobs.
    """

    def names_own(records: list[Downstream]) -> bool:
        return _lists(records, own)

    return downstream_for_hold(
        client,
        wf.project_slug,
        hold,
        index,
        rest,
        enough=names_own if own and fan_in is None else None,
    )


def _pending_siblings(
    client: CircleCIClient, records: Sequence[Downstream], fan_in: FanIn
) -> list[str]:
    """The sibling downstream pipelines (from A's record) that still have work to do.

    Judged by the shared completion rule; a sibling that waits only for its own callback
    job (running, like ours) counts as done, so two siblings finishing together both
    release instead of each waiting for the other.
    """
    pending: list[str] = []
    for record in records:
        if record.pipeline_id.lower() == fan_in.own_pipeline_id.lower():
            continue
        _, verdict = completion.look(client, record.pipeline_id)
        name = f"{record.project_slug} #{record.number}"
        if verdict.done:
            continue
        if not verdict.waiting_only_on_workflows:
            pending.append(f"{name} ({verdict.reason})")
            continue
        for sibling_wf in verdict.active:
            busy = [
                j.name
                for j in client.list_workflow_jobs(sibling_wf.id)
                if j.status not in _SETTLED_JOB_STATUSES and j.name != fan_in.callback_job
            ]
            if busy:
                pending.append(f"{name} ({', '.join(busy)})")
                break
    return pending


def _release(
    client: CircleCIClient, wf: Workflow, job: Job, project: str, pipeline_id: str
) -> ApproveResult:
    """Approve; when that fails, re-read the job before deciding what the failure meant."""
    request_id = job.approval_request_id or job.id
    try:
        client.approve_job(wf.id, request_id)
    except (errors.APIError, errors.TransportError, errors.UnexpectedResponse) as failure:
        current = next((j for j in client.list_workflow_jobs(wf.id) if j.id == job.id), None)
        if current is not None and current.status == JobStatus.SUCCESS:
            logger.info("the hold was released meanwhile", extra={"job": job.name})
            return ApproveResult(Outcome.ALREADY_APPROVED, pipeline_id, project, wf, current)
        raise failure from None
    logger.info("approved upstream hold", extra={"job": job.name, "workflow": wf.name})
    return ApproveResult(Outcome.APPROVED, pipeline_id, project, wf, job)


def _judge_without_hold(
    seen: list[tuple[Workflow, Job]],
    approvals: list[tuple[Workflow, Job]],
    project: str,
    pipeline_id: str,
    job_name: str,
    workflow_name: str | None,
) -> ApproveResult | None:
    """No hold is on_hold: already approved, not reached yet, gone, or never there."""
    if not seen:
        listed = ", ".join(f"{j.name} ({j.status}) in {w.name}" for w, j in approvals) or "none"
        where = f" in workflow {workflow_name!r}" if workflow_name else ""
        raise errors.NotFound(
            f"No approval job named {job_name!r}{where} in upstream pipeline {pipeline_id} "
            f"({project}). Approval jobs there: {listed}.",
            status_code=404,
            hint="Pass --job-name (and --workflow-name) matching A's approval job.",
        )
    wf, job = max(seen, key=lambda pair: pair[0].created_at)  # the newest one decides
    if job.status == JobStatus.SUCCESS:
        return ApproveResult(Outcome.ALREADY_APPROVED, pipeline_id, project, wf, job)
    if job.status in _PENDING and not wf.is_final:
        return None
    warning = (
        f"A's workflow {wf.name!r} is {wf.status} and its hold {job.name!r} is {job.status}: "
        "nothing left to release."
    )
    return ApproveResult(Outcome.NOTHING_TO_RELEASE, pipeline_id, project, wf, job, (warning,))
