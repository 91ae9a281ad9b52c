"""Switches: where public evidence about CircleCI disagrees, or varies, each variant is one.

The defaults are what CircleCI is observed to do (``docs/emulator.md`` has the fidelity table
with the sources); the other values are the variants a client must also survive. Set them with
``Emulator(switches=...)``, the control API (``POST /_emulator/switches``) or
``circleback emulator --switch NAME=VALUE``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: The allowed values of each string-valued switch; the first is the default.
CHOICES: Mapping[str, tuple[str, ...]] = {
    # A trigger answers 201 ``pending`` and the pipeline is created later (observed), or
    # answers with the pipeline already ``created`` and its workflows in place (the old
    # emulator; kinder than CircleCI).
    "creation": ("async", "sync"),
    # ``trigger_parameters`` of a pipeline: absent (most captured pipelines), CircleCI's own
    # namespaces only (the rest), or the parameters as sent (never observed: kinder).
    "trigger_parameters": ("absent", "namespaces", "echo"),
    # Undeclared or mistyped trigger parameters: the pipeline is created, then ``errored``
    # (users report), the trigger answers 404 "Project not found" (docs say it may), or 400.
    "parameter_errors": ("errored", "not_found", "bad_request"),
    # ``next_page_token`` on the last page: null (the spec) or left out (reported).
    "last_page_token": ("null", "omit"),
    # Workflow and job timestamps in whole seconds, pipelines' with milliseconds (captured),
    # or every timestamp with milliseconds.
    "timestamps": ("observed", "millis"),
    # Keys with no value (``stopped_at``, ...) left out (captured) or sent as null.
    "empty_keys": ("absent", "null"),
    # Approval jobs as 2024-2025 captures have them (``approval_request_id``, ``job_number``,
    # ``started_at`` from when the hold began), or as 2020 captures do (none of the first
    # two, ``started_at`` null).
    "approval_jobs": ("current", "legacy"),
    # ``warnings: []`` on pipelines (the 2026 live spec requires it), or no such key.
    "pipeline_warnings": ("empty", "absent"),
}
#: Seconds-valued switches: how long after a trigger the pipeline leaves ``pending``, and how
#: long after that its workflows appear (on the emulator's clock).
DELAYS = ("creation_delay", "workflow_delay")


@dataclass(frozen=True)
class Switches:
    """One value per switch; see :data:`CHOICES` and :data:`DELAYS`. The defaults are what
    CircleCI is observed to do; ``creation_delay`` and ``workflow_delay`` default to 0 so
    that tests stay fast (the trigger still answers ``pending``): set them to see the
    seconds CircleCI takes (a public report needed about 5)."""

    creation: str = "async"
    trigger_parameters: str = "absent"
    parameter_errors: str = "errored"
    last_page_token: str = "null"  # noqa: S105  (a switch, not a secret)
    timestamps: str = "observed"
    empty_keys: str = "absent"
    approval_jobs: str = "current"
    pipeline_warnings: str = "empty"
    creation_delay: float = 0.0
    workflow_delay: float = 0.0

    def __post_init__(self) -> None:
        for name, choices in CHOICES.items():
            if getattr(self, name) not in choices:
                raise ValueError(
                    f"switch {name} must be one of {', '.join(choices)}, "
                    f"not {getattr(self, name)!r}"
                )
        for name in DELAYS:
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
                or value < 0
            ):
                raise ValueError(f"switch {name} must be a number of seconds >= 0, not {value!r}")

    def updated(self, changes: Mapping[str, Any]) -> Switches:
        """A copy with ``changes`` applied; ValueError names an unknown switch or bad value."""
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise ValueError(f"unknown switch(es): {', '.join(unknown)}")
        return dataclasses.replace(self, **dict(changes))

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def parse_assignment(text: str) -> tuple[str, Any]:
    """``NAME=VALUE`` from the command line; delays become floats. ValueError if malformed."""
    name, sep, value = text.partition("=")
    name = name.strip().replace("-", "_")
    if not sep or not name:
        raise ValueError(f"expected NAME=VALUE, got {text!r}")
    if name in DELAYS:
        try:
            return name, float(value)
        except ValueError:
            raise ValueError(f"switch {name} must be a number of seconds, not {value!r}") from None
    return name, value.strip()
