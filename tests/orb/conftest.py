"""Fixtures for the orb tests; the helpers live in orb_helpers.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from orb_helpers import SHELLS, Sandbox, make_sandbox


@pytest.fixture(params=sorted(SHELLS))
def shell(request: pytest.FixtureRequest) -> str:
    """Each shell CircleCI may run a step in; a test using it runs once per shell."""
    return str(request.param)


@pytest.fixture
def sandbox(tmp_path: Path, shell: str) -> Sandbox:
    """Fakes for circleback and for every installer; none of the real ones reachable."""
    return make_sandbox(tmp_path, shell)
