"""The chain of pipelines above a pipeline, for the depth and cycle guard.

CircleCI does not return the parameters a pipeline was triggered with, so the way up is
read from each pipeline's compiled config (``circleback.relay.link``): the pipeline id
substituted into it (where it uses its callback parameter) names its upstream. No new
pipeline parameter is needed (CircleCI rejects undeclared ones), so a B that declares
only ``triggering-pipeline-id`` takes part unchanged.

The walk stops at the top (a config that carries no pipeline id) or where it cannot see
further up, and says why: a config it cannot read, several pipeline ids in one config
(which one is the upstream cannot be told), or an upstream it cannot read.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from circleback import errors
from circleback.client import CircleCIClient
from circleback.models import Pipeline
from circleback.relay.link import read_config_evidence

logger = logging.getLogger("circleback.relay")


@dataclass(frozen=True)
class ChainView:
    """What can be seen of the chain above a pipeline."""

    pipelines: tuple[Pipeline, ...]
    """The pipeline and its ancestors, nearest first, each proven from its child's config."""
    blind: str = ""
    """Why the walk could not see further up; empty when it reached the top."""


def upstream_chain(
    client: CircleCIClient,
    pipeline_id: str,
    *,
    limit: int = 32,
    first: Pipeline | None = None,
) -> ChainView:
    """The pipeline and its ancestors, nearest first, following the compiled configs.

    ``first`` is the pipeline itself when the caller has read it already. Stops at
    ``limit`` hops or at a pipeline already met (a cycle already made).
    """
    chain: list[Pipeline] = []
    seen: set[str] = set()
    current = pipeline_id.lower()
    pipeline: Pipeline | None = first
    while len(chain) < limit:
        if pipeline is None:
            try:
                pipeline = client.get_pipeline(current)
            except (errors.NotFound, errors.PermissionDenied) as exc:
                return ChainView(tuple(chain), f"cannot read upstream pipeline {current}: {exc}")
        chain.append(pipeline)
        seen.add(pipeline.id.lower())
        name = f"{pipeline.project_slug} #{pipeline.number}"
        evidence = read_config_evidence(client, pipeline.id, pipeline)
        if not evidence.readable:
            return ChainView(tuple(chain), f"{name}: {evidence.why}")
        if not evidence.carried:
            return ChainView(tuple(chain))
        if len(evidence.carried) > 1:
            ids = ", ".join(sorted(evidence.carried))
            return ChainView(
                tuple(chain),
                f"{name}'s config carries several pipeline ids ({ids}); which one triggered "
                "it cannot be told",
            )
        (parent,) = evidence.carried
        if parent in seen:
            return ChainView(tuple(chain), f"{name} names {parent} again: a cycle already made")
        current, pipeline = parent, None
    return ChainView(tuple(chain), f"stopped after {limit} pipelines")
