"""Settings: where the token and host come from, and which hosts are refused."""

from __future__ import annotations

import pytest

from circleback import errors
from circleback.settings import Settings, api_base_url, load_settings

TOKEN_VARS = ("CIRCLEBACK_TOKEN", "CIRCLE_TOKEN", "CIRCLECI_API_KEY", "CIRCLEBACK_HOST")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in TOKEN_VARS:
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (
            {"CIRCLEBACK_TOKEN": "a" * 8, "CIRCLE_TOKEN": "b" * 8, "CIRCLECI_API_KEY": "c" * 8},
            "a" * 8,
        ),
        ({"CIRCLE_TOKEN": "b" * 8, "CIRCLECI_API_KEY": "c" * 8}, "b" * 8),
        ({"CIRCLECI_API_KEY": "c" * 8}, "c" * 8),
        ({"CIRCLEBACK_TOKEN": "", "CIRCLE_TOKEN": "b" * 8}, "b" * 8),
        ({"CIRCLEBACK_TOKEN": " \n", "CIRCLE_TOKEN": " bbbbbbbb\n"}, "bbbbbbbb"),
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
    monkeypatch.setenv("CIRCLE_TOKEN", "s3cr3t-token")
    settings = load_settings()
    assert "s3cr3t-token" not in repr(settings)
    assert "s3cr3t-token" not in str(settings.model_dump())


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
