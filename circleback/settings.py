"""Where circleback finds its token, host, log format and allow-list: the environment.

``Settings`` is a pydantic-settings ``BaseSettings``. The token is read from
``CIRCLEBACK_TOKEN``, else ``CIRCLE_TOKEN`` (the orb's default), else ``CIRCLECI_API_KEY``
(the name the CircleCI tutorial uses), and kept as a ``SecretStr`` so that no repr, log
line or exception can show it. It is never a flag: that would leak it into shell history
and ``ps``.

Rules, each chosen on purpose:

- **Names are case-sensitive**, as environment variables are on Linux (and in CircleCI's
  project settings): ``circle_token`` is a different variable from ``CIRCLE_TOKEN`` and is
  not read. pydantic-settings would fold case by default; with two spellings set to two
  values, which one won would be an accident.
- **Blank is unset**: a variable that is empty or only whitespace falls through to the
  next name, so a blank ``CIRCLEBACK_TOKEN`` cannot hide a valid ``CIRCLE_TOKEN``.
- **Surrounding whitespace is stripped** (``$(cat token.txt)`` keeps no newline, but a
  pasted value or a file read by other means may): a token that could never be sent as a
  header would otherwise fail only after every retry, as a "network" error.
- **A token too short to be real is refused** (exit 2, naming the variable): CircleCI's
  tokens are 40 characters or more, and redacting a one-letter "token" would mangle every
  line of output.
- **``.env`` is not read by default.** In CI the working directory is a checkout, possibly
  of a fork: a ``.env`` in it setting ``CIRCLEBACK_HOST`` would send the token to whoever
  wrote it. ``CIRCLEBACK_ENV_FILE=path`` opts in; real environment variables still win.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from circleback._hosts import API_PREFIX, DEFAULT_HOST, api_base_url, is_loopback
from circleback._redact import MIN_TOKEN_LENGTH, TOKEN_VARIABLES
from circleback.errors import ConfigurationError

HOST_VARIABLE = "CIRCLEBACK_HOST"
LOG_FORMAT_VARIABLE = "CIRCLEBACK_LOG_FORMAT"
ALLOW_PROJECTS_VARIABLE = "CIRCLEBACK_ALLOW_PROJECTS"
ENV_FILE_VARIABLE = "CIRCLEBACK_ENV_FILE"
_TOKEN_HINT = (
    f"Set {TOKEN_VARIABLES[0]} (or {' or '.join(TOKEN_VARIABLES[1:])}; names are "
    "case-sensitive) to a personal API token from https://app.circleci.com/settings/user/tokens."
)


def _not_blank(values: Mapping[str, str | None]) -> dict[str, str | None]:
    return {k: v for k, v in values.items() if v is None or v.strip()}


class _Environment(EnvSettingsSource):
    """The process environment, with blank values treated as unset."""

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return _not_blank(super()._load_env_vars())


class _EnvFile(DotEnvSettingsSource):
    """An opted-in ``.env`` file, with blank values treated as unset."""

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return _not_blank(super()._load_env_vars())


class Settings(BaseSettings):
    """circleback's settings, read from the environment (keyword arguments win).

    Raises ``pydantic.ValidationError`` for a value that cannot be right (a token too
    short or holding whitespace, an unknown log format); ``load_settings`` turns that into
    a ``ConfigurationError`` naming the variable.
    """

    model_config = SettingsConfigDict(
        case_sensitive=True,
        env_ignore_empty=True,
        extra="ignore",
        frozen=True,
        populate_by_name=True,
        env_file=None,
        # A ValidationError's text would otherwise quote the value: the token, say.
        hide_input_in_errors=True,
    )

    token: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices(*TOKEN_VARIABLES, "token")
    )
    """A CircleCI personal API token (project tokens do not work with API v2)."""
    host: str = Field(default=DEFAULT_HOST, validation_alias=AliasChoices(HOST_VARIABLE, "host"))
    """CircleCI's address; a CircleCI Server hostname works the same way."""
    log_format: Literal["console", "json"] | None = Field(
        default=None, validation_alias=AliasChoices(LOG_FORMAT_VARIABLE, "log_format")
    )
    """``console`` or ``json``; None: json under CI, else console."""
    allow_projects: str | None = Field(
        default=None, validation_alias=AliasChoices(ALLOW_PROJECTS_VARIABLE, "allow_projects")
    )
    """Upstream project patterns ``approve`` may release (``gh/acme/*``), comma-separated."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        env_file = getattr(dotenv_settings, "env_file", None)
        sources: list[PydanticBaseSettingsSource] = [init_settings, _Environment(settings_cls)]
        if env_file:
            sources.append(_EnvFile(settings_cls, env_file=env_file))
        return tuple(sources)

    @field_validator("token", mode="before")
    @classmethod
    def _strip_token(cls, value: Any) -> Any:
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if isinstance(value, str):
            value = value.strip()
            if not value:
                return None
            if len(value) < MIN_TOKEN_LENGTH:
                raise ValueError(
                    f"is {len(value)} character(s) long: too short to be a CircleCI token"
                )
            if not value.isascii() or not value.isprintable() or any(c.isspace() for c in value):
                raise ValueError("holds whitespace or characters no CircleCI token has")
        return value

    @field_validator("host", mode="before")
    @classmethod
    def _strip_host(cls, value: Any) -> Any:
        return value.strip() if isinstance(value, str) else value

    def require_token(self) -> SecretStr:
        """The token, or a configuration error that says where to put it."""
        if self.token is None:
            raise ConfigurationError("No CircleCI API token found.", hint=_TOKEN_HINT)
        return self.token


def token_variable(environ: Mapping[str, str] | None = None) -> str | None:
    """The variable the token is read from: the first of ``TOKEN_VARIABLES`` not blank."""
    env = os.environ if environ is None else environ
    return next((n for n in TOKEN_VARIABLES if env.get(n, "").strip()), None)


def load_settings() -> Settings:
    """Read settings from the environment (and ``$CIRCLEBACK_ENV_FILE``, if set).

    Raises ``ConfigurationError`` (exit 2) naming the variable at fault.
    """
    env_file = os.environ.get(ENV_FILE_VARIABLE, "").strip()
    if env_file and not Path(env_file).is_file():
        raise ConfigurationError(
            f"{ENV_FILE_VARIABLE} names {env_file!r}, which is not a file.",
            hint=f"Point {ENV_FILE_VARIABLE} at a .env file, or unset it.",
        )
    try:
        return Settings(_env_file=env_file or None)
    except ValidationError as exc:
        raise _explain(exc, env_file) from None


def _explain(exc: ValidationError, env_file: str) -> ConfigurationError:
    """The first invalid setting as a ConfigurationError naming its variable, never its value."""
    error = exc.errors(include_input=False, include_url=False)[0]
    loc = str(error["loc"][0]) if error["loc"] else ""
    fields = {
        **dict.fromkeys(TOKEN_VARIABLES, "token"),
        HOST_VARIABLE: "host",
        LOG_FORMAT_VARIABLE: "log_format",
        ALLOW_PROJECTS_VARIABLE: "allow_projects",
    }
    field = fields.get(loc, loc)
    names = {
        "token": token_variable() or (f"the token in {env_file}" if env_file else "token"),
        "host": HOST_VARIABLE,
        "log_format": LOG_FORMAT_VARIABLE,
        "allow_projects": ALLOW_PROJECTS_VARIABLE,
    }
    name = names.get(field, field)
    reason = str(error["msg"]).removeprefix("Value error, ")
    if field == "token":
        return ConfigurationError(f"{name} {reason}.", hint=_TOKEN_HINT)
    if field == "log_format":
        return ConfigurationError(
            f"{name} is not console or json.", hint=f"Set {name} to console or json, or unset it."
        )
    return ConfigurationError(f"{name} is invalid: {reason}.")


__all__ = [
    "API_PREFIX",
    "DEFAULT_HOST",
    "HOST_VARIABLE",
    "TOKEN_VARIABLES",
    "Settings",
    "api_base_url",
    "is_loopback",
    "load_settings",
    "token_variable",
]
