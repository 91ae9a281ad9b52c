"""Realistic API v2 response bodies, shaped like the official spec's examples."""

from __future__ import annotations

from typing import Any

PIPELINE_ID = "5034460f-c7c4-4c43-9457-de07e2029e7b"
WORKFLOW_ID = "b3e4bb2f-4a6b-4f8e-9d5c-3f2a1c0d9e8f"
JOB_ID = "0c7d9c3e-7a4a-4e0e-8f44-5c1f2d6b1a90"
CREATED_AT = "2026-11-22T10:00:00Z"


def creation(number: int = 7) -> dict[str, Any]:
    return {"id": PIPELINE_ID, "state": "created", "number": number, "created_at": CREATED_AT}


def pipeline(state: str = "created", **extra: Any) -> dict[str, Any]:
    return {
        "id": PIPELINE_ID,
        "errors": [],
        "project_slug": "gh/acme/b",
        "number": 7,
        "state": state,
        "created_at": CREATED_AT,
        "trigger": {
            "type": "api",
            "received_at": CREATED_AT,
            "actor": {"login": "robot", "avatar_url": None},
        },
        **extra,
    }


def workflow(
    wid: str = WORKFLOW_ID, status: str = "running", name: str = "build"
) -> dict[str, Any]:
    return {
        "id": wid,
        "name": name,
        "status": status,
        "created_at": CREATED_AT,
        "stopped_at": None,
        "pipeline_id": PIPELINE_ID,
        "pipeline_number": 7,
        "project_slug": "gh/acme/b",
        "started_by": "robot",
    }


def job(
    jid: str = JOB_ID, name: str = "wait", status: str = "on_hold", type_: str = "approval"
) -> dict[str, Any]:
    return {
        "id": jid,
        "name": name,
        "type": type_,
        "status": status,
        "started_at": None,
        "dependencies": [],
        "project_slug": "gh/acme/a",
        "approval_request_id": jid,
    }
