"""Fixtures: an emulator with the fixture projects, a fake clock and sleep, and clients."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from circleback.emulator import Emulator, JobRun
from tests.emulator.helpers import BASE_URL, PROJECTS, TOKEN, Api, FakeClock, FakeSleep


@pytest.fixture
def fake_sleep() -> FakeSleep:
    return FakeSleep()


@pytest.fixture
def started() -> list[JobRun]:
    return []


@pytest.fixture
def make_emulator(fake_sleep: FakeSleep, started: list[JobRun]) -> Callable[..., Emulator]:
    def make(**overrides: Any) -> Emulator:
        options: dict[str, Any] = {
            "projects": PROJECTS,
            "tokens": (TOKEN,),
            "clock": FakeClock(),
            "sleep": fake_sleep,
            "on_job_start": started.append,
        }
        options.update(overrides)
        return Emulator(**options)

    return make


@pytest.fixture
def emu(make_emulator: Callable[..., Emulator]) -> Emulator:
    return make_emulator()


@pytest.fixture
def client(emu: Emulator) -> Iterator[httpx.Client]:
    with httpx.Client(
        transport=emu.transport(), base_url=BASE_URL, headers={"Circle-Token": TOKEN}
    ) as c:
        yield c


@pytest.fixture
def control(emu: Emulator) -> Iterator[httpx.Client]:
    """A client for the control API: no token (none is needed in-process); POSTs say JSON."""
    with httpx.Client(
        transport=emu.transport(),
        base_url="http://127.0.0.1/_emulator",
        headers={"Content-Type": "application/json"},
    ) as c:
        yield c


@pytest.fixture
def api(client: httpx.Client) -> Api:
    return Api(client)
