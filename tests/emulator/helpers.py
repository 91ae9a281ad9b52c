"""Small helpers shared by the emulator tests: a fake clock and an API wrapper."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx

CONFIGS = Path(__file__).parent / "configs"
TOKEN = "s3cret-token-value"
BASE_URL = "http://127.0.0.1/api/v2"
PROJECTS = {
    "gh/acme/a": CONFIGS / "upstream.yml",
    "gh/acme/b": CONFIGS / "downstream.yml",
    "gh/acme/matrix": CONFIGS / "matrix.yml",
    "gh/acme/filters": CONFIGS / "filters.yml",
    "gh/acme/fail": CONFIGS / "failure_paths.yml",
    "gh/acme/broken": CONFIGS / "broken.yml",
    "gh/acme/undefined": CONFIGS / "undefined_job.yml",
    "gh/acme/badreq": CONFIGS / "bad_requires.yml",
    "gh/acme/missing": CONFIGS / "missing_param.yml",
    "gh/acme/gone": CONFIGS / "does-not-exist.yml",
    "circleci/org-id/proj-id": CONFIGS / "downstream.yml",
    "gh/acme/setup": CONFIGS / "setup.yml",
    "gh/acme/serial": CONFIGS / "serial.yml",
    "gh/acme/callback": CONFIGS / "callback.yml",
}
#: What a setup job of ``setup.yml`` continues with: it declares the trigger's parameter
#: too, as a continuation config must.
CONTINUATION = """\
version: 2.1
parameters:
  triggering-pipeline-id: {type: string, default: ""}
  build-docs: {type: boolean, default: false}
jobs:
  test:
    docker: [{image: cimg/base:current}]
    environment: {UPSTREAM: << pipeline.parameters.triggering-pipeline-id >>}
    steps: [{run: make test}]
  docs:
    docker: [{image: cimg/base:current}]
    steps: [{run: make docs}]
workflows:
  test:
    jobs: [test]
  docs:
    when: << pipeline.parameters.build-docs >>
    jobs: [docs]
"""


@dataclass
class FakeClock:
    """Moves one second forward per reading, so every timestamp is distinct and ordered."""

    now: datetime = field(default_factory=lambda: datetime(2024, 5, 1, 12, tzinfo=timezone.utc))

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


@dataclass
class ManualClock:
    """Stands still until a test moves it: delays are asserted without sleeping."""

    now: datetime = field(default_factory=lambda: datetime(2024, 5, 1, 12, tzinfo=timezone.utc))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class FakeSleep:
    """Records requested sleeps instead of sleeping."""

    calls: list[float] = field(default_factory=list)

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


class Api:
    """Thin helpers over an httpx client pointed at the emulator."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client

    def trigger(self, slug: str, **body: Any) -> str:
        response = self.client.post(f"/project/{slug}/pipeline", json=body)
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    def all_pages(self, path: str, **params: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            query = {**params, **({"page-token": token} if token else {})}
            response = self.client.get(path, params=query)
            assert response.status_code == 200, response.text
            items.extend(response.json()["items"])
            token = response.json().get("next_page_token")  # may be left out (switch)
            if token is None:
                return items

    def workflows(self, pipeline_id: str) -> dict[str, dict[str, Any]]:
        """Workflows by name; the newest wins when names repeat (reruns)."""
        found: dict[str, dict[str, Any]] = {}
        for wf in self.all_pages(f"/pipeline/{pipeline_id}/workflow"):
            found.setdefault(wf["name"], wf)
        return found

    def workflow(self, pipeline_id: str, name: str | None = None) -> dict[str, Any]:
        workflows = self.workflows(pipeline_id)
        if name is None:
            assert len(workflows) == 1, workflows
            return next(iter(workflows.values()))
        return workflows[name]

    def jobs(self, workflow_id: str) -> dict[str, dict[str, Any]]:
        return {j["name"]: j for j in self.all_pages(f"/workflow/{workflow_id}/job")}

    def statuses(self, workflow_id: str) -> dict[str, str]:
        return {name: job["status"] for name, job in self.jobs(workflow_id).items()}

    def status(self, workflow_id: str) -> str:
        return str(self.client.get(f"/workflow/{workflow_id}").json()["status"])
