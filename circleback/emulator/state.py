"""The emulator's state and the job lifecycle, as plain data and functions.

Nothing here locks or does I/O (apart from reading a config at trigger time): the Emulator
holds one lock around every call into a :class:`State`, and runs the ``on_job_start``
callbacks for the :class:`JobRun` values that :meth:`State.drain_started` hands back, outside
that lock.

Lifecycle (docs: workflows §states; spec: Job, Workflow):

- a job whose requirements are all met starts: ``running`` (build) or ``on_hold`` (approval);
  a job waiting on unfinished requirements is ``blocked``;
- a job whose requirements can no longer be met (a required job ended in a status its
  ``requires`` does not accept) becomes ``not_run`` at once, so a job that requires it as
  ``terminal`` still runs, which is what CircleCI does and what circleback relies on;
- build jobs end only when told to (:meth:`State.finish_job`); approving ends an approval job
  as ``success``.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from types import MappingProxyType
from typing import Any

from circleback.emulator import config as cfg

#: The user every emulated action is attributed to; its id appears as ``started_by`` etc.
ACTOR_LOGIN = "circleback-emulator"
ACTOR_ID = str(uuid.uuid5(uuid.NAMESPACE_URL, "https://circleback.invalid/emulator-user"))
#: Where ``build_url`` points: CircleCI's web app, the same form the client builds.
WEB_APP_URL = "https://app.circleci.com"
#: Branch used when a trigger names neither a branch nor a tag (CircleCI uses the default one).
DEFAULT_BRANCH = "main"

JOB_FINAL = frozenset({"success", "failed", "canceled", "unauthorized", "not_run"})
FINISH_STATUSES = ("success", "failed", "canceled")
_FAILED = frozenset({"failed", "infrastructure_fail", "timedout"})


class EmulatorError(Exception):
    """A request the emulator refuses; ``status`` is the HTTP status it answers with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class JobRun:
    """Everything an executor needs to run one build job that has just started."""

    project_slug: str
    pipeline_id: str
    pipeline_number: int
    pipeline_parameters: Mapping[str, Any]
    """The pipeline's parameters, defaults filled in."""
    branch: str | None
    tag: str | None
    workflow_id: str
    workflow_name: str
    job_id: str
    job_name: str
    """The name in the workflow (a matrix leg's expanded name)."""
    job_number: int
    job_ref: str
    """The job's key in ``jobs:``, or an orb job reference such as ``circleback/trigger``."""
    parameters: Mapping[str, Any]
    """Invocation parameters: the workflow entry's keys and matrix values."""
    pre_steps: tuple[Any, ...]
    post_steps: tuple[Any, ...]
    config: Mapping[str, Any]
    """The whole parsed config the pipeline was created from."""
    build_url: str
    """``https://app.circleci.com/pipelines/<slug>/<number>/workflows/<id>/jobs/<number>``."""
    revision: str
    """The (made-up, stable) commit SHA of the pipeline."""


@dataclass
class Project:
    slug: str
    config_path: Path
    definition_id: str
    pipeline_count: int = 0
    job_count: int = 0


@dataclass
class Pipeline:
    id: str
    project_slug: str
    number: int
    state: str
    created_at: datetime
    trigger_parameters: dict[str, Any]
    parameters: dict[str, Any]
    branch: str | None
    tag: str | None
    revision: str
    definition_id: str | None
    config: dict[str, Any] | None
    errors: list[dict[str, str]] = field(default_factory=list)
    workflow_ids: list[str] = field(default_factory=list)


@dataclass
class Workflow:
    id: str
    name: str
    pipeline_id: str
    spec: cfg.WorkflowSpec
    created_at: datetime
    job_ids: list[str] = field(default_factory=list)
    status: str = "running"
    stopped_at: datetime | None = None
    canceled_by: str | None = None
    rerun_of: str | None = None


@dataclass
class Job:
    id: str
    spec: cfg.JobSpec
    workflow_id: str
    pipeline_id: str
    project_slug: str
    requires: dict[str, tuple[str, ...]]
    """Required job id -> statuses that satisfy it."""
    status: str = "blocked"
    job_number: int | None = None
    started_at: datetime | None = None
    stopped_at: datetime | None = None
    approved_by: str | None = None
    canceled_by: str | None = None

    @property
    def name(self) -> str:
        return self.spec.name


class State:
    """Projects, pipelines, workflows and jobs; every method expects the caller's lock."""

    def __init__(self, projects: Mapping[str, Path], clock: Callable[[], datetime]) -> None:
        self.clock = clock
        self.projects: dict[str, Project] = {}
        for slug, path in projects.items():
            self.add_project(slug, path)
        self.pipelines: dict[str, Pipeline] = {}
        self.workflows: dict[str, Workflow] = {}
        self.jobs: dict[str, Job] = {}
        self.artifacts: dict[str, list[tuple[str, bytes]]] = {}
        """Job id -> (path, content) stored by ``store_artifacts``, in upload order."""
        self._started: list[JobRun] = []

    def add_project(self, slug: str, path: Path) -> None:
        definition = str(uuid.uuid5(uuid.NAMESPACE_URL, f"circleback-emulator:{slug}"))
        self.projects[slug] = Project(slug=slug, config_path=Path(path), definition_id=definition)

    def reset(self) -> None:
        """Forget every pipeline; projects stay, their numbering starts again at 1."""
        self.pipelines.clear()
        self.workflows.clear()
        self.jobs.clear()
        self.artifacts.clear()
        self._started.clear()
        for project in self.projects.values():
            project.pipeline_count = project.job_count = 0

    def drain_started(self) -> list[JobRun]:
        """Build jobs started since the last call, for the caller to announce unlocked."""
        started, self._started = self._started, []
        return started

    # -- lookups ---------------------------------------------------------------------------

    def project(self, slug: str, message: str = "Project not found") -> Project:
        try:
            return self.projects[slug]
        except KeyError:
            raise EmulatorError(404, message) from None

    def pipeline(self, pipeline_id: str) -> Pipeline:
        try:
            return self.pipelines[pipeline_id]
        except KeyError:
            raise EmulatorError(404, "Pipeline not found") from None

    def workflow(self, workflow_id: str) -> Workflow:
        try:
            return self.workflows[workflow_id]
        except KeyError:
            raise EmulatorError(404, "Workflow not found") from None

    def job(self, job_id: str) -> Job:
        try:
            return self.jobs[job_id]
        except KeyError:
            raise EmulatorError(404, "Job not found") from None

    # -- triggering ------------------------------------------------------------------------

    def trigger(
        self,
        slug: str,
        *,
        branch: str | None,
        tag: str | None,
        parameters: Mapping[str, Any],
        definition_id: str | None = None,
        not_found_message: str = "Project not found",
    ) -> Pipeline:
        """Create a pipeline from the project's config as it is on disk now.

        Parameter errors raise EmulatorError(400) and create nothing; config errors create
        an ``errored`` pipeline, as CircleCI answers 201 and shows the error in the app.
        """
        project = self.project(slug, not_found_message)
        try:
            cfg.check_trigger_parameters(parameters)
        except cfg.ParameterError as exc:
            raise EmulatorError(400, str(exc)) from None
        if branch is None and tag is None:
            branch = DEFAULT_BRANCH
        now = self.clock()
        ref = f"{slug}:{tag if tag is not None else branch}"
        pipeline = Pipeline(
            id=str(uuid.uuid4()),
            project_slug=slug,
            number=0,
            state="created",
            created_at=now,
            trigger_parameters=dict(parameters),
            parameters={},
            branch=branch,
            tag=tag,
            revision=hashlib.sha1(ref.encode(), usedforsecurity=False).hexdigest(),
            definition_id=definition_id,
            config=None,
        )
        specs: list[cfg.WorkflowSpec] = []
        try:
            pipeline.config = cfg.load_config(project.config_path)
            declared = cfg.declared_parameters(pipeline.config)
            pipeline.parameters = cfg.resolve_parameters(declared, parameters)
        except cfg.ParameterError as exc:
            raise EmulatorError(400, str(exc)) from None
        except cfg.ConfigError as exc:
            pipeline.state = "errored"
            pipeline.errors.append({"type": "config", "message": str(exc)})
        project.pipeline_count += 1
        pipeline.number = project.pipeline_count
        if pipeline.config is not None and pipeline.state == "created":
            try:
                specs = cfg.compile_workflows(
                    pipeline.config, self._pipeline_values(pipeline), branch=branch, tag=tag
                )
            except cfg.ConfigError as exc:
                pipeline.state = "errored"
                pipeline.errors.append({"type": "config", "message": str(exc)})
        self.pipelines[pipeline.id] = pipeline
        for spec in specs:
            self._create_workflow(pipeline, spec, previous=None, rerun=None)
        return pipeline

    def _pipeline_values(self, pipeline: Pipeline) -> dict[str, Any]:
        project = self.projects[pipeline.project_slug]
        values: dict[str, Any] = {
            "pipeline.id": pipeline.id,
            "pipeline.number": pipeline.number,
            "pipeline.project.slug": pipeline.project_slug,
            "pipeline.project.type": pipeline.project_slug.split("/")[0],
            "pipeline.definition.id": pipeline.definition_id or project.definition_id,
            "pipeline.git.branch": pipeline.branch or "",
            "pipeline.git.tag": pipeline.tag or "",
            "pipeline.git.revision": pipeline.revision,
            "pipeline.trigger_source": "api",
            "pipeline.trigger.type": "api",
            "pipeline.trigger.received_at": iso(pipeline.created_at),
        }
        values.update({f"pipeline.parameters.{k}": v for k, v in pipeline.parameters.items()})
        return values

    def _create_workflow(
        self,
        pipeline: Pipeline,
        spec: cfg.WorkflowSpec,
        *,
        previous: Workflow | None,
        rerun: set[str] | None,
    ) -> Workflow:
        """A new workflow; given ``previous``, jobs not in ``rerun`` are carried over as is."""
        workflow = Workflow(
            id=str(uuid.uuid4()),
            name=spec.name,
            pipeline_id=pipeline.id,
            spec=spec,
            created_at=self.clock(),
            rerun_of=previous.id if previous else None,
        )
        old_by_name = {} if previous is None else self._jobs_by_name(previous)
        ids: dict[str, str] = {}
        for job_spec in spec.jobs:
            old = old_by_name.get(job_spec.name)
            if old is not None and rerun is not None and old.name not in rerun:
                ids[job_spec.name] = old.id
                workflow.job_ids.append(old.id)
                continue
            job = Job(
                id=str(uuid.uuid4()),
                spec=job_spec,
                workflow_id=workflow.id,
                pipeline_id=pipeline.id,
                project_slug=pipeline.project_slug,
                requires={},
            )
            ids[job_spec.name] = job.id
            self.jobs[job.id] = job
            workflow.job_ids.append(job.id)
        for job_id in workflow.job_ids:
            job = self.jobs[job_id]
            if job.workflow_id == workflow.id:
                job.requires = {ids[name]: statuses for name, statuses in job.spec.requires}
        self.workflows[workflow.id] = workflow
        pipeline.workflow_ids.append(workflow.id)
        self._advance(workflow)
        return workflow

    def _jobs_by_name(self, workflow: Workflow) -> dict[str, Job]:
        return {self.jobs[j].name: self.jobs[j] for j in workflow.job_ids}

    # -- lifecycle -------------------------------------------------------------------------

    def _advance(self, workflow: Workflow) -> None:
        """Start what can start, mark what never can as not_run, then derive the status."""
        if workflow.canceled_by is None:
            changed = True
            while changed:
                changed = False
                for job_id in workflow.job_ids:
                    job = self.jobs[job_id]
                    if job.status != "blocked":
                        continue
                    required = [(self.jobs[r], ok) for r, ok in job.requires.items()]
                    if any(r.status not in JOB_FINAL for r, _ in required):
                        continue
                    if all(r.status in ok for r, ok in required):
                        self._start(workflow, job)
                    else:
                        job.status = "not_run"
                    changed = True
        status = self._derive_status(workflow)
        workflow.status = status
        if status not in ("running", "failing", "on_hold") and workflow.stopped_at is None:
            workflow.stopped_at = self.clock()

    def _start(self, workflow: Workflow, job: Job) -> None:
        project = self.projects[job.project_slug]
        project.job_count += 1
        job.job_number = project.job_count
        job.started_at = self.clock()
        if job.spec.type == "approval":
            job.status = "on_hold"
            return
        job.status = "running"
        pipeline = self.pipelines[job.pipeline_id]
        self._started.append(
            JobRun(
                project_slug=job.project_slug,
                pipeline_id=pipeline.id,
                pipeline_number=pipeline.number,
                pipeline_parameters=MappingProxyType(dict(pipeline.parameters)),
                branch=pipeline.branch,
                tag=pipeline.tag,
                workflow_id=workflow.id,
                workflow_name=workflow.name,
                job_id=job.id,
                job_name=job.name,
                job_number=job.job_number,
                job_ref=job.spec.ref,
                parameters=MappingProxyType(dict(job.spec.parameters)),
                pre_steps=job.spec.pre_steps,
                post_steps=job.spec.post_steps,
                config=MappingProxyType(pipeline.config or {}),
                build_url=build_url(job.project_slug, pipeline.number, workflow.id, job.job_number),
                revision=pipeline.revision,
            )
        )

    def _derive_status(self, workflow: Workflow) -> str:
        if workflow.canceled_by is not None:
            return "canceled"
        statuses = [self.jobs[j].status for j in workflow.job_ids]
        failed = any(s in _FAILED for s in statuses)
        if any(s in ("running", "queued") for s in statuses):
            return "failing" if failed else "running"
        if "on_hold" in statuses:
            return "on_hold"
        if "blocked" in statuses:
            return "running"
        if all(s == "not_run" for s in statuses):
            return "not_run"
        if failed:
            return "failed"
        for final in ("canceled", "unauthorized"):
            if final in statuses:
                return final
        return "success"

    def finish_job(self, job_id: str, status: str) -> Job:
        """End a running build job; dependents start (or become not_run) accordingly."""
        if status not in FINISH_STATUSES:
            raise EmulatorError(
                400, f"status must be one of {', '.join(FINISH_STATUSES)}, not {status!r}."
            )
        job = self.job(job_id)
        if job.status != "running":
            raise EmulatorError(409, f"Job {job.name} is not running (status: {job.status}).")
        job.status = status
        job.stopped_at = self.clock()
        if status == "canceled":
            job.canceled_by = ACTOR_ID
        self._advance(self.workflows[job.workflow_id])
        return job

    def add_artifact(self, job_id: str, path: str, content: bytes) -> None:
        """Store an artifact of a job; the same path again replaces it, as a re-upload does."""
        self.job(job_id)
        kept = [(p, c) for p, c in self.artifacts.get(job_id, []) if p != path]
        self.artifacts[job_id] = [*kept, (path, content)]

    def job_by_number(self, slug: str, number: int) -> Job:
        """The job with that number in the project (approval jobs have numbers too)."""
        self.project(slug)
        for job in self.jobs.values():
            if job.project_slug == slug and job.job_number == number:
                return job
        raise EmulatorError(404, "Job not found")

    def find_running_job(self, slug: str, name: str, pipeline_id: str | None) -> Job:
        """The newest running build job of that name in the project (or pipeline)."""
        self.project(slug)
        for job in reversed(list(self.jobs.values())):
            if (
                job.project_slug == slug
                and job.name == name
                and job.status == "running"
                and pipeline_id in (None, job.pipeline_id)
            ):
                return job
        raise EmulatorError(404, f"No running job named {name!r} in {slug}.")

    def approve(self, workflow_id: str, approval_request_id: str) -> None:
        """Release a hold. Not an approval job: 400; not on hold (e.g. approved twice): 409."""
        workflow = self.workflow(workflow_id)
        if approval_request_id not in workflow.job_ids:
            raise EmulatorError(404, "Approval request not found")
        job = self.jobs[approval_request_id]
        if job.spec.type != "approval":
            raise EmulatorError(400, f"Job {job.name} is not an approval job.")
        if job.status != "on_hold":
            raise EmulatorError(409, f"Job {job.name} is not on hold (status: {job.status}).")
        job.status = "success"
        job.approved_by = ACTOR_ID
        job.stopped_at = self.clock()
        self._advance(workflow)

    def cancel(self, workflow_id: str) -> None:
        """Cancel every job that has not ended; a finished workflow is left as it is."""
        workflow = self.workflow(workflow_id)
        if workflow.stopped_at is not None:
            return
        now = self.clock()
        for job_id in workflow.job_ids:
            job = self.jobs[job_id]
            if job.status not in JOB_FINAL:
                job.status = "canceled"
                job.canceled_by = ACTOR_ID
                job.stopped_at = now
        workflow.canceled_by = ACTOR_ID
        self._advance(workflow)

    def rerun(
        self,
        workflow_id: str,
        *,
        from_failed: bool = False,
        jobs: list[str] | None = None,
    ) -> Workflow:
        """A new workflow (new id, same name and pipeline) that runs the graph again.

        ``from_failed`` reruns every job that did not succeed, plus its dependents; ``jobs``
        reruns those jobs plus their dependents. Jobs not rerun are carried over with the
        same id and status, as CircleCI reuses their records.
        """
        workflow = self.workflow(workflow_id)
        if workflow.stopped_at is None:
            raise EmulatorError(
                400, "Workflow is still running; wait for it to finish or cancel it first."
            )
        by_name = self._jobs_by_name(workflow)
        rerun: set[str] | None = None
        if from_failed:
            rerun = {n for n, j in by_name.items() if j.status != "success"}
            if not any(j.status in _FAILED for j in by_name.values()):
                raise EmulatorError(400, "Workflow has no failed jobs to rerun.")
        elif jobs:
            names_by_id = {j.id: n for n, j in by_name.items()}
            unknown = [j for j in jobs if j not in names_by_id]
            if unknown:
                raise EmulatorError(400, f"Job(s) not in this workflow: {', '.join(unknown)}")
            rerun = {names_by_id[j] for j in jobs}
        if rerun is not None:
            rerun = _with_dependents(workflow.spec, rerun)
        pipeline = self.pipelines[workflow.pipeline_id]
        return self._create_workflow(pipeline, workflow.spec, previous=workflow, rerun=rerun)


def _with_dependents(spec: cfg.WorkflowSpec, names: set[str]) -> set[str]:
    result = set(names)
    changed = True
    while changed:
        changed = False
        for job in spec.jobs:
            if job.name not in result and any(r in result for r, _ in job.requires):
                result.add(job.name)
                changed = True
    return result


def build_url(slug: str, pipeline_number: int, workflow_id: str, job_number: int) -> str:
    """The job's page in CircleCI's web app (also ``CIRCLE_BUILD_URL`` for the executor)."""
    pipeline = f"{WEB_APP_URL}/pipelines/{slug}/{pipeline_number}"
    return f"{pipeline}/workflows/{workflow_id}/jobs/{job_number}"


def iso(moment: datetime) -> str:
    """RFC 3339 in UTC with milliseconds and ``Z``, as CircleCI writes timestamps."""
    utc = moment.astimezone(timezone.utc)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"
