"""Finding what a pipeline triggered, from public API data only.

The orb's trigger job stores its state file as the artifact ``circleback/downstream.json``,
so a pipeline's downstream records are read back from its jobs' artifacts (the way up is
in ``circleback.relay.chain``).

A record that releases a hold can only come from a job the hold depends on: the trigger
job precedes the hold it feeds. ``downstream_for_hold`` therefore reads the artifacts of
the hold's ancestors only (``dependencies`` of ``GET /workflow/{id}/job``, walked
transitively, nearest first), never of a job parallel to it: such a job could store a
forged record, and reading every job cost one request per job.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator

from circleback import errors
from circleback.client import CircleCIClient
from circleback.models import Job, JobType, Workflow
from circleback.relay.records import Downstream, parse_state

logger = logging.getLogger("circleback.relay")

#: Where the orb's trigger job stores its state file as an artifact.
RECORD_ARTIFACT = "circleback/downstream.json"


def _records_of(client: CircleCIClient, project_slug: str, job_number: int) -> list[Downstream]:
    """The records one build job stored (none if it stored no, or a malformed, record)."""
    found: list[Downstream] = []
    for artifact in client.list_job_artifacts(project_slug, job_number):
        if artifact.path != RECORD_ARTIFACT and not artifact.path.endswith("/" + RECORD_ARTIFACT):
            continue
        text = client.get_artifact(artifact.url).decode("utf-8", "replace")
        try:
            found.extend(
                parse_state(
                    text,
                    source=f"artifact {artifact.path} of {project_slug} job {job_number}",
                    hint="The artifact should be the state file 'circleback trigger' wrote.",
                )
            )
        except errors.ConfigurationError as exc:
            logger.warning("ignoring a malformed downstream record", extra={"why": str(exc)})
    return found


def downstream_from_jobs(
    client: CircleCIClient, project_slug: str, jobs: Iterable[Job]
) -> list[Downstream]:
    """The downstream records stored as artifacts by any of these (build) jobs.

    Costs one request per started build job: only for "what did this workflow trigger"
    (trace, cancel cascade), never to prove what may release a hold (``downstream_for_hold``).
    """
    found: dict[str, Downstream] = {}
    for job in jobs:
        if job.type != JobType.BUILD or job.job_number is None:
            continue
        for record in _records_of(client, project_slug, job.job_number):
            found[record.pipeline_id] = record
    return list(found.values())


class JobIndex:
    """What the dependency walk needs of a workflow's jobs, and nothing else.

    Per job id: its build number (None for approval jobs and unstarted jobs, which store
    no artifacts) and the ids it depends on. Jobs that are neither a record source nor a
    link in a chain (approval or unstarted jobs without dependencies) are not kept, so a
    long job list costs a small tuple per job instead of the parsed job.
    """

    def __init__(self) -> None:
        self._nodes: dict[str, tuple[int | None, tuple[str, ...]]] = {}

    def add(self, job: Job) -> None:
        """Remember ``job`` if the walk could pass through it."""
        number = job.job_number if job.type == JobType.BUILD else None
        if number is None and not job.dependencies:
            return
        self._nodes[job.id] = (number, tuple(job.dependencies))

    def get(self, job_id: str) -> tuple[int | None, tuple[str, ...]] | None:
        """``(build number or None, dependency ids)``, or None if not (yet) indexed."""
        return self._nodes.get(job_id)


def downstream_for_hold(
    client: CircleCIClient,
    project_slug: str,
    hold: Job,
    index: JobIndex,
    rest: Iterator[Job] | None = None,
    enough: Callable[[list[Downstream]], bool] | None = None,
) -> list[Downstream]:
    """A's trigger records that can have fed ``hold``: those stored by the build jobs it
    depends on, transitively, nearest first.

    ``index`` holds the jobs listed so far; a dependency not in it is looked for in
    ``rest`` (the rest of the job list, read only as far as needed). A job list that never
    ends (``errors.PaginationLoop``) is judged on what it gave: a record can then only be
    missing, which proves nothing. The walk stops once ``enough(records so far)`` is true,
    e.g. when a record names the B asking (one record naming it is all ``approve`` needs).
    Costs one artifact list per ancestor build job read, plus one read per record found.
    """
    found: dict[str, Downstream] = {}
    visited = {hold.id}
    frontier: list[str] = list(hold.dependencies)
    more = rest
    while frontier:
        following: list[str] = []
        for job_id in frontier:
            if job_id in visited:
                continue
            visited.add(job_id)
            node = index.get(job_id)
            while node is None and more is not None:
                try:
                    job = next(more)
                except StopIteration:
                    more = None
                    break
                except errors.PaginationLoop as exc:
                    logger.warning(
                        "A's job list did not end; judging its record from the jobs read",
                        extra={"why": exc.message},
                    )
                    more = None
                    break
                index.add(job)
                node = index.get(job_id)
            if node is None:
                continue  # not started, not listed, or an approval job: nothing stored
            number, dependencies = node
            if number is not None:
                for record in _records_of(client, project_slug, number):
                    found.setdefault(record.pipeline_id, record)
                if enough is not None and enough(list(found.values())):
                    return list(found.values())
            following.extend(dependencies)
        frontier = following
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


def downstream_of_holds(
    client: CircleCIClient, pipeline_id: str, job_name: str
) -> list[Downstream]:
    """A's trigger records that can have fed its approval jobs named ``job_name``: those of
    the jobs each such hold depends on (``downstream_for_hold``), over A's workflows.

    Costs A's workflow list, each workflow's jobs (read only up to its hold and its
    ancestors), and one artifact list per ancestor build job.
    """
    found: dict[str, Downstream] = {}
    for workflow in client.list_pipeline_workflows(pipeline_id):
        index = JobIndex()
        jobs = iter(client.list_workflow_jobs(workflow.id))
        for job in jobs:
            index.add(job)
            if job.type != JobType.APPROVAL or job.name != job_name:
                continue
            for record in downstream_for_hold(client, workflow.project_slug, job, index, jobs):
                found.setdefault(record.pipeline_id, record)
            break  # job names are unique within a workflow
    return list(found.values())
