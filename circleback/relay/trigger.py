"""``trigger``: A starts B and hands it A's pipeline id, so B can call back.

Unlike the tutorial's ``curl | jq -r .id``, a failed trigger is an error (never ``null``
written as an id), a 200 "not created" is an error, and a downstream pipeline that
errors at creation (bad config, undeclared parameter) fails A now rather than leaving A
parked on a hold that nothing will ever release.

A trigger whose outcome is unknown (the answer was lost, cut off, timed out, or a 5xx)
is never simply sent again, since CircleCI may have created the pipeline already. It is
reconciled first: B's recent pipelines on that branch are searched for one carrying this
upstream pipeline id in its parameters (the callback parameter is an idempotency key).
Exactly one is adopted; none found means the trigger is sent again; more than one, or a
list that cannot be read, fails with both possibilities spelt out.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from circleback.client import CircleCIClient, ParameterValue
from circleback.errors import APIError, CirclebackError, ConfigurationError, DownstreamFailed
from circleback.models import Pipeline, PipelineCreation, PipelineState
from circleback.relay.chain import upstream_chain
from circleback.relay.records import (
    DEFAULT_CALLBACK_PARAMETER,
    Downstream,
    app_url,
    pipeline_url,
)
from circleback.validation import ProjectSlug, parse_project_slug, parse_uuid

logger = logging.getLogger("circleback.relay")

#: How long to wait for a new pipeline to leave ``pending``/``setup`` before trusting it.
DEFAULT_CONFIRM_TIMEOUT = 60.0
#: Pipelines in a chain A → B → C …; deeper nesting is the seed's "deep nesting" anti-pattern.
DEFAULT_MAX_DEPTH = 4

_PARAMETER_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,127}")


class DownstreamErrored(DownstreamFailed):
    """Raised when the downstream pipeline was created but CircleCI could not run it."""

    default_hint = "Fix the downstream config or the parameters sent to it (errors above)."


class TriggerOutcomeUnknown(CirclebackError):
    """Raised when a trigger's outcome is unknown and B's pipeline list cannot settle it."""

    default_hint = (
        "Look at the downstream project's recent pipelines for one whose parameters carry "
        "this pipeline's id; rerun this job only if there is none."
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
) -> Downstream:
    """Start B with A's id, then confirm B did not error at creation.

    Everything is validated before the first request, so bad input sends nothing. ``now``
    is the wall clock that "created since this attempt began" is judged by. Unless
    ``max_depth`` is 0, the chain above A is read first and a cycle or a chain deeper than
    ``max_depth`` pipelines is refused before anything is created.
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
    if max_depth:
        guard_chain(client, slug, str(parameters[request.callback_parameter]), request, max_depth)
    created = _create(client, slug, request, parameters, reconcile, sleep, now)
    url = pipeline_url(app_url(client.base_url), str(slug), created.number)
    logger.info(
        "triggered downstream pipeline",
        extra={"project": str(slug), "number": created.number, "url": url},
    )
    pipeline = _confirm(client, created.id, confirm_timeout, sleep, clock)
    state = pipeline.state.value if isinstance(pipeline.state, PipelineState) else pipeline.state
    if pipeline.state == PipelineState.ERRORED:
        reasons = "; ".join(f"{e.type}: {e.message}" for e in pipeline.errors) or "no reason given"
        raise DownstreamErrored(
            f"{slug} pipeline #{created.number} errored at creation: {reasons} ({url})"
        )
    return Downstream(
        project_slug=str(slug),
        pipeline_id=created.id,
        number=created.number,
        state=str(state),
        url=url,
    )


def guard_chain(
    client: CircleCIClient,
    slug: ProjectSlug,
    upstream_id: str,
    request: TriggerRequest,
    max_depth: int,
) -> list[str]:
    """Refuse a trigger that closes a cycle or nests deeper than ``max_depth``.

    Returns the chain of project slugs from the root to B, as it would be.
    """
    chain = upstream_chain(client, upstream_id, callback_parameter=request.callback_parameter)
    projects = [p.project_slug for p in reversed(chain)]
    path = " → ".join([*(f"{p.project_slug} #{p.number}" for p in reversed(chain)), str(slug)])
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
) -> PipelineCreation:
    """Send the trigger; when its outcome is unknown, reconcile before sending it again."""
    since = now() - timedelta(seconds=policy.clock_skew)
    upstream = str(parameters[request.callback_parameter])
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
            sleep(policy.settle)
            ours = _find_ours(client, slug, request, upstream, since, exc)
            if len(ours) == 1:
                logger.warning(
                    "the trigger had created the pipeline after all; adopting it",
                    extra={"project": str(slug), "number": ours[0].number},
                )
                found = ours[0]
                return PipelineCreation(
                    id=found.id, state=found.state, number=found.number, created_at=found.created_at
                )
            if ours:
                raise _duplicates(slug, upstream, ours) from None
            continue  # provably nothing was created: sending again cannot duplicate
        if was_unknown:
            ours = _find_ours(client, slug, request, upstream, since, None)
            if len(ours) > 1:
                raise _duplicates(slug, upstream, ours)
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
    """One trigger request on the endpoint the slug calls for."""
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
    except APIError as exc:
        if exc.status_code == 400:
            # CircleCI's 400 to a trigger is nearly always a parameter the config does not
            # declare, or declares with another type: say so in terms of B's config.
            exc.hint = (
                f"Every parameter sent must be declared under 'parameters:' in {slug}'s "
                f"config with the same type; declare {request.callback_parameter!r} there "
                '(type: string, default: "").'
            )
        raise


def _find_ours(
    client: CircleCIClient,
    slug: ProjectSlug,
    request: TriggerRequest,
    upstream: str,
    since: datetime,
    cause: CirclebackError | None,
) -> list[Pipeline]:
    """B's pipelines created since ``since`` (on the branch) that carry ``upstream``.

    A recent pipeline that shows no parameters at all could be ours: then nothing can be
    proven, and guessing either way risks a duplicate or a lost pipeline.
    """
    ours: list[Pipeline] = []
    opaque: list[Pipeline] = []
    try:
        for pipeline in client.list_project_pipelines(str(slug), branch=request.branch):
            if pipeline.created_at < since:
                break  # newest first: everything further is older than the attempt
            if request.tag and (pipeline.vcs is None or pipeline.vcs.tag != request.tag):
                continue  # the list filters by branch only; a tag is checked here
            params = pipeline.trigger_parameters
            if params is None:
                opaque.append(pipeline)
            elif str(params.get(request.callback_parameter, "")).lower() == upstream:
                ours.append(pipeline)
    except CirclebackError as exc:
        what = "failed" if cause is None else f"failed ({cause.message})"
        raise TriggerOutcomeUnknown(
            f"The trigger of {slug} {what}, and its pipeline list could not be read to see "
            f"whether it created a pipeline anyway: {exc.message}"
        ) from None
    if not ours and opaque and cause is not None:
        numbers = ", ".join(f"#{p.number}" for p in opaque)
        raise TriggerOutcomeUnknown(
            f"The trigger of {slug} failed ({cause.message}); recent pipelines {numbers} show "
            "no parameters, so whether one of them is this trigger's cannot be told."
        )
    return ours


def _duplicates(slug: ProjectSlug, upstream: str, ours: list[Pipeline]) -> DuplicateDownstream:
    numbers = ", ".join(f"#{p.number} ({p.id})" for p in sorted(ours, key=lambda p: p.number))
    return DuplicateDownstream(
        f"{len(ours)} pipelines of {slug} carry upstream pipeline {upstream}: {numbers}."
    )


def _confirm(
    client: CircleCIClient,
    pipeline_id: str,
    timeout: float,
    sleep: Callable[[float], None],
    clock: Callable[[], float],
) -> Pipeline:
    """Read the new pipeline until its state settles (``created`` or ``errored``).

    Gives up quietly at ``timeout`` and returns the last reading: a pipeline still being
    set up is not a failure, and ``status`` will judge it later.
    """
    deadline = clock() + timeout
    delay = 1.0
    while True:
        pipeline = client.get_pipeline(pipeline_id)
        if pipeline.state in {PipelineState.CREATED, PipelineState.ERRORED}:
            return pipeline
        if clock() + delay > deadline:
            return pipeline
        sleep(delay)
        delay = min(delay * 2, 10.0)
