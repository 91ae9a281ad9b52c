"""Finding what a pipeline triggered, and what triggered it, from public API data only.

Downward: the orb's trigger job stores its state file as the artifact
``circleback/downstream.json``, so a pipeline's downstream records are read back from its
jobs' artifacts. Upward: a downstream pipeline carries its upstream's id in the callback
parameter, which the API returns in ``trigger_parameters``. No extra protocol is needed,
and a B that declares only ``triggering-pipeline-id`` takes part.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from circleback import errors
from circleback.client import CircleCIClient
from circleback.models import Job, JobType, Pipeline, Workflow
from circleback.relay.records import Downstream, parse_state
from circleback.relay.trigger import DEFAULT_CALLBACK_PARAMETER

logger = logging.getLogger("circleback.relay")

#: Where the orb's trigger job stores its state file as an artifact.
RECORD_ARTIFACT = "circleback/downstream.json"


def downstream_from_jobs(
    client: CircleCIClient, project_slug: str, jobs: Iterable[Job]
) -> list[Downstream]:
    """The downstream records stored as artifacts by any of these (build) jobs."""
    found: dict[str, Downstream] = {}
    for job in jobs:
        if job.type != JobType.BUILD or job.job_number is None:
            continue
        for artifact in client.list_job_artifacts(project_slug, job.job_number):
            if artifact.path != RECORD_ARTIFACT and not artifact.path.endswith(
                "/" + RECORD_ARTIFACT
            ):
                continue
            text = client.get_artifact(artifact.url).decode("utf-8", "replace")
            try:
                records = parse_state(
                    text,
                    source=f"artifact {artifact.path} of {project_slug} job {job.job_number}",
                    hint="The artifact should be the state file 'circleback trigger' wrote.",
                )
            except errors.ConfigurationError as exc:
                logger.warning("ignoring a malformed downstream record", extra={"why": str(exc)})
                continue
            for record in records:
                found[record.pipeline_id] = record
    return list(found.values())


def downstream_of_workflow(client: CircleCIClient, workflow: Workflow) -> list[Downstream]:
    """What this workflow's jobs triggered."""
    return downstream_from_jobs(
        client, workflow.project_slug, client.list_workflow_jobs(workflow.id)
    )


def downstream_of(client: CircleCIClient, pipeline_id: str) -> list[Downstream]:
    """What any workflow of this pipeline triggered."""
    found: dict[str, Downstream] = {}
    for workflow in client.list_pipeline_workflows(pipeline_id):
        for record in downstream_of_workflow(client, workflow):
            found[record.pipeline_id] = record
    return list(found.values())


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
