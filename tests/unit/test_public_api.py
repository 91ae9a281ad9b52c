"""The package's public surface: every name in ``__all__`` resolves, and the list is sorted."""

from __future__ import annotations

import subprocess
import sys

import pytest

import circleback


def test_all_is_sorted_and_every_name_resolves() -> None:
    assert circleback.__all__ == sorted(circleback.__all__)
    for name in circleback.__all__:
        assert getattr(circleback, name) is not None


def test_unknown_names_are_attribute_errors() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = circleback.nope  # type: ignore[attr-defined]


def test_public_names_are_the_implementations() -> None:
    from circleback.client import CircleCIClient
    from circleback.relay import trigger

    assert circleback.CircleCIClient is CircleCIClient
    assert circleback.trigger is trigger
    assert circleback.errors.ConfigurationError.exit_code == 2


def test_importing_the_package_imports_no_client() -> None:
    code = "import sys, circleback; print('httpx' in sys.modules, 'pydantic' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
