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
import uuid
from array import array
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
    """What the dependency walk needs of a workflow's jobs, packed so memory stays flat.

    Per job: its id, its build number (none for approval jobs and unstarted jobs, which
    store no artifacts) and the ids it depends on, as 16-byte UUIDs in flat buffers: about
    28 bytes a job plus 16 per dependency, instead of the parsed job (about 1.5 KiB).
    Approval or unstarted jobs without dependencies are neither a record source nor a link
    in a chain, so they are not kept. An id that is not a UUID (never seen from the API)
    goes to a plain dict.
    """

    def __init__(self) -> None:
        self._ids = bytearray()  # 16 bytes per job
        self._numbers = array("q")  # its build number, or -1
        self._dep_ends = array("Q")  # where its dependencies end in _deps
        self._deps = bytearray()  # 16 bytes per dependency
        self._odd: dict[str, tuple[int | None, tuple[str, ...]]] = {}

    def add(self, job: Job) -> None:
        """Remember ``job`` if the walk could pass through it."""
        number = job.job_number if job.type == JobType.BUILD else None
        if number is None and not job.dependencies:
            return
        key = _packed(job.id)
        deps = [_packed(d) for d in job.dependencies]
        if key is None or None in deps:
            self._odd[job.id.lower()] = (number, tuple(d.lower() for d in job.dependencies))
            return
        self._ids += key
        self._numbers.append(-1 if number is None else number)
        for dep in deps:
            self._deps += dep or b""
        self._dep_ends.append(len(self._deps))

    def get(self, job_id: str) -> tuple[int | None, tuple[str, ...]] | None:
        """``(build number or None, dependency ids)``, or None if not (yet) indexed."""
        key = _packed(job_id)
        if key is None:
            return self._odd.get(job_id.lower())
        at = self._ids.find(key)
        while at != -1 and at % 16:
            at = self._ids.find(key, at + 1)
        if at == -1:
            return self._odd.get(job_id.lower())
        i = at // 16
        begin = self._dep_ends[i - 1] if i else 0
        raw = self._deps[begin : self._dep_ends[i]]
        deps = tuple(str(uuid.UUID(bytes=bytes(raw[j : j + 16]))) for j in range(0, len(raw), 16))
        number = self._numbers[i]
        return (None if number < 0 else number), deps


def _canonical(job_id: str) -> str:
    packed = _packed(job_id)
    return job_id.lower() if packed is None else str(uuid.UUID(bytes=packed))


def _packed(job_id: str) -> bytes | None:
    try:
        return uuid.UUID(job_id).bytes
    except ValueError:
        return None


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
    visited = {_canonical(hold.id)}
    frontier: list[str] = [_canonical(d) for d in hold.dependencies]
    more = rest
    while frontier:
        following: list[str] = []
        for job_id in frontier:
            job_id = _canonical(job_id)
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
