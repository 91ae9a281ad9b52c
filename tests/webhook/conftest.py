"""Fixtures for the webhook receiver's tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

pytest.importorskip("starlette", reason="the receiver needs the serve extra (starlette)")

from circleback.emulator import Emulator
from tests.webhook.world import PROJECTS, TOKEN, World


@pytest.fixture
def world() -> Iterator[World]:
    w = World(Emulator(projects=PROJECTS, tokens=(TOKEN,)))
    yield w
    w.close()
