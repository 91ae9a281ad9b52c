"""Input checks that run before any request, and safe construction of API paths.

Every id and slug that reaches a URL passes through here first, so no input can point a
request at another endpoint (``../``, ``%2F``, ``?``, ``#``, control characters): ids must
be UUIDs, slugs must have the shapes CircleCI documents, and each path segment is
percent-encoded on its own.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from urllib.parse import quote

from circleback.errors import ConfigurationError

#: Providers whose projects have human-readable slugs and accept the legacy trigger endpoint.
LEGACY_PROVIDERS = frozenset({"gh", "github", "bb", "bitbucket"})
#: The provider of opaque slugs (GitHub App, GitLab, Bitbucket Data Center).
OPAQUE_PROVIDER = "circleci"

# GitHub and Bitbucket org/repo names: letters, digits, '.', '_' and '-'. Opaque ids are
# UUID-like tokens. Both are bounded so a hostile value cannot make a huge URL.
_NAME = re.compile(r"[A-Za-z0-9_.-]{1,100}")
_OPAQUE = re.compile(r"[A-Za-z0-9_-]{1,100}")


@dataclass(frozen=True)
class ProjectSlug:
    """A validated project slug, e.g. ``gh/acme/b`` or ``circleci/<org-id>/<project-id>``."""

    provider: str
    """``gh``, ``github``, ``bb``, ``bitbucket`` or ``circleci``."""
    organization: str
    """The org name, or the opaque org id for ``circleci`` slugs."""
    project: str
    """The repo name, or the opaque project id for ``circleci`` slugs."""

    def __str__(self) -> str:
        return f"{self.provider}/{self.organization}/{self.project}"

    @property
    def is_opaque(self) -> bool:
        """True for ``circleci/…`` slugs, which only the ``pipeline/run`` endpoint accepts."""
        return self.provider == OPAQUE_PROVIDER

    @property
    def path(self) -> str:
        """The slug as three path segments, each encoded on its own."""
        return "/".join(segment(s) for s in (self.provider, self.organization, self.project))


def parse_project_slug(value: str) -> ProjectSlug:
    """Check that ``value`` is a project slug of a shape CircleCI documents."""
    parts = value.split("/")
    hint = (
        "Use the project slug from the CircleCI project settings: vcs/org/repo "
        "(gh/acme/api, bb/acme/api) or circleci/<org-id>/<project-id>."
    )
    if len(parts) != 3 or parts[0] not in LEGACY_PROVIDERS | {OPAQUE_PROVIDER}:
        from circleback.suggest import suggest_slug

        guess = suggest_slug(value)
        hint = f"Did you mean {guess}? " + hint if guess else hint
    if len(parts) != 3:
        raise ConfigurationError(f"{_show(value)} is not a project slug.", hint=hint)
    provider, org, project = parts
    if provider in LEGACY_PROVIDERS:
        pattern = _NAME
    elif provider == OPAQUE_PROVIDER:
        pattern = _OPAQUE
    else:
        raise ConfigurationError(
            f"{_show(value)} has an unknown VCS provider {_show(provider)}.", hint=hint
        )
    for name in (org, project):
        if not pattern.fullmatch(name) or name in {".", ".."}:
            raise ConfigurationError(
                f"{_show(value)} is not a project slug: {_show(name)} has characters "
                "a project name cannot have.",
                hint=hint,
            )
    return ProjectSlug(provider, org, project)


def parse_uuid(value: str, *, what: str) -> str:
    """Return ``value`` as a canonical lower-case UUID, or explain what is wrong with it."""
    text = value.strip()
    try:
        if len(text) != 36:
            raise ValueError(text)
        return str(uuid.UUID(text))
    except ValueError:
        raise ConfigurationError(
            f"{what} {_show(value)} is not a UUID.",
            hint=f"Pass the {what} exactly as CircleCI shows it (8-4-4-4-12 hex digits).",
        ) from None


def segment(value: str) -> str:
    """Percent-encode one path segment, slashes included, so it stays one segment."""
    return quote(value, safe="")


def _show(value: str, limit: int = 60) -> str:
    """Quote user input for a message: control characters escaped and length bounded."""
    shown = repr(value[:limit])
    return shown + ("…" if len(value) > limit else "")
