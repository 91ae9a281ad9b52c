"""'Did you mean …?' for project slugs people write the way they see them elsewhere.

A repository URL (``https://github.com/acme/b.git``, ``git@github.com:acme/b``), a
CircleCI web address (``app.circleci.com/pipelines/github/acme/b/12``), a slug without
its provider (``acme/b``), with a stray slash (``gh/acme/b/``) or an upper-case provider
(``GH/acme/b``): each is refused, and the refusal names the slug that was probably meant.
Only a suggestion that is itself a valid slug is offered.
"""

from __future__ import annotations

import re

_HOSTS = {"github.com": "gh", "www.github.com": "gh", "bitbucket.org": "bb"}
_PROVIDERS = {"gh", "github", "bb", "bitbucket", "circleci"}
_APP = re.compile(r"^(?:app\.)?circleci\.com/(?:pipelines|projects|project)/", re.IGNORECASE)


def suggest_slug(value: str) -> str | None:
    """The slug ``value`` probably meant, or None when there is no good guess."""
    from circleback.errors import ConfigurationError
    from circleback.validation import parse_project_slug

    text = value.strip()
    text = re.sub(r"^[a-z+]+://", "", text, flags=re.IGNORECASE)
    text = re.sub(r"^[^@/\s]+@([^:/\s]+):", r"\1/", text)  # git@github.com:acme/b
    text = text.split("?", 1)[0].split("#", 1)[0]
    text, from_app = _APP.subn("", text)
    parts = [p for p in text.split("/") if p]
    if len(parts) > 3 and not from_app:
        return None  # only a web address may carry more (a pipeline number, a workflow)
    if parts and parts[0].lower() in _HOSTS:
        parts = [_HOSTS[parts[0].lower()], *parts[1:3]]
    elif parts and parts[0].lower() in _PROVIDERS:
        parts = [parts[0].lower(), *parts[1:3]]
    elif len(parts) == 2:
        parts = ["gh", *parts]
    if len(parts) != 3:
        return None
    parts[2] = parts[2].removesuffix(".git")
    guess = "/".join(parts)
    if guess == value:
        return None
    try:
        return str(parse_project_slug(guess))
    except ConfigurationError:
        return None
