"""Fixtures for the orb tests; the helpers live in orb_helpers.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from orb_helpers import Sandbox, make_sandbox


@pytest.fixture
def sandbox(tmp_path: Path) -> Sandbox:
    """Fakes for circleback and for every installer; none of the real ones reachable."""
    return make_sandbox(tmp_path)
