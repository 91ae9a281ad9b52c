"""What one verified webhook delivery makes the receiver do: usually nothing, or release A.

The event is a hint and nothing more. Its status is never read: B is re-read from the API,
and A's hold is released only when the API shows that B is done (``circleback.relay.
completion``), that B's compiled config carries A's id (the only place B's parameters can
be read), that A's trigger record lists B or is silent (``circleback.relay.link``: a record
naming other pipelines contradicts a forged ``triggering-pipeline-id``), that A's project is
on the allow-list, and that every other pipeline A recorded is done too. The release itself
is ``approve``'s, which proves the link again in the hold's own workflow: approval jobs
only, by name, idempotent.

Nothing here is remembered between deliveries, so duplicates and replays change nothing,
and any number of replicas may serve the same URL: the last ``workflow-completed`` of B is
the one that finds B done and releases A. (``circleback.serve.app`` keeps a per-process
memory of answered deliveries only to spare the API repeated reads.)
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from circleback import errors
from circleback.client import CircleCIClient
from circleback.models import JobStatus, Pipeline, WorkflowStatus
from circleback.relay.approve import (
    DEFAULT_JOB_NAME,
    Outcome,
    approve,
    parse_allow_patterns,
    project_allowed,
)
from circleback.relay.discovery import downstream_of_workflow
from circleback.relay.link import LinkNotProven, prove_sweep
from circleback.relay.records import Downstream
from circleback.relay.status import cancel_downstream
from circleback.serve import evidence
from circleback.validation import parse_uuid

logger = logging.getLogger("circleback.serve")

#: A hold job's statuses before A's jobs ahead of it have finished.
_NOT_REACHED = frozenset({JobStatus.BLOCKED, JobStatus.QUEUED, JobStatus.NOT_RUNNING})
#: The event that can release A; ``job-completed`` is accepted and ignored.
WORKFLOW_COMPLETED = "workflow-completed"
JOB_COMPLETED = "job-completed"


class Verdict(str, enum.Enum):
    """What the receiver made of a delivery; each maps to one HTTP answer."""

    RELEASED = "released"
    """A's hold was released by this delivery."""
    ALREADY_RELEASED = "already_released"
    """Nothing left to do: released before (a duplicate, a replay), or A moved on."""
    WAITING = "waiting"
    """B (or a sibling A also waits for) is not done; a later event will finish it."""
    IGNORED = "ignored"
    """Not an event that concerns circleback (another event type, an untriggered B)."""
    REFUSED = "refused"
    """Evidence failed: off the allow-list, no proven link, a payload that lies."""
    CANCELED_DOWNSTREAM = "canceled_downstream"
    """Cancel cascade: A's workflow was canceled, so were the pipelines it triggered."""
    RETRY = "retry"
    """Could not decide now (API error, A's hold not reached yet): deliver again later."""


#: The HTTP status for each verdict: 2xx ends CircleCI's retries, 503 asks for another try.
HTTP_STATUS = {
    Verdict.RELEASED: 200,
    Verdict.ALREADY_RELEASED: 200,
    Verdict.WAITING: 202,
    Verdict.IGNORED: 200,
    Verdict.REFUSED: 200,
    Verdict.CANCELED_DOWNSTREAM: 200,
    Verdict.RETRY: 503,
}


@dataclass(frozen=True)
class Rules:
    """Who may be released, by what: the receiver's configuration."""

    allow_projects: tuple[str, ...]
    """Upstream (A) projects whose holds may be released, as for ``approve``."""
    downstream_projects: tuple[str, ...] = ()
    """Downstream (B) projects whose events are considered; empty: any signed event."""
    job_name: str = DEFAULT_JOB_NAME
    """A's approval job."""
    cancel_cascade: bool = False
    """With A's webhook installed too: A's workflow canceled cancels what it triggered."""


@dataclass(frozen=True)
class Decision:
    """A verdict, why, and what it concerned (for the answer body and the log)."""

    verdict: Verdict
    reason: str
    details: Mapping[str, str] = field(default_factory=dict)

    @property
    def http_status(self) -> int:
        return HTTP_STATUS[self.verdict]

    def to_json(self) -> dict[str, Any]:
        return {"verdict": self.verdict.value, "reason": self.reason, **self.details}


def handle(client: CircleCIClient, event: Any, rules: Rules) -> Decision:
    """Decide and act on one delivery whose signature was already verified."""
    try:
        return _handle(client, event, rules)
    except LinkNotProven as exc:  # approve's own proof, in the hold's workflow
        return Decision(Verdict.REFUSED, f"the link is not proven: {exc.link.reason}")
    except errors.ConfigurationError as exc:
        # A bad id in a signed payload, or A off the allow-list (approve's own check).
        return Decision(Verdict.REFUSED, exc.message)
    except errors.NotFound as exc:
        # The ids came signed from CircleCI: a 404 is most likely a token that cannot see
        # the project (CircleCI answers 404, not 403), so it is logged as a warning.
        return Decision(
            Verdict.REFUSED, f"{exc.message} (can the receiver's token see this project?)"
        )
    except (errors.PermissionDenied, errors.AuthenticationError) as exc:
        # The receiver's token cannot see B or A: say so loudly; retrying will not help.
        logger.error("the receiver's token cannot read this", extra={"why": exc.message})
        return Decision(Verdict.REFUSED, exc.message)
    except errors.CirclebackError as exc:
        return Decision(Verdict.RETRY, exc.message)


def _handle(client: CircleCIClient, event: Any, rules: Rules) -> Decision:
    if not isinstance(event, dict):
        return Decision(Verdict.IGNORED, "the payload is not a JSON object")
    kind = event.get("type")
    if kind != WORKFLOW_COMPLETED:
        return Decision(Verdict.IGNORED, f"{str(kind)[:40]!r} events do not release holds")
    pipeline_part = event.get("pipeline")
    project_part = event.get("project")
    raw_id = pipeline_part.get("id") if isinstance(pipeline_part, dict) else None
    claimed_slug = project_part.get("slug") if isinstance(project_part, dict) else None
    if not isinstance(raw_id, str) or not isinstance(claimed_slug, str):
        return Decision(Verdict.IGNORED, "the payload names no pipeline id or project slug")
    b_id = parse_uuid(raw_id, what="pipeline id in the payload")
    upstream_event = rules.cancel_cascade and project_allowed(claimed_slug, rules.allow_projects)
    if (
        rules.downstream_projects
        and not upstream_event
        and not project_allowed(claimed_slug, rules.downstream_projects)
    ):
        return Decision(
            Verdict.REFUSED, f"events of {claimed_slug[:100]} are not accepted here (see --from)"
        )
    # From here on only the API is believed.
    b = client.get_pipeline(b_id)
    details = {"downstream": f"{b.project_slug} #{b.number}", "downstream_pipeline_id": b.id}
    if not _same_project(claimed_slug, b.project_slug):
        return Decision(
            Verdict.REFUSED,
            f"the payload says {claimed_slug[:100]}, the API says pipeline {b.id} is of "
            f"{b.project_slug}",
            details,
        )
    cascade: Decision | None = None
    if rules.cancel_cascade and project_allowed(b.project_slug, rules.allow_projects):
        cascade = _cancel_cascade(client, event, b.id, rules)
    if rules.downstream_projects and not project_allowed(b.project_slug, rules.downstream_projects):
        return cascade or Decision(
            Verdict.REFUSED, f"events of {b.project_slug} are not accepted", details
        )
    # A pipeline on the allow-list may itself be some A's downstream (a chain, or an
    # allow-list such as gh/acme/* that covers B too): its canceled workflow must still
    # release its upstream's hold, whatever the cascade did.
    return _combined(cascade, _release_upstream(client, b, rules, details))


def _same_project(claimed: str, actual: str) -> bool:
    """The payload's slug names the API's project: equal but for ASCII case and the
    provider's spelling (``gh``/``github``), as the allow-list compares; never a pattern."""
    if "*" in claimed:
        return False
    try:
        (normalised,) = parse_allow_patterns([claimed])
    except (errors.ConfigurationError, ValueError):  # not one slug
        return False
    return project_allowed(actual, [normalised])


def _combined(cascade: Decision | None, release: Decision) -> Decision:
    """One answer for a delivery judged both as an upstream's (cascade) and a downstream's.

    The release's verdict decides the HTTP answer (a ``retry`` must stay a 503, so that
    CircleCI delivers again; the cascade is idempotent), unless the pipeline names no
    upstream at all, when the cascade's is the only news.
    """
    if cascade is None or cascade.verdict is Verdict.IGNORED:
        return release
    if release.verdict is Verdict.IGNORED:
        return cascade
    return Decision(release.verdict, f"{release.reason}; {cascade.reason}", release.details)


def _release_upstream(
    client: CircleCIClient, b: Pipeline, rules: Rules, details: Mapping[str, str]
) -> Decision:
    """Release the hold of the A that B proves it was triggered by, once B is done."""
    # Done first: B's setup phase shows no compiled config to find A in yet.
    done = evidence.completion(client, b)
    if not done.done:
        return Decision(Verdict.WAITING, f"not done yet: {done.why}", details)
    candidates = evidence.upstream_candidates(client, b)
    if not candidates.ids:
        why = f" ({candidates.evidence.why})" if not candidates.evidence.readable else ""
        return Decision(Verdict.IGNORED, f"this pipeline names no upstream pipeline{why}", details)
    found = _upstream(client, b.id, candidates, rules)
    if isinstance(found, Decision):
        return Decision(found.verdict, found.reason, {**details, **found.details})
    a, records = found
    details = {**details, "upstream_pipeline_id": a.id, "upstream": f"{a.project_slug} #{a.number}"}
    pending = _pending_siblings(client, b.id, records)
    if pending:
        return Decision(Verdict.WAITING, f"A also waits for {', '.join(pending)}", details)
    return _release(client, a.id, b.id, rules, details)


def _upstream(
    client: CircleCIClient, b_id: str, candidates: evidence.Candidates, rules: Rules
) -> tuple[Pipeline, list[Downstream]] | Decision:
    """The first candidate that is a pipeline, on the allow-list, with a proven link to B."""
    first_failure: Decision | None = None
    for candidate in candidates.ids:
        try:
            a = client.get_pipeline(candidate)
        except errors.NotFound:
            continue  # an id in B's config that is not a pipeline (or not visible)
        where = {"upstream_pipeline_id": a.id, "upstream": f"{a.project_slug} #{a.number}"}
        if not project_allowed(a.project_slug, rules.allow_projects):
            failure = Decision(
                Verdict.REFUSED,
                f"the upstream project {a.project_slug} is not on the allow-list",
                where,
            )
        else:
            records = evidence.downstream_records(client, a.id, rules.job_name)
            link = evidence.prove(a.id, b_id, records, candidates.evidence)
            if link.proven:
                return a, records
            if _hold_not_reached(client, a.id, rules.job_name):
                # A fast B can finish before A's trigger job has stored its record.
                return Decision(
                    Verdict.RETRY,
                    "A's trigger record is not stored yet (A's hold not reached)",
                    where,
                )
            failure = Decision(Verdict.REFUSED, f"the link is not proven: {link.reason}", where)
        first_failure = first_failure or failure
    return first_failure or Decision(
        Verdict.IGNORED, "no upstream pipeline named by this pipeline could be read"
    )


def _cancel_cascade(
    client: CircleCIClient, event: dict[str, Any], a_id: str, rules: Rules
) -> Decision | None:
    """A's workflow canceled (says the API): cancel the pipelines it proved it triggered.

    None when this is not such an event (the workflow is not A's, or not canceled), so the
    delivery is then judged as any other. Each recorded downstream pipeline must carry A's
    id in its compiled config (the sweep's rule: the record alone is A's own word), and
    with ``--from`` be one of those projects.
    """
    part = event.get("workflow")
    raw = part.get("id") if isinstance(part, dict) else None
    if not isinstance(raw, str):
        return None
    workflow = client.get_workflow(parse_uuid(raw, what="workflow id in the payload"))
    if workflow.pipeline_id != a_id or workflow.status != WorkflowStatus.CANCELED:
        return None
    where = {"upstream": f"{workflow.project_slug} #{workflow.pipeline_number}"}
    records = downstream_of_workflow(client, workflow)
    if rules.downstream_projects:
        records = [r for r in records if project_allowed(r.project_slug, rules.downstream_projects)]
    if not records:
        return Decision(Verdict.IGNORED, "A's canceled workflow triggered nothing", where)
    link = prove_sweep(client, a_id, records)
    if not link.proven:
        return Decision(Verdict.REFUSED, f"not canceling downstream: {link.reason}", where)
    canceled = cancel_downstream(client, records)
    reason = f"canceled {', '.join(canceled)}" if canceled else "nothing downstream still ran"
    logger.info(reason, extra={**where, "verdict": Verdict.CANCELED_DOWNSTREAM.value})
    return Decision(Verdict.CANCELED_DOWNSTREAM, reason, where)


def _hold_not_reached(client: CircleCIClient, a_id: str, job_name: str) -> bool:
    """True while a workflow of A still goes and its hold job has not started yet."""
    for workflow in client.list_pipeline_workflows(a_id):
        if workflow.is_final:
            continue
        for job in client.list_workflow_jobs(workflow.id):
            if job.name == job_name and job.status in _NOT_REACHED:
                return True
    return False


def _pending_siblings(client: CircleCIClient, own_id: str, records: Sequence[Any]) -> list[str]:
    """Other pipelines A recorded that are not done yet: the last one to finish releases."""
    pending: list[str] = []
    for record in records:
        if record.pipeline_id == own_id:
            continue
        sibling = client.get_pipeline(record.pipeline_id)
        state = evidence.completion(client, sibling)
        if not state.done:
            pending.append(f"{record.project_slug} #{record.number} ({state.why})")
    return pending


def _release(
    client: CircleCIClient, a_id: str, b_id: str, rules: Rules, details: Mapping[str, str]
) -> Decision:
    """``approve``'s release (which proves the link to B again, in the hold's workflow),
    without waiting: the webhook must be answered within seconds."""
    try:
        result = approve(
            client,
            a_id,
            allow_projects=rules.allow_projects,
            job_name=rules.job_name,
            hold_wait=0.0,
            downstream_pipeline_id=b_id,
            sleep=_never_sleep,
        )
    except errors.NotFound as exc:
        return Decision(Verdict.ALREADY_RELEASED, exc.message, details)
    if result.outcome is Outcome.APPROVED:
        logger.info("released the upstream hold", extra=dict(details))
        return Decision(Verdict.RELEASED, f"released {rules.job_name}", details)
    reason = result.warnings[0] if result.warnings else result.outcome.value
    return Decision(Verdict.ALREADY_RELEASED, reason, details)


def _never_sleep(seconds: float) -> None:  # pragma: no cover - hold_wait=0 never sleeps
    raise errors.CirclebackError("A's hold was not reached yet.")
