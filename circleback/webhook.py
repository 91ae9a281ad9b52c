"""``circleback webhook install|list|remove``: B's outbound webhook, through the API.

``install`` is idempotent: a webhook of the project that already delivers to the same URL
is kept, and gets the current signing secret (CircleCI never shows a secret again, so it is
set, not compared: installing again after putting a new secret first rotates it) and the
``workflow-completed`` event. A create whose answer was lost is looked up
before anything is sent again, so a retry never registers the webhook twice. CircleCI
allows 5 webhooks per project and delivers only to ``https://`` URLs.

API: ``GET /project/{slug}`` (the project's id), ``GET/POST /webhook``,
``PUT/DELETE /webhook/{id}`` (CircleCI API v2, "Webhook" endpoints).
"""

from __future__ import annotations

import contextlib
import enum
import os
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from pydantic import SecretStr

from circleback import errors
from circleback.client import CircleCIClient
from circleback.models import Webhook
from circleback.settings import is_loopback
from circleback.validation import parse_project_slug

#: Where the receiver and ``install`` find the signing secret(s); the first one is used to
#: install, every one is accepted by the receiver (rotation). Never a flag.
SECRETS_VARIABLE = "CIRCLEBACK_WEBHOOK_SECRETS"
DEFAULT_NAME = "circleback"
MAX_PER_PROJECT = 5
#: The receiver needs only this event; ``job-completed`` would cost a delivery per job.
DEFAULT_EVENTS = ("workflow-completed",)


class InstallOutcome(str, enum.Enum):
    CREATED = "created"
    ALREADY_INSTALLED = "already_installed"


@dataclass(frozen=True)
class InstallResult:
    outcome: InstallOutcome
    webhook: Webhook


def secrets_from_environment() -> tuple[str, ...]:
    """The signing secrets in ``CIRCLEBACK_WEBHOOK_SECRETS`` (comma-separated), in order.

    Raises ``ConfigurationError`` (exit 2) for a secret shorter than the redaction floor
    (``_redact.MIN_TOKEN_LENGTH``): a secret too short to be redacted could show in a log
    line, and one that short is guessable anyway. The value itself is never quoted.
    """
    from circleback._redact import MIN_TOKEN_LENGTH
    from circleback.serve.signature import parse_secrets

    found = parse_secrets([os.environ.get(SECRETS_VARIABLE, "")])
    for position, secret in enumerate(found, start=1):
        if len(secret) < MIN_TOKEN_LENGTH:
            raise errors.ConfigurationError(
                f"Secret {position} in {SECRETS_VARIABLE} is {len(secret)} character(s) long: "
                f"signing secrets must have {MIN_TOKEN_LENGTH} or more.",
                hint="Use a long random value, e.g. the output of "
                "'python3 -c \"import secrets; print(secrets.token_hex(32))\"'.",
            )
    return found


def check_url(url: str) -> str:
    """A delivery URL CircleCI accepts: absolute ``https://`` (``http://`` only for loopback)."""
    text = url.strip()
    parts = urlsplit(text)
    hint = "Pass the receiver's public https:// URL, e.g. https://hooks.example.com/webhook."
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise errors.ConfigurationError(f"--url {text[:80]!r} is not an absolute URL.", hint=hint)
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise errors.ConfigurationError(
            f"--url {text[:80]!r} is plain http://; CircleCI delivers webhooks over https only.",
            hint=hint,
        )
    if parts.username or parts.password:
        raise errors.ConfigurationError("--url must not carry credentials.", hint=hint)
    return text


def install(
    client: CircleCIClient,
    project_slug: str,
    *,
    url: str,
    secret: str,
    name: str = DEFAULT_NAME,
    events: Sequence[str] = DEFAULT_EVENTS,
) -> InstallResult:
    """Register the receiver's webhook on ``project_slug`` unless one delivers there already."""
    slug = str(parse_project_slug(project_slug))
    target = check_url(url)
    if not secret:
        raise errors.ConfigurationError(
            f"No signing secret: set {SECRETS_VARIABLE}.",
            hint="Use a long random value (e.g. 'openssl rand -hex 32') and give the same "
            "value to the receiver.",
        )
    project_id = client.get_project_id(slug)
    existing = list(client.list_webhooks(project_id))
    found = _same_target(existing, target)
    if found is not None:
        # CircleCI never shows the secret again, so it is set rather than compared: this is
        # how a rotation reaches the webhook (a no-op when it did not change). A webhook
        # delivering here without workflow-completed would never tell the receiver anything.
        events = list(dict.fromkeys([*found.events, *DEFAULT_EVENTS]))
        updated = client.update_webhook(found.id, signing_secret=SecretStr(secret), events=events)
        return InstallResult(InstallOutcome.ALREADY_INSTALLED, updated)
    if len(existing) >= MAX_PER_PROJECT:
        raise errors.ConfigurationError(
            f"{slug} already has {len(existing)} webhooks, CircleCI's limit per project.",
            hint="Remove one in Project Settings > Webhooks, or with 'circleback webhook remove'.",
        )
    try:
        created = client.create_webhook(
            project_id, name=name, url=target, events=events, signing_secret=SecretStr(secret)
        )
    except errors.CirclebackError as exc:
        if not exc.outcome_unknown:
            raise
        # The answer was lost: look before anyone sends it again.
        found = _same_target(list(client.list_webhooks(project_id)), target)
        if found is None:
            raise
        return InstallResult(InstallOutcome.CREATED, found)
    return InstallResult(InstallOutcome.CREATED, created)


def list_webhooks(client: CircleCIClient, project_slug: str) -> list[Webhook]:
    """Every outbound webhook of the project (circleback's and others')."""
    slug = str(parse_project_slug(project_slug))
    return list(client.list_webhooks(client.get_project_id(slug)))


def remove(
    client: CircleCIClient,
    project_slug: str,
    *,
    url: str | None = None,
    webhook_id: str | None = None,
    name: str = DEFAULT_NAME,
) -> list[Webhook]:
    """Remove the webhooks delivering to ``url`` (or the one with ``webhook_id``).

    With neither, removes the webhooks named ``name`` (circleback's own). Returns what was
    removed; nothing to remove is not an error (running it twice is harmless).
    """
    slug = str(parse_project_slug(project_slug))
    existing = list(client.list_webhooks(client.get_project_id(slug)))
    if webhook_id is not None:
        doomed = [w for w in existing if w.id == webhook_id.strip()]
    elif url is not None:
        target = check_url(url)
        doomed = [w for w in existing if _same_url(w.url, target)]
    else:
        doomed = [w for w in existing if w.name == name]
    for hook in doomed:
        with contextlib.suppress(errors.NotFound):  # removed meanwhile: the goal is met
            client.delete_webhook(hook.id)
    return doomed


def _same_target(existing: Sequence[Webhook], url: str) -> Webhook | None:
    return next((w for w in existing if _same_url(w.url, url)), None)


def _same_url(a: str, b: str) -> bool:
    """URLs equal but for a trailing slash and the host's case."""
    pa, pb = urlsplit(a.strip()), urlsplit(b.strip())
    return (pa.scheme, (pa.hostname or "").lower(), pa.port, pa.path.rstrip("/"), pa.query) == (
        pb.scheme,
        (pb.hostname or "").lower(),
        pb.port,
        pb.path.rstrip("/"),
        pb.query,
    )
