"""Fault injection: make the next N matching API requests misbehave the way networks do.

Kinds, and whether the emulator performs the request's action:

==================  =====================================================  =========
kind                what the client sees                                    acted?
==================  =====================================================  =========
``status``          that status, ``{"message": ...}`` or ``body``,          no
                    with ``Retry-After`` when ``retry_after`` is given
``latency``         the normal response, ``latency_ms`` later               yes
``drop``            the connection closes with no response                  no
``slow``            no response within any sane timeout (held ``seconds``)  yes
``truncate``        the normal status with half of its JSON body            yes
``html``            200 with an HTML page (a proxy or login portal)         no
``unexpected_shape`` 200 with JSON that is not what the endpoint returns    no
``lost_response``   the connection closes with no response                  yes
==================  =====================================================  =========

``latency_ms`` may accompany any kind. Faults match API requests only (never ``/_emulator/``),
by method (``*`` for any), a regular expression searched in the decoded path and, optionally,
one searched in the raw query string.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Literal, get_args

FaultKind = Literal[
    "status",
    "latency",
    "drop",
    "slow",
    "truncate",
    "html",
    "unexpected_shape",
    "lost_response",
]
FAULT_KINDS: tuple[str, ...] = get_args(FaultKind)
#: What a ``Retry-After`` value may hold: visible ASCII and spaces, nothing that ends a line.
_HEADER_VALUE = re.compile(r"[\x20-\x7e]{1,200}")
#: How long a ``slow`` response is held on a real socket: longer than any client timeout.
DEFAULT_SLOW_SECONDS = 30.0


@dataclass
class Fault:
    """One injected fault; ``remaining`` counts down, None means until cleared."""

    kind: FaultKind
    method: str = "*"
    path: str = ""
    remaining: int | None = 1
    status: int | None = None
    retry_after: str | None = None
    body: Any = None
    latency_ms: int = 0
    seconds: float = DEFAULT_SLOW_SECONDS
    query: str = ""
    """A regular expression searched in the raw query string (``page-token=`` for a page
    token that answers 404, as circleci-docs#6472 reports)."""
    _pattern: re.Pattern[str] = field(init=False, repr=False)
    _query: re.Pattern[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"kind must be one of {', '.join(FAULT_KINDS)}, not {self.kind!r}")
        if self.kind == "status" and (self.status is None or not 100 <= self.status <= 599):
            raise ValueError("a 'status' fault needs a status between 100 and 599")
        if self.remaining is not None and self.remaining < 1:
            raise ValueError("count must be at least 1 (or null for every request)")
        if self.latency_ms < 0 or self.seconds < 0:
            raise ValueError("latency_ms and seconds cannot be negative")
        if self.retry_after is not None and not _HEADER_VALUE.fullmatch(self.retry_after):
            # A CR or LF here would let the fault write headers of its own (injection).
            raise ValueError(
                "retry_after must be printable text without control characters, such as 3 or a date"
            )
        self.method = self.method.upper()
        self._pattern = re.compile(self.path)
        self._query = re.compile(self.query)

    def matches(self, method: str, path: str, query: str = "") -> bool:
        return (
            self.method in ("*", method)
            and self._pattern.search(path) is not None
            and self._query.search(query) is not None
        )

    def status_body(self) -> Any:
        """Body of a ``status`` fault: the given one, or CircleCI's usual message. A string
        is sent as ``text/plain``."""
        if self.body is not None:
            return self.body
        if self.status == 429:
            return "Rate limited."  # plain text, as captured (observed/errors-4.txt)
        try:
            return {"message": HTTPStatus(self.status or 500).phrase}
        except ValueError:
            return {"message": "Error"}

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "count": self.remaining,
            "status": self.status,
            "retry_after": self.retry_after,
            "body": self.body,
            "latency_ms": self.latency_ms,
            "seconds": self.seconds,
        }


def fault_from_json(data: Any) -> Fault:
    """Build a fault from the control API's JSON; ValueError says what is wrong."""
    if not isinstance(data, dict):
        raise ValueError("body must be a JSON object")
    known = {"kind", "method", "path", "query", "count", "status", "retry_after", "body"}
    known |= {"latency_ms", "seconds"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"unknown field(s): {', '.join(unknown)}")
    retry_after = data.get("retry_after")
    try:
        return Fault(
            kind=data.get("kind", ""),
            method=str(data.get("method", "*")),
            path=str(data.get("path", "")),
            query=str(data.get("query", "")),
            remaining=None if data.get("count", 1) is None else int(data.get("count", 1)),
            status=None if data.get("status") is None else int(data["status"]),
            retry_after=None if retry_after is None else str(retry_after),
            body=data.get("body"),
            latency_ms=int(data.get("latency_ms", 0)),
            seconds=float(data.get("seconds", DEFAULT_SLOW_SECONDS)),
        )
    except re.error as exc:
        raise ValueError(f"path is not a valid regular expression: {exc}") from None
    except TypeError as exc:
        raise ValueError(str(exc)) from None


class FaultSignal(Exception):
    """Raised by the WSGI app when the connection itself must misbehave.

    The emulator's server and transport catch it: ``drop`` and ``lost_response`` close the
    connection without a response; ``slow`` holds ``response`` for ``seconds`` (a real
    socket) or times out at once (in-process). Any other WSGI server turns it into a 500.
    """

    def __init__(
        self,
        kind: str,
        *,
        seconds: float = 0.0,
        response: tuple[str, list[tuple[str, str]], bytes] | None = None,
    ) -> None:
        super().__init__(kind)
        self.kind = kind
        self.seconds = seconds
        self.response = response
