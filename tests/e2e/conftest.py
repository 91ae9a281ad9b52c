"""Fixtures for the end-to-end tests: emulators served on loopback with the local executor.

Every job of these tests really runs: bash steps, and ``circleback`` processes calling the
emulator over HTTP. Waits are bounded by ``wait_idle`` (an event, not polling); the
timeouts are generous because a loaded CI machine is slow, not because jobs are.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from circleback.emulator import LocalCircleCI, run_locally

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
#: Seconds to wait for a whole scenario (it takes about 2 s).
IDLE_TIMEOUT = 60.0

UPSTREAM = "gh/acme/project-a"
DOWNSTREAM = "gh/acme/project-b"


def example(*parts: str) -> Path:
    """The config of an example project, e.g. ``example("fan-out", "project-c")``."""
    return EXAMPLES.joinpath(*parts, ".circleci", "config.yml")


@pytest.fixture
def start_local() -> Iterator[Callable[..., LocalCircleCI]]:
    """Start an emulator with an executor; everything started is stopped after the test."""
    with contextlib.ExitStack() as stack:

        def start(projects: Mapping[str, Path], **options: Any) -> LocalCircleCI:
            return stack.enter_context(run_locally(projects, **options))

        yield start


@pytest.fixture
def a_and_b() -> dict[str, Path]:
    return {UPSTREAM: example("project-a"), DOWNSTREAM: example("project-b")}
