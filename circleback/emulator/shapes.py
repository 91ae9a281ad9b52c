"""The JSON shapes of the API's objects, exactly as the official OpenAPI document has them.

Spec schemas: ``PipelineCreation``, ``Pipeline``, ``Workflow``, ``Job`` (the job list item).
Optional fields are left out rather than sent as null unless the spec marks them nullable,
so that a strict client parsing real responses also parses these.
"""

from __future__ import annotations

from typing import Any

from circleback.emulator.state import ACTOR_ID, ACTOR_LOGIN, Job, Pipeline, State, Workflow, iso

_PROVIDERS = {"gh": "GitHub", "github": "GitHub", "bb": "Bitbucket", "bitbucket": "Bitbucket"}


def pipeline_creation(pipeline: Pipeline) -> dict[str, Any]:
    """201 body of both trigger endpoints."""
    return {
        "id": pipeline.id,
        "state": pipeline.state,
        "number": pipeline.number,
        "created_at": iso(pipeline.created_at),
    }


def pipeline_json(pipeline: Pipeline) -> dict[str, Any]:
    """``GET /pipeline/{id}`` and the items of a project's pipeline list."""
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
    return {
        "id": pipeline.id,
        "errors": [dict(e) for e in pipeline.errors],
        "project_slug": pipeline.project_slug,
        "updated_at": iso(pipeline.created_at),
        "number": pipeline.number,
        "trigger_parameters": dict(pipeline.trigger_parameters),
        "state": pipeline.state,
        "created_at": iso(pipeline.created_at),
        "trigger": {
            "type": "api",
            "received_at": iso(pipeline.created_at),
            "actor": {"login": ACTOR_LOGIN, "avatar_url": None},
        },
        "vcs": vcs,
    }


def workflow_json(state: State, workflow: Workflow) -> dict[str, Any]:
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
        "created_at": iso(workflow.created_at),
        "stopped_at": iso(workflow.stopped_at) if workflow.stopped_at else None,
    }
    if workflow.canceled_by:
        body["canceled_by"] = workflow.canceled_by
    return body


def job_json(job: Job) -> dict[str, Any]:
    """The items of ``GET /workflow/{id}/job``.

    ``started_at`` is null for a job that has not started (the spec requires the key but
    does not say what it holds then; real output has null). Approval jobs carry
    ``approval_request_id`` equal to their id, as real output does.
    """
    body: dict[str, Any] = {
        "dependencies": list(job.requires),
        "id": job.id,
        "name": job.name,
        "project_slug": job.project_slug,
        "requires": {k: list(v) for k, v in job.requires.items()},
        "started_at": iso(job.started_at) if job.started_at else None,
        "status": job.status,
        "stopped_at": iso(job.stopped_at) if job.stopped_at else None,
        "type": job.spec.type,
    }
    if job.job_number is not None:
        body["job_number"] = job.job_number
    if job.spec.type == "approval":
        body["approval_request_id"] = job.id
    if job.approved_by:
        body["approved_by"] = job.approved_by
    if job.canceled_by:
        body["canceled_by"] = job.canceled_by
    return body


def state_json(state: State) -> dict[str, Any]:
    """The control API's view: the API shapes plus what a test wants to assert on."""
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
                **pipeline_json(p),
                "parameters": dict(p.parameters),
                "definition_id": p.definition_id,
                "workflow_ids": list(p.workflow_ids),
            }
            for p in state.pipelines.values()
        ],
        "workflows": [
            {**workflow_json(state, w), "job_ids": list(w.job_ids), "rerun_of": w.rerun_of}
            for w in state.workflows.values()
        ],
        "jobs": [
            {
                **job_json(j),
                "workflow_id": j.workflow_id,
                "pipeline_id": j.pipeline_id,
                "job_ref": j.spec.ref,
                "parameters": dict(j.spec.parameters),
            }
            for j in state.jobs.values()
        ],
    }
