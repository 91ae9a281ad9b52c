"""status's progress: a live line on a terminal, a quiet line per change under CI."""

from __future__ import annotations

import io
import re

import pytest

from circleback.progress import Reporter, WaitProgress, clock_text

# -- status progress on a terminal and under CI ---------------------------------------------


class Sleeps:
    def __init__(self) -> None:
        self.slept: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.slept.append(seconds)


def _progress(elapsed: float, *waiting: str, next_look: float = 5.0) -> WaitProgress:
    return WaitProgress(elapsed, tuple(waiting), done=1, total=2, next_look=next_look)


def test_on_a_terminal_one_line_is_redrawn_each_second() -> None:
    stream, sleeps, said = io.StringIO(), Sleeps(), []
    reporter = Reporter(live=True, stream=stream, say=said.append, sleep=sleeps)
    reporter.update(_progress(62.0, "gh/acme/b #3: test is running", next_look=3.0))
    reporter.sleep(3.0)
    reporter.close()
    frames = stream.getvalue().split("\r\033[K")[1:]
    assert sleeps.slept == [1.0, 1.0, 1.0]
    assert frames[0] == (
        "circleback: waited 1m02s for 1 of 2 pipelines (next look in 3s): gh/acme/b #3: "
        "test is running"
    )
    assert [re.search(r"waited (\S+)", f).group(1) for f in frames[:4]] == [  # type: ignore[union-attr]
        "1m02s",
        "1m03s",
        "1m04s",
        "1m05s",
    ]
    assert frames[-1] == ""  # cleared before the summary
    assert said == []


def test_under_ci_a_line_only_when_something_changes_or_as_a_heartbeat() -> None:
    stream, sleeps, said = io.StringIO(), Sleeps(), []
    reporter = Reporter(live=False, stream=stream, say=said.append, sleep=sleeps, heartbeat=300)
    reporter.update(_progress(0, "b #1: test is running"))
    reporter.update(_progress(60, "b #1: test is running"))
    reporter.update(_progress(120, "b #1: test is failing"))
    reporter.update(_progress(400, "b #1: test is failing"))
    reporter.update(_progress(500, "b #1: test is failing"))
    reporter.sleep(60.0)
    reporter.close()
    assert [re.search(r"waited (\S+)", line).group(1) for line in said] == [  # type: ignore[union-attr]
        "0s",
        "2m00s",
        "8m20s",
    ]
    assert stream.getvalue() == ""
    assert sleeps.slept == [60.0]


@pytest.mark.parametrize(
    ("seconds", "text"), [(0, "0s"), (59.9, "59s"), (61, "1m01s"), (3725, "1h02m")]
)
def test_clock_text(seconds: float, text: str) -> None:
    assert clock_text(seconds) == text


def test_the_live_line_escapes_what_the_api_wrote() -> None:
    stream = io.StringIO()
    reporter = Reporter(live=True, stream=stream, say=print, sleep=lambda s: None)
    reporter.update(_progress(1.0, "gh/acme/b #1: evil\r\x1b[2Jname is running"))
    drawn = stream.getvalue()
    assert "\x1b[2J" not in drawn
    assert "evil\\x0d\\x1b[2Jname" in drawn
