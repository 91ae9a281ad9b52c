"""Typed views of the CircleCI API v2 objects circleback reads.

Statuses are enums that still accept a value CircleCI adds tomorrow: a field typed
``WorkflowStatus | str`` with left-to-right union mode keeps known values as enum members
and passes unknown ones through as plain strings, so a new status never breaks parsing.
Unknown fields are ignored for the same reason.

Spec: ``tests/data/circleci-api-v2.openapi.json`` (vendored; schemas Pipeline, Workflow, Job).
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)


class _Status(str, Enum):
    """A status that prints as CircleCI spells it, so messages read ``on_hold``."""

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)


class PipelineState(_Status):
    """Where a pipeline is in its own (config) lifecycle; ``created`` is the good end."""

    CREATED = "created"
    ERRORED = "errored"
    SETUP_PENDING = "setup-pending"
    SETUP = "setup"
    PENDING = "pending"


class WorkflowStatus(_Status):
    """A workflow's status, per the spec's enum."""

    SUCCESS = "success"
    RUNNING = "running"
    NOT_RUN = "not_run"
    FAILED = "failed"
    ERROR = "error"
    FAILING = "failing"
    ON_HOLD = "on_hold"
    CANCELED = "canceled"
    UNAUTHORIZED = "unauthorized"
    QUEUED = "queued"
    """Waiting behind a serial group: documented on the workflows page, absent from the spec."""


#: Workflow statuses that will not change by themselves (docs: workflows §states).
#: ``not_run`` is final too: nothing will ever start it.
FINAL_WORKFLOW_STATUSES = frozenset(
    {
        WorkflowStatus.SUCCESS,
        WorkflowStatus.FAILED,
        WorkflowStatus.ERROR,
        WorkflowStatus.CANCELED,
        WorkflowStatus.UNAUTHORIZED,
        WorkflowStatus.NOT_RUN,
    }
)

#: Known statuses that mean "still going". A status in neither set is unknown: it is not
#: final either (``circleback.relay.completion`` warns and keeps waiting, bounded by the
#: caller's timeout), because taking a new "still going" status for final fails A early.
ACTIVE_WORKFLOW_STATUSES = frozenset(
    {
        WorkflowStatus.RUNNING,
        WorkflowStatus.FAILING,
        WorkflowStatus.ON_HOLD,
        WorkflowStatus.QUEUED,
    }
)


class JobStatus(_Status):
    """A job's status, per the spec's enum."""

    SUCCESS = "success"
    RUNNING = "running"
    NOT_RUN = "not_run"
    FAILED = "failed"
    RETRIED = "retried"
    QUEUED = "queued"
    NOT_RUNNING = "not_running"
    INFRASTRUCTURE_FAIL = "infrastructure_fail"
    TIMEDOUT = "timedout"
    ON_HOLD = "on_hold"
    TERMINATED_UNKNOWN = "terminated-unknown"
    BLOCKED = "blocked"
    CANCELED = "canceled"
    UNAUTHORIZED = "unauthorized"


class JobType(_Status):
    """``approval`` jobs wait for a human (or circleback); ``build`` jobs run steps."""

    BUILD = "build"
    APPROVAL = "approval"


def _status_field() -> Any:
    return Field(union_mode="left_to_right")


class PipelineError(_Model):
    """One entry of a pipeline's ``errors``: why CircleCI could not run it."""

    type: str
    """Kind of error, e.g. ``config`` or ``config-fetch``."""
    message: str
    """CircleCI's own words, shown to the user as they are."""


class PipelineVcs(_Model):
    """A pipeline's ``vcs``: which ref it ran on, and (kept as sent, as extra keys) the rest:
    commit subject and body, revisions. Whoever pushes controls that text, so the link
    proof (``circleback.relay.link``) must never take an id found in it as passed."""

    model_config = ConfigDict(frozen=True, extra="allow", populate_by_name=True)

    branch: str | None = None
    """The branch, when triggered on one."""
    tag: str | None = None
    """The tag, when triggered on one."""


class PipelineCreation(_Model):
    """What a trigger answers with (201): the new pipeline's identity."""

    id: str
    """The new pipeline's UUID."""
    state: PipelineState | str = _status_field()
    """Usually ``pending`` or ``created`` at this point."""
    number: int
    """The pipeline's number within its project."""
    created_at: datetime
    """When CircleCI created it."""


class Pipeline(_Model):
    """A pipeline (``GET /pipeline/{id}``): it holds no workflows, list those separately."""

    id: str
    """The pipeline's UUID."""
    number: int
    """Its number within the project."""
    project_slug: str
    """The project it belongs to, e.g. ``gh/acme/b``."""
    state: PipelineState | str = _status_field()
    """Config lifecycle state; ``errored`` means no workflow will ever run."""
    created_at: datetime
    """When CircleCI created it."""
    errors: tuple[PipelineError, ...] = ()
    """Why it errored, when it did."""
    trigger_parameters: dict[str, Any] | None = None
    """Parameters it was triggered with (optional in the spec)."""
    vcs: PipelineVcs | None = None
    """The ref it ran on (optional in the spec)."""


class PipelineConfig(_Model):
    """A pipeline's config (``GET /pipeline/{id}/config``, ``getPipelineConfigById``).

    ``compiled`` has orbs expanded and pipeline parameters substituted, followed by the
    source as ``#`` comments: a parameter's value appears in it only where the config
    uses the parameter. Either text may be empty while the pipeline is being set up.
    """

    source: str = ""
    """The config as committed."""
    compiled: str = ""
    """The processed config (values substituted); empty if processing failed."""
    setup_config: str | None = Field(default=None, alias="setup-config")
    """The setup config of a dynamic-config pipeline."""
    compiled_setup_config: str | None = Field(default=None, alias="compiled-setup-config")
    """The processed setup config."""


class Workflow(_Model):
    """A workflow of a pipeline; a rerun is a new workflow with the same name."""

    id: str
    """The workflow's UUID."""
    name: str
    """Its name in the config; not unique within a pipeline after reruns."""
    status: WorkflowStatus | str = _status_field()
    """Current status; may be a value newer than this code."""
    created_at: datetime
    """When it was created; the newest of same-named workflows is the live one."""
    stopped_at: datetime | None = None
    """When it reached a final status, if it has."""
    pipeline_id: str
    """The pipeline it belongs to."""
    pipeline_number: int
    """That pipeline's number."""
    project_slug: str
    """The project it belongs to."""
    tag: str | None = None
    """``setup`` for the setup workflow of a dynamic config, else absent."""

    @property
    def is_final(self) -> bool:
        """True only for a known final status (success, failed, error, canceled, …).

        An unknown status is not final: waiting on (bounded by a timeout) is safe, while
        judging a status this code cannot read could pass or fail A wrongly.
        """
        return self.status in FINAL_WORKFLOW_STATUSES

    @property
    def is_setup(self) -> bool:
        """True for the setup workflow of a dynamic config (it continues into others)."""
        return self.tag == "setup"


class Job(_Model):
    """A job of a workflow, as listed by ``GET /workflow/{id}/job``."""

    id: str
    """The job's UUID."""
    name: str
    """Its name in the workflow (matrix legs have their expanded names)."""
    type: JobType | str = _status_field()
    """``build`` or ``approval``."""
    status: JobStatus | str = _status_field()
    """Current status; a pending approval is ``on_hold``."""
    job_number: int | None = None
    """Build number; absent on some approval jobs."""
    started_at: datetime | None = None
    """When it started, if it has."""
    stopped_at: datetime | None = None
    """When it stopped, if it has."""
    approval_request_id: str | None = None
    """The id to approve it by; equal to ``id`` in real output, but preferred when present."""
    project_slug: str = ""
    """The project it belongs to."""
    dependencies: tuple[str, ...] = ()
    """Ids of the jobs it requires."""


class Artifact(_Model):
    """A file a job stored with ``store_artifacts`` (``GET /project/{slug}/{n}/artifacts``)."""

    path: str
    """Its path as stored, e.g. ``circleback/downstream.json``."""
    node_index: int = 0
    """The parallel node that stored it."""
    url: str
    """Where to download it (needs the token for private projects)."""


class WebhookScope(_Model):
    """What a webhook listens to: a project, by its id."""

    id: str
    type: str = "project"


class Webhook(_Model):
    """An outbound webhook (``/webhook``); the API shows only a masked signing secret."""

    id: str
    """The webhook's UUID."""
    name: str
    """Its name (``circleback webhook install`` names its own ``circleback``)."""
    url: str
    """Where CircleCI delivers events."""
    events: tuple[str, ...] = ()
    """``workflow-completed`` and/or ``job-completed``."""
    scope: WebhookScope
    """The project it belongs to."""
    verify_tls: bool = Field(default=True, alias="verify-tls")
    """Whether CircleCI checks the receiver's TLS certificate."""
