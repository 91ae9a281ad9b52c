"""The :class:`Emulator`: the core's state machine with its WSGI app and an httpx transport."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from circleback.emulator.app import WSGIApp
from circleback.emulator.core import EmulatorCore

if TYPE_CHECKING:
    import httpx


class Emulator(EmulatorCore):
    """A stateful CircleCI API v2 emulator; ``app`` serves it, ``transport()`` for httpx.

    Every argument is :class:`~circleback.emulator.core.EmulatorCore`'s.
    """

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._app = WSGIApp(self)

    @property
    def app(self) -> WSGIApp:
        """The WSGI application (API under ``/api/v2``, control API under ``/_emulator``)."""
        return self._app

    def transport(self) -> httpx.BaseTransport:
        """An httpx transport into this emulator, with faults mapped to httpx's exceptions."""
        from circleback.emulator.transport import EmulatorTransport

        return EmulatorTransport(self._app)
