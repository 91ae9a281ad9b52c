"""When a downstream pipeline is done: the one rule ``status``, ``approve --fan-in``,
``sweep``, ``trace`` and the webhook receiver share.

A pipeline is done when

- its state is ``created`` (``errored`` is done too: it failed, and nothing will run), and
- no setup workflow is waiting for its continuation (a dynamic config's pipeline shows
  only its setup workflow until ``POST /pipeline/continue``, then the real ones), and
- every workflow, taking the newest run of each name (a rerun replaces the older one),
  has a *known* final status.

An unknown workflow status is not final: it is reported (``Completion.unknown``) and the
caller keeps waiting, bounded by its own timeout (exit 4), rather than pass or fail A on a
word it cannot read. ``queued`` (behind a serial group) is known and still going.

A ``created`` pipeline with no workflow at all may still be about to list them (CircleCI
creates them asynchronously), so "ran no workflow" is decided only after it has been seen
that way for ``no_workflow_grace`` seconds of the caller's clock (``Watch`` keeps count).

Sources: workflows docs "States" (final and running statuses, ``queued``);
CircleCI-Public/continuation-orb#30 and circleci/circleci-docs#9627 (setup states).
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from circleback.client import CircleCIClient
from circleback.models import (
    ACTIVE_WORKFLOW_STATUSES,
    FINAL_WORKFLOW_STATUSES,
    Pipeline,
    PipelineState,
    Workflow,
    WorkflowStatus,
)

#: Seconds a ``created`` pipeline must be seen with no workflow before it "ran none".
DEFAULT_NO_WORKFLOW_GRACE = 60.0


def is_final(status: object) -> bool:
    """True for a known final workflow status; unknown statuses are never final."""
    return status in FINAL_WORKFLOW_STATUSES


def is_known(status: object) -> bool:
    """True for a workflow status this code knows (final or still going)."""
    return status in FINAL_WORKFLOW_STATUSES or status in ACTIVE_WORKFLOW_STATUSES


def status_text(status: object) -> str:
    """A status as CircleCI spells it, whether a known enum member or a new string."""
    return str(getattr(status, "value", status))


def newest_by_name(workflows: Sequence[Workflow]) -> tuple[tuple[Workflow, ...], tuple[str, ...]]:
    """The newest workflow of each name (oldest first), and the ids of the ones replaced."""
    newest: dict[str, Workflow] = {}
    for wf in workflows:
        best = newest.get(wf.name)
        if best is None or wf.created_at > best.created_at:
            newest[wf.name] = wf
    live_ids = {w.id for w in newest.values()}
    ordered = tuple(sorted(newest.values(), key=lambda w: w.created_at))
    return ordered, tuple(w.id for w in workflows if w.id not in live_ids)


class Phase(str, enum.Enum):
    """Where a pipeline stands under the completion rule."""

    WAITING = "waiting"
    """Not done; ``Completion.reason`` says what it waits for."""
    DONE = "done"
    """Every live workflow has a known final status (success or not)."""
    ERRORED = "errored"
    """CircleCI could not run the pipeline (state ``errored``): done, failed."""
    NO_WORKFLOWS = "no_workflows"
    """Created, but no workflow ran (every job filtered out): done, failed."""
    SETUP_FAILED = "setup_failed"
    """The setup workflow ended without success, so it will never continue: done, failed."""


@dataclass(frozen=True)
class Completion:
    """The completion rule's verdict on one pipeline at one look."""

    phase: Phase
    """Done or not, and how."""
    state: str
    """The pipeline's state as read."""
    reason: str = ""
    """What it waits for, or why it failed without workflows; empty when plainly done."""
    workflows: tuple[Workflow, ...] = ()
    """The live workflows (newest run per name), oldest first, setup workflow included."""
    superseded: tuple[str, ...] = ()
    """Ids of workflows replaced by a newer run of the same name (not judged)."""
    unknown: tuple[str, ...] = ()
    """Unknown statuses seen (``name: status``): worth a warning, waited on."""
    active: tuple[Workflow, ...] = ()
    """Live workflows not final yet (when waiting on workflows)."""

    @property
    def done(self) -> bool:
        """True when nothing will change any more."""
        return self.phase is not Phase.WAITING

    @property
    def succeeded(self) -> bool:
        """Done, ran workflows, and every live workflow succeeded."""
        return (
            self.phase is Phase.DONE
            and bool(self.workflows)
            and all(w.status == WorkflowStatus.SUCCESS for w in self.workflows)
        )

    @property
    def waiting_only_on_workflows(self) -> bool:
        """Waiting, but only for known running workflows of a created pipeline."""
        return self.phase is Phase.WAITING and bool(self.active) and not self.unknown


def judge(
    state: PipelineState | str,
    workflows: Sequence[Workflow],
    *,
    empty_for: float | None = None,
    no_workflow_grace: float = DEFAULT_NO_WORKFLOW_GRACE,
) -> Completion:
    """Apply the completion rule to a pipeline's state and workflows (pure).

    ``empty_for`` is how long the caller has seen this pipeline ``created`` without any
    (non-setup) workflow; None means this is the first such look.
    """
    text = status_text(state)
    live, superseded = newest_by_name(workflows)
    if state == PipelineState.ERRORED:
        return Completion(Phase.ERRORED, text, "the pipeline errored", live, superseded)
    setup = [w for w in live if w.is_setup]
    failed_setup = [w for w in setup if is_final(w.status) and w.status != WorkflowStatus.SUCCESS]
    if failed_setup:
        names = ", ".join(f"{w.name}: {status_text(w.status)}" for w in failed_setup)
        reason = f"its setup workflow ended without continuing ({names})"
        return Completion(Phase.SETUP_FAILED, text, reason, live, superseded)
    unknown = tuple(f"{w.name}: {status_text(w.status)}" for w in live if not is_known(w.status))
    active = tuple(w for w in live if not is_final(w.status))
    if state != PipelineState.CREATED:
        waiting = (
            "its setup workflow is waiting for the continuation"
            if setup and not active
            else f"the pipeline is {text}"
        )
        return Completion(Phase.WAITING, text, waiting, live, superseded, unknown, active)
    if active:
        parts = []
        for w in active:
            if w.status == WorkflowStatus.ON_HOLD:
                parts.append(f"{w.name} is on_hold (B is waiting for its own approval)")
            elif not is_known(w.status):
                parts.append(
                    f"{w.name} is {status_text(w.status)} (a status circleback "
                    "does not know; waiting for a known final one)"
                )
            else:
                parts.append(f"{w.name} is {status_text(w.status)}")
        return Completion(Phase.WAITING, text, ", ".join(parts), live, superseded, unknown, active)
    if not any(not w.is_setup for w in live):
        if setup:
            reason = "its setup workflow continued, but no continued workflow is listed yet"
        else:
            reason = "no workflows yet"
        if empty_for is not None and empty_for >= no_workflow_grace:
            why = (
                "the pipeline ran no workflow (every job filtered out for this branch or "
                "tag, or no workflow in its config)"
            )
            return Completion(Phase.NO_WORKFLOWS, text, why, live, superseded)
        return Completion(Phase.WAITING, text, reason, live, superseded)
    return Completion(Phase.DONE, text, "", live, superseded)


class Watch:
    """The completion rule over several looks: remembers how long each pipeline has been
    ``created`` without workflows, by the caller's (injectable) clock. Thread-safe enough
    for the status poller: each pipeline id is looked at by one thread at a time."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        no_workflow_grace: float = DEFAULT_NO_WORKFLOW_GRACE,
    ) -> None:
        self._clock = clock
        self.no_workflow_grace = no_workflow_grace
        self._empty_since: dict[str, float] = {}

    def judge(self, pipeline: Pipeline, workflows: Sequence[Workflow]) -> Completion:
        """``judge`` for this pipeline, counting the time it has been seen empty."""
        return self.judge_state(pipeline.id, pipeline.state, workflows)

    def judge_state(
        self, pipeline_id: str, state: PipelineState | str, workflows: Sequence[Workflow]
    ) -> Completion:
        """``judge`` from a pipeline's id and state (when the caller has no Pipeline)."""
        now = self._clock()
        empty = state == PipelineState.CREATED and not any(not w.is_setup for w in workflows)
        if not empty:
            self._empty_since.pop(pipeline_id, None)
            return judge(state, workflows, no_workflow_grace=self.no_workflow_grace)
        since = self._empty_since.setdefault(pipeline_id, now)
        return judge(
            state, workflows, empty_for=now - since, no_workflow_grace=self.no_workflow_grace
        )

    def look_workflows(
        self, client: CircleCIClient, pipeline_id: str
    ) -> tuple[Pipeline | None, list[Workflow], Completion]:
        """Judge from the workflow list alone when it can (one request), else read the
        pipeline too. A pipeline listing a workflow other than a setup workflow has been
        created (a setup pipeline lists others only after its continuation), so its state
        is known to be ``created``; the Pipeline is then None."""
        workflows = list(client.list_pipeline_workflows(pipeline_id))
        if any(not w.is_setup for w in workflows):
            return None, workflows, self.judge_state(pipeline_id, PipelineState.CREATED, workflows)
        pipeline = client.get_pipeline(pipeline_id)
        return pipeline, workflows, self.judge(pipeline, workflows)

    def look(self, client: CircleCIClient, pipeline_id: str) -> tuple[Pipeline, Completion]:
        """Read a pipeline and its workflows (two requests, plus pages) and judge them."""
        pipeline = client.get_pipeline(pipeline_id)
        workflows = list(client.list_pipeline_workflows(pipeline.id))
        return pipeline, self.judge(pipeline, workflows)


def look(client: CircleCIClient, pipeline_id: str) -> tuple[Pipeline, Completion]:
    """One look with no memory: "ran no workflow" is never concluded from a single look."""
    return Watch().look(client, pipeline_id)


__all__ = [
    "DEFAULT_NO_WORKFLOW_GRACE",
    "Completion",
    "Phase",
    "Watch",
    "is_final",
    "is_known",
    "judge",
    "look",
    "newest_by_name",
    "status_text",
]
