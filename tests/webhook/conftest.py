"""Fixtures for the webhook receiver's tests.

Every test runs on each ``trigger_parameters`` variant the emulator models (absent,
CircleCI's namespaces only, an echo of the parameters): the receiver must find and prove A
without ever being handed B's parameters.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

pytest.importorskip("starlette", reason="the receiver needs the serve extra (starlette)")

from circleback.emulator import Emulator
from circleback.emulator.switches import CHOICES
from tests.webhook.world import PROJECTS, TOKEN, World


@pytest.fixture(params=CHOICES["trigger_parameters"])
def world(request: pytest.FixtureRequest) -> Iterator[World]:
    emu = Emulator(
        projects=PROJECTS, tokens=(TOKEN,), switches={"trigger_parameters": request.param}
    )
    w = World(emu)
    yield w
    w.close()
