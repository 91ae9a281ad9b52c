"""Hints built from what CircleCI said, so each error points at the fix that applies.

CircleCI reports a bad trigger in several ways (observed-behaviour.md): a created pipeline
that errors with "Unexpected argument(s): NAME" (undeclared parameter) or a type error
naming the parameter; a 400; or a 404 "Project not found", which is also what a token that
cannot see the project, and any project API token, gets.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from circleback.client import ParameterValue

_TYPE_WORDS = re.compile(r"\b(type|expected|invalid value|must be|got)\b", re.IGNORECASE)


def unexpected_names(message: str) -> list[str]:
    """The parameter names in an ``Unexpected argument(s): a, b`` message, if any."""
    match = re.search(r"Unexpected argument\(s\):\s*(.+)", message)
    if match is None:
        return []
    return [n.strip(" '\"`.") for n in match.group(1).split(",") if n.strip(" '\"`.")]


def parameter_hint(
    messages: Iterable[str],
    parameters: Mapping[str, ParameterValue],
    project: str,
    callback_parameter: str,
) -> str | None:
    """A hint for a trigger CircleCI refused or errored, naming the parameter at fault.

    None when the messages name no parameter that was sent.
    """
    text = " ".join(messages)
    undeclared = [n for n in unexpected_names(text) if n in parameters] or unexpected_names(text)
    if undeclared:
        names = ", ".join(repr(n) for n in undeclared)
        extra = (
            f' ({callback_parameter!r} as type: string, default: "")'
            if callback_parameter in undeclared
            else ""
        )
        return (
            f"{project}'s config does not declare {names}: add it under 'parameters:' "
            f"there{extra}, or stop sending it."
        )
    if _TYPE_WORDS.search(text):
        for name, value in parameters.items():
            if not re.search(rf"(?<![A-Za-z0-9_-]){re.escape(name)}(?![A-Za-z0-9_-])", text):
                continue
            if isinstance(value, (bool, int)):
                kind = "boolean" if isinstance(value, bool) else "integer"
                return (
                    f"{name!r} was sent as an {kind}"
                    if kind == "integer"
                    else f"{name!r} was sent as a {kind}"
                ) + (
                    f" but {project} declares another type: to send a string, write "
                    f"--parameter {name}:={_plain(value)}."
                )
            return (
                f"{name!r} was sent as a string but {project} declares another type: write "
                f"--parameter {name}=VALUE with true/false or an integer (typed), or fix "
                "the declaration."
            )
    return None


def not_found_hint(
    project: str, parameters: Mapping[str, ParameterValue], *, project_visible: bool | None
) -> str:
    """A hint for a trigger answered 404 "Project not found".

    ``project_visible`` is whether the same token can read the project's pipelines: then
    the 404 is about the parameters (CircleCI's docs say an undeclared one may give it).
    """
    names = ", ".join(repr(n) for n in parameters) or "none"
    if project_visible:
        return (
            f"This token can read {project}'s pipelines, so the 404 means a parameter its "
            f"config does not declare, or declares with another type (sent: {names}). "
            "Declare each under 'parameters:' in that config."
        )
    return (
        f"Check the slug {project!r}, and that the token's user can see the project. "
        "CircleCI answers 404 to project API tokens on API v2: use a personal API token. "
        f"An undeclared parameter can also give this 404 (sent: {names})."
    )


def token_hint() -> str:
    """The hint for a 404 on something the token should see (a project token, mostly)."""
    return (
        "CircleCI answers 404 when the token cannot see it: API v2 takes personal API "
        "tokens only (a project API token always gets 404), so check the token's kind, "
        "then the id or slug."
    )


def _plain(value: ParameterValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
