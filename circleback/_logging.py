"""Logging set-up for the CLI only: the library logs through stdlib loggers and stays silent.

Output goes to stderr (stdout is for data such as ids and ``--json`` documents): one
readable line per event on a terminal, JSON lines under CI or ``--log-format json``.
Every event passes a redaction step, so the token cannot reach a log line even if a
message were to carry it, and an escaping step (``circleback._text.printable``): messages
carry API text (CircleCI's error messages, workflow names), and a newline, CR or ESC in it
must not forge or hide a line of the log.

A plain ``logging.Formatter`` does this. structlog did it before, as a formatter only, and
importing it (it imports rich) cost every command about 55 ms of start-up; the output is
unchanged: the same keys in the same order.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable, MutableMapping
from datetime import datetime, timezone
from typing import Any, TextIO

from circleback._text import printable

REDACTED = "**********"
#: Attributes every LogRecord has; anything else on a record came from ``extra=``.
_RECORD_KEYS = frozenset(logging.LogRecord("name", 0, "pathname", 0, "msg", (), None).__dict__)


class _Redactor:
    """Replaces every known secret in every string value of an event."""

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

    def __call__(self, event_dict: MutableMapping[str, Any]) -> dict[str, Any]:
        return {key: self.scrub(value) for key, value in event_dict.items()}


def _printable(value: Any) -> Any:
    """Every string in an event escaped (``printable``): API text never breaks a log line."""
    if isinstance(value, str):
        return printable(value)
    if isinstance(value, (list, tuple)):
        return type(value)(_printable(v) for v in value)
    if isinstance(value, dict):
        return {k: _printable(v) for k, v in value.items()}
    return value


def _console(event_dict: MutableMapping[str, Any]) -> str:
    """``circleback: <event> (key=value …)`` with the hint, if any, on its own line."""
    level = str(event_dict.pop("level", "info"))
    event = str(event_dict.pop("event", ""))
    hint = event_dict.pop("hint", None)
    for key in ("logger", "timestamp"):
        event_dict.pop(key, None)
    prefix = "" if level in {"info", "debug"} else f"{level}: "
    extras = " ".join(f"{k}={v}" for k, v in event_dict.items())
    line = f"circleback: {prefix}{event}" + (f" ({extras})" if extras else "")
    if hint:
        line += f"\n  hint: {hint}"
    return line


def _json(event_dict: MutableMapping[str, Any]) -> str:
    return json.dumps(event_dict, default=repr, ensure_ascii=False)


class _Formatter(logging.Formatter):
    """One event per record: message, level, logger, ``extra=`` fields, then a renderer."""

    def __init__(self, *, json_format: bool, secrets: Iterable[str]) -> None:
        super().__init__()
        self._json_format = json_format
        self._redact = _Redactor(secrets)

    def format(self, record: logging.LogRecord) -> str:
        event: dict[str, Any] = {"event": record.getMessage()}
        if record.exc_info:
            event["exc_info"] = record.exc_info
        if record.stack_info:
            event["stack_info"] = record.stack_info
        event["level"] = record.levelname.lower()
        event["logger"] = record.name
        for key, value in record.__dict__.items():
            if key not in _RECORD_KEYS:
                event[key] = value
        if self._json_format:
            stamp = datetime.now(tz=timezone.utc).isoformat().replace("+00:00", "Z")
            event["timestamp"] = stamp
        event = _printable(self._redact(event))
        return _json(event) if self._json_format else _console(event)


def configure(
    *, verbose: bool, json_format: bool, secrets: Iterable[str], stream: TextIO | None = None
) -> None:
    """Route the ``circleback`` loggers to stderr through our formatter."""
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(_Formatter(json_format=json_format, secrets=secrets))
    root = logging.getLogger("circleback")
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    root.propagate = False
