"""Reading an answer without letting the server decide how much work that is.

httpx reads a whole body into memory, decompresses it whole (a 764 KiB gzip bomb becomes
gigabytes), and its timeouts bound each read, not a request: a server sending one byte
every two seconds keeps a request alive forever. Here a body is streamed and decoded
under a cap on decoded bytes, and each request runs under one wall-clock deadline.

- ``Limits``: every cap, with the reason for its size.
- ``read_body``: raw chunks to the decoded body, stopping at the cap or the deadline.
- ``within``: run one request so that its caller gets control back at the deadline, even
  while httpx is still reading headers (where no per-read timeout can help).
"""

from __future__ import annotations

import threading
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

from circleback import errors

_T = TypeVar("_T")

KiB = 1 << 10
MiB = 1 << 20


@dataclass(frozen=True)
class ListLimit:
    """How much of one list (every page of it) circleback will read before giving up."""

    pages: int
    """Pages, empty ones included: a server handing out fresh page tokens stops here."""
    items: int
    """Items over all pages: what a command may hold in memory from one list."""


@dataclass(frozen=True)
class Limits:
    """Caps on the work one answer, one list and one request can cause.

    Sizes are what a real CircleCI answer needs with a wide margin, so that no real
    project meets them; CircleCI documents none of these numbers (assumed, see
    ``docs/reliability.md``). Going past one is ``ResponseTooLarge`` or ``ListTooLong``
    (exit 3), never a partial answer acted on.
    """

    json_bytes: int = 4 * MiB
    """Decoded bytes of one JSON answer. A page of 20 pipelines is ~20-60 KiB."""
    config_bytes: int = 32 * MiB
    """Decoded bytes of a pipeline's config answer: CircleCI compiles configs of up to
    8 MB, and the answer carries source and compiled config as JSON strings."""
    error_bytes: int = 64 * KiB
    """Bytes read of an error answer; only CircleCI's short ``message`` is used."""
    list_bytes: int = 32 * MiB
    """Decoded bytes over every page of one list, so 50 pages of 4 MiB cannot add up."""
    request_seconds: float = 60.0
    """Wall-clock seconds for one request, connection to last byte, whatever the
    per-read timeouts; a 4 MiB answer needs ~3 s even at 10 Mbit/s."""
    page_token_chars: int = 4096
    """Length of a ``next_page_token``; CircleCI's are ~100 characters."""
    pipelines: ListLimit = ListLimit(pages=100, items=2_000)
    """A project's pipelines: ``trigger`` reads back only to its own start (a few),
    ``sweep`` reads ``--max-pipelines`` (default 50)."""
    workflows: ListLimit = ListLimit(pages=50, items=1_000)
    """A pipeline's workflows, reruns included: a config has a handful, reruns add one
    each; ``status``, ``approve``, ``trace`` and ``sweep`` read these."""
    jobs: ListLimit = ListLimit(pages=250, items=5_000)
    """A workflow's jobs: matrix jobs fan out to hundreds at most; ``approve`` needs all
    of A's to find its hold, ``status`` those of a failed workflow."""
    artifacts: ListLimit = ListLimit(pages=500, items=10_000)
    """A job's artifacts (test reports can be thousands); ``trace``, ``sweep`` and the
    fan-in look for one path among them."""


DEFAULT_LIMITS = Limits()


class Overtime(Exception):
    """The deadline passed while a request was under way (internal: the client explains)."""


def read_body(
    chunks: Iterable[bytes],
    *,
    content_encoding: str | None,
    content_length: str | None,
    max_bytes: int,
    what: str,
    truncate: bool = False,
    overtime: Callable[[], bool] = lambda: False,
) -> bytes:
    """Decode a body from its raw ``chunks``, reading no further than ``max_bytes`` decoded.

    ``gzip`` and ``deflate`` are decoded here, a chunk at a time, with zlib's output limit:
    a bomb is stopped one byte past the cap, never inflated first. ``overtime`` is asked
    after every chunk. Raises ``ResponseTooLarge`` past the cap (unless ``truncate``: then
    the first ``max_bytes`` are returned, as for an error answer whose message is all that
    is used), ``UnexpectedResponse`` for an encoding that cannot be read, ``Overtime``.
    """
    decoder = _decoder(content_encoding, what=what, lenient=truncate)
    declared = _length(content_length)
    raw_limit = max_bytes if decoder is None else max_bytes + max_bytes // 8 + 64 * KiB
    if declared is not None and declared > raw_limit and not truncate:
        raise _too_large(what, max_bytes)
    out = bytearray()
    raw = 0
    for chunk in chunks:
        if overtime():
            raise Overtime
        raw += len(chunk)
        room = max_bytes - len(out)
        if decoder is None:
            out += chunk[: room + 1]
        else:
            try:
                out += decoder.feed(chunk, room + 1)
            except _Unreadable as exc:
                if truncate:
                    return bytes(out)
                raise errors.UnexpectedResponse(f"The answer to {what} {exc}.") from None
        if len(out) > max_bytes or raw > raw_limit:
            if truncate:
                return bytes(out[:max_bytes])
            raise _too_large(what, max_bytes)
    if decoder is not None and raw and not decoder.finished and not truncate:
        raise errors.UnexpectedResponse(f"The answer to {what} is a compressed body cut short.")
    return bytes(out)


def _too_large(what: str, max_bytes: int) -> errors.ResponseTooLarge:
    return errors.ResponseTooLarge(
        f"The answer to {what} is over {_size(max_bytes)}, more than CircleCI sends; "
        "circleback stopped reading it."
    )


def _size(n: int) -> str:
    return f"{n // MiB} MiB" if n >= MiB and n % MiB == 0 else f"{n // KiB} KiB"


def _length(value: str | None) -> int | None:
    if value is None or not value.strip().isdigit():
        return None
    return int(value.strip())


class _Unreadable(Exception):
    pass


class _Inflate:
    """Incremental gzip or zlib ("deflate") decoding with a bound on each output."""

    def __init__(self, wbits: int) -> None:
        self._zlib = zlib.decompressobj(wbits)

    def feed(self, chunk: bytes, max_length: int) -> bytes:
        """At most ``max_length`` decoded bytes; more means the caller is over its cap."""
        try:
            data = self._zlib.decompress(chunk, max_length)
        except zlib.error:
            raise _Unreadable("is a broken compressed body") from None
        if self._zlib.unused_data:
            raise _Unreadable("has data after the end of its compressed body")
        return data

    @property
    def finished(self) -> bool:
        return self._zlib.eof


def _decoder(content_encoding: str | None, *, what: str, lenient: bool) -> _Inflate | None:
    """The decoder for a ``Content-Encoding``; circleback asks only for gzip or deflate."""
    codings = [c.strip().lower() for c in (content_encoding or "").split(",")]
    codings = [c for c in codings if c and c != "identity"]
    if not codings:
        return None
    if codings in (["gzip"], ["x-gzip"]):
        return _Inflate(16 + zlib.MAX_WBITS)
    if codings == ["deflate"]:
        return _Inflate(zlib.MAX_WBITS)
    if lenient:
        return None
    shown = ", ".join(codings)[:60]
    raise errors.UnexpectedResponse(
        f"The answer to {what} is encoded as {shown!r}, which circleback did not ask for."
    )


def within(seconds: float, work: Callable[[Callable[[], bool]], _T]) -> _T:
    """``work(abandoned)`` in a helper thread; its result, or ``Overtime`` after ``seconds``.

    httpx has no deadline for a whole request, and reading headers cannot be interrupted
    between reads; waiting here can. On ``Overtime`` the thread is left to notice
    ``abandoned()`` after its next chunk (or its next read timeout) and close the
    response; it is a daemon, so it never keeps the process alive, and it holds at most
    one capped body.
    """
    done = threading.Event()
    abandoned = threading.Event()
    box: dict[str, object] = {}

    def run() -> None:
        try:
            box["value"] = work(abandoned.is_set)
        except BaseException as exc:  # handed to the waiting thread, or dropped if abandoned
            box["error"] = exc
        finally:
            done.set()

    threading.Thread(target=run, name="circleback-request", daemon=True).start()
    if not done.wait(max(seconds, 0.0)):
        abandoned.set()
        raise Overtime
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["value"]  # type: ignore[return-value]
