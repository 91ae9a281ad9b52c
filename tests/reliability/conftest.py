"""Fixtures for the reliability suite: the relay's World, on an emulator that keeps real time.

``tests.relay.world`` gives the CLI an in-process emulator and fake time. The one change
here is the emulator's clock: trigger reconciliation judges "created since this attempt
began" against the wall clock, so the emulator must stamp pipelines in real time (kept
strictly increasing, and shiftable to make pipelines that look old).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from circleback import _cli
from circleback.emulator import Emulator
from tests.relay.world import HOST, PROJECTS, TOKEN, FakeTime, World

TOKEN_VARIABLES = (
    "CIRCLEBACK_TOKEN",
    "CIRCLE_TOKEN",
    "CIRCLECI_API_KEY",
    "CI",
    "CIRCLE_PIPELINE_ID",
    "CIRCLEBACK_ALLOW_PROJECTS",
)


class RealClock:
    """UTC now, never repeating a reading, moved by ``shift`` to fake an older pipeline."""

    def __init__(self) -> None:
        self.shift = timedelta(0)
        self._last = datetime.min.replace(tzinfo=timezone.utc)
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            now = datetime.now(timezone.utc) + self.shift
            self._last = max(now, self._last + timedelta(microseconds=1))
            return self._last


def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in TOKEN_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CIRCLEBACK_TOKEN", TOKEN)
    monkeypatch.setenv("CIRCLEBACK_HOST", HOST)


@pytest.fixture
def clock() -> RealClock:
    return RealClock()


@pytest.fixture
def world(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], clock: RealClock
) -> Iterator[World]:
    clean_environment(monkeypatch)
    fake = FakeTime()
    emu = Emulator(projects=PROJECTS, tokens=(TOKEN,), clock=clock, sleep=fake.sleep)
    monkeypatch.setattr(
        _cli, "RUNTIME", _cli.Runtime(transport=emu.transport(), sleep=fake.sleep, clock=fake.clock)
    )
    w = World(emu=emu, time=fake, capsys=capsys)
    yield w
    w.api.close()


class Wire(httpx.BaseTransport):
    """Record every request that leaves the client, then pass it on."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner
        self.requests: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.inner.handle_request(request)


@pytest.fixture
def wire(world: World, monkeypatch: pytest.MonkeyPatch) -> Wire:
    recorder = Wire(world.emu.transport())
    runtime = _cli.Runtime(transport=recorder, sleep=world.time.sleep, clock=world.time.clock)
    monkeypatch.setattr(_cli, "RUNTIME", runtime)
    return recorder
