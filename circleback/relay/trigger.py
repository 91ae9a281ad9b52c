"""``trigger``: A starts B and hands it A's pipeline id, so B can call back.

Unlike the tutorial's ``curl | jq -r .id``, a failed trigger is an error (never ``null``
written as an id), a 200 "not created" is an error, and a downstream pipeline that
errors at creation (bad config, undeclared parameter) fails A now rather than leaving A
parked on a hold that nothing will ever release.

Before it reports success, ``trigger`` makes sure B will call back: it waits (bounded,
with backoff) while B is ``pending`` or being set up, and fails with the reason when B
errored, ran no workflow, or its compiled config never uses the callback parameter (so
no job of B can know A's id). It refuses an upstream id that does not exist.

A trigger whose outcome is unknown (the answer was lost, cut off, timed out, or a 5xx)
is never simply sent again, since CircleCI may have created the pipeline already. CircleCI
does not return a pipeline's parameters (``trigger_parameters`` holds only its own
namespaces), so B's recent pipelines on that ref are read through their compiled configs
(``circleback.relay.link``): one that carries this upstream id *and* shows the other
parameters as sent is adopted; when none carries the id and every recent one could be
read, nothing was created and the trigger is sent again; anything else (a pipeline still
unreadable, one whose parameters cannot be read back, two candidates) fails "outcome
unknown" (exit 3) naming the pipelines to look at, and sends nothing.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from circleback import errors
from circleback.client import CircleCIClient, ParameterValue
from circleback.errors import APIError, CirclebackError, ConfigurationError, DownstreamFailed
from circleback.models import Pipeline, PipelineCreation, PipelineState
from circleback.relay import hints
from circleback.relay.chain import upstream_chain
from circleback.relay.completion import Phase, Watch
from circleback.relay.link import check_parameters, read_config_evidence
from circleback.relay.records import (
    DEFAULT_CALLBACK_PARAMETER,
    Downstream,
    app_url,
    pipeline_url,
)
from circleback.validation import ProjectSlug, parse_project_slug, parse_uuid

logger = logging.getLogger("circleback.relay")

#: How long to wait for a new pipeline to show it will call back (created, running a
#: workflow, its config using the callback parameter) before going on with a warning.
DEFAULT_CONFIRM_TIMEOUT = 120.0
#: How long a created pipeline may list no workflow before it "ran none" (trigger's wait).
TRIGGER_NO_WORKFLOW_GRACE = 30.0
#: Pipelines in a chain A → B → C …; deeper nesting is the seed's "deep nesting" anti-pattern.
DEFAULT_MAX_DEPTH = 4

_PARAMETER_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,127}")


class DownstreamErrored(DownstreamFailed):
    """Raised when the downstream pipeline was created but CircleCI could not run it."""

    default_hint = "Fix the downstream config or the parameters sent to it (errors above)."


class TriggerOutcomeUnknown(CirclebackError):
    """Raised when a trigger's outcome is unknown and B's pipelines cannot settle it."""

    default_hint = (
        "Open the downstream pipelines named above: if one was started by this job (its "
        "config shows this pipeline's id and your parameters), record or use it; rerun "
        "this job only if there is none. Nothing was sent again."
    )


class CallbackNotUsed(ConfigurationError):
    """Raised when B's compiled config never uses the callback parameter: B cannot call back."""

    default_hint = (
        "Use the parameter in B's callback job, e.g. the orb's approve-upstream job, or "
        "environment: {CIRCLEBACK_UPSTREAM_PIPELINE_ID: << pipeline.parameters."
        "triggering-pipeline-id >>} (never inside a run: command)."
    )


class DuplicateDownstream(CirclebackError):
    """Raised when more than one downstream pipeline carries this upstream id (a race)."""

    default_hint = (
        "An earlier attempt whose answer was lost landed after all: cancel all but one of "
        "the downstream pipelines named above, then rerun this job."
    )


@dataclass(frozen=True)
class ReconcilePolicy:
    """How a trigger whose outcome is unknown is settled before it is ever sent again."""

    max_attempts: int = 3
    """Triggers sent in all, while each one's outcome is unknown and none landed."""
    settle: float = 2.0
    """Seconds to wait before looking, so that a request still in flight can land first."""
    looks: int = 4
    """Looks at B's pipelines (backing off from ``settle``) while one is still unreadable
    (``pending``, config not compiled yet)."""
    clock_skew: float = 60.0
    """How far CircleCI's clock may lag ours: pipelines created up to this long before
    the first attempt still count as possibly ours."""


DEFAULT_RECONCILE = ReconcilePolicy()


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class TriggerRequest:
    """Everything needed to start one downstream pipeline."""

    project_slug: str
    """The downstream project."""
    upstream_pipeline_id: str
    """A's pipeline id, passed so that B can find A's hold."""
    callback_parameter: str = DEFAULT_CALLBACK_PARAMETER
    """The pipeline parameter B declares to receive A's id."""
    branch: str | None = None
    """The branch to run B on (B's default branch when neither this nor ``tag`` is set)."""
    tag: str | None = None
    """The tag to run B on."""
    parameters: Mapping[str, ParameterValue] | None = None
    """More pipeline parameters for B."""
    definition_id: str | None = None
    """A pipeline definition id; selects the ``pipeline/run`` endpoint."""


def parse_parameter(text: str) -> tuple[str, ParameterValue]:
    """Parse ``KEY=VALUE`` with types, or ``KEY:=VALUE`` to keep the value a string.

    ``true``/``false`` become booleans and integers become ints, because CircleCI rejects
    a pipeline parameter whose JSON type differs from its declared type.
    """
    hint = "Write --parameter KEY=VALUE (typed) or KEY:=VALUE (always a string)."
    if "=" not in text:
        raise ConfigurationError(f"--parameter {text[:60]!r} has no '='.", hint=hint)
    key, _, value = text.partition("=")
    forced_string = key.endswith(":")
    key = key.removesuffix(":")
    if not _PARAMETER_NAME.fullmatch(key):
        raise ConfigurationError(
            f"--parameter name {key[:60]!r} is not a valid pipeline parameter name.", hint=hint
        )
    if forced_string:
        return key, value
    if value in {"true", "false"}:
        return key, value == "true"
    if re.fullmatch(r"-?[0-9]{1,18}", value):
        return key, int(value)
    return key, value


def build_parameters(request: TriggerRequest) -> dict[str, ParameterValue]:
    """B's parameters: the caller's, plus A's id under the callback parameter."""
    upstream = parse_uuid(request.upstream_pipeline_id, what="upstream pipeline id")
    if not _PARAMETER_NAME.fullmatch(request.callback_parameter):
        raise ConfigurationError(
            f"--callback-parameter {request.callback_parameter[:60]!r} is not a valid name.",
            hint="Use the name of the string parameter B declares, e.g. triggering-pipeline-id.",
        )
    parameters = dict(request.parameters or {})
    if request.callback_parameter in parameters:
        raise ConfigurationError(
            f"--parameter {request.callback_parameter} would overwrite the upstream pipeline id.",
            hint="Pass the upstream id with --upstream-pipeline-id instead.",
        )
    parameters[request.callback_parameter] = upstream
    return parameters


def trigger(
    client: CircleCIClient,
    request: TriggerRequest,
    *,
    confirm_timeout: float = DEFAULT_CONFIRM_TIMEOUT,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    reconcile: ReconcilePolicy = DEFAULT_RECONCILE,
    now: Callable[[], datetime] = _utc_now,
    max_depth: int = DEFAULT_MAX_DEPTH,
    known_pipeline_ids: Collection[str] = (),
    no_workflow_grace: float = TRIGGER_NO_WORKFLOW_GRACE,
) -> Downstream:
    """Start B with A's id, then make sure B will call back.

    Everything is validated before the first request, so bad input sends nothing. ``now``
    is the wall clock that "created since this attempt began" is judged by. Unless
    ``max_depth`` is 0, the chain above A is read first and a cycle or a chain deeper than
    ``max_depth`` pipelines is refused before anything is created. ``known_pipeline_ids``
    are downstream pipelines already recorded (the state file's): a reconciliation never
    adopts one of them.

    Raises ``ConfigurationError`` (exit 2) for bad input, an upstream id that does not
    exist, a refused chain, or a B whose config never uses the callback parameter;
    ``DownstreamErrored`` (exit 1) when B errored or ran no workflow;
    ``TriggerOutcomeUnknown`` (exit 3) when a lost answer cannot be settled.
    """
    slug = parse_project_slug(request.project_slug)
    parameters = build_parameters(request)
    # Checked here too, although the client checks them: the guard's reads come first.
    if request.definition_id is not None:
        parse_uuid(request.definition_id, what="pipeline definition id")
    if request.branch and request.tag:
        raise ConfigurationError(
            "A pipeline is triggered on a branch or a tag, not both.",
            hint="Pass only one of --branch and --tag.",
        )
    if max_depth < 0:
        raise ConfigurationError(
            f"--max-depth {max_depth} is negative.", hint="Pass 0 to switch the guard off."
        )
    upstream_id = str(parameters[request.callback_parameter])
    upstream = read_upstream(client, upstream_id)
    if max_depth:
        guard_chain(client, slug, upstream, max_depth)
    known = {k.lower() for k in known_pipeline_ids}
    created = _create(client, slug, request, parameters, reconcile, sleep, now, known)
    url = pipeline_url(app_url(client.base_url), str(slug), created.number)
    logger.info(
        "triggered downstream pipeline",
        extra={"project": str(slug), "number": created.number, "url": url},
    )
    pipeline = _confirm(
        client,
        created,
        request,
        parameters,
        url,
        confirm_timeout=confirm_timeout,
        sleep=sleep,
        clock=clock,
        no_workflow_grace=no_workflow_grace,
    )
    return Downstream(
        project_slug=str(slug),
        pipeline_id=created.id,
        number=created.number,
        state=str(pipeline.state),
        url=url,
    )


def read_upstream(client: CircleCIClient, upstream_id: str) -> Pipeline:
    """A's own pipeline; an id CircleCI does not know is refused before anything is sent."""
    try:
        return client.get_pipeline(upstream_id)
    except errors.NotFound as exc:
        raise ConfigurationError(
            f"Upstream pipeline {upstream_id} does not exist (or this token cannot see it: "
            f"{exc.message}): the downstream pipeline could never call back to it. Nothing "
            "was triggered.",
            hint="Leave --upstream-pipeline-id to $CIRCLE_PIPELINE_ID, or pass "
            "<< pipeline.id >>; " + hints.token_hint(),
        ) from None


def guard_chain(
    client: CircleCIClient,
    slug: ProjectSlug,
    upstream: Pipeline,
    max_depth: int,
) -> list[str]:
    """Refuse a trigger that closes a cycle or nests deeper than ``max_depth``.

    The chain above A is read from the evidence in each pipeline's compiled config
    (``circleback.relay.chain``). Only what is proven is refused; where the guard cannot
    see further up it says so (a warning) and lets the trigger go. Returns the chain of
    project slugs from the highest visible pipeline to B, as it would be.
    """
    view = upstream_chain(client, upstream.id, first=upstream)
    chain = view.pipelines
    projects = [p.project_slug for p in reversed(chain)]
    path = " → ".join([*(f"{p.project_slug} #{p.number}" for p in reversed(chain)), str(slug)])
    if view.blind:
        path = "… → " + path
    target = _same_project_key(str(slug))
    if any(_same_project_key(p) == target for p in projects):
        raise ConfigurationError(
            f"Refusing to trigger {slug}: it is already in this chain, so this would be a "
            f"cycle: {path}.",
            hint="Break the loop: the downstream project must not trigger its upstream again.",
        )
    if len(projects) + 1 > max_depth:
        raise ConfigurationError(
            f"Refusing to trigger {slug}: the chain would be {len(projects) + 1} pipelines "
            f"deep, over --max-depth {max_depth}: {path}.",
            hint="Flatten the chain (fan out from one upstream), or raise --max-depth.",
        )
    if view.blind:
        logger.warning(
            "the chain guard cannot see further up; a cycle or depth above this point is "
            "not checked",
            extra={"chain": path, "why": view.blind},
        )
    logger.debug("chain checked", extra={"chain": path})
    return [*projects, str(slug)]


def _same_project_key(slug: str) -> str:
    """Slugs compare case-insensitively, with gh/github and bb/bitbucket the same."""
    provider, _, rest = slug.partition("/")
    provider = {"github": "gh", "bitbucket": "bb"}.get(provider.lower(), provider.lower())
    return f"{provider}/{rest.lower()}"


def _create(
    client: CircleCIClient,
    slug: ProjectSlug,
    request: TriggerRequest,
    parameters: dict[str, ParameterValue],
    policy: ReconcilePolicy,
    sleep: Callable[[float], None],
    now: Callable[[], datetime],
    known: set[str],
) -> PipelineCreation:
    """Send the trigger; when its outcome is unknown, reconcile before sending it again."""
    since = now() - timedelta(seconds=policy.clock_skew)
    was_unknown = False
    last: CirclebackError | None = None
    for attempt in range(1, max(policy.max_attempts, 1) + 1):
        try:
            created = _send(client, slug, request, parameters)
        except CirclebackError as exc:
            if not exc.outcome_unknown:
                raise
            was_unknown, last = True, exc
            logger.warning(
                "the trigger's outcome is unknown; looking for its pipeline before any retry",
                extra={"project": str(slug), "attempt": attempt, "error": exc.message},
            )
            found = _reconcile(client, slug, request, parameters, since, known, policy, sleep, exc)
            if found is not None:
                logger.warning(
                    "the trigger had created the pipeline after all; adopting it",
                    extra={"project": str(slug), "number": found.number},
                )
                return PipelineCreation(
                    id=found.id, state=found.state, number=found.number, created_at=found.created_at
                )
            continue  # provably nothing was created: sending again cannot duplicate
        if was_unknown:
            look = _look(client, slug, request, parameters, since, known | {created.id.lower()})
            if look.ours or look.maybe:
                others = [p for p, _ in [*((p, "") for p in look.ours), *look.maybe]]
                raise _duplicates(
                    slug, str(parameters[request.callback_parameter]), created, others
                )
        return created
    assert last is not None
    last.hint = (
        f"No pipeline of {slug} was created: each of {policy.max_attempts} attempts failed and "
        "none appeared in its pipeline list. Run the job again."
    )
    raise last


def _send(
    client: CircleCIClient,
    slug: ProjectSlug,
    request: TriggerRequest,
    parameters: dict[str, ParameterValue],
) -> PipelineCreation:
    """One trigger request on the endpoint the slug calls for; hints from CircleCI's words."""
    try:
        if slug.is_opaque or request.definition_id is not None:
            return client.run_pipeline(
                str(slug),
                definition_id=request.definition_id,
                branch=request.branch,
                tag=request.tag,
                parameters=parameters,
            )
        return client.trigger_pipeline(
            str(slug), branch=request.branch, tag=request.tag, parameters=parameters
        )
    except errors.NotFound as exc:
        exc.hint = hints.not_found_hint(
            str(slug), parameters, project_visible=_project_visible(client, slug)
        )
        raise
    except APIError as exc:
        if exc.status_code == 400:
            exc.hint = hints.parameter_hint(
                [exc.message], parameters, str(slug), request.callback_parameter
            ) or (
                f"Every parameter sent must be declared under 'parameters:' in {slug}'s "
                f"config with the same type (sent: {', '.join(parameters)}); declare "
                f'{request.callback_parameter!r} there (type: string, default: "").'
            )
        raise


def _project_visible(client: CircleCIClient, slug: ProjectSlug) -> bool | None:
    """Whether this token can read the project's pipelines (None: could not tell)."""
    try:
        next(iter(client.list_project_pipelines(str(slug))), None)
    except errors.NotFound:
        return False
    except CirclebackError:
        return None
    return True


@dataclass
class _Look:
    """One look at B's recent pipelines during a reconciliation."""

    ours: list[Pipeline] = field(default_factory=list)
    """Carry this upstream id and show every parameter as sent."""
    maybe: list[tuple[Pipeline, str]] = field(default_factory=list)
    """Carry this upstream id, but some parameter cannot be read back (and why)."""
    unreadable: list[tuple[Pipeline, str]] = field(default_factory=list)
    """Config not readable (yet): could be ours."""


def _look(
    client: CircleCIClient,
    slug: ProjectSlug,
    request: TriggerRequest,
    parameters: dict[str, ParameterValue],
    since: datetime,
    known: set[str],
) -> _Look:
    """Read B's pipelines created since ``since`` on this ref, through their configs."""
    upstream = str(parameters[request.callback_parameter])
    others = {k: v for k, v in parameters.items() if k != request.callback_parameter}
    look = _Look()
    for pipeline in client.list_project_pipelines(str(slug), branch=request.branch):
        if pipeline.created_at < since:
            break  # newest first: everything further is older than the attempt
        if pipeline.id.lower() in known:
            continue  # already recorded by an earlier trigger of this job
        if request.tag and pipeline.vcs is not None and pipeline.vcs.tag != request.tag:
            continue  # the list filters by branch only; a tag is checked here
        if (
            request.branch
            and pipeline.vcs is not None
            and pipeline.vcs.branch
            not in (
                None,
                request.branch,
            )
        ):
            continue
        evidence = read_config_evidence(client, pipeline.id, pipeline)
        if not evidence.readable:
            look.unreadable.append((pipeline, evidence.why))
            continue
        if not evidence.carries(upstream):
            continue
        check = check_parameters(evidence, others)
        if check.contradicted:
            logger.info(
                "a pipeline carries this upstream id but other parameter values",
                extra={"number": pipeline.number, "parameters": list(check.contradicted)},
            )
            continue
        if check.unverifiable:
            names = ", ".join(check.unverifiable)
            look.maybe.append((pipeline, f"its config does not show {names} as sent"))
            continue
        look.ours.append(pipeline)
    return look


def _reconcile(
    client: CircleCIClient,
    slug: ProjectSlug,
    request: TriggerRequest,
    parameters: dict[str, ParameterValue],
    since: datetime,
    known: set[str],
    policy: ReconcilePolicy,
    sleep: Callable[[float], None],
    cause: CirclebackError,
) -> Pipeline | None:
    """Our pipeline if proven; None if provably none was created; else outcome unknown."""
    delay = policy.settle
    for attempt in range(max(policy.looks, 1)):
        sleep(delay)
        delay *= 2
        try:
            look = _look(client, slug, request, parameters, since, known)
        except CirclebackError as exc:
            raise TriggerOutcomeUnknown(
                f"The trigger of {slug} failed ({cause.message}), and its recent pipelines "
                f"could not be read to see whether it created one anyway: {exc.message}"
            ) from None
        if not look.unreadable or attempt == max(policy.looks, 1) - 1:
            break
    if len(look.ours) == 1 and not look.maybe and not look.unreadable:
        return look.ours[0]
    if not look.ours and not look.maybe and not look.unreadable:
        return None
    parts = [
        f"#{p.number} ({p.id}) carries this pipeline's id and the same parameters"
        for p in look.ours
    ]
    parts += [
        f"#{p.number} ({p.id}) carries this pipeline's id, but {why}" for p, why in look.maybe
    ]
    parts += [f"#{p.number} ({p.id}) cannot be told: {why}" for p, why in look.unreadable]
    raise TriggerOutcomeUnknown(
        f"The trigger of {slug} failed ({cause.message}) and whether it created a pipeline "
        f"cannot be told: {'; '.join(parts)}."
    )


def _duplicates(
    slug: ProjectSlug, upstream: str, created: PipelineCreation, others: list[Pipeline]
) -> DuplicateDownstream:
    numbers = ", ".join(f"#{p.number} ({p.id})" for p in sorted(others, key=lambda p: p.number))
    return DuplicateDownstream(
        f"The trigger of {slug} created #{created.number} ({created.id}), but an earlier "
        f"attempt whose answer was lost landed too: {numbers}, carrying "
        f"upstream pipeline {upstream} as well."
    )


def _confirm(
    client: CircleCIClient,
    created: PipelineCreation,
    request: TriggerRequest,
    parameters: dict[str, ParameterValue],
    url: str,
    *,
    confirm_timeout: float,
    sleep: Callable[[float], None],
    clock: Callable[[], float],
    no_workflow_grace: float,
) -> Pipeline:
    """Wait (bounded, backing off) until B shows it will call back; fail when it cannot.

    Returns the last reading. When the wait ends first (B still pending or in setup, its
    config not readable yet), it goes on with a warning: ``status`` judges B later.
    """
    upstream = str(parameters[request.callback_parameter])
    slug = request.project_slug
    deadline = clock() + confirm_timeout
    watch = Watch(clock=clock, no_workflow_grace=no_workflow_grace)
    delay = 1.0
    config_ok = unused = False
    missing = "the pipeline is still pending"
    while True:
        pipeline = client.get_pipeline(created.id)
        if pipeline.state == PipelineState.ERRORED:
            _raise_errored(pipeline, request, parameters, url)
        if pipeline.state == PipelineState.CREATED:
            if not config_ok and not unused:
                evidence = read_config_evidence(client, created.id, pipeline)
                unused = evidence.readable and not evidence.carries(upstream)
                config_ok = evidence.readable and not unused
                missing = evidence.why if not evidence.readable else missing
            workflows = list(client.list_pipeline_workflows(created.id))
            verdict = watch.judge(pipeline, workflows)
            if verdict.phase in {Phase.NO_WORKFLOWS, Phase.SETUP_FAILED}:
                raise DownstreamErrored(
                    f"{slug} pipeline #{created.number} will never call back: "
                    f"{verdict.reason} ({url})",
                    hint="Make a workflow of B run on this branch or tag (check its jobs' "
                    "filters: a tag trigger runs only jobs with tag filters), or trigger "
                    "another ref.",
                )
            running = any(not w.is_setup for w in workflows)
            if unused and running:
                # Said only once B runs a workflow: a B that runs none gets that reason.
                raise CallbackNotUsed(
                    f"{slug} pipeline #{created.number} will never call back: its "
                    f"compiled config does not use {request.callback_parameter!r} "
                    f"anywhere, so no job of it can know this pipeline's id ({url})."
                )
            if config_ok and running:
                return pipeline
            if not running:
                missing = verdict.reason or "no workflow yet"
        else:
            missing = f"the pipeline is {pipeline.state}"
        if clock() + delay > deadline:
            if unused:
                raise CallbackNotUsed(
                    f"{slug} pipeline #{created.number} will never call back: its "
                    f"compiled config does not use {request.callback_parameter!r} "
                    f"anywhere, so no job of it can know this pipeline's id ({url})."
                )
            logger.warning(
                "could not yet confirm that the downstream pipeline will call back; "
                "status will judge it",
                extra={"project": slug, "number": created.number, "why": missing},
            )
            return pipeline
        sleep(delay)
        delay = min(delay * 2, 10.0)


def _raise_errored(
    pipeline: Pipeline,
    request: TriggerRequest,
    parameters: dict[str, ParameterValue],
    url: str,
) -> None:
    messages = [e.message for e in pipeline.errors]
    reasons = "; ".join(f"{e.type}: {e.message}" for e in pipeline.errors) or "no reason given"
    hint = hints.parameter_hint(
        messages, parameters, request.project_slug, request.callback_parameter
    )
    raise DownstreamErrored(
        f"{request.project_slug} pipeline #{pipeline.number} errored at creation: "
        f"{reasons} ({url})",
        hint=hint,
    )
