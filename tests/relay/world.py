"""A CircleCI world for end-to-end tests of the CLI: the in-process emulator and fake time.

The CLI runs exactly as a user runs it (``circleback._cli.run``), with its ``Runtime``
pointed at the emulator's in-process transport and a clock that moves only when the CLI
sleeps. ``on_sleep`` lets a test make things happen "while" the CLI waits, such as B's
jobs finishing, so waits are exercised without waiting.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest

from circleback import _cli
from circleback.emulator import Emulator

CONFIGS = Path(__file__).parent / "configs"
TOKEN = "CCIPAT_e2e-t0ken-value"
HOST = "http://127.0.0.1"
A = "gh/acme/a"
B = "gh/acme/b"
PROJECTS = {
    A: CONFIGS / "a.yml",
    B: CONFIGS / "b.yml",
    "gh/acme/a2": CONFIGS / "a_two_workflows.yml",
    "gh/acme/impostor": CONFIGS / "a_impostor.yml",
    "gh/acme/many": CONFIGS / "a_many_jobs.yml",
    "gh/acme/b-hold": CONFIGS / "b_on_hold.yml",
    "gh/acme/b-broken": CONFIGS / "b_broken.yml",
    "gh/acme/b-undeclared": CONFIGS / "b_undeclared.yml",
    "gh/evil/a": CONFIGS / "a.yml",
    "gh/acme/b-undeclared-twin": CONFIGS / "b.yml",
    "gh/acme/b-typed": CONFIGS / "b_typed.yml",
    "gh/acme/b-tags": CONFIGS / "b_tags.yml",
    "gh/acme/b-filtered": CONFIGS / "b_filtered.yml",
    "gh/acme/b-no-callback": CONFIGS / "b_no_callback.yml",
    "gh/acme/b-dynamic": CONFIGS / "b_dynamic.yml",
    "gh/acme/b-serial": CONFIGS / "b_serial.yml",
    "gh/acme/b-branch": CONFIGS / "b_branch.yml",
    "circleci/8e1a5d2c-0d9d-4bfb-9d4f-1f2b3c4d5e6f/a1b2c3d4-e5f6-4a5b-8c9d-0e1f2a3b4c5d": CONFIGS
    / "b.yml",
}


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        import json

        return json.loads(self.out)


class FakeTime:
    """Monotonic seconds that advance only by sleeping; a sleep can trigger a callback."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []
        self.on_sleep: Callable[[int], None] | None = None

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        if self.on_sleep is not None:
            self.on_sleep(len(self.sleeps))

    def clock(self) -> float:
        return self.now


class WallClock:
    """The emulator's clock: one second per reading, so timestamps are ordered and distinct."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 22, 12, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


@dataclass
class World:
    emu: Emulator
    time: FakeTime
    capsys: pytest.CaptureFixture[str]
    api: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.api = httpx.Client(
            transport=self.emu.transport(),
            base_url=f"{HOST}/api/v2",
            headers={"Circle-Token": TOKEN},
        )

    # -- the CLI ------------------------------------------------------------------------

    def cli(self, *args: str) -> Result:
        self.capsys.readouterr()
        code = _cli.run(["--log-format", "console", *args])
        captured = self.capsys.readouterr()
        return Result(code, captured.out, captured.err)

    # -- CircleCI, as seen through the API ----------------------------------------------

    def trigger(self, slug: str, **parameters: Any) -> str:
        body: dict[str, Any] = {"branch": "main"}
        if parameters:
            body["parameters"] = parameters
        response = self.api.post(f"/project/{slug}/pipeline", json=body)
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    def downstream(self, upstream: str, slug: str = B, **parameters: Any) -> str:
        """A pipeline of ``slug`` triggered with ``upstream`` as its callback parameter, as
        ``circleback trigger`` would send it: its compiled config carries that id."""
        return self.trigger(slug, **{"triggering-pipeline-id": upstream, **parameters})

    def sent_parameters(self, pipeline_id: str) -> dict[str, Any]:
        """What the trigger sent (the emulator's own record: CircleCI's API never shows it)."""
        for p in self.emu.state_dump()["pipelines"]:
            if p["id"] == pipeline_id:
                return dict(p["sent_parameters"])
        raise AssertionError(f"no pipeline {pipeline_id}")

    def workflows(self, pipeline_id: str) -> list[dict[str, Any]]:
        return list(self.api.get(f"/pipeline/{pipeline_id}/workflow").json()["items"])

    def jobs(self, workflow_id: str) -> dict[str, dict[str, Any]]:
        items: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            params = {"page-token": token} if token else {}
            page = self.api.get(f"/workflow/{workflow_id}/job", params=params).json()
            items.extend(page["items"])
            token = page["next_page_token"]
            if token is None:
                return {j["name"]: j for j in items}

    def job_status(self, pipeline_id: str, name: str, workflow: str | None = None) -> str:
        for wf in self.workflows(pipeline_id):
            if workflow is None or wf["name"] == workflow:
                jobs = self.jobs(wf["id"])
                if name in jobs:
                    return str(jobs[name]["status"])
        raise AssertionError(f"no job {name}")

    def finish(self, slug: str, job: str, status: str = "success", pipeline_id: str = "") -> None:
        self.emu.finish_job_by_name(slug, job, status, pipeline_id=pipeline_id or None)

    def finish_all(self, pipeline_id: str, status: str = "success") -> None:
        """Finish every running build job of a pipeline (B's jobs "complete")."""
        for wf in self.workflows(pipeline_id):
            for job in self.jobs(wf["id"]).values():
                if job["status"] == "running":
                    self.emu.finish_job(job["id"], status)

    def upstream_on_hold(self, slug: str = A) -> str:
        """A pipeline of A that has built, "triggered", and now sits on its hold."""
        pid = self.trigger(slug)
        self.finish(slug, "build", pipeline_id=pid)
        self.finish(slug, "trigger", pipeline_id=pid)
        assert self.job_status(pid, "wait-for-triggered-pipeline") == "on_hold"
        return pid

    def requests(self) -> list[dict[str, Any]]:
        return [r for r in self.emu.request_log if not r["path"].startswith("/_emulator")]
