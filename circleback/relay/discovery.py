"""Finding what a pipeline triggered, from public API data only.

The orb's trigger job stores its state file as the artifact ``circleback/downstream.json``,
so a pipeline's downstream records are read back from its jobs' artifacts (the way up is
in ``circleback.relay.chain``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from circleback import errors
from circleback.client import CircleCIClient
from circleback.models import Job, JobType, Workflow
from circleback.relay.records import Downstream, parse_state

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
