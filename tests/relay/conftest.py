"""Fixtures for the relay's end-to-end tests: a World per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from circleback import _cli
from circleback.emulator import Emulator
from tests.relay.world import HOST, PROJECTS, TOKEN, FakeTime, WallClock, World


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Iterator[World]:
    for name in (
        "CIRCLEBACK_TOKEN",
        "CIRCLE_TOKEN",
        "CIRCLECI_API_KEY",
        "CI",
        "CIRCLE_PIPELINE_ID",
        "CIRCLEBACK_ALLOW_PROJECTS",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CIRCLEBACK_TOKEN", TOKEN)
    monkeypatch.setenv("CIRCLEBACK_HOST", HOST)
    fake = FakeTime()
    emu = Emulator(projects=PROJECTS, tokens=(TOKEN,), clock=WallClock(), sleep=fake.sleep)
    monkeypatch.setattr(
        _cli, "RUNTIME", _cli.Runtime(transport=emu.transport(), sleep=fake.sleep, clock=fake.clock)
    )
    w = World(emu=emu, time=fake, capsys=capsys)
    yield w
    w.api.close()
