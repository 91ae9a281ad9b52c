"""What the performance work must not change: order, errors, rules; and what it must keep out.

No timings here (they belong to ``benchmarks/``): concurrency is shown by requests in
flight at once, start-up hygiene by ``sys.modules``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from circleback import errors
from circleback.client import CircleCIClient, RetryPolicy
from circleback.emulator import Emulator
from circleback.relay import Downstream, Outcome, approve, wait_for_downstream

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


_LIGHT = """
import atexit, json, sys
from circleback import _cli
atexit.register(lambda: print(json.dumps(sorted(
    m for m, module in sys.modules.items() if module is not None)), file=sys.stderr))
_cli.main()
"""
#: What a light path must not import (the issue's list, plus what they would drag in).
_HEAVY = ("httpx", "pydantic", "pydantic_settings", "structlog", "rich", "click", "ssl", "yaml")


def _modules_after(*args: str, env: dict[str, str] | None = None) -> tuple[int, set[str]]:
    done = subprocess.run(
        [sys.executable, "-c", _LIGHT, *args],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", **(env or {})},
    )
    return done.returncode, set(json.loads(done.stderr.splitlines()[-1]))


@pytest.mark.parametrize(
    "args",
    [
        ["--version"],
        ["--help"],
        ["approve", "--help"],
        ["status", "--help"],
        ["approve"],
        ["approve", "--pipeline-id", ""],
        ["approve", "--pipeline-id", " ", "--job-name", "hold", "--allow-project", "gh/a/*"],
        ["--log-format", "json", "approve", "--json"],
    ],
)
def test_light_paths_import_no_http_settings_or_logging_stack(args: list[str]) -> None:
    code, loaded = _modules_after(*args, env={"CIRCLEBACK_TOKEN": TOKEN + "-0123456789"})
    assert code == 0
    assert not sorted(m for m in loaded if m.split(".")[0] in _HEAVY)


_FULL = """
import sys
from circleback import _cli
_cli._skip_httpx_cli()  # as main() does
from circleback.emulator import Emulator
from pathlib import Path
configs = Path(sys.argv[1])
emu = Emulator(projects={"gh/acme/b": configs / "b.yml"})
before = set(sys.modules)
_cli.RUNTIME = _cli.Runtime(transport=emu.transport())
code = _cli.run(["--log-format", "json", "-v", "status", "--pipeline-id",
                 "5034460f-c7c4-4c43-9457-de07e2029e7b"])
print(code)
print(" ".join(sorted(m for m, mod in sys.modules.items() if mod is not None)))
"""


def test_a_command_that_calls_the_api_loads_the_stack_without_rich() -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "CIRCLEBACK_TOKEN": TOKEN + "-0123456789",
        "CIRCLEBACK_HOST": "http://127.0.0.1",
    }
    done = subprocess.run(
        [sys.executable, "-c", _FULL, str(CONFIGS)], capture_output=True, text=True, env=env
    )
    code, modules = done.stdout.splitlines()
    loaded = set(modules.split())
    assert code == "3"  # the pipeline does not exist: the API answered 404
    assert {"httpx", "pydantic_settings", "structlog"} <= loaded
    assert not [m for m in loaded if m.split(".")[0] in {"rich", "click"}]
    assert '"logger": "circleback.client"' in done.stderr  # -v: the request, as JSON


_TLS = """
import ssl, sys
built = []
real = ssl.create_default_context
ssl.create_default_context = lambda *a, **k: built.append(1) or real(*a, **k)
from circleback.client import CircleCIClient
with CircleCIClient(token="t" * 40, host=sys.argv[1]) as client:
    pass
print(bool(built))
"""


@pytest.mark.parametrize(
    ("host", "loads_certificates"),
    [("http://127.0.0.1:9", False), ("http://localhost:9", False), ("https://circleci.com", True)],
)
def test_a_plain_http_loopback_client_builds_no_tls_context(
    host: str, loads_certificates: bool
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _TLS, host], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == str(loads_certificates)


def test_a_loopback_client_still_verifies_https_it_is_sent_to() -> None:
    """An artifact URL on https gets a verifying transport, built when first used."""
    with CircleCIClient(token="t" * 40, host="http://127.0.0.1:9") as client:
        transport = client._http._transport_for_url(httpx.URL("https://x.circle-artifacts.com/a"))
        assert not isinstance(transport, httpx.HTTPTransport)  # deferred until used
        inner = transport._build()  # type: ignore[attr-defined]
        pool = inner._pool
        assert pool._ssl_context.verify_mode.name == "CERT_REQUIRED"
        assert pool._ssl_context.cert_store_stats()["x509_ca"] > 0


def test_help_still_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    """Only the command that runs is built; a listing needs them all, and gets them."""
    from circleback import _cli

    assert _cli.run(["--help"]) == 0
    out = capsys.readouterr().out
    for name in ("trigger", "approve", "status", "sweep", "trace", "emulator", "demo", "orb"):
        assert f" {name} " in out


@pytest.mark.parametrize(
    "args", [["nosuch"], ["--log-format", "json", "nosuch"], ["-v", "orb", "nosuch"]]
)
def test_an_unknown_command_is_still_typers_usage_error(
    capsys: pytest.CaptureFixture[str], args: list[str]
) -> None:
    from circleback import _cli

    assert _cli.run(args) == errors.EXIT_USAGE
    assert "No such command 'nosuch'" in capsys.readouterr().err
