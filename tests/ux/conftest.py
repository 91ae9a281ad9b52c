"""The newcomer's view: the same in-process CircleCI world as the relay's CLI tests."""

from __future__ import annotations

from tests.relay.conftest import world

__all__ = ["world"]
