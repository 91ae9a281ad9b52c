"""Serve an emulator over HTTP with the standard library (threaded ``wsgiref``).

Threaded so that a request can wait while another one arrives (an executor's job calling
back into the API while the trigger that started it is still being answered). Drop faults
close the socket for real. Nothing is logged per request: the access log is the emulator's
own request log, which never holds a token.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import socket
import socketserver
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any
from wsgiref.simple_server import ServerHandler, WSGIRequestHandler, WSGIServer

from circleback.emulator.core import DEFAULT_PAGE_SIZE
from circleback.emulator.faults import FaultSignal
from circleback.emulator.service import Emulator
from circleback.emulator.state import JobRun


class _ThreadingWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    # socketserver's default listen backlog is 5: ten clients connecting at once (status
    # over a fan-out) lose SYNs and wait the kernel's 1 s retransmit. CircleCI does not.
    request_queue_size = 128


class _IPv6Server(_ThreadingWSGIServer):
    address_family = socket.AF_INET6


class _Handler(WSGIRequestHandler):
    """wsgiref's handler, plus the raw request target and real connection faults."""

    def get_environ(self) -> dict[str, Any]:
        environ = super().get_environ()
        environ["RAW_URI"] = self.path
        return environ

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: see the module docstring."""

    def handle(self) -> None:
        self.raw_requestline = self.rfile.readline(65537)
        if len(self.raw_requestline) > 65536:
            self.send_error(414)
            return
        if not self.parse_request():
            return
        handler = ServerHandler(
            self.rfile,
            self.wfile,  # type: ignore[arg-type]
            self.get_stderr(),
            self.get_environ(),
            multithread=True,
        )
        handler.request_handler = self  # type: ignore[attr-defined]
        handler.run(self._faulting_app)

    def _faulting_app(self, environ: Any, start_response: Any) -> Iterable[bytes]:
        app = self.server.get_app()  # type: ignore[attr-defined]
        try:
            result: Iterable[bytes] = app(environ, start_response)
        except FaultSignal as signal:
            if signal.kind == "slow" and signal.response is not None:
                time.sleep(signal.seconds)
                status, headers, body = signal.response
                start_response(status, [*headers, ("Content-Length", str(len(body)))])
                return [body]
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            # ServerHandler.run treats this as "the client went away" and writes nothing.
            raise ConnectionAbortedError(signal.kind) from None
        return result


#: How often a served emulator moves pending pipelines on (creation and workflow delays).
TICK_SECONDS = 0.05


class EmulatorServer:
    """An emulator listening on a socket; ``url`` is where, ``url + "/api/v2"`` the API.

    Serving over a socket makes the emulator reachable by other programs, so: with tokens,
    the control API asks for one too; only the loopback names and the bound host are
    answered (DNS rebinding); and a ticker thread carries pending pipelines forward.
    """

    def __init__(
        self, emulator: Emulator, host: str, port: int, *, allow_remote: bool = False
    ) -> None:
        if not allow_remote and not is_loopback(host):
            raise ValueError(
                f"refusing to listen on {host!r}, which is not a loopback address: other "
                "machines could drive the emulator (the Host check stops browsers, not "
                "them); pass allow_remote=True (circleback emulator --allow-remote) to mean it"
            )
        server_class = _IPv6Server if ":" in host else _ThreadingWSGIServer
        self._server = server_class((host, port), _Handler)
        self._server.set_app(emulator.app)
        self.emulator = emulator
        self._thread: threading.Thread | None = None
        self._ticker: threading.Thread | None = None
        self._stop = threading.Event()
        bound_host, bound_port = self._server.server_address[:2]
        if isinstance(bound_host, bytes):
            bound_host = bound_host.decode()
        shown = f"[{bound_host}]" if ":" in bound_host else bound_host
        self.url = f"http://{shown}:{bound_port}"
        emulator.require_control_token = True
        emulator.allowed_hosts |= {host.lower().strip("[]"), str(bound_host).lower()}

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/v2"

    def serve_forever(self) -> None:
        self._start_ticker()
        self._server.serve_forever(poll_interval=0.1)

    def _start_ticker(self) -> None:
        if self._ticker is None:
            ticker = threading.Thread(
                target=self._tick_forever, name="circleback-emulator-ticker", daemon=True
            )
            ticker.start()
            # Published only once started: a shutdown racing this must never join a
            # thread not yet started; one it misses sees the stop event and ends.
            self._ticker = ticker

    def _tick_forever(self) -> None:
        while not self._stop.wait(TICK_SECONDS):
            self.emulator.tick()

    def start_in_thread(self) -> threading.Thread:
        """Serve from a daemon thread (once); returns that thread."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self.serve_forever, name="circleback-emulator", daemon=True
            )
            self._thread.start()
        return self._thread

    def shutdown(self) -> None:
        """Stop serving and close the socket; requests in flight are abandoned."""
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join()
            self._ticker = None
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> EmulatorServer:
        self.start_in_thread()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.shutdown()


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (``127.0.0.0/8``, ``::1``)."""
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def make_server(
    emulator: Emulator, host: str = "127.0.0.1", port: int = 0, *, allow_remote: bool = False
) -> EmulatorServer:
    """Bind (port 0 picks a free port) without serving yet.

    Raises ``ValueError`` for a host that is not loopback unless ``allow_remote``.
    """
    return EmulatorServer(emulator, host, port, allow_remote=allow_remote)


def serve(
    host: str = "127.0.0.1",
    port: int = 0,
    projects: Mapping[str, str | os.PathLike[str]] | None = None,
    tokens: Iterable[str] = (),
    page_size: int = DEFAULT_PAGE_SIZE,
    *,
    on_job_start: Callable[[JobRun], None] | None = None,
    switches: Mapping[str, Any] | None = None,
    allow_remote: bool = False,
) -> None:
    """Serve until interrupted; the first line on stdout is the base URL, for scripts.

    ``switches`` (names as in :class:`~circleback.emulator.switches.Switches`) pick the
    behaviour variants. ``POST /_emulator/projects`` may then only point at configs under
    the directories of ``projects``. A host that is not loopback raises ``ValueError``
    unless ``allow_remote``, and then a warning goes to stderr.
    """
    emulator = Emulator(
        projects=projects,
        tokens=tokens,
        page_size=page_size,
        on_job_start=on_job_start,
        switches=switches,
    )
    emulator.config_roots = tuple(
        {Path(path).resolve().parent for path in (projects or {}).values()}
    )
    server = make_server(emulator, host, port, allow_remote=allow_remote)
    print(server.url, flush=True)
    if not is_loopback(host):
        print(
            f"circleback emulator: warning: listening on {host}, reachable from other "
            "machines. Anyone who can reach the port can call the API"
            + (" and the control API" if not tokens else " with one of the --token values")
            + "; the Host check stops browsers, not other clients. Give --token values, "
            "and serve on loopback unless you need otherwise.",
            file=sys.stderr,
            flush=True,
        )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
        sys.stdout.flush()
