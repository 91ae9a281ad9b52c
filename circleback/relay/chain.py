"""The chain of pipelines above a pipeline, for the depth and cycle guard.

A downstream pipeline carries its upstream's id in the callback parameter, which the API
returns in ``trigger_parameters``; following it upward gives the whole chain. That is the
smallest protocol that works: no new pipeline parameter (CircleCI rejects undeclared
ones), so a B that declares only ``triggering-pipeline-id`` takes part unchanged.
"""

from __future__ import annotations

import logging

from circleback import errors
from circleback.client import CircleCIClient
from circleback.models import Pipeline
from circleback.relay.records import DEFAULT_CALLBACK_PARAMETER

logger = logging.getLogger("circleback.relay")


def upstream_chain(
    client: CircleCIClient,
    pipeline_id: str,
    *,
    callback_parameter: str = DEFAULT_CALLBACK_PARAMETER,
    limit: int = 32,
) -> list[Pipeline]:
    """The pipeline and its ancestors, nearest first, following the callback parameter.

    Stops at a pipeline with no upstream id, at one it cannot read (a warning: the guard
    then knows less, it does not fail), or at ``limit`` hops (a cycle already made).
    """
    chain: list[Pipeline] = []
    seen: set[str] = set()
    current: str | None = pipeline_id
    while current and current not in seen and len(chain) < limit:
        seen.add(current)
        try:
            pipeline = client.get_pipeline(current)
        except (errors.NotFound, errors.PermissionDenied) as exc:
            logger.warning("cannot read an upstream pipeline", extra={"why": str(exc)})
            break
        chain.append(pipeline)
        current = callback_value(pipeline, callback_parameter)
    return chain


def callback_value(pipeline: Pipeline, callback_parameter: str) -> str | None:
    """The upstream id a pipeline was triggered with, if any.

    The spec leaves ``trigger_parameters``' layout open: the parameter is looked for at
    the top level and under a ``parameters`` object, so either layout works.
    """
    params = pipeline.trigger_parameters or {}
    nested = params.get("parameters")
    for source in (params, nested if isinstance(nested, dict) else {}):
        value = source.get(callback_parameter)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None
