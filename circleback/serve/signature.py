"""CircleCI's webhook signature: ``circleci-signature: v1=<hex HMAC-SHA256 of the raw body>``.

Source: CircleCI docs, "Outbound webhooks" (https://circleci.com/docs/outbound-webhooks)
and its reference: the header is a comma-separated list of versioned signatures, of which
``v1`` (the HMAC-SHA256 of the raw request body, keyed with the webhook's signing secret,
as lowercase hex) is the only version so far. There is no timestamp in the signature, so a
captured delivery can be replayed: the receiver must make every delivery harmless to repeat
(it does: it only ever acts on what the API says now).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Sequence

HEADER = "circleci-signature"
VERSION = "v1"


def sign(body: bytes, secret: str) -> str:
    """The header value CircleCI would send for ``body`` signed with ``secret``."""
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return f"{VERSION}={digest}"


def _v1_signatures(header: str) -> list[str]:
    """The ``v1`` values of a header such as ``v1=ab12…`` or ``v1=ab12…,v2=…``."""
    found: list[str] = []
    for part in header.split(","):
        version, sep, value = part.strip().partition("=")
        if sep and version.strip() == VERSION and value.strip():
            found.append(value.strip().lower())
    return found


def verify(body: bytes, header: str | None, secrets: Sequence[str]) -> bool:
    """True when a ``v1`` signature in ``header`` matches ``body`` under any of ``secrets``.

    Fails closed: no header, no ``v1`` value or no secret configured is False. Every
    secret is compared with every offered signature in constant time (``hmac.compare_digest``),
    with no early exit, so timing tells an attacker nothing about which part was wrong.
    Several secrets allow rotation: add the new one, change the webhook, drop the old one.
    """
    if not header or not secrets:
        return False
    offered = _v1_signatures(header)[:8]  # bound the work a hostile header can ask for
    if not offered:
        return False
    expected = [sign(body, secret).partition("=")[2] for secret in secrets if secret]
    matched = False
    for candidate in offered:
        for digest in expected:
            matched |= hmac.compare_digest(candidate.encode("ascii", "replace"), digest.encode())
    return matched


def parse_secrets(values: Iterable[str]) -> tuple[str, ...]:
    """Secrets from settings: comma-separated values, blanks dropped, order kept."""
    result: list[str] = []
    for value in values:
        for item in value.split(","):
            if item.strip() and item.strip() not in result:
                result.append(item.strip())
    return tuple(result)
