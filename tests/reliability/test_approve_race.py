"""Approvals exactly once: B pipelines racing to release the same hold, over loopback.

A barrier in the transport holds every approver until all of them have seen the hold
``on_hold`` and are about to approve, so the race is certain rather than likely: the
emulator's threaded server then takes the approvals at the same moment. Exactly one
approves; every other one reports the hold already released; all exit 0.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from circleback import _cli
from circleback.client import CircleCIClient
from circleback.emulator.server import EmulatorServer, make_server
from circleback.relay import Outcome, approve
from tests.relay.world import TOKEN, World

pytestmark = pytest.mark.loopback

HOLD = "wait-for-triggered-pipeline"


class RaceTransport(httpx.HTTPTransport):
    """The network, where the first ``parties`` approvals wait for each other.

    Shared by every approver, so a client closing it must not cut the others' requests
    off: only ``shut`` closes it.
    """

    def __init__(self, parties: int) -> None:
        super().__init__()
        self.barrier = threading.Barrier(parties, timeout=20)
        self._lock = threading.Lock()
        self._waiting = parties

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and "/approve/" in request.url.path:
            with self._lock:
                wait = self._waiting > 0
                self._waiting -= 1
            if wait:
                self.barrier.wait()
        return super().handle_request(request)

    def close(self) -> None:
        """Kept open while other approvers use it."""

    def shut(self) -> None:
        super().close()


@pytest.fixture
def server(world: World) -> Iterator[EmulatorServer]:
    with make_server(world.emu) as running:
        yield running


def approvals(world: World) -> list[dict[str, Any]]:
    return [r for r in world.requests() if r["method"] == "POST" and "/approve/" in r["path"]]


def json_documents(text: str) -> list[Any]:
    decoder = json.JSONDecoder()
    documents, index = [], 0
    while index < len(text.rstrip()):
        while text[index].isspace():
            index += 1
        document, index = decoder.raw_decode(text, index)
        documents.append(document)
    return documents


def test_two_b_pipelines_approving_at_once_through_the_cli(
    world: World,
    server: EmulatorServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    a = world.upstream_on_hold()
    bs = [world.downstream(a) for _ in range(2)]
    monkeypatch.setenv("CIRCLEBACK_HOST", server.url)
    transport = RaceTransport(2)
    monkeypatch.setattr(_cli, "RUNTIME", _cli.Runtime(transport=transport))
    world.emu.clear_request_log()
    capsys.readouterr()
    args = ["--log-format", "json", "approve", "--pipeline-id", a, "--json"]
    args += ["--allow-project", "gh/acme/*"]
    with ThreadPoolExecutor(2) as pool:
        codes = list(pool.map(lambda b: _cli.run([*args, "--downstream-pipeline-id", b]), bs))
    transport.shut()
    out, err = capsys.readouterr()
    assert codes == [0, 0], err
    outcomes = sorted(d["outcome"] for d in json_documents(out))
    assert outcomes == ["already_approved", "approved"]
    assert sorted(r["status"] for r in approvals(world)) == [202, 409]
    assert world.job_status(a, HOLD) == "success"
    assert TOKEN not in out + err


def test_eight_approvers_release_the_hold_exactly_once(
    world: World, server: EmulatorServer
) -> None:
    a = world.upstream_on_hold()
    bs = [world.downstream(a) for _ in range(8)]
    world.emu.clear_request_log()
    transport = RaceTransport(8)

    def approver(b: str) -> Outcome:
        with CircleCIClient(token=TOKEN, host=server.url, transport=transport) as client:
            return approve(
                client, a, allow_projects=["gh/acme/*"], downstream_pipeline_id=b
            ).outcome

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(approver, bs))
    transport.shut()
    assert outcomes.count(Outcome.APPROVED) == 1
    assert outcomes.count(Outcome.ALREADY_APPROVED) == 7
    assert sorted(r["status"] for r in approvals(world)) == [202] + [409] * 7
    assert world.job_status(a, HOLD) == "success"
    assert world.job_status(a, "check") == "running"
