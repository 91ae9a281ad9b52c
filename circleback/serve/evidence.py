"""What the receiver asks the API about B and A: is B done, who triggered it, is that proven.

Thin adapters over the relay, kept in one place so that the shared completion rule
(``circleback.relay.completion``) and the link proof (``circleback.relay.link``) replace
them here and nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass

from circleback.client import CircleCIClient
from circleback.models import FINAL_WORKFLOW_STATUSES, Pipeline, PipelineState, Workflow
from circleback.relay.chain import callback_value
from circleback.relay.discovery import downstream_of
from circleback.relay.records import DEFAULT_CALLBACK_PARAMETER, Downstream


@dataclass(frozen=True)
class Completion:
    """Whether a pipeline is done, and if not, why not (for the log and the answer)."""

    done: bool
    why: str


def completion(client: CircleCIClient, pipeline: Pipeline) -> Completion:
    """The completion rule: done when errored, or ``created`` with every live workflow final.

    A pipeline still in setup (dynamic config between its setup workflow and the
    continuation) is ``setup``/``pending``: not done. Of same-named workflows only the
    newest (a rerun) counts. A status this code does not know is *not* final.
    """
    if pipeline.state == PipelineState.ERRORED:
        return Completion(True, "errored")
    if pipeline.state != PipelineState.CREATED:
        return Completion(False, f"the pipeline is {pipeline.state}")
    workflows = list(client.list_pipeline_workflows(pipeline.id))
    if not workflows:
        return Completion(False, "no workflows yet")
    active = [w for w in _newest_by_name(workflows) if w.status not in FINAL_WORKFLOW_STATUSES]
    if active:
        return Completion(False, ", ".join(f"{w.name} is {w.status}" for w in active))
    return Completion(True, "every workflow is final")


def _newest_by_name(workflows: list[Workflow]) -> list[Workflow]:
    newest: dict[str, Workflow] = {}
    for wf in workflows:
        if wf.name not in newest or wf.created_at > newest[wf.name].created_at:
            newest[wf.name] = wf
    return list(newest.values())


def claimed_upstream(
    pipeline: Pipeline, callback_parameter: str = DEFAULT_CALLBACK_PARAMETER
) -> str | None:
    """The upstream pipeline id B claims to come from; a claim only, never proof."""
    return callback_value(pipeline, callback_parameter)


def downstream_records(client: CircleCIClient, upstream_id: str) -> list[Downstream]:
    """What A recorded that it triggered (its ``circleback/downstream.json`` artifacts)."""
    return downstream_of(client, upstream_id)
