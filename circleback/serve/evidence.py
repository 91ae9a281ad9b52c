"""What the receiver asks the API about B and A: is B done, who may have triggered it.

The completion rule is ``circleback.relay.completion``'s and the link proof is
``circleback.relay.link``'s, the same ones ``status``, ``approve`` and ``sweep`` use; this
module only adds what a webhook needs on top: finding A from B alone. CircleCI's payload
never carries B's parameters, so A's id is looked for where ``circleback.relay.link``
reads it: in B's compiled config (every pipeline id substituted into it). Those ids are
candidates, never proof: a candidate is acted on only after ``judge_approval`` says the
link is proven.
"""

from __future__ import annotations

from dataclasses import dataclass

from circleback.client import CircleCIClient
from circleback.models import Pipeline
from circleback.relay import completion as rule
from circleback.relay.discovery import downstream_of
from circleback.relay.link import ConfigEvidence, Link, judge_approval, read_config_evidence
from circleback.relay.records import Downstream

#: Upstream candidates looked at per event; a config substituting more ids than this is
#: not one circleback wrote.
MAX_CANDIDATES = 4


@dataclass(frozen=True)
class Completion:
    """Whether a pipeline is done, and if not, why not (for the log and the answer)."""

    done: bool
    why: str


def completion(client: CircleCIClient, pipeline: Pipeline) -> Completion:
    """The shared completion rule, one look, no memory (an event follows a workflow)."""
    verdict = rule.judge(pipeline.state, list(client.list_pipeline_workflows(pipeline.id)))
    return Completion(verdict.done, verdict.reason or verdict.phase.value)


@dataclass(frozen=True)
class Candidates:
    """Pipeline ids B may have been triggered by, and the config evidence they came from."""

    ids: tuple[str, ...]
    evidence: ConfigEvidence


def upstream_candidates(client: CircleCIClient, pipeline: Pipeline) -> Candidates:
    """The pipeline ids substituted into B's compiled config: hints to be proven, never
    proof. (``trigger_parameters`` is never asked: CircleCI does not return the parameters
    a pipeline was triggered with.)"""
    evidence = read_config_evidence(client, pipeline.id, pipeline)
    return Candidates(tuple(sorted(evidence.carried)[:MAX_CANDIDATES]), evidence)


def downstream_records(client: CircleCIClient, upstream_id: str) -> list[Downstream]:
    """What A recorded that it triggered (its ``circleback/downstream.json`` artifacts)."""
    return downstream_of(client, upstream_id)


def prove(
    upstream_id: str, downstream_id: str, records: list[Downstream], evidence: ConfigEvidence
) -> Link:
    """``approve``'s rule: A's record lists B, or B carries A's id and A's record is silent."""
    return judge_approval(upstream_id, downstream_id, records, evidence)
