"""``trigger``: A starts B and hands it A's pipeline id, so B can call back.

Unlike the tutorial's ``curl | jq -r .id``, a failed trigger is an error (never ``null``
written as an id), a 200 "not created" is an error, and a downstream pipeline that
errors at creation (bad config, undeclared parameter) fails A now rather than leaving A
parked on a hold that nothing will ever release.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from circleback.client import CircleCIClient, ParameterValue
from circleback.errors import APIError, ConfigurationError, DownstreamFailed
from circleback.models import Pipeline, PipelineState
from circleback.relay.records import Downstream, app_url, pipeline_url
from circleback.validation import parse_project_slug, parse_uuid

logger = logging.getLogger("circleback.relay")

DEFAULT_CALLBACK_PARAMETER = "triggering-pipeline-id"
#: How long to wait for a new pipeline to leave ``pending``/``setup`` before trusting it.
DEFAULT_CONFIRM_TIMEOUT = 60.0

_PARAMETER_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,127}")


class DownstreamErrored(DownstreamFailed):
    """Raised when the downstream pipeline was created but CircleCI could not run it."""

    default_hint = "Fix the downstream config or the parameters sent to it (errors above)."


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
) -> Downstream:
    """Start B with A's id, then confirm B did not error at creation.

    Everything is validated before the first request, so bad input sends nothing.
    """
    slug = parse_project_slug(request.project_slug)
    parameters = build_parameters(request)
    use_run = slug.is_opaque or request.definition_id is not None
    try:
        if use_run:
            created = client.run_pipeline(
                str(slug),
                definition_id=request.definition_id,
                branch=request.branch,
                tag=request.tag,
                parameters=parameters,
            )
        else:
            created = client.trigger_pipeline(
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
