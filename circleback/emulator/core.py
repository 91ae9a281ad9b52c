"""The emulator's core: state behind one lock, switches, faults, the request log, callbacks.

Nothing here knows HTTP: :mod:`circleback.emulator.app` serves a core and
:class:`circleback.emulator.service.Emulator` puts the two together, so that imports run one
way (service -> app -> core -> state -> config).
"""

from __future__ import annotations

import fnmatch
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TypeVar

from circleback.emulator import shapes
from circleback.emulator.faults import DEFAULT_SLOW_SECONDS, Fault, FaultKind
from circleback.emulator.state import EmulatorError, JobRun, State
from circleback.emulator.switches import Switches
from circleback.emulator.webhooks import Delivery, WebhookHub

#: Items per page of every list endpoint unless told otherwise (CircleCI's is 20 too).
DEFAULT_PAGE_SIZE = 20
#: Host names that always reach the emulator (anything else must be the bound host).
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})

_logger = logging.getLogger("circleback.emulator")
_T = TypeVar("_T")


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


def clock_following(
    seconds: Callable[[], float], start: datetime | None = None
) -> Callable[[], datetime]:
    """An emulator clock that moves with ``seconds`` (a monotonic reading, e.g. a test's
    fake time): creation delays then pass exactly when the code under test sleeps them
    away. ``start`` is the UTC moment of the first reading (now, by default)."""
    origin = start or _utc_now()
    first = seconds()
    return lambda: origin + timedelta(seconds=seconds() - first)


class EmulatorCore:
    """A stateful CircleCI API v2 emulator without its HTTP face (see ``service.Emulator``).

    ``projects`` maps slugs such as ``gh/acme/b`` to ``.circleci/config.yml`` paths, read at
    every trigger. With ``tokens`` only those tokens are accepted; without, any non-empty
    token is. ``token_projects`` limits a token to some projects (slug patterns as
    :func:`fnmatch.fnmatch` reads them): elsewhere it gets 404 "Project not found", as a
    token without access does on CircleCI. ``switches`` picks the variant of each behaviour
    where evidence about CircleCI varies (:mod:`circleback.emulator.switches`).
    ``project_tokens`` are project API tokens, which API v2 does not take: 404 "Project
    not found" everywhere, 401 on ``/me`` (api-preview-docs#52, orb-tools-orb#75).
    ``clock`` and ``sleep`` make time injectable for tests; the creation delays run on
    ``clock``. ``on_job_start`` is
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
        switches: Switches | Mapping[str, Any] | None = None,
        token_projects: Mapping[str, Iterable[str]] | None = None,
        project_tokens: Iterable[str] = (),
    ) -> None:
        self._lock = threading.RLock()
        self._clock = clock or _utc_now
        self.sleep: Callable[[float], None] = sleep or time.sleep
        self._on_job_start = on_job_start
        self._tokens = tuple(t for t in tokens if t)
        self._token_projects = {t: tuple(p) for t, p in (token_projects or {}).items()}
        self._project_tokens = tuple(t for t in project_tokens if t)
        for token in self._project_tokens:
            self._token_projects[token] = ()
        if not isinstance(switches, Switches):
            switches = Switches().updated(switches or {})
        self._initial_switches = switches
        self._state = State(
            {k: Path(v) for k, v in (projects or {}).items()}, self._clock, switches
        )
        self._faults: list[Fault] = []
        self._log: list[dict[str, Any]] = []
        self._initial_page_size = page_size
        self.set_page_size(page_size)
        self._ci_skip = False
        self.require_control_token = False
        """Whether the control API needs one of ``tokens`` (the server sets it when served
        with tokens: anyone who can reach it could otherwise finish jobs as they like)."""
        self.allowed_hosts: set[str] = set(LOOPBACK_HOSTS)
        """``Host`` header values answered (without port); others get 421 (DNS rebinding)."""
        self.config_roots: tuple[Path, ...] | None = None
        """Where ``POST /_emulator/projects`` may point (None: anywhere, in-process only)."""
        self.webhooks = WebhookHub()
        """Outbound webhooks (registered through ``POST /webhook``); see its module."""

    # -- public surface ----------------------------------------------------------------------

    @property
    def tokens(self) -> tuple[str, ...]:
        """Tokens the API accepts (project tokens included: they authenticate, then see
        nothing); empty means any token."""
        return (*self._tokens, *self._project_tokens) if self._tokens else ()

    def is_project_token(self, token: str) -> bool:
        return token in self._project_tokens

    def token_may_see(self, token: str, project_slug: str) -> bool:
        """False when ``token`` is limited to other projects (see ``token_projects``)."""
        patterns = self._token_projects.get(token)
        if patterns is None:
            return True
        with self._lock:
            slug = self._state.resolve_slug(project_slug) or project_slug
        return any(fnmatch.fnmatchcase(slug, p) for p in patterns)

    @property
    def switches(self) -> Switches:
        return self._state.switches

    def set_switches(self, changes: Mapping[str, Any] | None = None, **more: Any) -> Switches:
        """Change some switches (by name); ValueError names an unknown one or a bad value."""
        with self._lock:
            self._state.switches = self._state.switches.updated({**(changes or {}), **more})
            return self._state.switches

    def tick(self) -> None:
        """Let pending pipelines progress on the clock (the server calls this regularly)."""
        self.locked(lambda state: None)

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

    def continue_pipeline(
        self, continuation_key: str, configuration: str, parameters: Mapping[str, Any]
    ) -> None:
        """``POST /pipeline/continue``, as a setup job's continuation step does."""
        self.locked(lambda s: s.continue_pipeline(continuation_key, configuration, parameters))

    def finish_job(self, job_id: str, status: str) -> None:
        """End a running build job with ``success``, ``failed``, ``canceled`` or ``not_run``."""
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
        query: str = "",
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
            query=query,
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

    def take_fault(self, method: str, path: str, query: str = "") -> Fault | None:
        """The first pending fault matching the request, counted as used."""
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, path, query):
                    if fault.remaining is not None:
                        fault.remaining -= 1
                        if fault.remaining == 0:
                            self._faults.remove(fault)
                    return fault
        return None

    def reset(self) -> None:
        """Back to a fresh start: no pipelines, faults, log; initial page size and switches;
        CI skip off."""
        with self._lock:
            self._state.reset()
            self._state.switches = self._initial_switches
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
            dump["switches"] = self._state.switches.to_json()
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
                    self._state.tick()
                    result = action(self._state)
                    self._state.tick()
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
