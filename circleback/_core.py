"""The client's pure core: responses to data or errors, retry decisions, page tokens.

Plain functions with no I/O, so every rule is tested without any HTTP mocking (the shape
gidgethub uses). The client (``circleback.client``) only moves bytes and calls these.
"""

from __future__ import annotations

import email.utils
import enum
import json
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from circleback import errors


class Safety(enum.Enum):
    """How safe it is to send a request twice; decides which failures are retried."""

    IDEMPOTENT = "idempotent"
    """Reads, approve, cancel: repeating cannot do harm (approve is re-checked by the relay)."""
    CREATES = "creates"
    """Trigger and rerun: repeating could create a second pipeline or workflow."""


@dataclass(frozen=True)
class RetryPolicy:
    """Bounds on retrying: attempts, backoff, and total time."""

    max_attempts: int = 6
    """Attempts in all, the first one included."""
    base_delay: float = 0.5
    """Seconds before the first retry; doubles each time."""
    max_delay: float = 30.0
    """The longest single backoff, in seconds."""
    max_retry_after: float = 60.0
    """The longest ``Retry-After`` honoured; a longer one is cut to this."""
    total_budget: float = 180.0
    """Seconds after which no retry is started, whatever attempts remain."""


DEFAULT_RETRY = RetryPolicy()
NO_RETRY = RetryPolicy(max_attempts=1)


def backoff_delay(
    attempt: int,
    retry_after: float | None,
    policy: RetryPolicy,
    rand: Callable[[], float],
) -> float:
    """Seconds to wait before retry number ``attempt`` (1 for the first retry).

    ``Retry-After`` wins when the server sends it (CircleCI asks for it to be honoured),
    capped by the policy. Otherwise exponential backoff with jitter in [50%, 100%], so
    that many clients rate-limited together do not come back together.
    """
    if retry_after is not None:
        return float(min(max(retry_after, 0.0), policy.max_retry_after))
    ceiling: float = min(policy.max_delay, policy.base_delay * 2.0 ** (attempt - 1))
    return ceiling * (0.5 + 0.5 * rand())


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header: delta-seconds or an HTTP date; None if unusable."""
    if value is None:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if math.isnan(seconds) or math.isinf(seconds):
        return None
    return max(seconds, 0.0)


def status_is_retryable(status: int, safety: Safety) -> bool:
    """429 means the server did nothing, so any request may retry; 5xx only idempotent ones.

    A 5xx to a trigger may come after CircleCI created the pipeline: repeating the POST
    could start a second downstream pipeline, so it is not retried here.
    """
    if status == 429:
        return True
    return status >= 500 and safety is Safety.IDEMPOTENT


def outcome_unknown(method: str, status: int | None, *, sent: bool) -> bool:
    """Whether a failed request may still have been carried out by the server.

    True for a request other than GET that was sent and then got no answer (``status``
    None), a 5xx (CircleCI may fail after acting), or a 2xx whose body could not be read.
    A 4xx, 429 included, is CircleCI refusing: nothing was done. A caller must look
    before repeating such a request when repeating it could do the thing twice.
    """
    if method.upper() == "GET" or not sent:
        return False
    return status is None or status >= 500 or 200 <= status < 300


_ERRORS_BY_STATUS: Mapping[int, type[errors.APIError]] = {
    401: errors.AuthenticationError,
    403: errors.PermissionDenied,
    404: errors.NotFound,
    429: errors.RateLimited,
}


def error_for_status(
    status: int, body: bytes, *, method: str, path: str, redact: Callable[[str], str]
) -> errors.APIError:
    """The typed error for an error status, carrying CircleCI's message when it sent one."""
    detail = message_from_body(body)
    cls = _ERRORS_BY_STATUS.get(status)
    if cls is None:
        cls = errors.ServerError if status >= 500 else errors.APIError
    text = f"CircleCI answered {status} to {method} {path}"
    if detail:
        text += f": {detail}"
    return cls(redact(text), status_code=status, method=method, path=path)


def message_from_body(body: bytes, limit: int = 300) -> str:
    """CircleCI's ``{"message": ...}`` text, or a short note on what the body was."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        if not body.strip():
            return ""
        return "(the body is not JSON)"
    if isinstance(data, dict) and isinstance(data.get("message"), str):
        return " ".join(data["message"].split())[:limit]
    return ""


def decode_json(body: bytes, *, what: str) -> Any:
    """Parse a success body, or explain that it is not what CircleCI sends.

    Every way a body can fail to parse is an ``UnexpectedResponse``: not JSON, not UTF-8
    (``UnicodeDecodeError`` is a ``ValueError``), or nested deeper than Python's parser
    recurses (``RecursionError``: CircleCI's answers are a few levels deep).
    """
    try:
        return json.loads(body)
    except RecursionError:
        raise errors.UnexpectedResponse(
            f"The answer to {what} is JSON nested too deeply to read."
        ) from None
    except UnicodeDecodeError:
        raise errors.UnexpectedResponse(f"The answer to {what} is not UTF-8 text.") from None
    except ValueError:
        start = body[:30].decode("utf-8", "replace").strip()
        kind = "an HTML page" if start.lower().startswith(("<!doctype", "<html")) else "not JSON"
        raise errors.UnexpectedResponse(f"The answer to {what} is {kind}.") from None


@dataclass(frozen=True)
class Page:
    """One page of a list endpoint: its items and the token of the next page, if any."""

    items: list[Any]
    next_page_token: str | None


def parse_page(data: Any, *, what: str, max_token_chars: int = 4096) -> Page:
    """Check a list response's shape: ``items`` a list, ``next_page_token`` a string or null.

    A token longer than ``max_token_chars`` is malformed: it would be sent back in a URL
    and kept to detect loops (CircleCI's are about 100 characters).
    """
    if not isinstance(data, dict) or not isinstance(data.get("items"), list):
        raise errors.UnexpectedResponse(f"The answer to {what} has no list of items.")
    token = data.get("next_page_token")
    if token is not None and (not isinstance(token, str) or len(token) > max_token_chars):
        raise errors.UnexpectedResponse(f"The answer to {what} has a malformed next_page_token.")
    return Page(items=data["items"], next_page_token=token or None)
