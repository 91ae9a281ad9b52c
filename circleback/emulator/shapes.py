"""The JSON shapes of the API's objects: the official OpenAPI document's, as CircleCI fills them.

Spec schemas: ``PipelineCreation``, ``Pipeline``, ``Workflow``, ``Job`` (the job list item),
``Job Details``, ``PipelineConfig``, ``User``. Where captured responses show how CircleCI
fills a schema (whole-second timestamps, keys left out rather than null, ``trigger_parameters``
without the trigger's parameters), the :class:`~circleback.emulator.switches.Switches` pick
the variant; ``docs/emulator.md`` lists the evidence.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from circleback.emulator.state import (
    ACTOR_ID,
    ACTOR_LOGIN,
    Job,
    Pipeline,
    State,
    Workflow,
    build_url,
    iso,
)
from circleback.emulator.switches import Switches

_PROVIDERS = {"gh": "GitHub", "github": "GitHub", "bb": "Bitbucket", "bitbucket": "Bitbucket"}
_DEFAULT = Switches()
ACTOR_NAME = "circleback emulator"


def seconds(moment: datetime) -> str:
    """RFC 3339 in UTC, whole seconds: how captured workflows and jobs show time."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _stamp(moment: datetime, switches: Switches) -> str:
    return seconds(moment) if switches.timestamps == "observed" else iso(moment)


def _optional(body: dict[str, Any], key: str, value: Any, switches: Switches) -> None:
    """Set ``key``; a None value is left out or sent as null, as the switch says."""
    if value is not None or switches.empty_keys == "null":
        body[key] = value


def pipeline_creation(pipeline: Pipeline) -> dict[str, Any]:
    """201 body of both trigger endpoints (the state as it was when the trigger answered)."""
    return {
        "id": pipeline.id,
        "state": pipeline.state,
        "number": pipeline.number,
        "created_at": iso(pipeline.created_at),
    }


def trigger_parameters(pipeline: Pipeline, switches: Switches) -> dict[str, Any] | None:
    """What ``trigger_parameters`` shows: nothing, CircleCI's own namespaces, or (a variant
    never observed) the parameters as sent."""
    if switches.trigger_parameters == "absent":
        return None
    if switches.trigger_parameters == "echo":
        return dict(pipeline.trigger_parameters)
    provider, _, rest = pipeline.project_slug.partition("/")
    org, _, repo = rest.partition("/")
    git: dict[str, Any] = {"checkout_sha": pipeline.revision}
    if pipeline.tag is not None:
        git["tag"] = pipeline.tag
    else:
        git["branch"] = pipeline.branch
    return {
        "git": git,
        "circleci": {
            "event_type": "api",
            "trigger_type": "api",
            "org_name": org,
            "project_name": repo,
            "provider_name": {"gh": "github", "bb": "bitbucket"}.get(provider, provider),
            "actor_id": ACTOR_ID,
        },
    }


def pipeline_json(pipeline: Pipeline, switches: Switches = _DEFAULT) -> dict[str, Any]:
    """``GET /pipeline/{id}`` and the items of the pipeline lists."""
    _, org, repo = [*pipeline.project_slug.split("/", 2), "", ""][:3]
    url = f"https://github.com/{org}/{repo}"
    vcs: dict[str, Any] = {
        "provider_name": _PROVIDERS.get(pipeline.project_slug.split("/")[0], "GitHub"),
        "origin_repository_url": url,
        "target_repository_url": url,
        "revision": pipeline.revision,
        "commit": {"subject": "Triggered by the circleback emulator", "body": ""},
    }
    if pipeline.tag is not None:
        vcs["tag"] = pipeline.tag
    else:
        vcs["branch"] = pipeline.branch
    body: dict[str, Any] = {
        "id": pipeline.id,
        "errors": [dict(e) for e in pipeline.errors],
        "project_slug": pipeline.project_slug,
        "updated_at": iso(pipeline.updated_at or pipeline.created_at),
        "number": pipeline.number,
        "state": pipeline.state,
        "created_at": iso(pipeline.created_at),
        "trigger": {
            "type": "api",
            "received_at": iso(pipeline.created_at),
            "actor": {"login": ACTOR_LOGIN, "avatar_url": None},
        },
        "vcs": vcs,
    }
    params = trigger_parameters(pipeline, switches)
    if params is not None:
        body["trigger_parameters"] = params
    if switches.pipeline_warnings == "empty":
        body["warnings"] = []
    return body


def workflow_json(
    state: State, workflow: Workflow, switches: Switches = _DEFAULT
) -> dict[str, Any]:
    """``GET /workflow/{id}`` and the items of a pipeline's workflow list."""
    pipeline = state.pipelines[workflow.pipeline_id]
    body: dict[str, Any] = {
        "pipeline_id": pipeline.id,
        "id": workflow.id,
        "name": workflow.name,
        "project_slug": pipeline.project_slug,
        "status": workflow.status,
        "started_by": ACTOR_ID,
        "pipeline_number": pipeline.number,
        "created_at": _stamp(workflow.created_at, switches),
    }
    stopped = _stamp(workflow.stopped_at, switches) if workflow.stopped_at else None
    _optional(body, "stopped_at", stopped, switches)
    if workflow.canceled_by:
        body["canceled_by"] = workflow.canceled_by
    if workflow.tag:
        body["tag"] = workflow.tag
    return body


def job_json(job: Job, switches: Switches = _DEFAULT) -> dict[str, Any]:
    """The items of ``GET /workflow/{id}/job``.

    ``started_at`` is null for a job that has not started (the spec requires the key;
    captured output has null). Approval jobs carry ``approval_request_id`` equal to their
    id, as 2024-2025 output does; the ``legacy`` switch gives 2020's shape instead.
    """
    legacy = job.spec.type == "approval" and switches.approval_jobs == "legacy"
    started = job.started_at if not legacy else None
    body: dict[str, Any] = {
        "dependencies": list(job.requires),
        "id": job.id,
        "name": job.name,
        "project_slug": job.project_slug,
        "requires": {k: list(v) for k, v in job.requires.items()},
        "started_at": _stamp(started, switches) if started else None,
        "status": job.status,
        "type": job.spec.type,
    }
    stopped = _stamp(job.stopped_at, switches) if job.stopped_at else None
    _optional(body, "stopped_at", stopped, switches)
    if job.job_number is not None and not legacy:
        body["job_number"] = job.job_number
    if job.spec.type == "approval" and not legacy:
        body["approval_request_id"] = job.id
    if job.approved_by:
        body["approved_by"] = job.approved_by
    if job.canceled_by:
        body["canceled_by"] = job.canceled_by
    return body


def job_details(state: State, job: Job, switches: Switches = _DEFAULT) -> dict[str, Any]:
    """``GET /project/{slug}/job/{number}`` (spec: Job Details)."""
    workflow = state.workflows[job.workflow_id]
    pipeline = state.pipelines[job.pipeline_id]
    project = state.projects[job.project_slug]
    _, org, repo = [*job.project_slug.split("/", 2), "", ""][:3]
    assert job.job_number is not None
    assert job.started_at is not None
    duration = None
    if job.stopped_at is not None:
        duration = int((job.stopped_at - job.started_at).total_seconds() * 1000)
    body: dict[str, Any] = {
        "web_url": build_url(job.project_slug, pipeline.number, workflow.id, job.job_number),
        "project": {
            "id": project.definition_id,
            "slug": job.project_slug,
            "name": repo,
            "external_url": f"https://github.com/{org}/{repo}",
        },
        "parallel_runs": [{"index": 0, "status": job.status}],
        "started_at": _stamp(job.started_at, switches),
        "latest_workflow": {"id": workflow.id, "name": workflow.name},
        "name": job.name,
        "executor": {"resource_class": "medium", "type": "docker"},
        "parallelism": 1,
        "status": job.status,
        "number": job.job_number,
        "pipeline": {"id": pipeline.id},
        "duration": duration,
        "created_at": _stamp(workflow.created_at, switches),
        "messages": [],
        "contexts": [],
        "organization": {"name": org},
        "queued_at": _stamp(job.started_at, switches),
    }
    _optional(
        body,
        "stopped_at",
        _stamp(job.stopped_at, switches) if job.stopped_at else None,
        switches,
    )
    return body


def user_json() -> dict[str, Any]:
    """``GET /me`` (spec: User): the one user every emulated action is attributed to."""
    return {"id": ACTOR_ID, "login": ACTOR_LOGIN, "name": ACTOR_NAME, "avatar_url": None}


def state_json(state: State) -> dict[str, Any]:
    """The control API's view: the API shapes plus what a test wants to assert on."""
    switches = state.switches
    return {
        "projects": [
            {
                "slug": p.slug,
                "config_path": str(p.config_path),
                "definition_id": p.definition_id,
                "pipeline_count": p.pipeline_count,
            }
            for p in state.projects.values()
        ],
        "pipelines": [
            {
                **pipeline_json(p, switches),
                "parameters": dict(p.parameters),
                "sent_parameters": dict(p.trigger_parameters),
                "definition_id": p.definition_id,
                "workflow_ids": list(p.workflow_ids),
                "continuation_key": p.continuation_key,
            }
            for p in state.pipelines.values()
        ],
        "workflows": [
            {
                **workflow_json(state, w, switches),
                "job_ids": list(w.job_ids),
                "rerun_of": w.rerun_of,
            }
            for w in state.workflows.values()
        ],
        "jobs": [
            {
                **job_json(j, switches),
                "workflow_id": j.workflow_id,
                "pipeline_id": j.pipeline_id,
                "job_ref": j.spec.ref,
                "parameters": dict(j.spec.parameters),
                "serial_group": j.spec.serial_group,
            }
            for j in state.jobs.values()
        ],
    }
