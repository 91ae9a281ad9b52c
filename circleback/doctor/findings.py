"""What doctor found: each finding, how the findings make an exit code, and the report."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from circleback import errors
from circleback.settings import HOST_VARIABLE


class Level(str, Enum):
    """How a finding stands."""

    OK = "ok"
    WARN = "warn"
    """Works, but worth knowing (or a step a person must take)."""
    FAIL = "fail"
    """Will fail: a configuration to fix (exit 2)."""
    UNKNOWN = "unknown"
    """Could not tell: the API or network did not answer (exit 3 when nothing failed)."""


@dataclass(frozen=True)
class Finding:
    """One thing doctor checked."""

    check: str
    """What was checked: ``host``, ``token``, ``access``, ``callback-parameter``,
    ``callback``, ``callback-runs``, ``hold``, ``trigger``, ``allow-list`` or
    ``definition-id``."""
    subject: str
    """What it was checked on: a variable name or a project slug."""
    level: Level
    message: str
    """What was found, in one sentence."""
    fix: str | None = None
    """What to do about it; None when nothing needs doing."""

    def to_json(self) -> dict[str, Any]:
        """The finding as a JSON object (``doctor --json``)."""
        return {
            "check": self.check,
            "subject": self.subject,
            "level": self.level.value,
            "message": self.message,
            "fix": self.fix,
        }


def exit_code(findings: Sequence[Finding]) -> int:
    """2 when anything fails, else 3 when anything could not be told, else 0."""
    levels = {f.level for f in findings}
    if Level.FAIL in levels:
        return errors.EXIT_USAGE
    if Level.UNKNOWN in levels:
        return errors.EXIT_API
    return errors.EXIT_OK


def unknown(check: str, subject: str, exc: errors.CirclebackError, what: str = "") -> Finding:
    about = f" reading {what}" if what else ""
    return Finding(
        check,
        subject,
        Level.UNKNOWN,
        f"Cannot tell: the API answered{about} with an error: {exc.message}",
        exc.hint or f"Check {HOST_VARIABLE} and the network, then run doctor again.",
    )


def render(findings: Sequence[Finding]) -> str:
    """One line per finding, its fix indented below; the verdict last."""
    marks = {Level.OK: "ok", Level.WARN: "warn", Level.FAIL: "FAIL", Level.UNKNOWN: "?"}
    lines = []
    for f in findings:
        lines.append(f"{marks[f.level]:5} {f.check:18} {f.message}")
        if f.fix:
            lines.append(f"{'':24}fix: {f.fix}")
    code = exit_code(findings)
    failed = sum(1 for f in findings if f.level is Level.FAIL)
    if code == errors.EXIT_USAGE:
        lines.append(f"{failed} problem{'s' if failed != 1 else ''} to fix before this works.")
    elif code == errors.EXIT_API:
        lines.append("Some checks could not tell; nothing failed.")
    else:
        lines.append("No problem found.")
    return "\n".join(lines)
