"""Logging set-up for the CLI only: the library logs through stdlib loggers and stays silent.

Output goes to stderr (stdout is for data such as ids and ``--json`` documents): one
readable line per event on a terminal, JSON lines under CI or ``--log-format json``.
Every event passes a redaction step, so the token cannot reach a log line even if a
message were to carry it.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any, TextIO

import structlog

REDACTED = "**********"


class _Redactor:
    """A structlog processor that replaces every known secret in every string value."""

    def __init__(self, secrets: Iterable[str]) -> None:
        self.secrets = [s for s in secrets if s]

    def scrub(self, value: Any) -> Any:
        if isinstance(value, str):
            for secret in self.secrets:
                value = value.replace(secret, REDACTED)
            return value
        if isinstance(value, (list, tuple)):
            return type(value)(self.scrub(v) for v in value)
        if isinstance(value, dict):
            return {k: self.scrub(v) for k, v in value.items()}
        return value

    def __call__(
        self, logger: Any, name: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        return {key: self.scrub(value) for key, value in event_dict.items()}


def _console(logger: Any, name: str, event_dict: MutableMapping[str, Any]) -> str:
    """``circleback: <event> (key=value …)`` with the hint, if any, on its own line."""
    level = str(event_dict.pop("level", "info"))
    event = str(event_dict.pop("event", ""))
    hint = event_dict.pop("hint", None)
    for key in ("logger", "timestamp", "_record", "_from_structlog"):
        event_dict.pop(key, None)
    prefix = "" if level in {"info", "debug"} else f"{level}: "
    extras = " ".join(f"{k}={v}" for k, v in event_dict.items())
    line = f"circleback: {prefix}{event}" + (f" ({extras})" if extras else "")
    if hint:
        line += f"\n  hint: {hint}"
    return line


def configure(
    *, verbose: bool, json_format: bool, secrets: Iterable[str], stream: TextIO | None = None
) -> None:
    """Route the ``circleback`` loggers to stderr through structlog's formatter."""
    redact = _Redactor(secrets)
    renderer: Any = structlog.processors.JSONRenderer() if json_format else _console
    pre_chain: list[Any] = [
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.ExtraAdder(),
    ]
    if json_format:
        pre_chain.append(structlog.processors.TimeStamper(fmt="iso", utc=True))
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=pre_chain,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, redact, renderer],
    )
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger("circleback")
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    root.propagate = False
