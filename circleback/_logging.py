"""Logging for the CLI: one structlog configuration, set up only by ``circleback._cli``.

The library logs through standard-library loggers under ``circleback`` with a
``NullHandler``, so it is silent unless an application configures logging (structlog's own
advice for libraries). The CLI routes those records and its own structlog events through
one processor chain: bound context (the command and its pipeline ids), level, logger,
timestamp (JSON only), **redaction** of the loaded token, **escaping** of control
characters (``circleback._text.printable``: messages carry API text such as workflow names,
and a newline, CR or ESC in it must not forge or hide a line of the log), then a renderer:
one readable line per event on a terminal, JSON lines under CI or ``--log-format json``.
Output goes to stderr; stdout carries data (ids, ``--json`` documents).

The processors below are plain functions with structlog's signature, so the paths that
must not import structlog (the no-op approve) render a line with the very same code
(``emit``). structlog itself is imported with ``rich`` hidden: structlog uses rich only for
pretty tracebacks, which circleback never prints, and importing it costs ~50 ms.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable, Iterable, MutableMapping
from datetime import datetime, timezone
from typing import Any, TextIO

from circleback._redact import REDACTED, redact_value, register
from circleback._text import printable

__all__ = [
    "REDACTED",
    "bind",
    "choose_format",
    "configure",
    "defer",
    "emit",
    "get_logger",
    "reset",
]

#: Context bound per command: in every JSON line, left out of console lines (noise there).
CONTEXT_KEYS = frozenset({"command", "upstream_pipeline_id", "pipeline_id", "project_slug"})
LOG_FORMATS = ("console", "json")

EventDict = MutableMapping[str, Any]
#: Whether the structlog configuration in force is ours (``reset`` undoes only ours).
_ours = {"structlog": False}


def choose_format(option: str | None, env_value: str | None, *, ci: bool) -> str:
    """``--log-format``, else ``$CIRCLEBACK_LOG_FORMAT``, else json under CI, else console."""
    chosen = option or (env_value.strip() if env_value else "") or ("json" if ci else "console")
    return chosen


def redact(logger: Any, method: str, event_dict: EventDict) -> EventDict:
    """Processor: the token, wherever it sits in the event, becomes ``**********``."""
    return {key: redact_value(value) for key, value in event_dict.items()}


def _printable(value: Any) -> Any:
    if isinstance(value, str):
        return printable(value)
    if isinstance(value, (list, tuple)):
        return type(value)(_printable(v) for v in value)
    if isinstance(value, dict):
        return {k: _printable(v) for k, v in value.items()}
    return value


def escape(logger: Any, method: str, event_dict: EventDict) -> EventDict:
    """Processor: every string in the event with its control characters escaped."""
    return {key: _printable(value) for key, value in event_dict.items()}


def timestamp(logger: Any, method: str, event_dict: EventDict) -> EventDict:
    """Processor: an ISO 8601 UTC time with a ``Z``, as CircleCI writes its own."""
    stamp = datetime.now(tz=timezone.utc).isoformat().replace("+00:00", "Z")
    event_dict["timestamp"] = stamp
    return event_dict


def render_console(logger: Any, method: str, event_dict: EventDict) -> str:
    """``circleback: [level: ]<event> (key=value …)``, the hint on its own line."""
    level = str(event_dict.pop("level", "info"))
    event = str(event_dict.pop("event", ""))
    hint = event_dict.pop("hint", None)
    for key in ("logger", "timestamp", *CONTEXT_KEYS):
        event_dict.pop(key, None)
    prefix = "" if level in {"info", "debug"} else f"{level}: "
    extras = " ".join(f"{k}={v}" for k, v in event_dict.items())
    line = f"circleback: {prefix}{event}" + (f" ({extras})" if extras else "")
    if hint:
        line += f"\n  hint: {hint}"
    return line


def render_json(logger: Any, method: str, event_dict: EventDict) -> str:
    """One JSON object per line, in UTF-8 text (not ``\\u`` escapes)."""
    return json.dumps(dict(event_dict), default=repr, ensure_ascii=False)


def _order(logger: Any, method: str, event_dict: EventDict) -> EventDict:
    """event, level, logger first: a reader's eye finds them where it did before."""
    head = {k: event_dict.pop(k) for k in ("event", "level", "logger") if k in event_dict}
    return {**head, **event_dict}


def emit(
    level: str,
    event: str,
    *,
    json_format: bool,
    logger: str = "circleback.cli",
    stream: TextIO | None = None,
    **fields: Any,
) -> None:
    """Write one event with the same processors, without importing structlog.

    For the paths that finish before anything else would import it (the no-op approve).
    """
    event_dict: EventDict = {"event": event, "level": level, "logger": logger, **fields}
    event_dict = escape(None, level, redact(None, level, event_dict))
    if json_format:
        line = render_json(None, level, timestamp(None, level, _order(None, level, event_dict)))
    else:
        line = render_console(None, level, event_dict)
    print(line, file=stream if stream is not None else sys.stderr)


def _import_structlog() -> Any:
    """``import structlog`` with rich hidden for the duration (see the module docstring)."""
    if "structlog" in sys.modules:
        return sys.modules["structlog"]
    hide = "rich" not in sys.modules
    if hide:
        sys.modules["rich"] = None  # type: ignore[assignment]
    try:
        import structlog
    finally:
        if hide:
            del sys.modules["rich"]
    return structlog


class _Renderer:
    """The last processor: console or JSON, chosen at configure time."""

    def __init__(self, *, json_format: bool) -> None:
        self.json_format = json_format

    def __call__(self, logger: Any, method: str, event_dict: EventDict) -> str:
        if self.json_format:
            return render_json(logger, method, event_dict)
        return render_console(logger, method, event_dict)


def configure(
    *,
    verbose: bool,
    json_format: bool,
    stream: TextIO | None = None,
    secrets: Iterable[str] = (),
) -> None:
    """Route structlog events and the ``circleback`` stdlib loggers to stderr, redacted.

    ``secrets`` are registered for redaction (``circleback._redact.register``) besides the
    token the CLI registers itself.
    """
    for secret in secrets:
        register(secret)
    structlog = _import_structlog()
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
    ]
    if json_format:
        shared.append(timestamp)
    # Unless a test is capturing events (``structlog.testing.capture_logs``): keep its capture.
    capturing = any(
        isinstance(p, structlog.testing.LogCapture) for p in structlog.get_config()["processors"]
    )
    _ours["structlog"] = not capturing
    if _ours["structlog"]:
        structlog.configure(
            processors=[
                structlog.stdlib.filter_by_level,
                structlog.stdlib.PositionalArgumentsFormatter(),
                *shared,
                structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
            ],
            logger_factory=structlog.stdlib.LoggerFactory(),
            wrapper_class=structlog.stdlib.BoundLogger,
            cache_logger_on_first_use=False,
        )
    formatter = structlog.stdlib.ProcessorFormatter(
        # Records from the library's stdlib loggers: their ``extra=`` fields become keys.
        foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder()],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            redact,
            escape,
            _order,
            _Renderer(json_format=json_format),
        ],
    )
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger("circleback")
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    root.propagate = False


class _Deferred(logging.Handler):
    """Stands in for the real handler until the first record: then configures, and passes
    the record on. Library records (the client's, the receiver's) thus reach stderr without
    any command having to configure logging up front, and paths that log nothing (the
    no-op approve, ``--help``) never import structlog."""

    def __init__(self, setup: Callable[[], None]) -> None:
        super().__init__()
        self._setup = setup

    def emit(self, record: logging.LogRecord) -> None:
        self._setup()
        for handler in list(logging.getLogger("circleback").handlers):
            if handler is not self and record.levelno >= handler.level:
                handler.handle(record)


def defer(setup: Callable[[], None], *, verbose: bool) -> None:
    """Route ``circleback`` records to ``setup`` (which must call ``configure``) when one comes."""
    root = logging.getLogger("circleback")
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(_Deferred(setup))
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    root.propagate = False


def reset() -> None:
    """Undo ``configure``: the library is silent again (tests; an in-process CLI run)."""
    root = logging.getLogger("circleback")
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(logging.NullHandler())
    root.setLevel(logging.NOTSET)
    root.propagate = True
    if "structlog" in sys.modules:
        structlog = sys.modules["structlog"]
        structlog.contextvars.clear_contextvars()
        if _ours["structlog"]:
            structlog.reset_defaults()
            _ours["structlog"] = False


def bind(**context: Any) -> None:
    """Bind context (pipeline ids) to every event of this command, library ones included."""
    _import_structlog().contextvars.bind_contextvars(**context)


class _LazyLogger:
    """A structlog logger made on first use, so importing the CLI imports no structlog.

    Takes structlog's keyword fields and, for code written against ``logging``, ``extra=``.
    """

    def __init__(self, name: str, setup: Callable[[], None] | None = None) -> None:
        self.name = name
        self._setup = setup

    def _log(self, method: str, event: str, *args: Any, **fields: Any) -> None:
        if self._setup is not None:
            self._setup()
        extra = fields.pop("extra", None) or {}
        logger = _import_structlog().stdlib.get_logger(self.name)
        getattr(logger, method)(event, *args, **{**extra, **fields})

    def debug(self, event: str, *args: Any, **fields: Any) -> None:
        self._log("debug", event, *args, **fields)

    def info(self, event: str, *args: Any, **fields: Any) -> None:
        self._log("info", event, *args, **fields)

    def warning(self, event: str, *args: Any, **fields: Any) -> None:
        self._log("warning", event, *args, **fields)

    def error(self, event: str, *args: Any, **fields: Any) -> None:
        self._log("error", event, *args, **fields)


def get_logger(name: str, setup: Callable[[], None] | None = None) -> _LazyLogger:
    """The CLI's logger: structlog, imported when the first event is logged.

    ``setup`` runs before each event (it should be cheap once done): the CLI configures
    logging there, so an event logged before settings are read is still rendered.
    """
    return _LazyLogger(name, setup)


def ci() -> bool:
    """Whether we run under CI (CircleCI sets ``CI=true``)."""
    return bool(os.environ.get("CI"))
