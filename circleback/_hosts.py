"""CircleCI's address: the default host, and the API base URL a host gives (no settings).

Kept apart from ``circleback.settings`` so the client and the relay can use it without
importing pydantic-settings.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from circleback.errors import ConfigurationError

DEFAULT_HOST = "https://circleci.com"
API_PREFIX = "/api/v2"


def api_base_url(host: str) -> str:
    """Turn a host such as ``https://circleci.com`` into the API v2 base URL.

    Plain ``http://`` is refused unless the host is a loopback address (the emulator): the
    token travels in a header, and over plain HTTP anyone on the path could read it.
    """
    text = host.strip().rstrip("/")
    if text.endswith(API_PREFIX):
        text = text[: -len(API_PREFIX)].rstrip("/")
    parts = urlsplit(text)
    hint = "Set CIRCLEBACK_HOST to https://circleci.com or your CircleCI Server's https URL."
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ConfigurationError(f"CIRCLEBACK_HOST {text[:80]!r} is not an http(s) URL.", hint=hint)
    if parts.username or parts.password or parts.query or parts.fragment:
        raise ConfigurationError(
            "CIRCLEBACK_HOST must not carry credentials, a query or a fragment.", hint=hint
        )
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise ConfigurationError(
            f"CIRCLEBACK_HOST {text[:80]!r} uses plain http:// for a host that is not loopback; "
            "the token would cross the network unencrypted.",
            hint=hint,
        )
    return text + API_PREFIX


def is_loopback(hostname: str) -> bool:
    """True for ``localhost`` and addresses in 127.0.0.0/8 or ``::1``."""
    if hostname.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False
