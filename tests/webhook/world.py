"""An in-process CircleCI for the receiver's tests: the emulator, its webhooks, the receiver.

The emulator delivers its webhooks through an httpx transport straight into the receiver's
ASGI app (Starlette's test client), and the receiver calls the emulator back through the
emulator's in-process transport: no sockets, no sleeps. ``settle`` waits for the delivery
thread to have sent everything (an event, not polling).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from circleback.client import CircleCIClient
from circleback.emulator import Emulator
from circleback.relay.discovery import RECORD_ARTIFACT
from circleback.serve.app import create_app
from circleback.serve.receiver import Rules
from circleback.serve.server import RECEIVER_RETRY
from circleback.serve.signature import sign
from circleback.webhook import install

CONFIGS = Path(__file__).parent / "configs"
TOKEN = "CCIPAT_webhook-t0ken-value"
SECRET = "whsec-0123456789abcdef-first"
HOST = "http://127.0.0.1"
URL = "http://127.0.0.1/webhook"
A = "gh/acme/a"
B = "gh/acme/b"
EVIL_A = "gh/evil/a"
HOLD = "wait-for-triggered-pipeline"
PROJECTS = {A: CONFIGS / "a.yml", B: CONFIGS / "b.yml", EVIL_A: CONFIGS / "a.yml"}


class Receiver:
    """A synchronous client for the receiver's ASGI app (httpx's ASGI transport, one loop
    per request), used by the tests and by the emulator's delivery thread alike."""

    def __init__(self, app: Any) -> None:
        self._app = app

    def request(
        self, method: str, path: str, *, content: bytes = b"", headers: Any = None
    ) -> httpx.Response:
        async def send() -> httpx.Response:
            transport = httpx.ASGITransport(app=self._app)
            async with httpx.AsyncClient(transport=transport, base_url=HOST) as client:
                response = await client.request(method, path, content=content, headers=headers)
                await response.aread()
                return response

        return asyncio.run(send())

    def get(self, path: str) -> httpx.Response:
        return self.request("GET", path)

    def post(self, path: str, *, content: bytes, headers: Any) -> httpx.Response:
        return self.request("POST", path, content=content, headers=headers)


class _IntoApp(httpx.BaseTransport):
    """Deliveries from the emulator's thread into the receiver's app."""

    def __init__(self, receiver: Receiver) -> None:
        self._receiver = receiver

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        answer = self._receiver.request(
            request.method, request.url.path, content=request.read(), headers=request.headers
        )
        return httpx.Response(answer.status_code, content=answer.content)


@dataclass
class World:
    emu: Emulator
    rules: Rules = field(default_factory=lambda: Rules(allow_projects=("gh/acme/*",)))
    secrets: tuple[str, ...] = (SECRET,)

    def __post_init__(self) -> None:
        self.client = CircleCIClient(
            token=TOKEN, host=HOST, transport=self.emu.transport(), retry=RECEIVER_RETRY
        )
        self.app = create_app(client=self.client, rules=self.rules, secrets=self.secrets)
        self.receiver = Receiver(self.app)
        self.emu.webhooks.transport = _IntoApp(self.receiver)
        self.emu.webhooks.sleep = lambda seconds: None
        self.api = httpx.Client(
            transport=self.emu.transport(),
            base_url=f"{HOST}/api/v2",
            headers={"Circle-Token": TOKEN},
        )

    def close(self) -> None:
        self.emu.webhooks.close()
        self.client.close()
        self.api.close()

    # -- setting the scene -----------------------------------------------------------------

    def install_webhook(self, slug: str = B, secret: str = SECRET) -> None:
        install(self.client, slug, url=URL, secret=secret)

    def trigger(self, slug: str, **parameters: Any) -> str:
        body: dict[str, Any] = {"branch": "main"}
        if parameters:
            body["parameters"] = parameters
        response = self.api.post(f"/project/{slug}/pipeline", json=body)
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    def pipeline(self, pipeline_id: str) -> dict[str, Any]:
        return dict(self.api.get(f"/pipeline/{pipeline_id}").json())

    def workflows(self, pipeline_id: str) -> list[dict[str, Any]]:
        return list(self.api.get(f"/pipeline/{pipeline_id}/workflow").json()["items"])

    def jobs(self, pipeline_id: str) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for wf in self.workflows(pipeline_id):
            for job in self.api.get(f"/workflow/{wf['id']}/job").json()["items"]:
                found[job["name"]] = job
        return found

    def hold(self, a_id: str) -> str:
        return str(self.jobs(a_id)[HOLD]["status"])

    def a_triggers_b(
        self, a_slug: str = A, *, record: str | None = None, b_slug: str = B
    ) -> tuple[str, str]:
        """A built, triggered B (passing its id), recorded it, and now holds.

        ``record`` overrides the pipeline id A's trigger record names (a B A did not trigger).
        """
        a_id = self.trigger(a_slug)
        self.emu.finish_job_by_name(a_slug, "build", "success", pipeline_id=a_id)
        b_id = self.trigger(b_slug, **{"triggering-pipeline-id": a_id})
        self.record(a_slug, a_id, [record or b_id])
        self.emu.finish_job_by_name(a_slug, "trigger", "success", pipeline_id=a_id)
        assert self.hold(a_id) == "on_hold"
        return a_id, b_id

    def record(self, a_slug: str, a_id: str, downstream: list[str]) -> None:
        """Store A's trigger record (the orb's artifact) on A's trigger job."""
        self.record_on_job(self.jobs(a_id)["trigger"]["id"], downstream)

    def record_on_job(self, job_id: str, downstream: list[str]) -> None:
        """Store a trigger record naming ``downstream`` on any job (a chain's middle)."""
        entries = []
        for pid in downstream:
            p = self.pipeline(pid)
            entries.append(
                {
                    "project_slug": p["project_slug"],
                    "pipeline_id": pid,
                    "number": p["number"],
                    "state": "created",
                    "url": "",
                }
            )
        document = json.dumps({"version": 1, "downstream": entries}).encode()
        self.emu.add_artifact(job_id, RECORD_ARTIFACT, document)

    def finish_b(self, b_id: str, status: str = "success") -> None:
        for job in self.jobs(b_id).values():
            if job["status"] == "running":
                self.emu.finish_job(job["id"], status)

    def settle(self) -> None:
        assert self.emu.webhooks.wait_idle(30)

    # -- deliveries by hand ----------------------------------------------------------------

    def post(self, event: Any, *, secret: str | None = SECRET, header: str | None = None) -> Any:
        body = json.dumps(event).encode()
        headers = {"content-type": "application/json"}
        if header is not None:
            headers["circleci-signature"] = header
        elif secret is not None:
            headers["circleci-signature"] = sign(body, secret)
        return self.receiver.post("/webhook", content=body, headers=headers)

    def approvals(self) -> int:
        return sum(
            1 for r in self.emu.request_log if r["method"] == "POST" and "/approve/" in r["path"]
        )


def event_for(world: World, b_id: str, *, status: str = "success", slug: str = B) -> dict[str, Any]:
    """A workflow-completed payload for B's first workflow, shaped as CircleCI's."""
    wf = world.workflows(b_id)[0]
    p = world.pipeline(b_id)
    return {
        "id": "3888f21b-eaa7-38e3-8f3d-75a63bba8895",
        "type": "workflow-completed",
        "happened_at": "2026-11-30T12:00:00.000Z",
        "webhook": {"id": "cf8c4fdd-0587-4da1-b4ca-4846e9640af9", "name": "circleback"},
        "project": {"id": "84996744-a854-4f5e-aea3-04e2851dc1d2", "name": "b", "slug": slug},
        "organization": {"id": "f22b6566-597d-46d5-ba74-99ef5bb3d85c", "name": "acme"},
        "workflow": {
            "id": wf["id"],
            "name": wf["name"],
            "status": status,
            "created_at": wf["created_at"],
            "stopped_at": "2026-11-30T12:00:00.000Z",
            "url": "https://app.circleci.com/pipelines/gh/acme/b/1/workflows/" + wf["id"],
        },
        "pipeline": {
            "id": b_id,
            "number": p["number"],
            "created_at": p["created_at"],
            "trigger": {"type": "api"},
        },
    }
