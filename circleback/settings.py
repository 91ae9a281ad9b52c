"""Where circleback finds its token and host: the environment, never a flag.

The token is read from ``CIRCLEBACK_TOKEN``, else ``CIRCLE_TOKEN`` (the orb's default),
else ``CIRCLECI_API_KEY`` (the name the CircleCI tutorial uses), and is kept as a
``SecretStr`` so that no repr, log line or exception can show it. A flag would leak it
into shell history and ``ps``.

Two variables do not need pydantic-settings (and python-dotenv): it cost every command
about 15 ms of imports. The rules are the ones it applied: names match case-insensitively,
empty values count as unset, the first variable of ``TOKEN_VARIABLES`` set wins, and
values passed to ``Settings(...)`` beat the environment. A token is stripped of surrounding
whitespace (a trailing newline would make an invalid header), a blank one counts as unset,
and one shorter than ``MIN_TOKEN_LENGTH`` is refused: redacting it would mangle output.
"""

from __future__ import annotations

import ipaddress
import os
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError, model_validator

from circleback.errors import ConfigurationError

DEFAULT_HOST = "https://circleci.com"
API_PREFIX = "/api/v2"
TOKEN_VARIABLES = ("CIRCLEBACK_TOKEN", "CIRCLE_TOKEN", "CIRCLECI_API_KEY")
HOST_VARIABLE = "CIRCLEBACK_HOST"
#: Shorter than any token CircleCI issues (40 hex digits, or ``CCIPAT_`` and more): a value
#: this short is a mistake, and replacing it in output would mangle unrelated text.
MIN_TOKEN_LENGTH = 8


def token_from_environment() -> tuple[str, str] | None:
    """``(variable, value)`` of the first token variable that is not blank, the value
    stripped of surrounding whitespace; names match case-insensitively."""
    env = {k.lower(): (k, v.strip()) for k, v in os.environ.items() if v.strip()}
    return next((env[n.lower()] for n in TOKEN_VARIABLES if n.lower() in env), None)


def loaded_secrets() -> list[str]:
    """What output must never show: the token as loaded, if long enough to be one."""
    found = token_from_environment()
    return [found[1]] if found and len(found[1]) >= MIN_TOKEN_LENGTH else []


def _from_environment() -> dict[str, str]:
    """The settings found in the environment (names case-insensitive, empty = unset)."""
    env = {k.lower(): v for k, v in os.environ.items() if v != ""}
    found: dict[str, str] = {}
    token = token_from_environment()
    if token is not None:
        found["token_variable"], found["token"] = token
    if HOST_VARIABLE.lower() in env:
        found["host"] = env[HOST_VARIABLE.lower()]
    return found


class Settings(BaseModel):
    """circleback's settings, read from the environment (arguments given win)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    token: SecretStr | None = None
    """A CircleCI personal API token (project tokens do not work with API v2)."""
    token_variable: str = ""
    """The environment variable the token came from (empty: passed in)."""
    host: str = DEFAULT_HOST
    """CircleCI's address; a CircleCI Server hostname works the same way."""

    @model_validator(mode="before")
    @classmethod
    def _environment(cls, data: Any) -> Any:
        return {**_from_environment(), **data} if isinstance(data, dict) else data

    def require_token(self) -> SecretStr:
        """The token (stripped), or a configuration error that says where to put it."""
        value = self.token.get_secret_value().strip() if self.token is not None else ""
        hint = (
            f"Set {TOKEN_VARIABLES[0]} (or {' or '.join(TOKEN_VARIABLES[1:])}) "
            "to a personal API token from https://app.circleci.com/settings/user/tokens."
        )
        if not value:
            raise ConfigurationError("No CircleCI API token found.", hint=hint)
        if len(value) < MIN_TOKEN_LENGTH:
            where = self.token_variable or "the token given"
            raise ConfigurationError(
                f"The token in {where} is too short to be a CircleCI API token "
                f"({len(value)} characters; they have {MIN_TOKEN_LENGTH} or more).",
                hint=hint,
            )
        return SecretStr(value)


def load_settings() -> Settings:
    """Read settings from the environment, turning validation errors into a hint."""
    try:
        return Settings()
    except ValidationError as exc:  # pragma: no cover - every field is a plain string
        raise ConfigurationError(f"Invalid settings: {exc.error_count()} error(s).") from None


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
