"""The :class:`Emulator`: state behind one lock, faults, the request log, and callbacks."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from circleback.emulator import shapes
from circleback.emulator.faults import DEFAULT_SLOW_SECONDS, Fault, FaultKind
from circleback.emulator.state import EmulatorError, JobRun, State
from circleback.emulator.webhooks import Delivery, WebhookHub

if TYPE_CHECKING:
    import httpx

    from circleback.emulator.app import WSGIApp

#: Items per page of every list endpoint unless told otherwise (CircleCI's is 20 too).
DEFAULT_PAGE_SIZE = 20

_logger = logging.getLogger("circleback.emulator")
_T = TypeVar("_T")


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


class Emulator:
    """A stateful CircleCI API v2 emulator; ``app`` serves it, ``transport()`` for httpx.

    ``projects`` maps slugs such as ``gh/acme/b`` to ``.circleci/config.yml`` paths, read at
    every trigger. With ``tokens`` only those tokens are accepted; without, any non-empty
    token is. ``clock`` and ``sleep`` make time injectable for tests. ``on_job_start`` is
    called, outside the lock and in the thread that caused it, each time a build job starts:
    hand the work to another thread if it takes long, since the request waits for it.
    """

    def __init__(
        self,
        *,
        projects: Mapping[str, str | os.PathLike[str]] | None = None,
        tokens: Iterable[str] = (),
        page_size: int = DEFAULT_PAGE_SIZE,
        clock: Callable[[], datetime] | None = None,
        sleep: Callable[[float], None] | None = None,
        on_job_start: Callable[[JobRun], None] | None = None,
    ) -> None:
        from circleback.emulator.app import WSGIApp

        self._lock = threading.RLock()
        self._clock = clock or _utc_now
        self.sleep: Callable[[float], None] = sleep or time.sleep
        self._on_job_start = on_job_start
        self._tokens = tuple(t for t in tokens if t)
        self._state = State({k: Path(v) for k, v in (projects or {}).items()}, self._clock)
        self._faults: list[Fault] = []
        self._log: list[dict[str, Any]] = []
        self._initial_page_size = page_size
        self.set_page_size(page_size)
        self._ci_skip = False
        self._app = WSGIApp(self)
        #: Outbound webhooks (registered through ``POST /webhook``); see its module.
        self.webhooks = WebhookHub(self)

    # -- public surface ----------------------------------------------------------------------

    @property
    def app(self) -> WSGIApp:
        """The WSGI application (API under ``/api/v2``, control API under ``/_emulator``)."""
        return self._app

    def transport(self) -> httpx.BaseTransport:
        """An httpx transport into this emulator, with faults mapped to httpx's exceptions."""
        from circleback.emulator.transport import EmulatorTransport

        return EmulatorTransport(self)

    @property
    def tokens(self) -> tuple[str, ...]:
        return self._tokens

    @property
    def page_size(self) -> int:
        return self._page_size

    def set_page_size(self, page_size: int) -> None:
        """Set how many items each list page holds (small sizes exercise pagination)."""
        if not isinstance(page_size, int) or isinstance(page_size, bool) or page_size < 1:
            raise EmulatorError(400, "page_size must be a positive integer.")
        with self._lock:
            self._page_size = page_size

    @property
    def ci_skip(self) -> bool:
        return self._ci_skip

    def set_ci_skip(self, enabled: bool) -> None:
        """While on, triggers answer 200 "not created", as CircleCI does for ``[ci skip]``."""
        with self._lock:
            self._ci_skip = bool(enabled)

    def add_project(self, slug: str, config_path: str | os.PathLike[str]) -> None:
        """Add (or re-point) a project."""
        with self._lock:
            self._state.add_project(slug, Path(config_path))

    def finish_job(self, job_id: str, status: str) -> None:
        """End a running build job with ``success``, ``failed`` or ``canceled``."""
        self.locked(lambda s: s.finish_job(job_id, status))

    def add_artifact(self, job_id: str, path: str, content: bytes) -> None:
        """Store an artifact for a job, as ``store_artifacts`` does (listed by getJobArtifacts)."""
        self.locked(lambda s: s.add_artifact(job_id, path, content))

    def finish_job_by_name(
        self, project_slug: str, job_name: str, status: str, *, pipeline_id: str | None = None
    ) -> str:
        """End the newest running job of that name in the project; returns its id."""

        def finish(state: State) -> str:
            job = state.find_running_job(project_slug, job_name, pipeline_id)
            state.finish_job(job.id, status)
            return job.id

        return self.locked(finish)

    def add_fault(
        self,
        kind: FaultKind,
        *,
        method: str = "*",
        path: str = "",
        count: int | None = 1,
        status: int | None = None,
        retry_after: int | str | None = None,
        body: Any = None,
        latency_ms: int = 0,
        seconds: float = DEFAULT_SLOW_SECONDS,
    ) -> Fault:
        """Make the next ``count`` requests matching ``method`` and ``path`` misbehave.

        See :mod:`circleback.emulator.faults` for the kinds. ``count=None`` means every
        matching request until :meth:`clear_faults`. Faults are tried in the order added.
        """
        fault = Fault(
            kind=kind,
            method=method,
            path=path,
            remaining=count,
            status=status,
            retry_after=None if retry_after is None else str(retry_after),
            body=body,
            latency_ms=latency_ms,
            seconds=seconds,
        )
        return self.add_fault_object(fault)

    def add_fault_object(self, fault: Fault) -> Fault:
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    @property
    def faults(self) -> list[Fault]:
        with self._lock:
            return list(self._faults)

    def take_fault(self, method: str, path: str) -> Fault | None:
        """The first pending fault matching the request, counted as used."""
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, path):
                    if fault.remaining is not None:
                        fault.remaining -= 1
                        if fault.remaining == 0:
                            self._faults.remove(fault)
                    return fault
        return None

    def reset(self) -> None:
        """Back to a fresh start: no pipelines, faults, log; initial page size; CI skip off."""
        with self._lock:
            self._state.reset()
            self._faults.clear()
            self._log.clear()
            self._page_size = self._initial_page_size
            self._ci_skip = False
            self.webhooks.reset()

    def state_dump(self) -> dict[str, Any]:
        """Projects, pipelines (with their parameters), workflows and jobs, as JSON data."""
        with self._lock:
            dump = shapes.state_json(self._state)
            dump["page_size"] = self._page_size
            dump["ci_skip"] = self._ci_skip
            dump["faults"] = [f.to_json() for f in self._faults]
            return dump

    @property
    def request_log(self) -> list[dict[str, Any]]:
        """API requests seen: method, raw path, query (tokens redacted), status, fault."""
        with self._lock:
            return [dict(entry) for entry in self._log]

    def clear_request_log(self) -> None:
        with self._lock:
            self._log.clear()

    # -- for the app -------------------------------------------------------------------------

    def now(self) -> datetime:
        return self._clock()

    def log_request(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self._log.append(entry)

    def locked(self, action: Callable[[State], _T]) -> _T:
        """Run ``action`` on the state under the lock, then announce started jobs unlocked."""
        events: list[Delivery] = []
        try:
            with self._lock:
                try:
                    result = action(self._state)
                finally:
                    started = self._state.drain_started()
                    events = self.webhooks.collect(self._state)
        finally:
            self.webhooks.send(events)  # outside the lock: receivers call the API back
        if self._on_job_start is not None:
            for run in started:
                try:
                    self._on_job_start(run)
                except Exception:
                    # The API call that started the job succeeded; the executor's failure is
                    # its own, so it is logged rather than turned into an API error.
                    _logger.exception("on_job_start failed for job %s", run.job_name)
        return result
