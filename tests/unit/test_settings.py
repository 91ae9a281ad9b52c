"""Settings: where the token and host come from, and which hosts are refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from circleback import errors
from circleback.settings import Settings, api_base_url, load_settings

TOKEN_VARS = (
    "CIRCLEBACK_TOKEN",
    "CIRCLE_TOKEN",
    "CIRCLECI_API_KEY",
    "CIRCLEBACK_HOST",
    "CIRCLEBACK_LOG_FORMAT",
    "CIRCLEBACK_ALLOW_PROJECTS",
    "CIRCLEBACK_ENV_FILE",
    "circle_token",
)
A, B, C = ("a" * 40, "b" * 40, "CCIPAT_" + "c" * 40)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in TOKEN_VARS:
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"CIRCLEBACK_TOKEN": A, "CIRCLE_TOKEN": B, "CIRCLECI_API_KEY": C}, A),
        ({"CIRCLE_TOKEN": B, "CIRCLECI_API_KEY": C}, B),
        ({"CIRCLECI_API_KEY": C}, C),
        ({"CIRCLEBACK_TOKEN": "", "CIRCLE_TOKEN": B}, B),
        ({"CIRCLEBACK_TOKEN": " \t\n", "CIRCLE_TOKEN": "", "CIRCLECI_API_KEY": C}, C),
        ({"CIRCLE_TOKEN": f"  {B}\n"}, B),
    ],
)
def test_token_precedence(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], expected: str
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert load_settings().require_token().get_secret_value() == expected


def test_missing_token_says_where_to_put_it() -> None:
    with pytest.raises(errors.ConfigurationError) as info:
        Settings().require_token()
    assert "CIRCLEBACK_TOKEN" in info.value.hint


def test_token_never_in_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CIRCLE_TOKEN", "s3cr3t-token-0123456789")
    settings = load_settings()
    assert "s3cr3t" not in repr(settings)
    assert "s3cr3t" not in str(settings.model_dump())


def test_default_host() -> None:
    assert api_base_url(Settings().host) == "https://circleci.com/api/v2"


@pytest.mark.parametrize(
    ("host", "base"),
    [
        ("https://circleci.example.com/", "https://circleci.example.com/api/v2"),
        ("https://circleci.example.com/api/v2", "https://circleci.example.com/api/v2"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080/api/v2"),
        ("http://localhost:1", "http://localhost:1/api/v2"),
        ("http://[::1]:9", "http://[::1]:9/api/v2"),
    ],
)
def test_hosts_accepted(host: str, base: str) -> None:
    assert api_base_url(host) == base


@pytest.mark.parametrize(
    "host",
    [
        "http://circleci.com",
        "http://10.0.0.1",
        "ftp://circleci.com",
        "circleci.com",
        "https://user:pw@circleci.com",
        "https://circleci.com/?x=1",
    ],
)
def test_hosts_refused(host: str) -> None:
    with pytest.raises(errors.ConfigurationError):
        api_base_url(host)


def test_names_are_case_sensitive(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("circle_token", A)
    assert Settings().token is None


@pytest.mark.parametrize("value", ["t", "x" * 15, "has space inside the token", "bell\x07" * 4])
def test_a_token_that_cannot_be_real_is_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("CIRCLEBACK_TOKEN", "   ")
    monkeypatch.setenv("CIRCLE_TOKEN", value)
    with pytest.raises(errors.ConfigurationError) as info:
        load_settings()
    assert info.value.exit_code == errors.EXIT_USAGE
    assert info.value.message.startswith("CIRCLE_TOKEN ")
    if len(value) > 1:
        assert value not in info.value.message + info.value.hint


def test_a_validation_error_never_quotes_the_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CIRCLE_TOKEN", "a token with spaces in it")
    with pytest.raises(ValidationError) as info:
        Settings()
    assert "spaces" not in str(info.value)


def test_a_dot_env_file_is_not_read_by_default(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / ".env").write_text(f"CIRCLE_TOKEN={A}\nCIRCLEBACK_HOST=https://evil.example\n")
    monkeypatch.chdir(tmp_path)
    settings = load_settings()
    assert settings.token is None
    assert settings.host == "https://circleci.com"


def test_an_env_file_is_read_when_named_and_the_environment_wins(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    env_file = tmp_path / "ci.env"
    env_file.write_text(f"CIRCLE_TOKEN={A}\nCIRCLEBACK_HOST=https://server.example\n")
    monkeypatch.setenv("CIRCLEBACK_ENV_FILE", str(env_file))
    monkeypatch.setenv("CIRCLEBACK_HOST", "https://circleci.example")
    settings = load_settings()
    assert settings.require_token().get_secret_value() == A
    assert settings.host == "https://circleci.example"


def test_a_missing_env_file_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CIRCLEBACK_ENV_FILE", str(tmp_path / "nope.env"))
    with pytest.raises(errors.ConfigurationError, match="CIRCLEBACK_ENV_FILE"):
        load_settings()


def test_log_format_and_allow_list_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CIRCLEBACK_LOG_FORMAT", "json")
    monkeypatch.setenv("CIRCLEBACK_ALLOW_PROJECTS", "gh/acme/*")
    settings = load_settings()
    assert settings.log_format == "json"
    assert settings.allow_projects == "gh/acme/*"


def test_an_unknown_log_format_is_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CIRCLEBACK_LOG_FORMAT", "xml")
    with pytest.raises(errors.ConfigurationError, match="CIRCLEBACK_LOG_FORMAT") as info:
        load_settings()
    assert info.value.exit_code == errors.EXIT_USAGE


def test_arguments_beat_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CIRCLEBACK_HOST", "https://circleci.example")
    monkeypatch.setenv("CIRCLEBACK_TOKEN", A)
    settings = Settings(host="http://127.0.0.1:1", token=B)
    assert settings.host == "http://127.0.0.1:1"
    assert settings.require_token().get_secret_value() == B
