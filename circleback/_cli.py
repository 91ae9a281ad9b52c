"""The ``circleback`` command: the only place that configures logging or exits.

Each command validates its input, builds a client from the environment, calls the relay,
and turns the result into output and an exit code. Every error becomes one message with
a hint and the exit code of its class (see ``circleback.errors``), never a traceback.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from circleback import _cli_help, _logging, _redact, errors
from circleback._version import __version__

if TYPE_CHECKING:
    import httpx

    from circleback.client import CircleCIClient
    from circleback.progress import Reporter
    from circleback.relay.approve import FanIn
    from circleback.relay.status import StatusReport
    from circleback.settings import Settings

log = _logging.get_logger("circleback.cli", setup=lambda: _ensure_logging())

app = typer.Typer(
    name="circleback",
    help="Trigger a downstream CircleCI pipeline, wait for it for free, act on its result.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    pretty_exceptions_show_locals=False,
    rich_markup_mode=None,
)
orb_app = typer.Typer(help="Work with the circleback orb's source.", no_args_is_help=True)
app.add_typer(orb_app, name="orb")


@dataclass
class Runtime:
    """What the commands use to reach the world; tests swap it for the emulator and fake time."""

    transport: httpx.BaseTransport | None = None
    """The HTTP transport; None is the network."""
    sleep: Callable[[float], None] = time.sleep
    """How to wait (retries, polls)."""
    clock: Callable[[], float] = time.monotonic
    """How to tell the time for deadlines."""


RUNTIME = Runtime()

#: No command but ``status`` (bounded by its ``--timeout``) works longer than this, in
#: seconds, whatever the server does: CircleCI's own retries fit in far less.
COMMAND_SECONDS = 600.0
#: Seconds ``status`` keeps after its ``--timeout``, to cancel what is still running.
CANCEL_SECONDS = 60.0

#: Whether this invocation configured logging yet (errors before that still need it).
_configured = {"logging": False}

_DURATION = re.compile(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")


def parse_duration(text: str) -> float:
    """``90s``, ``10m``, ``1h``, ``1h30m`` or plain seconds, as seconds."""
    value = text.strip()
    if value.isdigit():
        return float(value)
    match = _DURATION.fullmatch(value)
    if not value or match is None or not any(match.groups()):
        raise errors.ConfigurationError(
            f"{text!r} is not a duration.", hint="Write durations like 90s, 10m, 1h or 1h30m."
        )
    hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return float(hours * 3600 + minutes * 60 + seconds)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"circleback {__version__}")
        raise typer.Exit(0)


@app.callback()
def main_options(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
    verbose: Annotated[
        bool, typer.Option("-v", "--verbose", help="Show each API request (never the token).")
    ] = False,
    log_format: Annotated[
        str | None,
        typer.Option(
            "--log-format",
            help="console or json (default: $CIRCLEBACK_LOG_FORMAT, else json when CI is "
            "set, else console).",
        ),
    ] = None,
) -> None:
    """Options that apply to every command.

    Logging is configured when the first event is logged or settings are read, not here:
    ``--help`` of a command and the no-op approve pass through here and must stay light.
    """
    if log_format is not None and log_format not in _LOG_FORMATS:
        raise errors.ConfigurationError(
            f"--log-format {log_format!r} is not console or json.",
            hint="Use --log-format console|json.",
        )
    _options["verbose"] = verbose
    _options["log_format"] = log_format
    if not _configured["logging"]:
        _logging.defer(lambda: _ensure_logging(), verbose=verbose)


_LOG_FORMATS = ("console", "json")
#: This invocation's global options (set by ``main_options``).
_options: dict[str, Any] = {"verbose": False, "log_format": None}


def _log_format(env_value: str | None) -> str:
    from circleback._logging import choose_format

    return choose_format(_options["log_format"], env_value, ci=_cli_help.is_ci())


def _ensure_logging(env_format: str | None = None, *, from_settings: bool = False) -> None:
    """Configure logging once: ``--log-format``, else the settings' (or env's) format.

    Never raises: an invalid ``$CIRCLEBACK_LOG_FORMAT`` is reported by the settings (exit
    2) on every path that reads them; until then, and elsewhere, lines are console lines.
    """
    if _configured["logging"]:
        return
    from circleback import _logging

    fmt = _log_format(env_format if from_settings else os.environ.get("CIRCLEBACK_LOG_FORMAT"))
    _logging.configure(verbose=bool(_options["verbose"]), json_format=fmt == "json")
    _configured["logging"] = True
    _configured["json"] = fmt == "json"


def _note(event: str) -> None:
    """Log an info line on a path that must not import structlog (the no-op approve)."""
    if _configured["logging"]:
        log.info(event)
        return
    from circleback import _logging

    fmt = _log_format(os.environ.get("CIRCLEBACK_LOG_FORMAT"))
    if fmt not in _LOG_FORMATS:
        raise errors.ConfigurationError(
            f"CIRCLEBACK_LOG_FORMAT {fmt!r} is not console or json.",
            hint="Set CIRCLEBACK_LOG_FORMAT to console or json, or unset it.",
        )
    _logging.emit("info", event, json_format=fmt == "json")


def _bind(**context: Any) -> None:
    """Bind this command's pipeline ids to every log event it (and the library) writes."""
    from circleback import _logging

    _logging.bind(**{k: v for k, v in context.items() if v})


#: The settings this invocation read (set by ``_client``).
_LOADED: dict[str, Settings] = {}


def _client(*, seconds: float = COMMAND_SECONDS) -> CircleCIClient:
    """The command's client; all its work ends within ``seconds`` (``DeadlinePassed``)."""
    from circleback import _redact
    from circleback.client import CircleCIClient
    from circleback.settings import load_settings

    settings = _LOADED["settings"] = load_settings()
    _ensure_logging(settings.log_format, from_settings=True)
    if settings.token is not None:
        _redact.register(settings.token.get_secret_value())
    client = CircleCIClient.from_settings(
        settings, transport=RUNTIME.transport, sleep=RUNTIME.sleep, clock=RUNTIME.clock
    )
    client.set_deadline(seconds)
    return client


def _echo(text: str, *, err: bool = False) -> None:
    """Print data or a report; redacted like log lines, as API data could echo the token.

    Control characters other than newlines are escaped (``printable_lines``): whatever a
    renderer let through, no ESC, CR or NUL from API data reaches the terminal.
    """
    from circleback._text import printable_lines

    typer.echo(printable_lines(_redact.redact(text)), err=err)


def _print_json(document: Any) -> None:
    _echo(json.dumps(document, indent=2, sort_keys=True))
    _JSON_PRINTED.set(True)


#: Whether this command has printed its ``--json`` document (one per run, never two).
_JSON_PRINTED: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "circleback_json_printed", default=False
)


@contextlib.contextmanager
def _json_on_failure(as_json: bool, **empty: Any) -> Iterator[None]:
    """With ``--json``, a command that fails before printing its document still prints one.

    A script reading stdout gets one JSON document on every exit path: ``empty`` (the
    command's documented fields, null or empty) plus ``error``, the message also logged
    (redacted like all output; no traceback). The error is re-raised for its exit code.
    """
    _JSON_PRINTED.set(False)
    try:
        yield
    except Exception as exc:
        if as_json and not _JSON_PRINTED.get():
            message = (
                exc.message
                if isinstance(exc, errors.CirclebackError)
                else f"unexpected {type(exc).__name__}: {exc}"
            )
            document = {**empty, "error": message}
            if "timed_out" in document:  # status: a timeout before any look at B
                document["timed_out"] = isinstance(exc, errors.WaitTimeout)
            _print_json(document)
        raise


# -- trigger ----------------------------------------------------------------------------


@app.command()
def trigger(
    project_slug: Annotated[str, typer.Argument(help="The downstream project, e.g. gh/acme/b.")],
    branch: Annotated[str | None, typer.Option(help="Branch to run the pipeline on.")] = None,
    tag: Annotated[str | None, typer.Option(help="Tag to run the pipeline on.")] = None,
    parameter: Annotated[
        list[str] | None,
        typer.Option(
            "--parameter",
            "-p",
            help="KEY=VALUE pipeline parameter (true/false and integers are typed; "
            "KEY:=VALUE keeps a string). Repeatable.",
        ),
    ] = None,
    definition_id: Annotated[
        str | None, typer.Option(help="Pipeline definition id: use the pipeline/run endpoint.")
    ] = None,
    upstream_pipeline_id: Annotated[
        str | None,
        typer.Option(
            envvar="CIRCLE_PIPELINE_ID",
            help="This (upstream) pipeline's id [default: $CIRCLE_PIPELINE_ID].",
            show_envvar=False,
        ),
    ] = None,
    callback_parameter: Annotated[
        str, typer.Option(help="The parameter the downstream config declares for our id.")
    ] = "triggering-pipeline-id",
    state_file: Annotated[
        Path | None, typer.Option(help="Record the downstream pipeline in this JSON file.")
    ] = None,
    max_depth: Annotated[
        int,
        typer.Option(
            help="Refuse when the chain of pipelines would be deeper than this, or loop "
            "(0: no check)."
        ),
    ] = 4,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON document.")] = False,
) -> None:
    """Trigger a downstream pipeline, passing this pipeline's id so it can call back."""
    with _json_on_failure(
        as_json, number=None, pipeline_id=None, project_slug=project_slug, state=None, url=None
    ):
        from circleback.relay import TriggerRequest, parse_parameter, record_downstream
        from circleback.relay import trigger as run_trigger

        if not upstream_pipeline_id or not upstream_pipeline_id.strip():
            raise errors.ConfigurationError(
                "No upstream pipeline id: the downstream pipeline could never call back.",
                hint="Run inside CircleCI (CIRCLE_PIPELINE_ID is set there) or pass "
                "--upstream-pipeline-id << pipeline.id >>.",
            )
        parameters = dict(parse_parameter(p) for p in parameter or [])
        request = TriggerRequest(
            project_slug=project_slug,
            upstream_pipeline_id=upstream_pipeline_id,
            callback_parameter=callback_parameter,
            branch=branch,
            tag=tag,
            parameters=parameters,
            definition_id=definition_id,
        )
        known: list[str] = []
        if state_file is not None:
            from circleback.relay.records import check_writable, read_state

            # Refuse a broken or unwritable state file before anything is created: finding
            # out after B exists would lose B's record, and a rerun would start B twice.
            check_writable(state_file, what="--state-file")
            if state_file.exists():
                known = [d.pipeline_id for d in read_state(state_file)]
        _bind(
            command="trigger", project_slug=project_slug, upstream_pipeline_id=upstream_pipeline_id
        )
        with _client() as client:
            record = run_trigger(
                client,
                request,
                sleep=RUNTIME.sleep,
                clock=RUNTIME.clock,
                max_depth=max_depth,
                known_pipeline_ids=known,
            )
        if state_file is not None:
            try:
                record_downstream(state_file, record)
            except (OSError, errors.ConfigurationError) as exc:
                lost = errors.CirclebackError(
                    f"Triggered {record.project_slug} #{record.number} ({record.pipeline_id}), "
                    f"but could not record it in {str(state_file)!r}: {exc}.",
                    hint="Do not rerun the trigger (it would start B again): pass "
                    f"--pipeline-id {record.pipeline_id} to status instead.",
                )
                if as_json:  # B exists: its record, and why it is not in the file
                    _print_json({**record.to_json(), "error": lost.message})
                else:
                    _echo(record.pipeline_id)
                raise lost from None
        if as_json:
            _print_json(record.to_json())
        else:
            _echo(record.pipeline_id)


# -- approve ----------------------------------------------------------------------------


@app.command()
def approve(
    pipeline_id: Annotated[
        str | None,
        typer.Option(help="The upstream pipeline's id; empty means not triggered upstream."),
    ] = None,
    allow_project: Annotated[
        list[str] | None,
        typer.Option(
            help="Upstream project allowed to be released, e.g. gh/acme/* (repeatable; or "
            "CIRCLEBACK_ALLOW_PROJECTS with patterns separated by commas or spaces)."
        ),
    ] = None,
    job_name: Annotated[
        str, typer.Option(help="The upstream approval job's name.")
    ] = "wait-for-triggered-pipeline",
    workflow_name: Annotated[
        str | None, typer.Option(help="Only look in upstream workflows of this name.")
    ] = None,
    fan_in: Annotated[
        bool,
        typer.Option(
            help="The hold is shared by several downstream pipelines: release it only when "
            "the others (from A's record) are done too."
        ),
    ] = False,
    downstream_pipeline_id: Annotated[
        str | None,
        typer.Option(
            envvar="CIRCLE_PIPELINE_ID",
            show_envvar=False,
            help="This (downstream) pipeline's id, whose link to the upstream must be "
            "proven before anything is released [default: $CIRCLE_PIPELINE_ID].",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON document.")] = False,
) -> None:
    """Release the upstream pipeline's approval job (run this in the downstream pipeline)."""
    with _json_on_failure(as_json, **_approve_document("error", upstream_pipeline_id=pipeline_id)):
        if not pipeline_id or not pipeline_id.strip():
            _note("not triggered by an upstream pipeline (no upstream pipeline id); nothing to do")
            if as_json:
                _print_json(_approve_document("not_triggered"))
            return
        from circleback.relay import Outcome
        from circleback.relay import approve as run_approve

        patterns = list(allow_project or [])
        _bind(command="approve", upstream_pipeline_id=pipeline_id)
        with _client() as client:
            if not patterns and _LOADED["settings"].allow_projects:
                patterns = [_LOADED["settings"].allow_projects]
            result = run_approve(
                client,
                pipeline_id,
                allow_projects=patterns,
                job_name=job_name,
                workflow_name=workflow_name,
                fan_in=_fan_in() if fan_in else None,
                downstream_pipeline_id=downstream_pipeline_id,
                sleep=RUNTIME.sleep,
                clock=RUNTIME.clock,
            )
        for warning in result.warnings:
            log.warning(warning)
        if result.outcome is Outcome.LEFT_FOR_SIBLINGS:
            log.info("another downstream pipeline will release the shared hold")
        if result.outcome is Outcome.ALREADY_APPROVED:
            log.info("already approved; nothing to do", extra={"job": job_name})
        if as_json:
            _print_json(
                _approve_document(
                    result.outcome.value,
                    upstream_pipeline_id=result.upstream_pipeline_id,
                    project_slug=result.project_slug,
                    workflow_id=result.workflow.id if result.workflow else None,
                    workflow_name=result.workflow.name if result.workflow else None,
                    job_id=result.job.id if result.job else None,
                    job_name=result.job.name if result.job else None,
                    warnings=list(result.warnings),
                )
            )


def _approve_document(outcome: str, **fields: Any) -> dict[str, Any]:
    """``approve --json``: every documented field, null where there is nothing to say."""
    keys = [
        *("upstream_pipeline_id", "project_slug", "workflow_id", "workflow_name"),
        *("job_id", "job_name"),
    ]
    return {"outcome": outcome, **dict.fromkeys(keys), "warnings": [], **fields}


def _reporter() -> Reporter:
    """A live line on a terminal; a line per change (and a heartbeat) under CI or in a file."""
    from circleback._text import printable
    from circleback.progress import Reporter

    as_json = _log_format(os.environ.get("CIRCLEBACK_LOG_FORMAT")) == "json"
    live = sys.stderr.isatty() and not _cli_help.is_ci() and not as_json
    return Reporter(
        live=live,
        stream=sys.stderr,
        say=lambda line: log.info(line),
        sleep=RUNTIME.sleep,
        clean=lambda text: _redact.redact(printable(text)),
    )


def _fan_in() -> FanIn:
    """Who we are, for a shared hold: this pipeline and this job, from CircleCI's env."""
    from circleback.relay.approve import FanIn
    from circleback.validation import parse_uuid

    own = os.environ.get("CIRCLE_PIPELINE_ID", "")
    job = os.environ.get("CIRCLE_JOB", "")
    if not own or not job:
        raise errors.ConfigurationError(
            "--fan-in needs CIRCLE_PIPELINE_ID and CIRCLE_JOB, which CircleCI sets in a job.",
            hint="Run approve --fan-in inside the downstream pipeline's callback job.",
        )
    return FanIn(own_pipeline_id=parse_uuid(own, what="CIRCLE_PIPELINE_ID"), callback_job=job)


# -- status -----------------------------------------------------------------------------


@app.command()
def status(
    pipeline_id: Annotated[str | None, typer.Option(help="The downstream pipeline's id.")] = None,
    state_file: Annotated[
        Path | None, typer.Option(help="Check every pipeline recorded in this file.")
    ] = None,
    timeout: Annotated[
        str, typer.Option(help="Give up after this long (90s, 10m, 1h), even mid-request; exit 4.")
    ] = "30m",
    junit: Annotated[
        Path | None, typer.Option(help="Write a JUnit XML report here (store_test_results).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON document.")] = False,
    cancel_downstream_on_timeout: Annotated[
        bool,
        typer.Option(help="When --timeout passes, cancel the downstream workflows still going."),
    ] = False,
    require_job: Annotated[
        list[str] | None,
        typer.Option(
            help="Fail unless a downstream job of this name ran and succeeded (repeatable); "
            "catches jobs that ended not_run inside a successful workflow."
        ),
    ] = None,
) -> None:
    """Wait for the downstream pipeline(s) to finish; fail unless every workflow succeeded."""
    with _json_on_failure(as_json, success=False, timed_out=False, required_jobs=[], pipelines=[]):
        from circleback.relay import read_state, wait_for_downstream
        from circleback.relay.records import check_writable
        from circleback.relay.status import StatusTimeout, downstream_from_id
        from circleback.validation import parse_uuid

        seconds = parse_duration(timeout)
        if (pipeline_id is None) == (state_file is None):
            raise errors.ConfigurationError(
                "status needs exactly one of --pipeline-id and --state-file.",
                hint="Pass the downstream pipeline's id, or the state file trigger wrote.",
            )
        records = read_state(state_file) if state_file is not None else []
        if pipeline_id is not None:
            parse_uuid(pipeline_id, what="pipeline id")
        required = [n.strip() for n in require_job or []]
        if any(not n for n in required):
            raise errors.ConfigurationError(
                "--require-job is empty.", hint="Name a job of the downstream pipeline."
            )
        if junit is not None:
            check_writable(junit, what="--junit")  # before a wait of up to --timeout
        _bind(command="status", pipeline_id=pipeline_id)
        with _client(seconds=seconds + CANCEL_SECONDS) as client:
            so_far: StatusReport | None = None
            try:
                # --timeout holds inside a request too: a server that answers one byte at a
                # time is cut off at the deadline, not at the end of its answer.
                with client.deadline(seconds):
                    if pipeline_id is not None:
                        records = [downstream_from_id(client, pipeline_id)]
                    reporter = _reporter()
                    try:
                        report = wait_for_downstream(
                            client,
                            records,
                            timeout=seconds,
                            sleep=reporter.sleep,
                            clock=RUNTIME.clock,
                            required_jobs=required,
                            progress=reporter.update,
                        )
                    finally:
                        reporter.close()
            except (errors.WaitTimeout, errors.DeadlinePassed) as caught:
                if isinstance(caught, StatusTimeout):
                    so_far = caught.report
                exc = (
                    caught
                    if isinstance(caught, errors.WaitTimeout)
                    else errors.WaitTimeout(f"Gave up after {seconds:.0f}s: {caught.message}")
                )
                if cancel_downstream_on_timeout:
                    from circleback.relay.status import cancel_downstream

                    canceled = cancel_downstream(client, records)
                    exc.message += (
                        f" Canceled {len(canceled)} downstream workflow(s): {', '.join(canceled)}."
                        if canceled
                        else " Nothing downstream was still running to cancel."
                    )
                if so_far is not None:
                    _report_status(so_far, junit, as_json)
                raise exc from None
        _report_status(report, junit, as_json)
        if not report.succeeded:
            failed = [f"{p.project_slug} #{p.number}" for p in report.pipelines if not p.succeeded]
            failed += [f"required job {r.name}" for r in report.required if not r.succeeded]
            raise errors.DownstreamFailed(f"Downstream pipeline failed: {', '.join(failed)}.")


def _report_status(report: StatusReport, junit: Path | None, as_json: bool) -> None:
    """Summary, JSON and JUnit; a JUnit file that cannot be written is reported, never
    allowed to hide the result or change the exit code."""
    from circleback._files import write_text_atomically
    from circleback.relay.report import junit_xml, summary

    _echo(summary(report), err=True)
    if as_json:
        _print_json(report.to_json())
    if junit is not None:
        try:
            write_text_atomically(junit, _redact.redact(junit_xml(report)))
        except OSError as exc:
            log.error(
                f"could not write the JUnit report to {str(junit)!r}: {exc.strerror or exc}",
                extra={"hint": "The result above stands; fix the --junit path for next time."},
            )


# -- beyond the tutorial: sweep, trace -----------------------------------------------------


@app.command()
def sweep(
    project_slug: Annotated[str, typer.Argument(help="The upstream project whose holds to check.")],
    grace: Annotated[
        str, typer.Option(help="How long a downstream must have been final (90s, 10m, 1h).")
    ] = "1h",
    job_name: Annotated[
        list[str] | None,
        typer.Option(
            help="Hold job name to look for (repeatable) [default: wait-for-triggered-pipeline]."
        ),
    ] = None,
    cancel: Annotated[
        bool, typer.Option(help="Cancel the held workflow instead of releasing its hold.")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option(help="Report what would be done; change nothing.")
    ] = False,
    max_pipelines: Annotated[
        int, typer.Option(help="How many of the project's newest pipelines to look at.")
    ] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON document.")] = False,
) -> None:
    """Release (or cancel) holds whose downstream pipeline finished without calling back."""
    with _json_on_failure(
        as_json, project_slug=project_slug, complete=False, problems=[], findings=[]
    ):
        from circleback.relay.approve import DEFAULT_JOB_NAME
        from circleback.relay.sweep import sweep as run_sweep
        from circleback.validation import parse_project_slug

        slug = str(parse_project_slug(project_slug))
        seconds = parse_duration(grace)
        if max_pipelines < 1:
            raise errors.ConfigurationError(
                "--max-pipelines must be at least 1.", hint="Pass --max-pipelines 50, say."
            )
        names = [n for n in (job_name or [DEFAULT_JOB_NAME]) if n.strip()]
        _bind(command="sweep", project_slug=slug)
        with _client() as client:
            result = run_sweep(
                client,
                slug,
                job_names=names,
                grace=seconds,
                cancel=cancel,
                dry_run=dry_run,
                max_pipelines=max_pipelines,
                sleep=RUNTIME.sleep,
            )
        for f in result.findings:
            log.info(
                f"{f.action.value}: {slug} #{f.pipeline_number} {f.workflow_name} "
                f"({', '.join(f.holds)}): {f.reason}"
            )
        for problem in result.problems:
            log.warning(f"could not look: {problem}")
        if not result.findings and not result.problems:
            log.info("no workflow of this project is held by a circleback hold")
        if as_json:
            _print_json(result.to_json(slug))
        if not result.complete:
            raise errors.CirclebackError(
                "The sweep could not judge everything: see the findings marked could_not_judge "
                "and the problems above. It carried on with the rest.",
                hint="Run the sweep again once CircleCI answers; nothing it could not judge "
                "was released.",
            )


@app.command()
def trace(
    pipeline_id: Annotated[str, typer.Argument(help="The pipeline to start from.")],
    output_format: Annotated[
        str,
        typer.Option(
            "--format",
            help="text; mermaid for a diagram; html for one self-contained page (failed "
            "jobs first, holds and who released them) to open in a browser.",
        ),
    ] = "text",
    max_depth: Annotated[int, typer.Option(help="How many levels down to follow.")] = 8,
) -> None:
    """Print the tree of pipelines triggered from a pipeline, with statuses and links."""
    from circleback.relay.trace import render_mermaid, render_text
    from circleback.relay.trace import trace as run_trace
    from circleback.validation import parse_uuid

    pid = parse_uuid(pipeline_id, what="pipeline id")
    if output_format not in {"text", "mermaid", "html"}:
        raise errors.ConfigurationError(
            f"--format {output_format!r} is not text, mermaid or html.",
            hint="Use --format text|mermaid|html.",
        )
    if max_depth < 0:
        raise errors.ConfigurationError("--max-depth is negative.", hint="Pass 0 or more.")
    _bind(command="trace", pipeline_id=pid)
    with _client() as client:
        tree = run_trace(client, pid, max_depth=max_depth)
        if output_format == "html":
            from circleback.view.chain import build_chain
            from circleback.view.html import render_html

            _echo(render_html(build_chain(client, tree), version=__version__))
        else:
            _echo(render_mermaid(tree) if output_format == "mermaid" else render_text(tree))
    if not tree.children:
        log.info(
            "no downstream pipelines recorded under this pipeline",
            extra={
                "hint": "trace follows the circleback/downstream.json artifacts that the orb's "
                "trigger job stores; without the orb, store the --state-file as that artifact."
            },
        )


# -- doctor -------------------------------------------------------------------------------


@app.command()
def doctor(
    upstream: Annotated[
        str | None, typer.Option(help="Project A, which triggers and holds, e.g. gh/acme/a.")
    ] = None,
    downstream: Annotated[
        list[str] | None,
        typer.Option(help="A project A triggers, e.g. gh/acme/b (repeatable)."),
    ] = None,
    callback_parameter: Annotated[
        str, typer.Option(help="The parameter B must declare for A's pipeline id.")
    ] = "triggering-pipeline-id",
    job_name: Annotated[
        str, typer.Option(help="A's approval job (the hold) that B releases.")
    ] = "wait-for-triggered-pipeline",
    allow_project: Annotated[
        list[str] | None,
        typer.Option(
            help="The patterns B's approve uses, when B's config does not name them "
            "(repeatable; also CIRCLEBACK_ALLOW_PROJECTS)."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON document.")] = False,
) -> None:
    """Check a setup before it fails: host, token, access, B's parameter and callback.

    Reads only: nothing is created, triggered or approved. Each finding says how to fix it.
    """
    from circleback.client import CircleCIClient
    from circleback.doctor import diagnose, exit_code, render
    from circleback.settings import load_settings

    settings = load_settings()
    patterns = list(allow_project or [])
    if not patterns and os.environ.get("CIRCLEBACK_ALLOW_PROJECTS"):
        patterns = [os.environ["CIRCLEBACK_ALLOW_PROJECTS"]]
    findings = diagnose(
        settings,
        client=lambda: CircleCIClient.from_settings(
            settings, transport=RUNTIME.transport, sleep=RUNTIME.sleep, clock=RUNTIME.clock
        ),
        upstream=upstream,
        downstream=list(downstream or []),
        callback_parameter=callback_parameter,
        job_name=job_name,
        allow_projects=patterns,
    )
    code = exit_code(findings)
    if as_json:
        _print_json({"exit_code": code, "findings": [f.to_json() for f in findings]})
    else:
        _echo(render(findings))
    if code:
        raise typer.Exit(code)


# -- emulator, orb ----------------------------------------------------------------------


@app.command()
def emulator(
    host: Annotated[
        str, typer.Option(help="Address to listen on (loopback unless --allow-remote).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on (0 picks a free one).")] = 0,
    project: Annotated[
        list[str] | None,
        typer.Option(help="SLUG=CONFIG_PATH: a project and its .circleci/config.yml (repeatable)."),
    ] = None,
    token: Annotated[
        list[str] | None,
        typer.Option(help="A token the emulator accepts (repeatable; none: any token)."),
    ] = None,
    page_size: Annotated[int, typer.Option(help="Items per page on list endpoints.")] = 20,
    start: Annotated[
        list[str] | None,
        typer.Option(help="Start a pipeline of this --project once serving (repeatable)."),
    ] = None,
    allow_remote: Annotated[
        bool,
        typer.Option(
            "--allow-remote",
            help="Allow a --host beyond loopback (anyone reaching it can approve jobs).",
        ),
    ] = False,
    creation_delay: Annotated[
        float, typer.Option(help="Seconds a triggered pipeline stays pending.")
    ] = 0.0,
    workflow_delay: Annotated[
        float, typer.Option(help="Seconds more before its workflows appear.")
    ] = 0.0,
    switch: Annotated[
        list[str] | None,
        typer.Option(help="NAME=VALUE: a behaviour variant (see docs/emulator.md)."),
    ] = None,
) -> None:
    """Serve the local CircleCI API emulator; prints its base URL on the first line.

    Then, on stderr: what to export so circleback uses it, where its pages are, how to
    finish jobs, and the pipelines --start started.
    """
    from circleback.emulator.launch import run as run_emulator
    from circleback.emulator.switches import Switches, parse_assignment

    changes: dict[str, object] = {
        "creation_delay": creation_delay,
        "workflow_delay": workflow_delay,
    }
    try:
        changes.update(parse_assignment(item) for item in switch or [])
        Switches().updated(changes)
    except ValueError as exc:
        raise errors.ConfigurationError(
            f"Bad emulator switch: {exc}.", hint="See docs/emulator.md for the switches."
        ) from None
    run_emulator(
        host=host,
        port=port,
        project_items=list(project or []),
        tokens=list(token or []),
        page_size=page_size,
        start=list(start or []),
        allow_remote=allow_remote,
        switches=changes,
    )


@app.command()
def demo(
    fail_downstream: Annotated[
        bool, typer.Option(help="Make B's tests fail, to show the failure path.")
    ] = False,
    webhook: Annotated[
        bool,
        typer.Option(help="B has no callback job: 'circleback serve' releases A from B's webhook."),
    ] = False,
) -> None:
    """Run the whole circleback, A and B, on the embedded emulator (no account needed)."""
    from circleback.demo import run_demo

    code = run_demo(fail_downstream=fail_downstream, webhook=webhook)
    if code:
        raise typer.Exit(code)


# -- the webhook receiver ---------------------------------------------------------------


def _allow_patterns(values: list[str] | None) -> list[str]:
    patterns = list(values or [])
    if not patterns and os.environ.get("CIRCLEBACK_ALLOW_PROJECTS"):
        patterns = [os.environ["CIRCLEBACK_ALLOW_PROJECTS"]]
    return patterns


@app.command()
def serve(
    allow_project: Annotated[
        list[str] | None,
        typer.Option(
            help="Upstream project whose holds may be released, e.g. gh/acme/* (repeatable; "
            "also CIRCLEBACK_ALLOW_PROJECTS)."
        ),
    ] = None,
    from_project: Annotated[
        list[str] | None,
        typer.Option(
            "--from",
            help="Only consider events of these downstream projects (repeatable) "
            "[default: any project whose events carry a valid signature].",
        ),
    ] = None,
    host: Annotated[str, typer.Option(help="Address to listen on (0.0.0.0 in a container).")] = (
        "127.0.0.1"
    ),
    port: Annotated[
        int, typer.Option(envvar="PORT", help="Port to listen on [default: $PORT, else 8080].")
    ] = 8080,
    job_name: Annotated[
        str, typer.Option(help="The upstream approval job's name.")
    ] = "wait-for-triggered-pipeline",
    cancel_cascade: Annotated[
        bool,
        typer.Option(
            help="With the webhook on upstream projects too: an upstream workflow canceled "
            "cancels the downstream pipelines it triggered (each proven to carry its id)."
        ),
    ] = False,
    budget: Annotated[
        float,
        typer.Option(help="Seconds before a slow delivery is answered 503 (CircleCI waits 10s)."),
    ] = 8.0,
) -> None:
    """Release upstream holds from downstream projects' CircleCI webhooks (no callback job).

    Signing secrets: CIRCLEBACK_WEBHOOK_SECRETS (comma-separated, for rotation).
    """
    from circleback.serve import require_extra

    require_extra()
    from circleback.relay.approve import parse_allow_patterns
    from circleback.serve.receiver import Rules
    from circleback.serve.server import RECEIVER_RETRY
    from circleback.serve.server import serve as run_server
    from circleback.webhook import secrets_from_environment

    if not 0 < budget < 10:
        raise errors.ConfigurationError(
            f"--budget {budget} is not between 0 and 10 seconds.",
            hint="CircleCI retries a delivery not answered within 10s; keep it at 8.",
        )
    rules = Rules(
        allow_projects=parse_allow_patterns(_allow_patterns(allow_project)),
        downstream_projects=parse_allow_patterns(from_project or []),
        job_name=job_name,
        cancel_cascade=cancel_cascade,
    )
    from circleback.client import CircleCIClient
    from circleback.settings import load_settings

    client = CircleCIClient.from_settings(
        load_settings(), transport=RUNTIME.transport, retry=RECEIVER_RETRY, timeout=4.0
    )
    with client:
        run_server(client, rules, secrets_from_environment(), host=host, port=port, budget=budget)


webhook_app = typer.Typer(
    help="Manage the outbound webhook that 'circleback serve' receives.", no_args_is_help=True
)
app.add_typer(webhook_app, name="webhook")


def _webhook_json(hook: Any) -> dict[str, Any]:
    return {"id": hook.id, "name": hook.name, "url": hook.url, "events": list(hook.events)}


@webhook_app.command("install")
def webhook_install(
    project_slug: Annotated[str, typer.Argument(help="The downstream project, e.g. gh/acme/b.")],
    url: Annotated[str, typer.Option(help="The receiver's https:// URL (its /webhook path).")],
    name: Annotated[str, typer.Option(help="The webhook's name.")] = "circleback",
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON document.")] = False,
) -> None:
    """Register the receiver's webhook on a project (idempotent; secret: the first of
    CIRCLEBACK_WEBHOOK_SECRETS)."""
    from circleback.webhook import install, secrets_from_environment

    keys = secrets_from_environment()
    with _client() as client:
        result = install(client, project_slug, url=url, secret=keys[0] if keys else "", name=name)
    log.info(f"{result.outcome.value}: {result.webhook.name} -> {result.webhook.url}")
    if as_json:
        _print_json({"outcome": result.outcome.value, "webhook": _webhook_json(result.webhook)})
    else:
        _echo(result.webhook.id)


@webhook_app.command("list")
def webhook_list(
    project_slug: Annotated[str, typer.Argument(help="The project, e.g. gh/acme/b.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON document.")] = False,
) -> None:
    """List a project's outbound webhooks."""
    from circleback.webhook import list_webhooks

    with _client() as client:
        hooks = list_webhooks(client, project_slug)
    if as_json:
        _print_json({"webhooks": [_webhook_json(h) for h in hooks]})
        return
    for hook in hooks:
        _echo(f"{hook.id}  {hook.name}  {hook.url}  {','.join(hook.events)}")


@webhook_app.command("remove")
def webhook_remove(
    project_slug: Annotated[str, typer.Argument(help="The project, e.g. gh/acme/b.")],
    url: Annotated[str | None, typer.Option(help="Remove the webhooks delivering here.")] = None,
    webhook_id: Annotated[str | None, typer.Option("--id", help="Remove this webhook.")] = None,
) -> None:
    """Remove circleback's webhook (by --url or --id; default: those named circleback)."""
    from circleback.webhook import remove

    if url is not None and webhook_id is not None:
        raise errors.ConfigurationError(
            "Pass --url or --id, not both.", hint="Choose the webhook by one of them."
        )
    with _client() as client:
        removed = remove(client, project_slug, url=url, webhook_id=webhook_id)
    if not removed:
        log.info("no matching webhook; nothing to remove")
    for hook in removed:
        log.info(f"removed {hook.name} -> {hook.url}")


@orb_app.command("pack")
def orb_pack(
    src: Annotated[
        Path | None, typer.Argument(help="The orb's src/ directory [default: the bundled orb].")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")
    ] = None,
) -> None:
    """Pack the orb's src/ into one orb YAML, as 'circleci orb pack' does."""
    from circleback._files import write_text_atomically
    from circleback.orbpack import find_orb_src, pack_orb_yaml

    text = pack_orb_yaml(src if src is not None else find_orb_src())
    if output is None:
        typer.echo(text, nl=False)
    else:
        write_text_atomically(output, text)


# -- entry point --------------------------------------------------------------------------


def _fail(err: errors.CirclebackError) -> NoReturn:
    extra = {"hint": err.hint} if err.hint else {}
    log.error(err.message, extra=extra)
    raise SystemExit(err.exit_code)


def _lazy_coercion(command: Any) -> None:
    """Build typer's pydantic validators only for values that need them.

    typer coerces every parameter, even one left unset, through a ``TypeAdapter`` built on
    first use; building the first imports pydantic (~50 ms), on paths such as ``--help``
    and the no-op approve that use nothing else of it. Each parameter gets a stand-in that
    answers what needs no validator (unset; a ``str`` for a plain ``str`` option, strings
    for a ``list[str]`` one; a ``bool`` for a flag) and builds typer's own coercion for
    anything else. If typer's internals change shape, nothing is replaced (``tests/perf``
    then fails on the imported modules, not on behaviour).
    """
    try:
        from typer._coercion import RuntimeParam, build_runtime_param
    except ImportError:  # pragma: no cover - another typer layout: keep typer's coercion
        return

    class Deferred(RuntimeParam):
        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            descriptor = param.type_descriptor
            kind = descriptor.annotation
            if descriptor.parameter_info.parser is None:
                if kind in (str, bool) and isinstance(value, kind):
                    return value
                strings = isinstance(value, (list, tuple)) and all(
                    isinstance(item, str) for item in value
                )
                if kind == list[str] and strings:
                    return list(value)
            real = build_runtime_param(descriptor)
            param._runtime_param = real
            return real._coerce_value(value, param, ctx)

    for sub in [command, *getattr(command, "commands", {}).values()]:
        if sub is not command and hasattr(sub, "commands"):
            _lazy_coercion(sub)
            continue
        # ``--help`` is made on first use, then cached: make it now, to replace it too.
        help_option = sub.get_help_option(sub.context_class(sub))
        for param in [*sub.params, *([help_option] if help_option is not None else [])]:
            descriptor = getattr(param, "type_descriptor", None)
            if (
                descriptor is not None
                and getattr(param, "_runtime_param", "absent") is None
                and descriptor.file_annotation is None
            ):
                param._runtime_param = Deferred(
                    parameter_info=descriptor.parameter_info, annotation=descriptor.annotation
                )


#: Global options that take a value (to find the command name after them).
_VALUED_OPTIONS = frozenset({"--log-format"})


def _only_what_runs(full: typer.Typer, argv: Sequence[str] | None) -> typer.Typer:
    """The app with only the command this invocation runs, when that is known from argv.

    typer turns every command's signature into click parameters before parsing anything
    (``get_type_hints`` on each: 20-40 ms for all of them); one command needs only its own.
    When no command is named (``--help``, no arguments, a typo), the full app is built, so
    listings and "no such command" errors are typer's own. ``--version`` alone needs none.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    names = {
        (info.name or info.callback.__name__.replace("_", "-")): info
        for info in full.registered_commands
        if info.callback is not None
    }
    groups = {info.name: info for info in full.registered_groups if info.name}
    index = 0
    while index < len(args) and args[index].startswith("-"):
        if args[index] in {"--help", "-h"}:
            return _listing(full)
        index += 2 if args[index] in _VALUED_OPTIONS else 1
    if index >= len(args):
        return _view(full, [], []) if "--version" in args else _listing(full)
    name = args[index]
    if name in names:
        return _view(full, [names[name]], [])
    if name in groups:
        return _view(full, [], [groups[name]])
    return full


def _listing(full: typer.Typer) -> typer.Typer:
    """The app for the top-level help: every command by name and help, none of their options.

    The listing shows each command's name and the first line of its help; nothing runs.
    """
    import copy
    import inspect

    def listed() -> None:  # pragma: no cover - never invoked: only listed
        raise AssertionError("a listing stub ran")

    stubs = []
    for info in full.registered_commands:
        stub = copy.copy(info)
        if info.callback is not None:
            stub.name = info.name or info.callback.__name__.replace("_", "-")
            stub.help = info.help or inspect.getdoc(info.callback)
        stub.callback = listed
        stubs.append(stub)
    return _view(full, stubs, list(full.registered_groups))


def _view(full: typer.Typer, commands: list[Any], groups: list[Any]) -> typer.Typer:
    view = typer.Typer()
    for key, value in vars(full).items():
        setattr(view, key, value)
    view.registered_commands = commands
    view.registered_groups = groups
    return view


def run(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit code; the one boundary from errors to exit codes."""
    command = _cli_help.polish(typer.main.get_command(_only_what_runs(app, argv)))
    _lazy_coercion(command)
    with _ACTIVE_LOCK:
        if not _ACTIVE:
            _configured["logging"] = False
            _options.update(verbose=False, log_format=None)
            _redact.clear()
        _ACTIVE.append(1)
    # Before anything can fail: the token the environment holds, by the settings' rules
    # (the one settings load is registered too, once read).
    _redact.register_from_environment()
    for secret in os.environ.get("CIRCLEBACK_WEBHOOK_SECRETS", "").split(","):
        _redact.register(secret)  # the webhook receiver's signing secrets
    try:
        return _run(command, argv)
    finally:
        # The last of concurrent in-process runs (tests) leaves logging as it found it.
        with _ACTIVE_LOCK:
            _ACTIVE.pop()
            if not _ACTIVE:
                if _configured["logging"]:
                    _logging.reset()
                _redact.clear()


#: In-process runs still going, and the lock that guards the shared state above.
_ACTIVE: list[int] = []
_ACTIVE_LOCK = threading.Lock()


def _run(command: Any, argv: Sequence[str] | None) -> int:
    # Global options typed after the command (circleback approve -v) count as before it.
    args = _cli_help.hoist_global_options(command, sys.argv[1:] if argv is None else argv)
    try:
        result = command.main(
            args=args,
            prog_name="circleback",
            standalone_mode=False,
        )
    except errors.CirclebackError as err:
        _ensure_logging()
        try:
            _fail(err)
        except SystemExit as exit_:
            return int(exit_.code or 0)
    except typer.Exit as exc:
        return int(exc.exit_code)
    except typer.TyperException as exc:  # usage errors: unknown option, missing argument
        if type(exc).__name__ == "NoArgsIsHelpError":  # 'circleback' alone: the help
            typer.echo(exc.format_message())
            return errors.EXIT_USAGE
        _ensure_logging()
        ctx = getattr(exc, "ctx", None)
        where = getattr(ctx, "command_path", "") or "circleback"
        log.error(
            _redact.redact(exc.format_message()),
            extra={"hint": f"Run '{where} --help' to see what it takes."},
        )
        return errors.EXIT_USAGE
    except typer.Abort:
        typer.echo("Aborted.", err=True)
        return 130
    except Exception as exc:  # a bug: say so, without a traceback that could hold secrets
        _ensure_logging()
        log.error(
            f"unexpected {type(exc).__name__}: {_redact.redact(str(exc))}",
            extra={"hint": "This is a circleback bug; run again with -v and report it."},
        )
        return errors.EXIT_API
    return result if isinstance(result, int) else 0


def _skip_httpx_cli() -> None:
    """Keep httpx from importing its own command-line client into this process.

    ``import httpx`` imports ``httpx._main`` (click, rich, pygments: about 35 ms) whenever
    those are installed, as they are beside typer, and falls back to a stub when that import
    fails. This process never runs httpx's CLI, so a ``None`` entry in ``sys.modules`` (which
    makes the import fail) costs nothing. Done only here, in the process's entry point,
    never when circleback is imported as a library.
    """
    if "httpx" not in sys.modules:
        sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]


def main() -> None:
    """Console-script entry point."""
    _skip_httpx_cli()
    sys.exit(run())
