"""The same requests as circleback, written as a minimal script on the same libraries.

The yardstick for circleback's own overhead: typer parses the command line, pydantic-
settings reads the token, httpx sends exactly the requests circleback sends on the happy
path, pydantic validates each answer, structlog writes one line. Written as anyone would
write it (plain imports, no start-up tricks) and with none of circleback's checks, retries
or error handling. ``benchmarks/side_by_side.py`` runs it beside circleback.

    python benchmarks/minimal.py trigger gh/acme/b UPSTREAM_ID STATE_FILE
    python benchmarks/minimal.py approve UPSTREAM_ID DOWNSTREAM_ID
    python benchmarks/minimal.py status STATE_FILE
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import structlog
import typer
from pydantic import BaseModel, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

app = typer.Typer()
log = structlog.get_logger()


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CIRCLEBACK_")
    token: SecretStr
    host: str


class Pipeline(BaseModel):
    id: str
    number: int
    state: str


class Workflow(BaseModel):
    id: str
    name: str
    status: str


class Job(BaseModel):
    id: str | None = None
    name: str
    type: str
    status: str
    job_number: int | None = None
    approval_request_id: str | None = None


class Page(BaseModel):
    items: list[dict[str, object]]
    next_page_token: str | None


def client() -> httpx.Client:
    settings = Settings()  # type: ignore[call-arg]
    return httpx.Client(
        base_url=f"{settings.host}/api/v2",
        headers={"Circle-Token": settings.token.get_secret_value()},
    )


@app.command()
def trigger(project_slug: str, upstream_pipeline_id: str, state_file: Path) -> None:
    with client() as http:
        # As circleback: A's pipeline and config (the chain guard), the trigger, then B's
        # pipeline, config (does it use the parameter?) and workflows (created at all?).
        Pipeline.model_validate(http.get(f"/pipeline/{upstream_pipeline_id}").json())
        http.get(f"/pipeline/{upstream_pipeline_id}/config").json()
        body = {"branch": "main", "parameters": {"triggering-pipeline-id": upstream_pipeline_id}}
        created = http.post(f"/project/{project_slug}/pipeline", json=body).json()
        pipeline = Pipeline.model_validate(http.get(f"/pipeline/{created['id']}").json())
        http.get(f"/pipeline/{pipeline.id}/config").json()
        Page.model_validate(http.get(f"/pipeline/{pipeline.id}/workflow").json())
    record = {"project_slug": project_slug, "pipeline_id": pipeline.id, "number": pipeline.number}
    state_file.write_text(json.dumps({"version": 1, "downstream": [record]}))
    log.info("triggered", pipeline_id=pipeline.id)


@app.command()
def approve(upstream_pipeline_id: str, downstream_pipeline_id: str) -> None:
    with client() as http:
        page = Page.model_validate(http.get(f"/pipeline/{upstream_pipeline_id}/workflow").json())
        workflow = Workflow.model_validate(page.items[0])
        jobs = Page.model_validate(http.get(f"/workflow/{workflow.id}/job").json())
        listed = [Job.model_validate(item) for item in jobs.items]
        hold = next(job for job in listed if job.name == "wait-for-triggered-pipeline")
        # The proof of the link, as circleback reads it: A's record among the artifacts of
        # A's finished jobs, then B itself (ids its pushed ref carries are no evidence)
        # and B's compiled config carrying A's id.
        slug = "gh/acme/a"
        for job in listed:
            if job.type == "build" and job.job_number is not None:
                http.get(f"/project/{slug}/{job.job_number}/artifacts").json()
        http.get(f"/pipeline/{downstream_pipeline_id}").json()
        config = http.get(f"/pipeline/{downstream_pipeline_id}/config").json()
        if upstream_pipeline_id not in json.dumps(config):
            raise typer.Exit(3)
        http.post(f"/workflow/{workflow.id}/approve/{hold.approval_request_id or hold.id}")
    log.info("approved", workflow_id=workflow.id)


@app.command()
def status(state_file: Path) -> None:
    record = json.loads(state_file.read_text())["downstream"][0]
    with client() as http:
        page = Page.model_validate(http.get(f"/pipeline/{record['pipeline_id']}/workflow").json())
        workflows = [Workflow.model_validate(item) for item in page.items]
        for workflow in workflows:  # as circleback: each workflow's jobs, for the report
            Page.model_validate(http.get(f"/workflow/{workflow.id}/job").json())
    if not all(w.status == "success" for w in workflows):
        raise typer.Exit(1)
    log.info("downstream succeeded", pipeline_id=record["pipeline_id"])


if __name__ == "__main__":
    app()
