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
  as ``success``;
- creation is asynchronous (switch ``creation``): a pipeline is ``pending`` until its
  ``ready_at`` on the clock, then ``created`` (or ``errored``, ``setup-pending``), and its
  workflows appear at ``workflows_at``; :meth:`State.tick` carries pipelines forward;
- a ``setup: true`` config runs its setup workflow (tag ``setup``) until
  :meth:`State.continue_pipeline`; a ``serial-group`` job runs only while it holds its
  group's lock, waiting as ``queued`` or preempted to ``not_run``.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import MappingProxyType
from typing import Any

from circleback.emulator import config as cfg
from circleback.emulator.switches import Switches

#: The user every emulated action is attributed to; its id appears as ``started_by`` etc.
ACTOR_LOGIN = "circleback-emulator"
ACTOR_ID = str(uuid.uuid5(uuid.NAMESPACE_URL, "https://circleback.invalid/emulator-user"))
#: Where ``build_url`` points: CircleCI's web app, the same form the client builds.
WEB_APP_URL = "https://app.circleci.com"
#: Branch used when a trigger names neither a branch nor a tag (CircleCI uses the default one).
DEFAULT_BRANCH = "main"

JOB_FINAL = frozenset({"success", "failed", "canceled", "unauthorized", "not_run"})
#: What a running job can be finished with from outside (``not_run``: preempted).
FINISH_STATUSES = ("success", "failed", "canceled", "not_run")
#: Pipeline states (spec: Pipeline.state); ``pending`` until creation is done.
PIPELINE_STATES = ("created", "errored", "setup-pending", "setup", "pending")
#: Workflow tag of a setup workflow (spec: Workflow.tag).
SETUP_TAG = "setup"
#: How the continuation API refuses a pipeline past its setup phase (continuation-orb#12).
NOT_IN_SETUP = "Pipeline is not in setup state."
#: A pipeline can only be continued within six hours of its creation (docs: dynamic-config).
CONTINUATION_WINDOW = timedelta(hours=6)
#: Answer of a trigger whose parameters do not fit, in the ``not_found`` variant.
PROJECT_NOT_FOUND = "Project not found"
_FAILED = frozenset({"failed", "infrastructure_fail", "timedout"})
#: Workflow statuses that are not final (docs: workflows §states; ``queued``: serial groups).
_WORKFLOW_ACTIVE = frozenset({"running", "failing", "on_hold", "queued"})


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
    continuation_key: str | None = None
    """Set for the jobs of a setup workflow: ``CIRCLE_CONTINUATION_KEY``, for
    ``POST /pipeline/continue``."""
    pipeline_values: Mapping[str, Any] | None = None
    """Every ``pipeline.*`` value, as ``GET /pipeline/{id}/config`` compiled them."""


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
    """The parameters exactly as the trigger sent them (never shown as such: see shapes)."""
    parameters: dict[str, Any]
    branch: str | None
    tag: str | None
    revision: str
    definition_id: str | None
    config: dict[str, Any] | None
    errors: list[dict[str, str]] = field(default_factory=list)
    workflow_ids: list[str] = field(default_factory=list)
    source: str = ""
    """The config text the pipeline was created from (``GET /pipeline/{id}/config``)."""
    setup_source: str | None = None
    """For a setup (dynamic config) pipeline, the setup config's text."""
    setup_config: dict[str, Any] | None = None
    continuation_key: str | None = None
    continued: bool = False
    updated_at: datetime | None = None
    # Creation, as it happens later on CircleCI: the state reached at ``ready_at``, and the
    # workflows that appear at ``workflows_at``.
    outcome: str = "created"
    ready_at: datetime | None = None
    workflows_at: datetime | None = None
    pending_specs: list[cfg.WorkflowSpec] | None = None


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
    tag: str | None = None
    """``setup`` for the workflow of a setup config (dynamic config)."""


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

    def __init__(
        self,
        projects: Mapping[str, Path],
        clock: Callable[[], datetime],
        switches: Switches | None = None,
    ) -> None:
        self.clock = clock
        self.switches = switches or Switches()
        self.projects: dict[str, Project] = {}
        for slug, path in projects.items():
            self.add_project(slug, path)
        self.pipelines: dict[str, Pipeline] = {}
        self.workflows: dict[str, Workflow] = {}
        self.jobs: dict[str, Job] = {}
        self.artifacts: dict[str, list[tuple[str, bytes]]] = {}
        """Job id -> (path, content) stored by ``store_artifacts``, in upload order."""
        self.serial_holders: dict[str, str] = {}
        """Serial group key -> the job id holding its lock."""
        self.serial_waiting: dict[str, str] = {}
        """Serial group key -> the one job id waiting for it (``queued``)."""
        self._scheduled: list[str] = []
        """Pipelines whose creation has not finished yet (see :meth:`tick`)."""
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
        self.serial_holders.clear()
        self.serial_waiting.clear()
        self._scheduled.clear()
        self._started.clear()
        for project in self.projects.values():
            project.pipeline_count = project.job_count = 0

    def drain_started(self) -> list[JobRun]:
        """Build jobs started since the last call, for the caller to announce unlocked."""
        started, self._started = self._started, []
        return started

    # -- lookups ---------------------------------------------------------------------------

    def resolve_slug(self, slug: str) -> str | None:
        """The configured slug ``slug`` names: ``github/`` is ``gh/``, ``bitbucket/`` is
        ``bb/`` (spec: project-slug)."""
        if slug in self.projects:
            return slug
        wanted = _canonical_slug(slug)
        for known in self.projects:
            if _canonical_slug(known) == wanted:
                return known
        return None

    def project(self, slug: str, message: str = PROJECT_NOT_FOUND) -> Project:
        known = self.resolve_slug(slug)
        if known is None:
            raise EmulatorError(404, message)
        return self.projects[known]

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
        not_found_message: str = PROJECT_NOT_FOUND,
    ) -> Pipeline:
        """Create a pipeline from the project's config as it is on disk now.

        Size limits on parameters raise EmulatorError(400) and create nothing. Parameters
        the config does not declare, or of the wrong type, do what the ``parameter_errors``
        switch says: an ``errored`` pipeline, 404 "Project not found", or 400. Config errors
        give an ``errored`` pipeline, as CircleCI answers 201 and shows the error in the app.
        With the ``creation`` switch ``async`` the pipeline is ``pending`` until
        ``creation_delay`` seconds have passed and has no workflow for ``workflow_delay``
        more (see :meth:`tick`).
        """
        project = self.project(slug, not_found_message)
        try:
            cfg.check_trigger_parameters(parameters)
        except cfg.ParameterError as exc:
            raise EmulatorError(400, str(exc)) from None
        if branch is None and tag is None:
            branch = DEFAULT_BRANCH
        now = self.clock()
        ref = f"{project.slug}:{tag if tag is not None else branch}"
        pipeline = Pipeline(
            id=str(uuid.uuid4()),
            project_slug=project.slug,
            number=0,
            state="pending",
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
            pipeline.source = cfg.read_config(project.config_path)
            pipeline.config = cfg.parse_config(pipeline.source)
            if cfg.is_setup_config(pipeline.config):
                pipeline.setup_source, pipeline.setup_config = pipeline.source, pipeline.config
            declared = cfg.declared_parameters(pipeline.config)
            pipeline.parameters = cfg.resolve_parameters(declared, parameters)
        except cfg.ParameterError as exc:
            if self.switches.parameter_errors == "bad_request":
                raise EmulatorError(400, str(exc)) from None
            if self.switches.parameter_errors == "not_found":
                raise EmulatorError(404, PROJECT_NOT_FOUND) from None
            pipeline.outcome = "errored"
            pipeline.errors.append({"type": "config", "message": str(exc)})
        except cfg.ConfigError as exc:
            pipeline.outcome = "errored"
            pipeline.errors.append({"type": "config", "message": str(exc)})
        project.pipeline_count += 1
        pipeline.number = project.pipeline_count
        if pipeline.config is not None and pipeline.outcome == "created":
            try:
                specs = cfg.compile_workflows(
                    pipeline.config, self.pipeline_values(pipeline), branch=branch, tag=tag
                )
            except cfg.ConfigError as exc:
                pipeline.outcome = "errored"
                pipeline.errors.append({"type": "config", "message": str(exc)})
        if pipeline.setup_config is not None and pipeline.outcome == "created":
            pipeline.outcome = "setup-pending"
            pipeline.continuation_key = str(uuid.uuid4())
        self.pipelines[pipeline.id] = pipeline
        pipeline.pending_specs = specs if pipeline.outcome != "errored" else None
        if self.switches.creation == "sync":
            pipeline.ready_at = pipeline.workflows_at = now
        else:
            pipeline.ready_at = now + timedelta(seconds=self.switches.creation_delay)
            pipeline.workflows_at = pipeline.ready_at + timedelta(
                seconds=self.switches.workflow_delay
            )
        self._scheduled.append(pipeline.id)
        if self.switches.creation == "sync":
            self._finish_creation(pipeline, now)
        # Otherwise the trigger answers "pending" and the next tick (the Emulator ticks after
        # every request) moves it on once its delays have passed.
        return pipeline

    def tick(self) -> None:
        """Carry pipelines forward whose creation delays have passed on the clock.

        The emulator calls this around every request and the server's ticker calls it
        regularly, so pending pipelines progress even when nobody asks about them.
        """
        if not self._scheduled:
            return
        now = self.clock()
        for pipeline_id in list(self._scheduled):
            pipeline = self.pipelines.get(pipeline_id)
            if pipeline is not None:
                self._finish_creation(pipeline, now)

    def _finish_creation(self, pipeline: Pipeline, now: datetime) -> None:
        assert pipeline.ready_at is not None
        assert pipeline.workflows_at is not None
        if pipeline.state == "pending" and now >= pipeline.ready_at:
            pipeline.state = pipeline.outcome
            pipeline.updated_at = now
        if pipeline.state == "pending" or now < pipeline.workflows_at:
            return
        self._scheduled.remove(pipeline.id)
        specs, pipeline.pending_specs = pipeline.pending_specs or [], None
        if pipeline.state == "setup-pending":
            pipeline.state = "setup"
            pipeline.updated_at = now
        for spec in specs:
            self._create_workflow(
                pipeline,
                spec,
                previous=None,
                rerun=None,
                tag=SETUP_TAG if pipeline.setup_config is not None else None,
            )

    def continue_pipeline(
        self, continuation_key: str, configuration: str, parameters: Mapping[str, Any]
    ) -> Pipeline:
        """``POST /pipeline/continue``: run the continuation config's workflows.

        The key is the one given to the setup workflow's jobs and works once, while the
        pipeline is in ``setup`` and at most six hours old; parameters sent here may not
        repeat the trigger's (docs: dynamic-config constraints). The continuation config
        must declare every parameter, the trigger's included (docs: pipeline-variables);
        parameter and config errors make the pipeline ``errored`` (an assumption: see
        docs/emulator.md).
        """
        try:
            cfg.check_trigger_parameters(parameters)
        except cfg.ParameterError as exc:
            raise EmulatorError(400, str(exc)) from None
        pipeline = next(
            (p for p in self.pipelines.values() if p.continuation_key == continuation_key),
            None,
        )
        if pipeline is None:
            raise EmulatorError(400, "Invalid continuation key.")
        now = self.clock()
        if (
            pipeline.continued
            or pipeline.state != "setup"
            or now - pipeline.created_at > CONTINUATION_WINDOW
        ):
            # continuation-orb#12, circleci-docs#7550: a second continue gets this.
            raise EmulatorError(400, NOT_IN_SETUP)
        overlap = sorted(set(parameters) & set(pipeline.trigger_parameters))
        if overlap:
            raise EmulatorError(
                400,
                "Pipeline parameters submitted at continuation time cannot overlap with "
                f"those submitted at trigger time: {', '.join(overlap)}",
            )
        pipeline.continued = True
        pipeline.updated_at = now
        pipeline.source = configuration
        specs: list[cfg.WorkflowSpec] = []
        try:
            config = cfg.parse_config(configuration)
            if cfg.is_setup_config(config):
                raise cfg.ConfigError("A continuation config cannot be a setup config.")
            pipeline.config = config
            given = {**pipeline.trigger_parameters, **dict(parameters)}
            pipeline.parameters = cfg.resolve_parameters(cfg.declared_parameters(config), given)
            specs = cfg.compile_workflows(
                config,
                self.pipeline_values(pipeline),
                branch=pipeline.branch,
                tag=pipeline.tag,
            )
        except (cfg.ConfigError, cfg.ParameterError) as exc:
            pipeline.state = "errored"
            pipeline.errors.append({"type": "config", "message": str(exc)})
            return pipeline
        pipeline.state = "created"
        for spec in specs:
            self._create_workflow(pipeline, spec, previous=None, rerun=None)
        return pipeline

    def pipeline_values(self, pipeline: Pipeline) -> dict[str, Any]:
        """Every ``<< pipeline.* >>`` value (docs: pipeline-variables), parameters included."""
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
        tag: str | None = None,
    ) -> Workflow:
        """A new workflow; given ``previous``, jobs not in ``rerun`` are carried over as is."""
        workflow = Workflow(
            id=str(uuid.uuid4()),
            name=spec.name,
            pipeline_id=pipeline.id,
            spec=spec,
            created_at=self.clock(),
            rerun_of=previous.id if previous else None,
            tag=tag,
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
                    if all(_satisfies(r, ok) for r, ok in required):
                        self._start(workflow, job)
                    else:
                        job.status = "not_run"
                    changed = True
        status = self._derive_status(workflow)
        workflow.status = status
        if status not in _WORKFLOW_ACTIVE and workflow.stopped_at is None:
            workflow.stopped_at = self.clock()

    def _start(self, workflow: Workflow, job: Job) -> None:
        group = job.spec.serial_group if job.spec.type == "build" else None
        if group is not None and not self._enter_serial_group(group, job):
            return
        self._run(workflow, job)

    def _run(self, workflow: Workflow, job: Job) -> None:
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
                config=MappingProxyType(
                    (pipeline.setup_config if workflow.tag == SETUP_TAG else pipeline.config) or {}
                ),
                build_url=build_url(job.project_slug, pipeline.number, workflow.id, job.job_number),
                revision=pipeline.revision,
                continuation_key=(
                    pipeline.continuation_key
                    if workflow.tag == SETUP_TAG and not pipeline.continued
                    else None
                ),
                pipeline_values=MappingProxyType(self.pipeline_values(pipeline)),
            )
        )

    # -- serial groups (docs: controlling-serial-execution-across-your-organization) ---------

    def _enter_serial_group(self, group: str, job: Job) -> bool:
        """True if ``job`` takes the group's lock now; otherwise it is ``queued`` or, when a
        newer pipeline holds or waits for the lock, preempted: ``not_run`` at once."""
        holder = self.serial_holders.get(group)
        waiting = self.serial_waiting.get(group)
        if holder is None and waiting is None:
            self.serial_holders[group] = job.id
            return True
        number = self.pipelines[job.pipeline_id].number
        newest = max(
            self.pipelines[self.jobs[j].pipeline_id].number for j in (holder, waiting) if j
        )
        if number < newest:
            self._end(job, "not_run")
            return False
        if waiting is not None:
            older = self.jobs[waiting]
            self._end(older, "not_run")
            del self.serial_waiting[group]
            self._advance(self.workflows[older.workflow_id])
        if holder is None:
            self.serial_holders[group] = job.id
            return True
        job.status = "queued"
        self.serial_waiting[group] = job.id
        return False

    def _leave_serial_group(self, job: Job) -> None:
        """Release the lock ``job`` holds (or its place in the queue); start the next."""
        group = job.spec.serial_group
        if group is None:
            return
        if self.serial_waiting.get(group) == job.id:
            del self.serial_waiting[group]
            return
        if self.serial_holders.get(group) != job.id:
            return
        del self.serial_holders[group]
        waiting = self.serial_waiting.pop(group, None)
        if waiting is not None:
            nxt = self.jobs[waiting]
            self.serial_holders[group] = nxt.id
            workflow = self.workflows[nxt.workflow_id]
            self._run(workflow, nxt)
            self._advance(workflow)

    def _end(self, job: Job, status: str) -> None:
        job.status = status
        job.stopped_at = self.clock()
        if status == "canceled":
            job.canceled_by = ACTOR_ID

    def _derive_status(self, workflow: Workflow) -> str:
        if workflow.canceled_by is not None:
            return "canceled"
        statuses = [self.jobs[j].status for j in workflow.job_ids]
        failed = any(s in _FAILED for s in statuses)
        if "running" in statuses:
            return "failing" if failed else "running"
        if "queued" in statuses:
            return "failing" if failed else "queued"
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
        """End a running build job; dependents start (or become not_run) accordingly.

        ``not_run`` is how CircleCI ends a preempted serial-group job.
        """
        if status not in FINISH_STATUSES:
            raise EmulatorError(
                400, f"status must be one of {', '.join(FINISH_STATUSES)}, not {status!r}."
            )
        job = self.job(job_id)
        if job.status != "running":
            raise EmulatorError(409, f"Job {job.name} is not running (status: {job.status}).")
        self._end(job, status)
        self._leave_serial_group(job)
        self._advance(self.workflows[job.workflow_id])
        return job

    def cancel_job(self, job: Job) -> None:
        """Cancel one job (``POST /project/{slug}/job/{number}/cancel``); dependents then
        start or become not_run as their ``requires`` say. A finished job is left as is."""
        if job.status in JOB_FINAL:
            return
        self._end(job, "canceled")
        self._leave_serial_group(job)
        self._advance(self.workflows[job.workflow_id])

    def add_artifact(self, job_id: str, path: str, content: bytes) -> None:
        """Store an artifact of a job; the same path again replaces it, as a re-upload does."""
        self.job(job_id)
        kept = [(p, c) for p, c in self.artifacts.get(job_id, []) if p != path]
        self.artifacts[job_id] = [*kept, (path, content)]

    def job_by_number(self, slug: str, number: int) -> Job:
        """The job with that number in the project (approval jobs have numbers too)."""
        slug = self.project(slug).slug
        for job in self.jobs.values():
            if job.project_slug == slug and job.job_number == number:
                return job
        raise EmulatorError(404, "Job not found")

    def find_running_job(self, slug: str, name: str, pipeline_id: str | None) -> Job:
        """The newest running build job of that name in the project (or pipeline)."""
        slug = self.project(slug).slug
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
        ended: list[Job] = []
        for job_id in workflow.job_ids:
            job = self.jobs[job_id]
            if job.status not in JOB_FINAL:
                job.status = "canceled"
                job.canceled_by = ACTOR_ID
                job.stopped_at = now
                ended.append(job)
        workflow.canceled_by = ACTOR_ID
        self._advance(workflow)
        for job in ended:
            self._leave_serial_group(job)

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
        if workflow.tag == SETUP_TAG:
            # path-filtering-orb#14: rerunning a setup workflow fails this way.
            raise EmulatorError(400, NOT_IN_SETUP)
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


def _satisfies(required: Job, statuses: tuple[str, ...]) -> bool:
    """A serial-group job satisfies any ``requires`` once it is final: what depends on it
    waits for the lock's release, which every terminal status reaches (CircleCI support
    article 51710279271579)."""
    return required.spec.serial_group is not None or required.status in statuses


def _canonical_slug(slug: str) -> str:
    provider, sep, rest = slug.partition("/")
    return {"github": "gh", "bitbucket": "bb"}.get(provider, provider) + sep + rest


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
