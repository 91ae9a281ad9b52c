"""Redaction of the API token from everything circleback prints or writes.

The CLI registers the token it actually loaded (and, before settings are read, the one the
environment holds by the same rules), so a token echoed back in API data cannot reach
stdout, stderr, a log line, the JUnit report or the state file. Only exact occurrences are
replaced: text that does not contain the token is returned unchanged, and tokens too short
to be real are refused before they get here (``circleback.settings``).

Process-wide on purpose: the token is process-wide too, and every writer must see it
without threading it through every call. A library user who registers nothing gets text
back untouched.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

REDACTED = "**********"
#: The token variables, in order (``circleback.settings.TOKEN_VARIABLES``, without
#: importing pydantic-settings on paths that never read settings).
TOKEN_VARIABLES = ("CIRCLEBACK_TOKEN", "CIRCLE_TOKEN", "CIRCLECI_API_KEY")
#: Shorter than any token CircleCI issues (40 hex characters, or ``CCIPAT_…``), long
#: enough that replacing it cannot hit ordinary words. Settings refuse shorter tokens.
MIN_TOKEN_LENGTH = 16
_secrets: list[str] = []


def register(secret: str) -> None:
    """Redact ``secret`` (surrounding whitespace stripped) from now on.

    A value shorter than ``MIN_TOKEN_LENGTH`` is ignored: settings refuse it, so it is
    never sent, and replacing it would mangle ordinary text (``t`` in ``not``).
    """
    value = secret.strip()
    if len(value) < MIN_TOKEN_LENGTH:
        return
    escaped = json.dumps(value, ensure_ascii=False)[1:-1]  # as it appears inside JSON
    for form in (value, escaped):
        if form not in _secrets:
            _secrets.append(form)
    _secrets.sort(key=len, reverse=True)  # longest first: a form may contain another


def register_from_environment(environ: Mapping[str, str] | None = None) -> None:
    """Register the token the environment holds: the first token variable not blank."""
    env = os.environ if environ is None else environ
    for name in TOKEN_VARIABLES:
        value = env.get(name, "")
        if value.strip():
            register(value)
            return


def clear() -> None:
    """Forget every registered secret (tests, and a CLI run in-process more than once)."""
    _secrets.clear()


def redact(text: str) -> str:
    """``text`` with every registered secret replaced by ``**********``."""
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


def redact_value(value: Any) -> Any:
    """Redact every string inside ``value`` (dicts, lists and tuples are walked)."""
    if not _secrets:
        return value
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {redact_value(k): redact_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(redact_value(v) for v in value)
    if isinstance(value, BaseException):
        return redact(str(value))
    return value
