"""An httpx transport straight into the emulator's WSGI app, for fast in-process tests.

It wraps :class:`httpx.WSGITransport` and gives connection-level faults the exceptions a
real socket would produce, so client code under test takes the same paths it takes in
production: a dropped connection or a lost response raises ``httpx.RemoteProtocolError``,
a slow response raises ``httpx.ReadTimeout`` at once (nobody waits for it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx

from circleback.emulator.faults import FaultSignal

if TYPE_CHECKING:
    from collections.abc import Iterable

    from _typeshed.wsgi import WSGIApplication


class EmulatorTransport(httpx.BaseTransport):
    """Send each request to the emulator's WSGI ``app`` with its raw path, mapping faults."""

    def __init__(self, app: WSGIApplication) -> None:
        self._app = app

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        raw_target = request.url.raw_path.decode("ascii")
        app = self._app

        def with_raw_target(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
            environ["RAW_URI"] = raw_target
            return app(environ, start_response)

        try:
            return httpx.WSGITransport(app=with_raw_target).handle_request(request)
        except FaultSignal as signal:
            if signal.kind == "slow":
                raise httpx.ReadTimeout("The read operation timed out", request=request) from None
            raise httpx.RemoteProtocolError(
                "Server disconnected without sending a response.", request=request
            ) from None
