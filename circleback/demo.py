"""``circleback demo``: the whole circleback, project A and project B, with no account.

The example projects (``examples/project-a`` and ``examples/project-b``) are loaded into the
embedded CircleCI API emulator, served on a free loopback port, and every job they start is
run for real by the local executor, with the circleback orb. Then A's pipeline is triggered
and what happens is printed as a timeline: A triggers B, A parks on a free approval job, B
runs, B releases A's hold, A checks B's result. With ``fail_downstream`` B's tests fail,
and the timeline shows A's check failing with B's failed jobs.

The output is the point of the command, so it goes to stdout; step output stays out of it
except where a step failed. Every wait is bounded: the demo cannot hang.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from circleback import errors

if TYPE_CHECKING:
    from circleback.emulator.executor import JobRecord, LocalCircleCI

__all__ = ["DEMO_TIMEOUT", "find_examples", "run_demo"]

UPSTREAM = "gh/acme/project-a"
DOWNSTREAM = "gh/acme/project-b"
#: The longest the whole demo may take before it gives up and says what is still running.
DEMO_TIMEOUT = 60.0
#: Any one step taking longer than this is killed (the examples' steps take well under 1s).
STEP_TIMEOUT = 30.0
#: Lines of a failed step's output shown (the end of it, where the reason usually is).
FAILED_OUTPUT_LINES = 15

_LABELS = {UPSTREAM: "A", DOWNSTREAM: "B"}
#: Within one millisecond: a pipeline is created before its jobs start, a job finishes
#: before what it causes (a hold, a workflow's end), a hold is released before the job
#: waiting on it starts.
_RANKS = {"pipeline": 0, "finished": 1, "hold": 2, "workflow": 2, "released": 3, "started": 4}
_MARKS = {
    "success": "ok",
    "failed": "FAILED",
    "skipped": "skipped",
    "not_run": "not run",
    "canceled": "canceled",
}


def find_examples() -> Path:
    """The example projects: bundled in the wheel, else the repository checkout."""
    here = Path(__file__).resolve().parent
    candidates = (here / "_bundled" / "examples", here.parent / "examples")
    for candidate in candidates:
        if (candidate / "project-a" / ".circleci" / "config.yml").is_file():
            return candidate
    raise errors.ConfigurationError(
        f"circleback's example projects were not found (tried {', '.join(map(str, candidates))})",
        hint="Reinstall circleback, or run the demo from a checkout of its repository.",
    )


def run_demo(
    *, fail_downstream: bool = False, webhook: bool = False, out: TextIO | None = None
) -> int:
    """Run the demo, print its timeline to ``out`` (stdout); return an exit code.

    0 when the demo showed what it promises: with ``fail_downstream`` that is B failing and
    A's check failing because of it. Non-zero only when the demo itself broke: 1 it ended
    otherwise, 2 the examples or the orb are missing, 3 the emulator could not be served or
    called, 4 it did not finish within :data:`DEMO_TIMEOUT`.
    """
    from circleback.emulator.executor import run_locally

    stream = out if out is not None else sys.stdout

    def say(line: str = "") -> None:
        stream.write(line + "\n")
        stream.flush()

    try:
        examples = find_examples()
        if webhook:
            from circleback.serve import require_extra

            require_extra()
    except errors.ConfigurationError as exc:
        say(f"circleback demo: {exc.message}\n  hint: {exc.hint}")
        return exc.exit_code
    b_config = ("webhook", "project-b") if webhook else ("project-b",)
    projects = {
        UPSTREAM: examples / "project-a" / ".circleci" / "config.yml",
        DOWNSTREAM: examples.joinpath(*b_config, ".circleci", "config.yml"),
    }
    fail_jobs = {(DOWNSTREAM, "build-and-test")} if fail_downstream else set()
    say("circleback demo: project A triggers project B, waits for it on a free approval job,")
    say("B releases that hold when it is done, and A then checks B's result.")
    if webhook:
        say("This time B has no callback job (--webhook): 'circleback serve' receives B's")
        say("signed workflow-completed webhook and releases A's hold by the same rules.")
    if fail_downstream:
        say("This time B's build-and-test is made to fail (--fail-downstream).")
    clock = time.monotonic()
    try:
        with contextlib.ExitStack() as stack:
            local = stack.enter_context(
                run_locally(projects, fail_jobs=fail_jobs, step_timeout=STEP_TIMEOUT)
            )
            say(f"Both run on circleback's embedded CircleCI emulator at {local.server.url};")
            say("every job runs here, in bash, with the circleback orb.")
            if webhook:
                from circleback.serve.local import receive_locally

                url = stack.enter_context(
                    receive_locally(local, allow=["gh/acme/*"], downstream=[DOWNSTREAM])
                )
                say(f"The receiver listens at {url}; B's webhook is installed through the API.")
            say()
            # The timeline orders events to the millisecond; CircleCI's whole-second job
            # timestamps (the emulator's realistic default) would jumble a 2 s demo.
            local.emulator.set_switches(timestamps="millis")
            start = datetime.now(timezone.utc)
            local.trigger(UPSTREAM, branch="main")
            finished = _wait(local, webhook)
            state = local.emulator.state_dump()
            records = local.executor.records
    except errors.CirclebackError as exc:
        say(f"circleback demo: could not run: {exc.message}\n  hint: {exc.hint}")
        return exc.exit_code
    except Exception as exc:  # the server could not start, or the trigger was refused
        say(f"circleback demo: could not run: {type(exc).__name__}: {exc}")
        return errors.EXIT_API
    wall = time.monotonic() - clock

    story = _Story(state, records, start, releaser="B's webhook" if webhook else "B")
    for line in story.timeline():
        say(line)
    say()
    if not finished:
        say(f"The demo did not finish within {DEMO_TIMEOUT:.0f}s; still running:")
        for name in story.still_running():
            say(f"  {name}")
        return errors.EXIT_TIMEOUT
    code, verdict = story.verdict(fail_downstream=fail_downstream)
    for line in verdict:
        say(line)
    say(f"The demo took {wall:.1f}s.")
    return code


def _wait(local: LocalCircleCI, webhook: bool) -> bool:
    """Until nothing runs; with the webhook, nothing is in flight to the receiver either."""
    if not webhook:
        return local.executor.wait_idle(DEMO_TIMEOUT)
    from circleback.serve.local import wait_settled

    return wait_settled(local, DEMO_TIMEOUT)


@dataclass(order=True)
class _Event:
    at: float
    """Seconds since the demo triggered A, to the millisecond (the emulator's resolution)."""
    rank: int
    """Orders events of the same millisecond by cause: see :data:`_RANKS`."""
    order: int
    who: str = field(compare=False)
    text: str = field(compare=False)
    details: tuple[str, ...] = field(default=(), compare=False)


class _Story:
    """Turns the emulator's state and the executor's records into the demo's text."""

    def __init__(
        self,
        state: Mapping[str, Any],
        records: Sequence[JobRecord],
        start: datetime,
        releaser: str = "B",
    ) -> None:
        self.releaser = releaser
        self.state = state
        self.records = records
        self.start = start
        self.jobs = [j for j in state["jobs"] if j["project_slug"] in _LABELS]
        self.workflows = [w for w in state["workflows"] if w["project_slug"] in _LABELS]

    # -- the timeline ------------------------------------------------------------------------

    def timeline(self) -> list[str]:
        events = sorted(self._events())
        lines = [f"{'time':>7}  {'':2} what happened"]
        for event in events:
            lines.append(f"{event.at:6.2f}s  {event.who:2} {event.text}")
            lines.extend(f"{'':11}{detail}" for detail in event.details)
        return lines

    def _events(self) -> Iterable[_Event]:
        counter = iter(range(1_000_000))

        def event(
            kind: str, at: str | datetime | None, who: str, text: str, *details: str
        ) -> _Event:
            return _Event(self._since(at), _RANKS[kind], next(counter), who, text, details)

        for p in self.state["pipelines"]:
            who = _LABELS.get(p["project_slug"])
            if who == "A":
                yield event(
                    "pipeline", p["created_at"], who, f"pipeline #{p['number']} triggered on main"
                )
            elif who == "B":
                upstream = str(p["parameters"].get("triggering-pipeline-id") or "")
                by = f"by A (triggering-pipeline-id={upstream[:8]}...)" if upstream else "alone"
                yield event(
                    "pipeline", p["created_at"], who, f"pipeline #{p['number']} triggered {by}"
                )
        for job in self.jobs:
            if job["type"] != "approval" or job["started_at"] is None:
                continue
            who = _LABELS[job["project_slug"]]
            yield event(
                "hold",
                job["started_at"],
                who,
                f"{job['name']}: ON HOLD (an approval job: nothing runs, nothing is billed)",
            )
            if job["status"] == "success":
                held = self._seconds(job["started_at"], job["stopped_at"])
                text = f"{job['name']}: released by {self.releaser} after {held:.2f}s"
                yield event("released", job["stopped_at"], who, text)
        for record in self.records:
            who = _LABELS.get(record.project_slug, "?")
            yield event("started", record.started_at, who, f"{record.job_name} started")
            if record.finished_at is not None:
                status = record.status.upper() if record.status != "success" else "success"
                yield event(
                    "finished",
                    record.finished_at,
                    who,
                    f"{record.job_name}: {status} ({record.duration:.2f}s)",
                    *self._step_lines(record),
                )
        for w in self.workflows:
            if w["stopped_at"] is not None:
                who = _LABELS[w["project_slug"]]
                yield event(
                    "workflow", w["stopped_at"], who, f"workflow {w['name']}: {w['status']}"
                )

    def _step_lines(self, record: JobRecord) -> list[str]:
        lines = [f"  {record.job_ref}: {record.error}"] if record.error else []
        for step in record.steps:
            mark = _MARKS.get(step.status, step.status)
            took = f" ({step.duration:.2f}s)" if step.status in ("success", "failed") else ""
            why = f": {step.reason}" if step.status in ("skipped", "not_run") else ""
            lines.append(f"  {mark:8} {step.name}{took}{why}")
            if step.status == "failed":
                output = step.output.replace(str(record.directory / "home"), "~")
                lines.extend(f"  {'':8} | {line}" for line in _tail(output))
        return lines

    # -- the verdict -------------------------------------------------------------------------

    def verdict(self, *, fail_downstream: bool) -> tuple[int, list[str]]:
        a = self._workflow_status("A")
        b = self._workflow_status("B")
        check = self._job_status("A", "check-project-b")
        deploy = self._job_status("A", "deploy")
        hold = self._hold_seconds()
        a_cost = sum(r.duration for r in self.records if r.project_slug == UPSTREAM)
        cost = [
            f"Cost: A waited {hold:.2f}s on hold for B, free of charge; its jobs ran for "
            f"{a_cost:.2f} job-seconds in all.",
            f"A job polling B instead would have been billed for the wait too: "
            f"{a_cost + hold:.2f} job-seconds",
            "(and on CircleCI the wait is B's whole pipeline, often many minutes).",
        ]
        if not fail_downstream and (a, b, check, deploy) == ("success",) * 4:
            return errors.EXIT_OK, [
                "Result: B succeeded, so A's check passed and A deployed.",
                *cost,
            ]
        failed_b = [j["name"] for j in self._jobs("B") if j["status"] == "failed"]
        if fail_downstream and b == "failed" and check == "failed" and deploy == "not_run":
            return errors.EXIT_OK, [
                f"Result: B failed ({', '.join(failed_b)}), B still released A's hold, and A's",
                "check failed with B's failed jobs listed: A did not deploy. That is the point.",
                *cost,
            ]
        expected = "B failed and A's check failed" if fail_downstream else "A and B succeeded"
        return errors.EXIT_DOWNSTREAM_FAILED, [
            f"The demo did not go as it should ({expected}): workflow A {a}, workflow B {b},",
            f"A's check {check}, A's deploy {deploy}. This is a bug in circleback; please report",
            "it with this output.",
        ]

    def still_running(self) -> list[str]:
        return [
            f"{_LABELS[j['project_slug']]} {j['name']} ({j['status']})"
            for j in self.jobs
            if j["status"] in ("running", "blocked", "queued")
        ]

    # -- lookups -----------------------------------------------------------------------------

    def _jobs(self, who: str) -> list[Mapping[str, Any]]:
        return [j for j in self.jobs if _LABELS[j["project_slug"]] == who]

    def _job_status(self, who: str, name: str) -> str:
        statuses = [j["status"] for j in self._jobs(who) if j["name"] == name]
        return str(statuses[-1]) if statuses else "missing"

    def _workflow_status(self, who: str) -> str:
        statuses = [w["status"] for w in self.workflows if _LABELS[w["project_slug"]] == who]
        return str(statuses[-1]) if statuses else "missing"

    def _hold_seconds(self) -> float:
        return sum(
            self._seconds(j["started_at"], j["stopped_at"])
            for j in self._jobs("A")
            if j["type"] == "approval" and j["started_at"] and j["stopped_at"]
        )

    def _since(self, moment: str | datetime | None) -> float:
        return max(0.0, self._seconds(self.start, moment))

    @staticmethod
    def _seconds(first: str | datetime | None, second: str | datetime | None) -> float:
        if first is None or second is None:
            return 0.0
        return (_moment(second) - _moment(first)).total_seconds()


def _moment(value: str | datetime) -> datetime:
    """Cut to the millisecond, as the emulator's timestamps are, so that times compare."""
    if not isinstance(value, datetime):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def _tail(output: str) -> list[str]:
    """The last lines of a failed step's output, with circleback's JSON log lines readable."""
    lines = [_readable(line) for line in output.rstrip().splitlines() if line.strip()]
    if len(lines) > FAILED_OUTPUT_LINES:
        dropped = len(lines) - FAILED_OUTPUT_LINES
        lines = [f"[... {dropped} lines ...]", *lines[-FAILED_OUTPUT_LINES:]]
    return lines


def _readable(line: str) -> str:
    """Jobs run with CI=true, so circleback logs JSON there; show it as the console does."""
    if not line.startswith("{"):
        return line
    try:
        entry = json.loads(line)
    except ValueError:
        return line
    if not isinstance(entry, dict) or "event" not in entry:
        return line
    level = str(entry.get("level", "info"))
    prefix = "" if level in ("info", "debug") else f"{level}: "
    text = f"circleback: {prefix}{entry['event']}"
    if entry.get("hint"):
        text += f" (hint: {entry['hint']})"
    return text
