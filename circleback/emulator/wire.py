"""HTTP plumbing shared by the API routes and the control API: bodies, replies, headers."""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from circleback.emulator.state import EmulatorError

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

Headers = list[tuple[str, str]]
Reply = tuple[int, Any, Headers]
BAD_BODY = "Unexpected request body provided."
MAX_BODY = 1 << 20


class RawBody(bytes):
    """A reply body sent as it is (artifact contents), not encoded as JSON."""


def json_body(environ: WSGIEnvironment) -> Any:
    """The request's JSON, None when there is no body; 400 when it is not JSON."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length <= 0:
        return None
    if length > MAX_BODY:
        raise EmulatorError(413, "Request body too large.")
    raw = environ["wsgi.input"].read(length)
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise EmulatorError(400, BAD_BODY) from None


def host_allowed(environ: WSGIEnvironment, allowed: set[str]) -> bool:
    """Whether the ``Host`` header (port removed) names this server; no header is allowed."""
    host = str(environ.get("HTTP_HOST", "")).strip().lower()
    if not host:
        return True
    if host.startswith("["):
        name = host[: host.find("]") + 1] if "]" in host else host
    else:
        name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    return name in allowed or name.strip("[]") in allowed


def status_line(status: int) -> str:
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"{status} Unknown"


def encode(status: int, body: Any, headers: Headers) -> tuple[int, Headers, bytes]:
    if isinstance(body, RawBody):
        return status, [("Content-Type", "application/octet-stream"), *headers], bytes(body)
    data = json.dumps(body, separators=(",", ":")).encode()
    return status, [("Content-Type", "application/json"), *headers], data


def send(start_response: StartResponse, status: int, headers: Headers, body: bytes) -> list[bytes]:
    start_response(status_line(status), [*headers, ("Content-Length", str(len(body)))])
    return [body]
