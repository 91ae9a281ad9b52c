"""What the performance work must not change: order, errors, rules; and what it must keep out.

No timings here (they belong to ``benchmarks/``): concurrency is shown by requests in
flight at once, start-up hygiene by ``sys.modules``.
"""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from circleback import _logging, errors
from circleback.client import CircleCIClient, RetryPolicy
from circleback.emulator import Emulator
from circleback.relay import Downstream, Outcome, approve, wait_for_downstream
from circleback.settings import Settings

CONFIGS = Path(__file__).parent / "configs"
TOKEN = "CCIPAT_perf-t0ken"
A10, B = "gh/acme/a10", "gh/acme/b"


class _CountingTransport(httpx.BaseTransport):
    """Holds each request a moment and records the most requests in flight at once."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner
        self.in_flight = 0
        self.peak = 0
        self.lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        with self.lock:
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
        try:
            time.sleep(0.02)
            return self.inner.handle_request(request)
        finally:
            with self.lock:
                self.in_flight -= 1


@pytest.fixture
def emu() -> Emulator:
    return Emulator(projects={A10: CONFIGS / "a10.yml", B: CONFIGS / "b.yml"}, tokens=(TOKEN,))


@pytest.fixture
def api(emu: Emulator) -> Iterator[httpx.Client]:
    with httpx.Client(
        transport=emu.transport(),
        base_url="http://127.0.0.1/api/v2",
        headers={"Circle-Token": TOKEN},
    ) as client:
        yield client


def _client(transport: httpx.BaseTransport) -> CircleCIClient:
    return CircleCIClient(
        token=TOKEN,
        host="http://127.0.0.1",
        transport=transport,
        retry=RetryPolicy(max_attempts=1),
        sleep=lambda _: None,
    )


def _finished_b(api: httpx.Client, emu: Emulator, n: int) -> list[Downstream]:
    records = []
    for _ in range(n):
        pid = api.post(f"/project/{B}/pipeline", json={"branch": "main"}).json()["id"]
        emu.finish_job_by_name(B, "build-and-test", "success", pipeline_id=pid)
        number = api.get(f"/pipeline/{pid}").json()["number"]
        url = f"https://app.circleci.com/pipelines/{B}/{number}"
        records.append(Downstream(B, pid, number, "created", url))
    return records


def test_status_looks_at_pipelines_concurrently_and_keeps_their_order(
    api: httpx.Client, emu: Emulator
) -> None:
    records = _finished_b(api, emu, 6)
    transport = _CountingTransport(emu.transport())
    with _client(transport) as client:
        report = wait_for_downstream(client, list(reversed(records)))
    assert [p.pipeline_id for p in report.pipelines] == [r.pipeline_id for r in reversed(records)]
    assert [p.number for p in report.pipelines] == [r.number for r in reversed(records)]
    assert report.succeeded
    assert transport.peak > 1


def test_status_concurrency_of_one_is_sequential(api: httpx.Client, emu: Emulator) -> None:
    records = _finished_b(api, emu, 3)
    transport = _CountingTransport(emu.transport())
    with _client(transport) as client:
        assert wait_for_downstream(client, records, concurrency=1).succeeded
    assert transport.peak == 1


def test_status_propagates_an_error_from_any_pipeline(api: httpx.Client, emu: Emulator) -> None:
    records = _finished_b(api, emu, 5)
    emu.add_fault("status", status=404, path=records[3].pipeline_id, count=None)
    with _client(emu.transport()) as client, pytest.raises(errors.NotFound):
        wait_for_downstream(client, records)


def test_status_with_workflows_needs_one_request_per_pipeline(
    api: httpx.Client, emu: Emulator
) -> None:
    records = _finished_b(api, emu, 2)
    emu.clear_request_log()
    with _client(emu.transport()) as client:
        report = wait_for_downstream(client, records)
    assert report.pipelines[0].project_slug == B
    # One look per pipeline (its workflows show it was created), then each finished
    # workflow's jobs once, for the report (not_run jobs hide inside a success).
    paths = [r["path"] for r in emu.request_log]
    assert sum(p.endswith("/workflow") for p in paths) == 2
    assert all(p.endswith(("/workflow", "/job")) for p in paths)
    assert sum(p.endswith("/job") for p in paths) == 2  # B has one workflow


def test_approve_searches_workflows_still_going_first(api: httpx.Client, emu: Emulator) -> None:
    """Ten workflows, the hold in the oldest; the finished ones cost no job list."""
    pid = api.post(f"/project/{A10}/pipeline", json={"branch": "main"}).json()["id"]
    emu.finish_job_by_name(A10, "build", "success", pipeline_id=pid)
    emu.finish_job_by_name(A10, "trigger", "success", pipeline_id=pid)
    for _ in range(9):
        emu.finish_job_by_name(A10, "lint", "success", pipeline_id=pid)
    b = api.post(
        f"/project/{B}/pipeline",
        json={"branch": "main", "parameters": {"triggering-pipeline-id": pid}},
    ).json()["id"]
    emu.clear_request_log()
    with _client(emu.transport()) as client:
        result = approve(client, pid, allow_projects=["gh/acme/*"], downstream_pipeline_id=b)
    assert result.outcome is Outcome.APPROVED
    assert result.workflow is not None
    assert result.workflow.name == "main"
    # workflows, the hold workflow's jobs, its finished build jobs' artifacts (A's
    # record), B's config (the link), the approval: no finished workflow's job list.
    paths = [r["path"] for r in emu.request_log]
    assert sum(p.endswith("/job") for p in paths) == 1
    assert sum(p.endswith("/config") for p in paths) == 1
    with _client(emu.transport()) as client:
        again = approve(client, pid, allow_projects=["gh/acme/*"], downstream_pipeline_id=b)
    assert again.outcome is Outcome.ALREADY_APPROVED


_HYGIENE = """
import sys
from circleback import _cli
_cli._skip_httpx_cli()
code = _cli.run(["approve", "--pipeline-id", ""])
def loaded():
    return " ".join(sorted(m for m, module in sys.modules.items() if module is not None))
noop = loaded()
import circleback.client, circleback.relay.approve, circleback.relay.status
print(code)
print(noop)
print(loaded())
"""
_NEVER = ("circleback.emulator", "yaml", "rich", "pydantic_settings", "structlog", "click")


def test_approve_imports_nothing_it_does_not_use() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _HYGIENE], capture_output=True, text=True, check=True
    )
    code, noop, full = done.stdout.splitlines()
    assert code == "0"
    for line, forbidden in ((noop, (*_NEVER, "httpx")), (full, _NEVER)):
        loaded = line.split()
        assert not [m for m in loaded if m.split(".")[0] in forbidden or m in forbidden]
        assert "circleback.emulator" not in loaded


def test_log_lines_keep_their_shape_and_redaction() -> None:
    stream = io.StringIO()
    _logging.configure(verbose=False, json_format=True, secrets=["s3cret"], stream=stream)
    try:
        logging.getLogger("circleback.x").warning(
            "saw %s", "s3cret", extra={"job": "j", "hint": "h s3cret"}
        )
    finally:
        logging.getLogger("circleback").handlers.clear()
    event = json.loads(stream.getvalue())
    assert list(event) == ["event", "level", "logger", "job", "hint", "timestamp"]
    assert event["event"] == "saw **********"
    assert event["hint"] == "h **********"
    assert event["timestamp"].endswith("Z")


def test_settings_read_the_environment_as_before(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CIRCLEBACK_TOKEN", "CIRCLE_TOKEN", "CIRCLECI_API_KEY", "CIRCLEBACK_HOST"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("circle_token", "lower")  # names match case-insensitively
    monkeypatch.setenv("CIRCLEBACK_HOST", "")  # empty is unset
    settings = Settings()
    assert settings.token is not None
    assert settings.token.get_secret_value() == "lower"
    assert settings.host == "https://circleci.com"
    assert Settings(host="http://127.0.0.1:1").host == "http://127.0.0.1:1"
