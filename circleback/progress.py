"""Showing a wait while it happens: a live line on a terminal, quiet lines under CI.

``status`` may wait half an hour. On a terminal, one line is redrawn every second: what
it waits on, how long it has waited, when it looks next. Under CI (or when stderr is a
file) that would be noise, so a line is written only when what it waits on changes, and
otherwise every ``heartbeat`` seconds (CircleCI ends a step that prints nothing for 10
minutes by default).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

from circleback._text import printable

#: Seconds between two lines under CI when nothing changes.
DEFAULT_HEARTBEAT = 300.0
_CLEAR = "\r\033[K"


@dataclass(frozen=True)
class WaitProgress:
    """Where a wait stands after one look at every pending pipeline."""

    elapsed: float
    """Seconds since the wait began."""
    waiting: tuple[str, ...]
    """One entry per pipeline not final yet, e.g. ``gh/acme/b #12: test is running``."""
    done: int
    """Pipelines already final."""
    total: int
    """Pipelines waited on."""
    next_look: float
    """Seconds until the next look."""


def clock_text(seconds: float) -> str:
    """``45s``, ``2m05s``, ``1h02m``: whole seconds, no decimals."""
    total = max(0, math.floor(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def describe(
    progress: WaitProgress, *, elapsed: float | None = None, next_look: float | None = None
) -> str:
    """One line, what changes first: ``waited 1m05s for 2 of 3 pipelines (next look in 8s): …``."""
    pending = progress.total - progress.done
    what = "; ".join(progress.waiting)
    waited = clock_text(progress.elapsed if elapsed is None else elapsed)
    nxt = clock_text(progress.next_look if next_look is None else next_look)
    count = f"{pending} of {progress.total} pipelines" if progress.total > 1 else "1 pipeline"
    return f"waited {waited} for {count} (next look in {nxt}): {what}"


class Reporter:
    """Receives ``WaitProgress`` from the wait and shows it; also does the wait's sleeping.

    ``live`` redraws one line on ``stream`` each second of every sleep; otherwise ``say``
    gets a line when the waiting set changes or ``heartbeat`` seconds passed since the
    last one. ``clean`` makes the live line safe for a terminal (API text in it may hold
    control characters); ``say`` is expected to do the same for its lines.
    """

    def __init__(
        self,
        *,
        live: bool,
        stream: TextIO,
        say: Callable[[str], None],
        sleep: Callable[[float], None],
        heartbeat: float = DEFAULT_HEARTBEAT,
        clean: Callable[[str], str] = printable,
    ) -> None:
        self.live = live
        self._stream = stream
        self._say = say
        self._sleep = sleep
        self._heartbeat = heartbeat
        self._clean = clean
        self._last: WaitProgress | None = None
        self._said_at: float | None = None
        self._said: tuple[str, ...] = ()
        self._drawn = False

    def update(self, progress: WaitProgress) -> None:
        """Called by the wait after each look."""
        self._last = progress
        if self.live:
            self._draw(progress.elapsed, progress.next_look)
            return
        changed = progress.waiting != self._said
        due = self._said_at is None or progress.elapsed - self._said_at >= self._heartbeat
        if changed or due:
            self._say(describe(progress))
            self._said, self._said_at = progress.waiting, progress.elapsed

    def sleep(self, seconds: float) -> None:
        """Sleep; live, in steps of a second so the line's clock keeps moving."""
        last = self._last
        if not self.live or last is None:
            self._sleep(seconds)
            return
        slept = 0.0
        while slept < seconds:
            step = min(1.0, seconds - slept)
            self._sleep(step)
            slept += step
            self._draw(last.elapsed + slept, max(last.next_look - slept, 0.0))

    def close(self) -> None:
        """Clear the live line so what follows starts on a clean line."""
        if self._drawn:
            self._stream.write(_CLEAR)
            self._stream.flush()
            self._drawn = False

    def _draw(self, elapsed: float, next_look: float) -> None:
        assert self._last is not None
        text = describe(self._last, elapsed=elapsed, next_look=next_look)
        line = "circleback: " + self._clean(text)
        self._stream.write(_CLEAR + line[: _width() - 1])
        self._stream.flush()
        self._drawn = True


def _width() -> int:
    import shutil

    return max(shutil.get_terminal_size((100, 24)).columns, 40)
