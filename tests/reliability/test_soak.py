"""A short, bounded soak of the emulator (``benchmarks/soak.py``) as a test.

Four client threads for two seconds over loopback: no 5xx, no lost or duplicated
pipelines, every hold approved exactly once. Throughput is printed, not asserted.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

pytestmark = pytest.mark.loopback

SOAK = Path(__file__).parents[2] / "benchmarks" / "soak.py"


def load_soak() -> ModuleType:
    spec = importlib.util.spec_from_file_location("soak", SOAK)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["soak"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_a_short_soak_loses_and_duplicates_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    result = load_soak().run_soak(seconds=2.0, threads=4)
    assert result.problems == []
    assert result.cycles > 0
    with capsys.disabled():
        print(f"\nsoak: {result.requests_per_second:.0f} requests/s, {result.cycles} cycles")
