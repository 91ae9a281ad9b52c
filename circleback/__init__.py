"""circleback: a CircleCI pipeline triggers another, waits for it for free, acts on its result.

This module is the public surface of the library. Names are imported on first use (PEP
562), so ``import circleback`` stays cheap for the CLI's no-op paths::

    from circleback import CircleCIClient, TriggerRequest, trigger, approve

    with CircleCIClient(token=token) as client:
        record = trigger(client, TriggerRequest("gh/acme/b", upstream_pipeline_id=pid))
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Any

from circleback._version import __version__

if TYPE_CHECKING:
    from circleback.client import CircleCIClient, RetryPolicy
    from circleback.relay import (
        ApproveResult,
        Downstream,
        Outcome,
        PollPolicy,
        StatusReport,
        TriggerRequest,
        read_state,
        record_downstream,
        wait_for_downstream,
    )
    from circleback.relay.approve import approve
    from circleback.relay.trigger import trigger
    from circleback.settings import Settings, load_settings

# Silent unless the application configures logging (the CLI does).
logging.getLogger("circleback").addHandler(logging.NullHandler())

#: Where each public name lives; ``errors`` and ``models`` are modules.
_LAZY = {
    "ApproveResult": "circleback.relay",
    "CircleCIClient": "circleback.client",
    "Downstream": "circleback.relay",
    "Outcome": "circleback.relay",
    "PollPolicy": "circleback.relay",
    "RetryPolicy": "circleback.client",
    "Settings": "circleback.settings",
    "StatusReport": "circleback.relay",
    "TriggerRequest": "circleback.relay",
    "approve": "circleback.relay",
    "load_settings": "circleback.settings",
    "read_state": "circleback.relay",
    "record_downstream": "circleback.relay",
    "trigger": "circleback.relay",
    "wait_for_downstream": "circleback.relay",
}

__all__ = [
    "ApproveResult",
    "CircleCIClient",
    "Downstream",
    "Outcome",
    "PollPolicy",
    "RetryPolicy",
    "Settings",
    "StatusReport",
    "TriggerRequest",
    "__version__",
    "approve",
    "errors",
    "load_settings",
    "models",
    "read_state",
    "record_downstream",
    "trigger",
    "wait_for_downstream",
]


def __getattr__(name: str) -> Any:
    if name in {"errors", "models"}:
        return importlib.import_module(f"circleback.{name}")
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'circleback' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
