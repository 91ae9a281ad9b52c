"""Hostile answers below the CLI: the reader, artifacts, deadlines, a real slow socket, text.

Time is a fake clock advanced by the hostile body itself (one byte, two seconds), so a
deadline is tested without waiting; the one real socket test asserts how many bytes the
server got to send, never how long anything took.
"""

from __future__ import annotations

import gzip
import json
import socket
import threading
import uuid
import zlib
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import httpx
import pytest

from circleback import _cli, _read, errors
from circleback._core import NO_RETRY, RetryPolicy
from circleback._logging import configure
from circleback._read import DEFAULT_LIMITS, ListLimit, read_body
from circleback._text import printable, printable_lines, xml_safe
from circleback.client import CircleCIClient

HOST = "http://127.0.0.1"
PID = "5034460f-c7c4-4c43-9457-de07e2029e7b"
WID = "fda08377-fe7e-46b1-8992-3a7aaecac9c3"
PAGE = b'{"items": [], "next_page_token": null}'


class Clock:
    """Seconds that move only when a hostile body says so."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class Pulled(httpx.SyncByteStream):
    """A lazily made body that counts the bytes the client pulled from it."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self.chunks = chunks
        self.pulled = 0

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.chunks:
            self.pulled += len(chunk)
            yield chunk


def spaces(total: int, chunk: int = 64 << 10) -> Iterator[bytes]:
    for _ in range(total // chunk):
        yield b" " * chunk


def client_for(
    handler: Callable[[httpx.Request], httpx.Response],
    clock: Clock | None = None,
    retry: RetryPolicy = NO_RETRY,
) -> CircleCIClient:
    clock = clock or Clock()
    return CircleCIClient(
        token="t0ken-value",
        host=HOST,
        transport=httpx.MockTransport(handler),
        retry=retry,
        sleep=clock.sleep,
        clock=clock,
    )


# -- the reader ---------------------------------------------------------------------------


def test_a_gzip_bomb_is_stopped_one_chunk_past_the_cap() -> None:
    z = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    bomb = Pulled(z.compress(b" " * (1 << 20)) for _ in range(1 << 10))  # 1 GiB decoded
    with pytest.raises(errors.ResponseTooLarge, match="over 1 MiB"):
        read_body(bomb, content_encoding="gzip", content_length=None, max_bytes=1 << 20, what="x")
    assert bomb.pulled < 64 << 10  # a few KiB of a bomb, never the gigabyte


def test_a_declared_length_over_the_cap_is_refused_before_reading() -> None:
    body = Pulled(spaces(300 << 20))
    with pytest.raises(errors.ResponseTooLarge):
        read_body(
            body, content_encoding=None, content_length="314572800", max_bytes=1 << 20, what="x"
        )
    assert body.pulled == 0


def test_a_body_without_length_is_stopped_at_the_cap() -> None:
    body = Pulled(spaces(300 << 20))
    with pytest.raises(errors.ResponseTooLarge):
        read_body(body, content_encoding=None, content_length=None, max_bytes=1 << 20, what="x")
    assert body.pulled <= (1 << 20) + (64 << 10)


@pytest.mark.parametrize(
    ("raw", "encoding", "why"),
    [
        (gzip.compress(PAGE)[:-12], "gzip", "cut short"),
        (gzip.compress(PAGE) + b"trailing", "gzip", "data after the end"),
        (b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03" + b"\xff" * 64, "gzip", "broken"),
        (b"\x78\x9c\xff\xff\xff", "deflate", "broken"),
        (PAGE, "br", "did not ask for"),
        (PAGE, "gzip, br", "did not ask for"),
    ],
)
def test_bodies_that_cannot_be_decoded_are_unexpected_responses(
    raw: bytes, encoding: str, why: str
) -> None:
    with pytest.raises(errors.UnexpectedResponse, match=why):
        read_body(
            iter([raw]), content_encoding=encoding, content_length=None, max_bytes=1 << 20, what="x"
        )


def test_gzip_deflate_and_identity_decode_to_the_same_body() -> None:
    for raw, coding in (
        (gzip.compress(PAGE), "gzip"),
        (zlib.compress(PAGE), "deflate"),
        (PAGE, "identity"),
    ):
        chunks = [raw[i : i + 7] for i in range(0, len(raw), 7)]
        assert (
            read_body(chunks, content_encoding=coding, content_length=None, max_bytes=100, what="x")
            == PAGE
        )


def test_an_error_body_is_cut_to_its_cap_not_refused() -> None:
    got = read_body(
        spaces(1 << 20),
        content_encoding="br",
        content_length="1048576",
        max_bytes=100,
        what="x",
        truncate=True,
    )
    assert got == b" " * 100


def test_the_reader_stops_at_the_deadline_after_the_chunk_that_passed_it() -> None:
    clock = Clock()

    def drip() -> Iterator[bytes]:
        for byte in PAGE:
            clock.now += 2.0
            yield bytes([byte])

    body = Pulled(drip())
    with pytest.raises(_read.Overtime):
        read_body(
            body,
            content_encoding=None,
            content_length=None,
            max_bytes=100,
            what="x",
            overtime=lambda: clock.now >= 5.0,
        )
    assert body.pulled == 3


# -- the client ---------------------------------------------------------------------------


def test_an_artifact_over_its_cap_is_refused_before_the_download() -> None:
    body = Pulled(spaces(300 << 20))

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"Content-Length": str(300 << 20)}, stream=body)

    with client_for(handler) as client, pytest.raises(errors.ResponseTooLarge):
        client.get_artifact(f"{HOST}/api/v2/artifact")
    assert body.pulled == 0


def test_an_artifact_without_length_is_cut_off_at_its_cap() -> None:
    body = Pulled(spaces(300 << 20))
    with (
        client_for(lambda r: httpx.Response(200, stream=body)) as client,
        pytest.raises(errors.ResponseTooLarge),
    ):
        client.get_artifact(f"{HOST}/api/v2/artifact")
    assert body.pulled <= (1 << 20) + (64 << 10)


def test_unreadable_answers_are_retried_then_named() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(200, content=b"[" * 200_000 + b"]" * 200_000)

    with (
        client_for(handler, retry=RetryPolicy(max_attempts=3, base_delay=0.0)) as client,
        pytest.raises(errors.UnexpectedResponse, match="nested too deeply"),
    ):
        client.get_pipeline(PID)
    assert len(calls) == 3


def test_a_deep_error_body_is_still_the_error_of_its_status() -> None:
    deep = b"[" * 200_000 + b"]" * 200_000
    with (
        client_for(lambda r: httpx.Response(404, content=deep)) as client,
        pytest.raises(errors.NotFound, match="not JSON"),
    ):
        client.get_pipeline(PID)


def test_each_attempt_is_cut_off_at_the_request_deadline() -> None:
    clock = Clock()
    bodies: list[Pulled] = []

    def handler(request: httpx.Request) -> httpx.Response:
        def drip() -> Iterator[bytes]:
            for _ in range(10_000):
                clock.now += 2.0
                yield b" "

        bodies.append(Pulled(drip()))
        return httpx.Response(200, stream=bodies[-1])

    client = client_for(handler, clock, RetryPolicy(max_attempts=3, base_delay=1.0))
    client.limits = replace(DEFAULT_LIMITS, request_seconds=10.0)
    with client, pytest.raises(errors.RequestTimeout, match="did not finish within 10s"):
        client.get_pipeline(PID)
    assert [b.pulled for b in bodies] == [5, 5, 5]


def test_the_callers_deadline_holds_inside_a_request() -> None:
    clock = Clock()

    def handler(request: httpx.Request) -> httpx.Response:
        def drip() -> Iterator[bytes]:
            for byte in PAGE:
                clock.now += 2.0
                yield bytes([byte])

        return httpx.Response(200, stream=Pulled(drip()))

    with client_for(handler, clock, RetryPolicy()) as client:
        with client.deadline(5.0), pytest.raises(errors.DeadlinePassed):
            client.get_pipeline(PID)
        assert clock.now == 6.0  # three bytes, then it stopped: no retry after the deadline
        assert clock.sleeps == []
        client.set_deadline(None)
        with client.deadline(100.0), client.deadline(1.0):
            assert client._deadline == clock.now + 1.0


def test_no_retry_is_started_that_would_end_past_the_deadline() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(503, headers={"Retry-After": "30"})

    with client_for(handler, retry=RetryPolicy()) as client:
        client.set_deadline(45.0)
        with pytest.raises(errors.ServerError):
            client.get_pipeline(PID)
    assert len(calls) == 2  # waited 30 s once; another 30 s would pass the deadline


def _pages(items: list[dict[str, Any]], pad: int = 0) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        page = {"items": items, "next_page_token": uuid.uuid4().hex, "pad": " " * pad}
        return httpx.Response(200, json=page)

    return handler


def test_a_list_stops_at_its_item_cap_before_holding_more() -> None:
    job = {
        "id": WID,
        "name": "j",
        "type": "build",
        "status": "success",
        "job_number": 1,
        "started_at": None,
        "stopped_at": None,
        "dependencies": [],
        "project_slug": "gh/a/b",
    }
    client = client_for(_pages([job] * 20))
    client.limits = replace(DEFAULT_LIMITS, jobs=ListLimit(pages=1000, items=100))
    seen = []
    with client, pytest.raises(errors.ListTooLong, match="past 100 items"):
        seen.extend(client.list_workflow_jobs(WID))
    assert len(seen) == 100


def test_a_list_stops_at_its_byte_cap_over_all_pages() -> None:
    client = client_for(_pages([], pad=900))
    client.limits = replace(DEFAULT_LIMITS, json_bytes=1000, list_bytes=3000)
    with client, pytest.raises(errors.ListTooLong, match="in all"):
        list(client.list_pipeline_workflows(PID))


def test_a_page_token_too_long_to_send_back_is_malformed() -> None:
    page = {"items": [], "next_page_token": "x" * 5000}
    with (
        client_for(lambda r: httpx.Response(200, json=page)) as client,
        pytest.raises(errors.UnexpectedResponse, match="malformed next_page_token"),
    ):
        list(client.list_pipeline_workflows(PID))


# -- a real socket: headers one byte at a time ------------------------------------------------


class HeaderDrip:
    """A loopback server that sends its status line and headers one byte per ``interval``."""

    HEAD = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" + b"X-Pad: " + b"a" * 400 + b"\r\n"
    )

    def __init__(self, interval: float = 0.02) -> None:
        self.interval = interval
        self.sent = 0
        self.stop = threading.Event()
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(5)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        with conn:
            for i in range(len(self.HEAD)):
                if self.stop.wait(self.interval):
                    return
                try:
                    conn.sendall(self.HEAD[i : i + 1])
                except OSError:
                    return
                self.sent += 1

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        self.sock.close()


@pytest.fixture
def header_drip() -> Iterator[HeaderDrip]:
    server = HeaderDrip()
    yield server
    server.close()


@pytest.mark.loopback
def test_a_server_dripping_its_headers_is_cut_off_at_the_deadline(header_drip: HeaderDrip) -> None:
    client = CircleCIClient(token="t0ken-value", host=header_drip.url, retry=NO_RETRY)
    client.limits = replace(DEFAULT_LIMITS, request_seconds=0.5)
    with client, pytest.raises(errors.RequestTimeout):
        client.get_pipeline(PID)
    assert header_drip.sent < len(HeaderDrip.HEAD) // 2


@pytest.mark.loopback
def test_status_timeout_holds_while_headers_drip(
    header_drip: HeaderDrip, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("CIRCLE_TOKEN", "CIRCLECI_API_KEY", "CI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CIRCLEBACK_TOKEN", "t0ken-value-0123456789")
    monkeypatch.setenv("CIRCLEBACK_HOST", header_drip.url)
    monkeypatch.setattr(_cli, "RUNTIME", _cli.Runtime())
    code = _cli.run(["--log-format", "console", "status", "--pipeline-id", PID, "--timeout", "1s"])
    err = capsys.readouterr().err
    assert code == 4, err
    assert "Gave up after 1s" in err
    # The request was cut at the command's deadline, not after the per-request 60 s.
    assert "within 60s" not in err
    assert header_drip.sent < len(HeaderDrip.HEAD) // 2


# -- text from the API --------------------------------------------------------------------


def test_printable_escapes_every_control_and_keeps_the_rest() -> None:
    assert printable("build\x00\x1b[2K\rok\n\t\x7f\x9b\ud800") == (
        "build\\x00\\x1b[2K\\rok\\n\\t\\x7f\\x9b\\ud800".replace("\\r", "\\x0d")
        .replace("\\n", "\\x0a")
        .replace("\\t", "\\x09")
    )
    assert printable("naïve — 日本 \\x00") == "naïve — 日本 \\x00"
    assert printable_lines("a\nb\rc") == "a\nb\\x0dc"
    assert xml_safe("a\x00b\x1b\tc\n\ud800\ufffe") == "ab\tc\n"


#: Every character Python (and so the Unicode standard) breaks a line at: C0 ones, NEL
#: (U+0085, C1), and the line and paragraph separators U+2028 / U+2029, which some
#: terminals and log viewers show as a new line.
LINE_BREAKS = [chr(c) for c in range(0x110000) if len(f"a{chr(c)}b".splitlines()) == 2]


def test_printable_escapes_every_unicode_line_break() -> None:
    assert {"\x85", "\u2028", "\u2029"} <= set(LINE_BREAKS)
    for brk in LINE_BREAKS:
        shown = printable(f"all downstream pipelines succeeded{brk}ok")
        assert len(shown.splitlines()) == 1, repr(brk)
        assert f"\\x{ord(brk):02x}" in shown or f"\\u{ord(brk):04x}" in shown
        kept = printable_lines(f"a{brk}b")
        assert len(kept.splitlines()) == (2 if brk == "\n" else 1), repr(brk)


@pytest.mark.parametrize("json_format", [False, True])
def test_log_lines_carry_api_text_escaped(
    json_format: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    import io
    import logging

    stream = io.StringIO()
    configure(verbose=False, json_format=json_format, secrets=[], stream=stream)
    logging.getLogger("circleback.test").warning(
        "workflow x\r\nall downstream pipelines succeeded\x1b[0m", extra={"workflow": "n\x00\ud800"}
    )
    text = stream.getvalue()
    assert text.count("\n") == 1
    for control in ("\x1b", "\r", "\x00"):
        assert control not in text
    assert "\ud800" not in text
    text.encode("utf-8")
    if json_format:
        assert json.loads(text)["workflow"] == "n\\x00\\ud800"
