"""The pure core: retry decisions, Retry-After, error mapping and page parsing."""

from __future__ import annotations

import pytest

from circleback import _core, errors
from circleback._core import RetryPolicy, Safety


def _same(text: str) -> str:
    return text


@pytest.mark.parametrize(
    ("status", "safety", "retryable"),
    [
        (429, Safety.CREATES, True),
        (429, Safety.IDEMPOTENT, True),
        (500, Safety.IDEMPOTENT, True),
        (503, Safety.IDEMPOTENT, True),
        (500, Safety.CREATES, False),
        (502, Safety.CREATES, False),
        (400, Safety.IDEMPOTENT, False),
        (404, Safety.IDEMPOTENT, False),
        (401, Safety.CREATES, False),
    ],
)
def test_which_statuses_are_retried(status: int, safety: Safety, retryable: bool) -> None:
    assert _core.status_is_retryable(status, safety) is retryable


def test_backoff_doubles_and_is_capped() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=5.0)
    top = [_core.backoff_delay(n, None, policy, lambda: 1.0) for n in range(1, 6)]
    assert top == [1.0, 2.0, 4.0, 5.0, 5.0]


def test_backoff_jitter_stays_between_half_and_full() -> None:
    policy = RetryPolicy(base_delay=2.0)
    assert _core.backoff_delay(1, None, policy, lambda: 0.0) == 1.0
    assert _core.backoff_delay(1, None, policy, lambda: 0.5) == 1.5


def test_retry_after_wins_and_is_capped() -> None:
    policy = RetryPolicy(max_retry_after=60.0)
    assert _core.backoff_delay(1, 7.0, policy, lambda: 1.0) == 7.0
    assert _core.backoff_delay(1, 3600.0, policy, lambda: 1.0) == 60.0
    assert _core.backoff_delay(1, -5.0, policy, lambda: 1.0) == 0.0


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("5", 5.0),
        (" 2.5 ", 2.5),
        ("-3", 0.0),
        (None, None),
        ("soon", None),
        ("nan", None),
        ("Thu, 01 Jan 1970 00:00:30 GMT", 20.0),
    ],
)
def test_parse_retry_after(header: str | None, seconds: float | None) -> None:
    assert _core.parse_retry_after(header, now=10.0) == seconds


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (401, errors.AuthenticationError),
        (403, errors.PermissionDenied),
        (404, errors.NotFound),
        (429, errors.RateLimited),
        (500, errors.ServerError),
        (503, errors.ServerError),
        (400, errors.APIError),
    ],
)
def test_error_for_status_picks_the_class(status: int, cls: type[errors.APIError]) -> None:
    err = _core.error_for_status(
        status, b'{"message": "Nope."}', method="GET", path="/x", redact=_same
    )
    assert type(err) is cls
    assert err.status_code == status
    assert "Nope." in str(err)
    assert err.hint


def test_error_message_is_redacted() -> None:
    err = _core.error_for_status(
        400,
        b'{"message": "bad token s3cr3t"}',
        method="GET",
        path="/x",
        redact=lambda t: t.replace("s3cr3t", "***"),
    )
    assert "s3cr3t" not in str(err)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"message": "Project not found"}', "Project not found"),
        (b'{"message": "a\\n  b"}', "a b"),
        (b"<html>oops</html>", "(the body is not JSON)"),
        (b"", ""),
        (b"[1]", ""),
    ],
)
def test_message_from_body(body: bytes, expected: str) -> None:
    assert _core.message_from_body(body) == expected


def test_decode_json_names_an_html_page() -> None:
    with pytest.raises(errors.UnexpectedResponse, match="HTML page"):
        _core.decode_json(b"<!DOCTYPE html><html>", what="x")
    with pytest.raises(errors.UnexpectedResponse, match="not JSON"):
        _core.decode_json(b'{"items": [', what="x")


def test_parse_page() -> None:
    page = _core.parse_page({"items": [1], "next_page_token": "t"}, what="x")
    assert page.items == [1]
    assert page.next_page_token == "t"
    assert _core.parse_page({"items": [], "next_page_token": ""}, what="x").next_page_token is None
    for bad in ({"items": {}}, [], {"items": [], "next_page_token": 5}):
        with pytest.raises(errors.UnexpectedResponse):
            _core.parse_page(bad, what="x")
