"""Run the jobs the emulator starts, for real, in bash on this machine.

The emulator only tracks job states; this executor gives its build jobs a body. Each job
the emulator starts is compiled by :mod:`circleback.emulator.steps` (orb commands expanded
from circleback's packed orb, parameters and pipeline values substituted) and run in its own
thread, each ``run`` step in ``bash -eo pipefail`` as CircleCI does, with CircleCI's built-in
environment and the API pointed back at the emulator. The job is then finished in the
emulator with ``success`` or ``failed``, which starts whatever required it: so a pipeline
that triggers another over the API, and the other that approves the first one's hold, play
out end to end without a CircleCI account.

Isolation is per job: a fresh working directory and ``$HOME`` (so ``~`` paths of concurrent
jobs do not collide) and a ``$BASH_ENV`` file that bash sources before each step (which is
how the orb's install step adds to ``PATH`` for later steps). The environment is built from
scratch: nothing of the developer's environment leaks in but ``PATH`` and ``LANG``, and the
running interpreter's scripts directory comes first on ``PATH``, so the ``circleback`` the
orb calls is this one and the orb's install step finds it and installs nothing.

::

    with run_locally({"gh/acme/a": "a/.circleci/config.yml"}) as local:
        local.trigger("gh/acme/a")
        local.executor.wait_idle(60)
        print(local.executor.records)

What is not emulated (recorded as skipped steps, never dropped): ``checkout``, caches, remote
Docker, SSH keys, and jobs or commands of orbs other than circleback's. Docker images,
executors and resource classes are ignored: every job runs on this machine.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sysconfig
import tempfile
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any

from circleback._version import __version__
from circleback.emulator.server import EmulatorServer, make_server
from circleback.emulator.service import Emulator
from circleback.emulator.state import EmulatorError, JobRun
from circleback.emulator.steps import JobPlan, PlanError, PlannedStep, plan_job

if TYPE_CHECKING:
    import httpx

__all__ = [
    "DEFAULT_OUTPUT_LIMIT",
    "DEFAULT_SHELL",
    "DEFAULT_STEP_TIMEOUT",
    "JobRecord",
    "LocalCircleCI",
    "LocalExecutor",
    "StepRecord",
    "run_locally",
]

#: How each ``run`` step is started, before the script's path: CircleCI's default shell
#: where bash exists. ``("busybox", "sh", "-eo", "pipefail")`` runs steps as CircleCI does on
#: Alpine, which has no bash (and whose sh never reads ``$BASH_ENV``).
DEFAULT_SHELL: tuple[str, ...] = ("bash", "-eo", "pipefail")
#: Seconds a step may run before it is killed and fails (CircleCI's own limit is hours;
#: locally a hung step should fail a test quickly instead).
DEFAULT_STEP_TIMEOUT = 120.0
#: Bytes of each step's output kept (the start and the end); the middle is dropped.
DEFAULT_OUTPUT_LIMIT = 64 * 1024
#: How often a running step looks whether its job was canceled through the API.
_CANCEL_CHECK_SECONDS = 0.1
#: How long a killed step gets between SIGTERM and SIGKILL.
_KILL_GRACE_SECONDS = 3.0
#: Set in the environment of a step that ``fail_jobs`` makes fail on purpose.
FAIL_ON_PURPOSE_VARIABLE = "CIRCLEBACK_EXECUTOR_FAIL"
_FAIL_PREAMBLE = (
    'echo "circleback executor: failing this step on purpose (fail_jobs)" >&2\nexit 1\n'
)
_UNSAFE_PATH_CHARS = re.compile(r"[^A-Za-z0-9._-]+")

#: Which jobs to fail on purpose: (project slug, job name) pairs, or a predicate.
FailJobs = Collection[tuple[str, str]] | Callable[[JobRun], bool]


@dataclass
class StepRecord:
    """What happened to one step: run, skipped (and why), failed, or never reached."""

    name: str
    kind: str
    """``run``, a built-in such as ``persist_to_workspace``, or the skipped step's name."""
    status: str
    """``success``, ``failed``, ``skipped`` (cannot run locally), ``not_run`` (its ``when``
    excluded it), ``canceled`` (the job was canceled) or ``running``."""
    origin: str = ""
    """The job or command chain it came from, e.g. ``circleback/check > install``."""
    reason: str | None = None
    """Why it was skipped, not run or failed without an exit status (timeout, error)."""
    exit_code: int | None = None
    output: str = ""
    """stdout and stderr interleaved, as the step printed them, bounded in size."""
    started_at: datetime | None = None
    duration: float = 0.0
    """Seconds (monotonic) the step took."""


@dataclass
class JobRecord:
    """One job the emulator started and the executor ran: its steps and its outcome."""

    project_slug: str
    pipeline_id: str
    pipeline_number: int
    workflow_id: str
    workflow_name: str
    job_id: str
    job_name: str
    job_number: int
    job_ref: str
    directory: Path
    """Where the job's home, working directory and stored results live."""
    started_at: datetime
    status: str = "running"
    """``running``, then ``success``, ``failed`` or ``canceled`` (as the emulator ended it)."""
    finished_at: datetime | None = None
    duration: float = 0.0
    """Seconds (monotonic) from start to finish: what the job would be billed for."""
    steps: list[StepRecord] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    """What was ignored on purpose (Docker images, ...), and how the job ended, if unusual."""
    error: str | None = None
    """Why the job failed without a failing step: a config it cannot compile, or a bug."""
    test_results: list[Path] = field(default_factory=list)
    """Files stored with ``store_test_results`` (copied under ``directory``)."""
    artifacts: list[Path] = field(default_factory=list)
    """Files stored with ``store_artifacts`` (copied under ``directory``, and added to the
    emulator's artifacts of the job, which the API lists)."""

    def step(self, name: str) -> StepRecord:
        """The first step of that name; LookupError if there is none."""
        for step in self.steps:
            if step.name == name:
                return step
        raise LookupError(f"job {self.job_name} has no step named {name!r}")

    @property
    def output(self) -> str:
        """Every step's output, in order: handy for assertions on the whole job."""
        return "".join(step.output for step in self.steps)


class LocalExecutor:
    """Runs the build jobs an :class:`~circleback.emulator.Emulator` starts.

    Pass :meth:`on_job_start` to the emulator, then :meth:`bind` the emulator and the URL
    it is served at (the emulator must be reachable over loopback: the jobs' ``circleback``
    processes call it). ``token`` is put in ``CIRCLE_TOKEN`` (the orb's default token
    variable) and must be one the emulator accepts. ``fail_jobs`` makes the first ``run``
    step of matching jobs exit 1. ``env`` is added to every job, as project environment
    variables are. ``before_step`` is called in the job's thread before each step that runs
    (tests use it to act while a job is running). Without ``work_dir`` the jobs' files live
    in a temporary directory that :meth:`close` removes. ``shell`` is the program and flags
    each ``run`` step's script is given to (default :data:`DEFAULT_SHELL`).
    """

    def __init__(
        self,
        *,
        token: str,
        orb_src: Path | None = None,
        fail_jobs: FailJobs = (),
        step_timeout: float = DEFAULT_STEP_TIMEOUT,
        env: Mapping[str, str] | None = None,
        work_dir: Path | None = None,
        before_step: Callable[[JobRun, StepRecord], None] | None = None,
        output_limit: int = DEFAULT_OUTPUT_LIMIT,
        shell: Sequence[str] = DEFAULT_SHELL,
    ) -> None:
        from circleback.orbpack import find_orb_src, pack_orb

        if not token:
            raise ValueError("token must not be empty: the orb's scripts refuse to run without")
        program = shutil.which(shell[0]) if shell else None
        if program is None:
            raise RuntimeError(
                f"{shell[0] if shell else 'no shell'!s} was not found on PATH; the local "
                "executor runs every step in it"
            )
        self._shell = (program, *shell[1:])
        self._token = token
        self._orb = pack_orb(orb_src if orb_src is not None else find_orb_src())
        self._fail_jobs = fail_jobs
        self._step_timeout = step_timeout
        self._extra_env = dict(env or {})
        self._before_step = before_step
        self._output_limit = output_limit
        self._owns_dir = work_dir is None
        self._root = (
            Path(tempfile.mkdtemp(prefix="circleback-executor-"))
            if work_dir is None
            else Path(work_dir)
        )
        self._root.mkdir(parents=True, exist_ok=True)
        self._emulator: Emulator | None = None
        self._host = ""
        self._cond = threading.Condition()
        self._active = 0
        self._records: list[JobRecord] = []
        self._threads: list[threading.Thread] = []
        self._processes: set[subprocess.Popen[bytes]] = set()
        self._continuation_keys: dict[str, str] = {}
        self._workspace_lock = threading.Lock()
        self._closed = threading.Event()
        self._notes = self._install_notes()

    # -- wiring --------------------------------------------------------------------------

    def bind(self, emulator: Emulator, server_url: str) -> None:
        """Finish jobs in ``emulator``; jobs reach its API at ``server_url`` (loopback)."""
        url = server_url.rstrip("/")
        self._host = url[: -len("/api/v2")] if url.endswith("/api/v2") else url
        self._emulator = emulator

    def on_job_start(self, run: JobRun) -> None:
        """The emulator's ``on_job_start``: start running the job in a thread, at once."""
        if self._emulator is None:
            raise RuntimeError("LocalExecutor.bind() must be called before jobs start")
        directory = (
            self._root
            / "jobs"
            / _safe(f"{run.project_slug}-{run.pipeline_number}-{run.job_name}-{run.job_number}")
        )
        record = JobRecord(
            project_slug=run.project_slug,
            pipeline_id=run.pipeline_id,
            pipeline_number=run.pipeline_number,
            workflow_id=run.workflow_id,
            workflow_name=run.workflow_name,
            job_id=run.job_id,
            job_name=run.job_name,
            job_number=run.job_number,
            job_ref=run.job_ref,
            directory=directory,
            started_at=_now(),
        )
        with self._cond:
            self._records.append(record)
            if run.continuation_key is not None:
                self._continuation_keys[run.job_id] = run.continuation_key
            if self._closed.is_set():
                record.status = "canceled"
                record.notes.append("the executor was closed before the job could run")
                return
            self._active += 1
            thread = threading.Thread(
                target=self._job_thread,
                args=(run, record),
                name=f"circleback-job-{run.job_name}",
                daemon=True,
            )
            self._threads.append(thread)
        thread.start()

    # -- observing -----------------------------------------------------------------------

    @property
    def records(self) -> list[JobRecord]:
        """A snapshot of every job record so far, in the order the jobs started."""
        with self._cond:
            return copy.deepcopy(self._records)

    def record(
        self, project_slug: str, job_name: str, *, pipeline_id: str | None = None
    ) -> JobRecord:
        """The newest record of that job (in that pipeline); LookupError if none."""
        for record in reversed(self.records):
            if (
                record.project_slug == project_slug
                and record.job_name == job_name
                and pipeline_id in (None, record.pipeline_id)
            ):
                return record
        raise LookupError(f"no job {job_name!r} of {project_slug} has run")

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no job is running here (the rest are finished or on hold).

        Jobs started by a finishing job are counted before it stops counting, so idle is
        never seen between the two. False if ``timeout`` seconds pass first.
        """
        with self._cond:
            return self._cond.wait_for(lambda: self._active == 0, timeout=timeout)

    def close(self) -> None:
        """Stop running steps, wait briefly for job threads, remove the temporary files.

        Safe to call more than once; jobs that start afterwards are not run.
        """
        self._closed.set()
        with self._cond:
            processes = list(self._processes)
            threads = list(self._threads)
        for process in processes:
            _kill(process)
        deadline = time.monotonic() + 2 * _KILL_GRACE_SECONDS
        for thread in threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        if self._owns_dir:
            shutil.rmtree(self._root, ignore_errors=True)

    def __enter__(self) -> LocalExecutor:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- one job -------------------------------------------------------------------------

    def _job_thread(self, run: JobRun, record: JobRecord) -> None:
        """Run the job and finish it in the emulator, whatever happens."""
        start = time.monotonic()
        try:
            try:
                status = self._execute(run, record)
            except Exception as exc:  # an executor bug must not leave the job running
                record.error = f"executor error: {type(exc).__name__}: {exc}"
                status = "failed"
            with self._cond:
                record.duration = time.monotonic() - start
                record.finished_at = _now()
            self._finish(run, record, status)
        finally:
            with self._cond:
                self._active -= 1
                self._cond.notify_all()

    def _finish(self, run: JobRun, record: JobRecord, status: str | None) -> None:
        """End the job in the emulator; ``None`` means it was already ended from outside."""
        assert self._emulator is not None
        if status is not None:
            try:
                self._emulator.finish_job(run.job_id, status)
            except EmulatorError:  # canceled (or finished) through the API meanwhile
                status = None
            except Exception as exc:
                with self._cond:
                    record.error = f"could not finish the job: {type(exc).__name__}: {exc}"
        if status is None:
            status = self._job_status(run) or "canceled"
            with self._cond:
                record.notes.append(f"ended from outside the executor: {status}")
        with self._cond:
            record.status = status

    def _execute(self, run: JobRun, record: JobRecord) -> str | None:
        """Run every step; the status to finish with, or None if the job was canceled."""
        try:
            plan = plan_job(run, self._orb)
        except PlanError as exc:
            with self._cond:
                record.error = f"cannot compile the job: {exc}"
            return "failed"
        with self._cond:
            record.notes.extend([*self._notes, *plan.notes])
        if plan.skip_reason is not None:
            self._add_step(
                record,
                StepRecord(name=run.job_ref, kind="job", status="skipped", reason=plan.skip_reason),
            )
            return "success"
        job = _JobFiles.create(record.directory, self._root / "workspaces" / run.workflow_id, plan)
        env = self._environment(run, job, plan)
        failed = False
        fail_first_run = self._should_fail(run)
        for planned in plan.steps:
            if self._ended(run):
                return None
            step = StepRecord(
                name=planned.name, kind=planned.kind, status="running", origin=planned.origin
            )
            runs = planned.when == "always" or (planned.when == "on_fail") == failed
            if not runs:
                step.status = "not_run"
                step.reason = "an earlier step failed" if failed else "runs only when a step failed"
            elif planned.skip_reason is not None:
                step.status, step.reason = "skipped", planned.skip_reason
            if step.status != "running":
                self._add_step(record, step)
                continue
            inject = fail_first_run and planned.kind == "run"
            fail_first_run = fail_first_run and not inject
            if self._before_step is not None:
                self._before_step(run, step)
            self._add_step(record, step)
            self._run_step(run, record, planned, step, job, env, inject=inject)
            if step.status == "canceled":
                return None
            failed = failed or step.status == "failed"
        return "failed" if failed else "success"

    def _run_step(
        self,
        run: JobRun,
        record: JobRecord,
        planned: PlannedStep,
        step: StepRecord,
        job: _JobFiles,
        env: Mapping[str, str],
        *,
        inject: bool,
    ) -> None:
        step.started_at = _now()
        start = time.monotonic()
        try:
            if planned.kind == "run":
                self._run_command(run, planned, step, job, env, inject=inject)
            else:
                message = self._builtin(record, planned, job)
                with self._cond:
                    step.output, step.status = message, "success"
        except _StepFailed as exc:
            with self._cond:
                step.status, step.reason = "failed", str(exc)
                step.output += f"{exc}\n"
        except OSError as exc:
            with self._cond:
                step.status, step.reason = "failed", f"{type(exc).__name__}: {exc}"
                step.output += f"{step.reason}\n"
        with self._cond:
            step.duration = time.monotonic() - start

    def _run_command(
        self,
        run: JobRun,
        planned: PlannedStep,
        step: StepRecord,
        job: _JobFiles,
        env: Mapping[str, str],
        *,
        inject: bool,
    ) -> None:
        command = str(planned.args["command"])
        step_env = {**env, **planned.args.get("environment", {})}
        if inject:
            command = _FAIL_PREAMBLE + command
            step_env[FAIL_ON_PURPOSE_VARIABLE] = "1"
        script = job.next_script()
        script.write_text(command if command.endswith("\n") else command + "\n", encoding="utf-8")
        cwd = job.working
        if "working_directory" in planned.args:
            cwd = job.resolve(str(planned.args["working_directory"]))
            cwd.mkdir(parents=True, exist_ok=True)
        process = subprocess.Popen(
            [*self._shell, str(script)],
            cwd=cwd,
            env=step_env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so a kill reaches its children
        )
        with self._cond:
            self._processes.add(process)
        output = _BoundedOutput(self._output_limit)
        assert process.stdout is not None
        reader = threading.Thread(target=output.drain, args=(process.stdout,), daemon=True)
        reader.start()
        outcome = "done"
        try:
            deadline = time.monotonic() + self._step_timeout
            while True:
                try:
                    process.wait(timeout=_CANCEL_CHECK_SECONDS)
                    break
                except subprocess.TimeoutExpired:
                    if self._closed.is_set() or self._ended(run):
                        outcome = "canceled"
                    elif time.monotonic() >= deadline:
                        outcome = "timeout"
                    if outcome != "done":
                        _kill(process)
                        break
        finally:
            with self._cond:
                self._processes.discard(process)
            reader.join(timeout=_KILL_GRACE_SECONDS)
            process.stdout.close()
        with self._cond:
            step.output = output.text()
            step.exit_code = process.returncode
            if outcome == "canceled":
                step.status, step.reason = "canceled", "the job was canceled"
            elif outcome == "timeout":
                step.status = "failed"
                step.reason = f"timed out after {self._step_timeout:g}s"
                step.output += f"\ncircleback executor: {step.reason}; killed\n"
            elif process.returncode == 0:
                step.status = "success"
            else:
                step.status = "failed"
                step.reason = f"exited with status {process.returncode}"

    def _builtin(self, record: JobRecord, planned: PlannedStep, job: _JobFiles) -> str:
        """Workspace and storage steps; returns the step's output, raises _StepFailed."""
        args = planned.args
        if planned.kind == "persist_to_workspace":
            root = job.resolve(_required(args, "root", planned.kind))
            paths = args.get("paths") or []
            if not isinstance(paths, list) or not paths:
                raise _StepFailed("persist_to_workspace needs a non-empty paths list")
            with self._workspace_lock:
                copied = [
                    _copy(source, job.workspace / source.relative_to(root))
                    for pattern in paths
                    for source in _matches(root, str(pattern))
                ]
            return "".join(f"persisted {p.relative_to(job.workspace)}\n" for p in copied)
        if planned.kind == "attach_workspace":
            at = job.resolve(_required(args, "at", planned.kind))
            with self._workspace_lock:
                if not job.workspace.is_dir():
                    return f"the workspace is empty; created {at}\n"
                at.mkdir(parents=True, exist_ok=True)
                shutil.copytree(job.workspace, at, dirs_exist_ok=True)
            return f"attached the workspace at {at}\n"
        if planned.kind == "continuation":
            return self._continue(record, planned, job)
        kind = "test-results" if planned.kind == "store_test_results" else "artifacts"
        source = job.resolve(_required(args, "path", planned.kind))
        if not source.exists():
            return f"nothing to store: {source} does not exist\n"
        name = str(args.get("destination") or source.name).strip("/")
        target = _copy(source, job.directory / kind / name)
        files = (
            [target] if target.is_file() else sorted(p for p in target.rglob("*") if p.is_file())
        )
        if kind == "artifacts":
            # Also in the emulator, where getJobArtifacts lists them as CircleCI would:
            # this is how circleback finds what a pipeline triggered from the API alone.
            assert self._emulator is not None
            for path in files:
                artifact = path.relative_to(job.directory / kind).as_posix()
                self._emulator.add_artifact(record.job_id, artifact, path.read_bytes())
        with self._cond:
            (record.test_results if kind == "test-results" else record.artifacts).extend(files)
        return "".join(f"stored {p.relative_to(job.directory)}\n" for p in files)

    def _continue(self, record: JobRecord, planned: PlannedStep, job: _JobFiles) -> str:
        """The continuation orb's ``continue``/``finish``: ``POST /pipeline/continue`` with
        the job's ``CIRCLE_CONTINUATION_KEY``, the config file and the parameters (a JSON
        object, or the path of a file holding one)."""
        assert self._emulator is not None
        key = self._continuation_keys.get(record.job_id)
        if not key:
            raise _StepFailed("no CIRCLE_CONTINUATION_KEY: this job is not in a setup workflow")
        args = planned.args
        if args.get("finish"):
            configuration = '{"version": 2.1, "workflows": {}}'
            parameters: Any = {}
        else:
            path = job.resolve(str(args["configuration_path"]))
            try:
                configuration = path.read_text(encoding="utf-8")
            except OSError as exc:
                raise _StepFailed(f"cannot read {path}: {exc.strerror}") from None
            parameters = _continuation_parameters(args.get("parameters"), job)
        try:
            self._emulator.continue_pipeline(key, configuration, parameters)
        except EmulatorError as exc:
            raise _StepFailed(
                f"POST /pipeline/continue answered {exc.status}: {exc.message}"
            ) from None
        return "continued the pipeline\n" if not args.get("finish") else "finished setup\n"

    # -- helpers -------------------------------------------------------------------------

    def _environment(self, run: JobRun, job: _JobFiles, plan: JobPlan) -> dict[str, str]:
        """CircleCI's built-in variables, the API pointed here, then the job's own."""
        parts = run.project_slug.split("/")
        org, repo = (parts[1], parts[2]) if len(parts) >= 3 else ("", run.project_slug)
        scripts = sysconfig.get_path("scripts")
        env: dict[str, str] = {
            "PATH": os.pathsep.join(p for p in (scripts, os.environ.get("PATH", "")) if p),
            "LANG": os.environ.get("LANG", "C.UTF-8"),
            "HOME": str(job.home),
            "BASH_ENV": str(job.bash_env),
            "CI": "true",
            "CIRCLECI": "true",
            "CIRCLE_PIPELINE_ID": run.pipeline_id,
            "CIRCLE_WORKFLOW_ID": run.workflow_id,
            "CIRCLE_WORKFLOW_JOB_ID": run.job_id,
            "CIRCLE_WORKFLOW_WORKSPACE_ID": run.workflow_id,
            "CIRCLE_JOB": run.job_name,
            "CIRCLE_BUILD_NUM": str(run.job_number),
            "CIRCLE_BUILD_URL": run.build_url,
            "CIRCLE_PROJECT_USERNAME": org,
            "CIRCLE_PROJECT_REPONAME": repo,
            "CIRCLE_REPOSITORY_URL": f"https://github.com/{org}/{repo}",
            "CIRCLE_SHA1": run.revision,
            "CIRCLE_USERNAME": "circleback-emulator",
            "CIRCLE_NODE_INDEX": "0",
            "CIRCLE_NODE_TOTAL": "1",
            "CIRCLE_WORKING_DIRECTORY": str(job.working),
            "CIRCLEBACK_HOST": self._host,
            "CIRCLE_TOKEN": self._token,
        }
        if run.continuation_key is not None:
            env["CIRCLE_CONTINUATION_KEY"] = run.continuation_key
        if run.tag is not None:
            env["CIRCLE_TAG"] = run.tag
        else:
            env["CIRCLE_BRANCH"] = run.branch or ""
        if self._notes:
            env["CIRCLEBACK_SKIP_INSTALL"] = "1"
        env.update(self._extra_env)
        env.update(plan.environment)
        return env

    def _install_notes(self) -> tuple[str, ...]:
        """If the orb pins another version than this circleback, its install step would
        download that one: tell it to use ours instead (and say so in every record)."""
        pinned = _pinned_version(self._orb)
        if pinned is None or pinned == __version__:
            return ()
        return (
            f"the orb pins circleback {pinned} but this is {__version__}: "
            "CIRCLEBACK_SKIP_INSTALL=1 is set so that nothing is downloaded",
        )

    def _should_fail(self, run: JobRun) -> bool:
        if callable(self._fail_jobs):
            return bool(self._fail_jobs(run))
        return (run.project_slug, run.job_name) in self._fail_jobs

    def _job_status(self, run: JobRun) -> str | None:
        assert self._emulator is not None
        try:
            return self._emulator.locked(lambda state: state.job(run.job_id).status)
        except EmulatorError:  # the emulator was reset under the job
            return None

    def _ended(self, run: JobRun) -> bool:
        """True once the job is no longer running in the emulator (canceled, reset)."""
        return self._job_status(run) != "running"

    def _add_step(self, record: JobRecord, step: StepRecord) -> None:
        with self._cond:
            record.steps.append(step)


def _pinned_version(orb: Mapping[str, Any]) -> str | None:
    """The circleback version the packed orb's install step pins (its ``PARAM_PINS``, the
    orb's scripts/pins.txt), or None when the orb has no such step."""
    try:
        steps = orb["commands"]["install"]["steps"]
    except (KeyError, TypeError):
        return None
    for step in steps:
        run = step.get("run") if isinstance(step, dict) else None
        pins = (
            (run or {}).get("environment", {}).get("PARAM_PINS") if isinstance(run, dict) else None
        )
        if isinstance(pins, str):
            found = re.search(r"(?m)^circleback==([^\s\\;]+)", pins)
            return found.group(1) if found else None
    return None


class _StepFailed(Exception):
    """A built-in step failed, for the reason given."""


@dataclass(frozen=True)
class _JobFiles:
    """A job's directories: home, working directory, workspace, scripts, BASH_ENV."""

    directory: Path
    home: Path
    working: Path
    workspace: Path
    bash_env: Path
    _counter: Iterator[int]

    @classmethod
    def create(cls, directory: Path, workspace: Path, plan: JobPlan) -> _JobFiles:
        home = directory / "home"
        home.mkdir(parents=True, exist_ok=True)
        (directory / "steps").mkdir(exist_ok=True)
        bash_env = directory / "bash_env"
        bash_env.touch()
        files = cls(directory, home, home / "project", workspace, bash_env, itertools.count(1))
        working = (
            files.working
            if plan.working_directory is None
            else files.resolve(plan.working_directory)
        )
        working.mkdir(parents=True, exist_ok=True)
        return cls(directory, home, working, workspace, bash_env, files._counter)

    def resolve(self, path: str) -> Path:
        """``~`` is the job's home; relative paths are relative to the working directory."""
        text = path.strip()
        if text == "~":
            return self.home
        if text.startswith("~/"):
            return self.home / text[2:]
        candidate = Path(text)
        return candidate if candidate.is_absolute() else self.working / candidate

    def next_script(self) -> Path:
        return self.directory / "steps" / f"{next(self._counter):03d}.sh"


class _BoundedOutput:
    """Keeps the first and the last ``limit / 2`` bytes of a stream, and counts the rest."""

    def __init__(self, limit: int) -> None:
        self._half = max(1, limit // 2)
        self._head = bytearray()
        self._tail = bytearray()
        self._dropped = 0

    def drain(self, stream: IO[bytes]) -> None:
        with contextlib.suppress(OSError, ValueError):
            for chunk in iter(lambda: os.read(stream.fileno(), 65536), b""):
                room = self._half - len(self._head)
                self._head += chunk[:room]
                self._tail += chunk[room:] if room > 0 else chunk
                excess = len(self._tail) - self._half
                if excess > 0:
                    del self._tail[:excess]
                    self._dropped += excess

    def text(self) -> str:
        middle = f"\n[... {self._dropped} bytes of output omitted ...]\n" if self._dropped else ""
        head = self._head.decode("utf-8", "replace")
        return head + middle + self._tail.decode("utf-8", "replace")


def _kill(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the step's process group, then SIGKILL what is left after a grace period."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout=_KILL_GRACE_SECONDS)
            return
        except subprocess.TimeoutExpired:
            continue


def _continuation_parameters(raw: Any, job: _JobFiles) -> dict[str, Any]:
    if isinstance(raw, dict):
        return raw
    text = str(raw or "{}").strip()
    if not text.startswith("{"):
        try:
            text = job.resolve(text).read_text(encoding="utf-8")
        except OSError as exc:
            raise _StepFailed(f"cannot read the parameters file {text}: {exc.strerror}") from None
    try:
        value = json.loads(text)
    except ValueError:
        raise _StepFailed("parameters is not a JSON object") from None
    if not isinstance(value, dict):
        raise _StepFailed("parameters is not a JSON object")
    return value


def _required(args: Mapping[str, Any], key: str, kind: str) -> str:
    value = args.get(key)
    if not isinstance(value, str) or not value.strip():
        raise _StepFailed(f"{kind} needs {key!r}")
    return value


def _matches(root: Path, pattern: str) -> list[Path]:
    """What ``pattern`` (a path or glob relative to ``root``) names; none is an error."""
    relative = pattern.strip().lstrip("/")
    if relative in ("", "."):
        found = [root] if root.exists() else []
    else:
        found = sorted(root.glob(relative))
    if not found:
        raise _StepFailed(f"persist_to_workspace: nothing matches {pattern!r} under {root}")
    return found


def _copy(source: Path, target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    if source.is_dir():
        shutil.copytree(source, target, dirs_exist_ok=True)
    else:
        shutil.copy2(source, target)
    return target


def _safe(text: str) -> str:
    return _UNSAFE_PATH_CHARS.sub("_", text).strip("_") or "job"


def _now() -> datetime:
    return datetime.now(timezone.utc)


# -- an emulator, served, with the executor attached --------------------------------------


@dataclass(frozen=True)
class LocalCircleCI:
    """An emulator served over loopback with a :class:`LocalExecutor` running its jobs."""

    emulator: Emulator
    server: EmulatorServer
    executor: LocalExecutor
    token: str
    """The one token the emulator accepts (and the jobs use)."""

    @property
    def api_url(self) -> str:
        return self.server.api_url

    def client(self) -> httpx.Client:
        """An httpx client for the API, authenticated; close it (or use ``with``)."""
        import httpx  # not at import time: httpx pulls in more than the emulator needs

        return httpx.Client(
            base_url=self.api_url, headers={"Circle-Token": self.token}, timeout=30.0
        )

    def trigger(
        self,
        project_slug: str,
        *,
        branch: str = "main",
        parameters: Mapping[str, Any] | None = None,
    ) -> str:
        """Trigger a pipeline as the API would be asked to; returns its id."""
        body: dict[str, Any] = {"branch": branch}
        if parameters:
            body["parameters"] = dict(parameters)
        with self.client() as client:
            response = client.post(f"/project/{project_slug}/pipeline", json=body)
        response.raise_for_status()
        pipeline_id: str = response.json()["id"]
        return pipeline_id


@contextlib.contextmanager
def run_locally(
    projects: Mapping[str, str | os.PathLike[str]],
    *,
    token: str | None = None,
    host: str = "127.0.0.1",
    switches: Mapping[str, Any] | None = None,
    **executor_options: Any,
) -> Iterator[LocalCircleCI]:
    """Serve an emulator for ``projects`` on a free loopback port with an executor attached.

    ``switches`` go to the :class:`Emulator` (its behaviour variants and creation delays,
    which the server's ticker honours in real time); ``executor_options`` go to
    :class:`LocalExecutor`. On exit the executor is closed (its running steps killed) and
    the server shut down.
    """
    token = token or secrets.token_hex(16)
    with LocalExecutor(token=token, **executor_options) as executor:
        emulator = Emulator(
            projects=projects,
            tokens=(token,),
            on_job_start=executor.on_job_start,
            switches=switches,
        )
        with make_server(emulator, host=host) as server:
            executor.bind(emulator, server.url)
            try:
                yield LocalCircleCI(emulator, server, executor, token)
            finally:
                executor.close()  # before the server goes: no job is left calling it
