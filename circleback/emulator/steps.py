"""Compile a started job into the flat list of steps the local executor runs.

CircleCI compiles a config before anything runs: orb commands and config ``commands:`` are
expanded into their steps, ``<< parameters.x >>`` and ``<< pipeline.* >>`` are substituted,
``when:`` / ``unless:`` step blocks are decided, and pre- and post-steps are put around the
job's own steps. This module does the same for one :class:`~circleback.emulator.JobRun`,
with no I/O, so that what will run can be tested (and shown) without running it.

Substitution works on the parsed YAML, not on its text: a parameter that is the whole
value keeps its type (a multi-line string stays one string, a ``steps`` parameter stays a
list of steps), as CircleCI's own compiler does. What cannot run on this machine
(``checkout``, caches, remote Docker, jobs and commands of orbs other than circleback's) is
planned as a *skipped* step with the reason, never dropped.

Config docs: https://circleci.com/docs/configuration-reference/#steps and
https://circleci.com/docs/reusing-config/
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from circleback.emulator import config as cfg
from circleback.emulator.state import JobRun

__all__ = [
    "RUNNABLE_STEPS",
    "STEP_WHEN",
    "JobPlan",
    "PlanError",
    "PlannedStep",
    "condition_holds",
    "is_circleback_orb",
    "pipeline_values",
    "plan_invocation",
    "plan_job",
]

#: Built-in steps the executor performs for real.
RUNNABLE_STEPS = frozenset(
    {"run", "persist_to_workspace", "attach_workspace", "store_test_results", "store_artifacts"}
)
#: Built-in steps that make no sense on this machine, and why they are skipped.
SKIPPED_STEPS: Mapping[str, str] = {
    "checkout": "checkout is not emulated: the job runs in an empty working directory",
    "restore_cache": "caches are not emulated",
    "save_cache": "caches are not emulated",
    "setup_remote_docker": "there is no remote Docker engine locally",
    "add_ssh_keys": "SSH keys are not emulated",
}
#: The values of a step's ``when`` attribute (docs: configuration-reference §the-when-attribute).
STEP_WHEN = ("on_success", "always", "on_fail")
#: The orb that is loaded from circleback's own packed source, whatever version is pinned.
CIRCLEBACK_ORB = "circleback/circleback"
#: CircleCI's continuation orb: its ``continue`` and ``finish`` commands become the built-in
#: ``continuation`` step (docs: dynamic-config; orb: circleci/continuation).
CONTINUATION_ORB = "circleci/continuation"

_DEFAULT_NAMES = {
    "persist_to_workspace": "Persisting to workspace",
    "attach_workspace": "Attaching workspace",
    "store_test_results": "Uploading test results",
    "store_artifacts": "Uploading artifacts",
}
#: Deeper than any sane config; a command that calls itself ends here instead of recursing.
_MAX_DEPTH = 32
_LEFTOVER_PARAMETER = re.compile(r"<<\s*parameters\.([A-Za-z0-9_\-]+)\s*>>")
_IGNORED_JOB_KEYS = ("docker", "machine", "macos", "executor", "resource_class", "parallelism")


class PlanError(Exception):
    """The job cannot be compiled (unknown command, missing parameter, ...): it fails."""


@dataclass(frozen=True)
class PlannedStep:
    """One step after expansion: a built-in with concrete arguments."""

    kind: str
    """``run``, a workspace/storage built-in, or the built-in or command that is skipped."""
    name: str
    """What the step is called in the job's output (``name:``, else CircleCI's default)."""
    args: Mapping[str, Any]
    """The built-in's arguments, substituted; for ``run`` always ``command`` and
    ``environment`` (a str -> str mapping), plus ``working_directory`` when given."""
    when: str = "on_success"
    """``on_success``, ``always`` or ``on_fail``."""
    origin: str = ""
    """Where it came from, e.g. ``circleback/check > check_downstream`` (for records)."""
    skip_reason: str | None = None
    """Set when the step cannot run locally: it is recorded as skipped with this reason."""


@dataclass(frozen=True)
class JobPlan:
    """Everything about a job that is decided before its first step runs."""

    steps: tuple[PlannedStep, ...]
    """Pre-steps, the job's steps, then post-steps, all expanded."""
    environment: Mapping[str, str] = field(default_factory=dict)
    """The job's ``environment`` (and its primary container's), as strings."""
    working_directory: str | None = None
    """The job's ``working_directory`` as written (``~`` not yet expanded), if any."""
    notes: tuple[str, ...] = ()
    """Things ignored on purpose (Docker images, resource classes, ...), for the record."""
    skip_reason: str | None = None
    """Set when the whole job cannot run locally (a job of an external orb)."""


@dataclass(frozen=True)
class _Scope:
    """Where names resolve: the config, or an orb (whose commands call each other bare)."""

    label: str
    commands: Mapping[str, Any]
    jobs: Mapping[str, Any]
    orbs: Mapping[str, _Scope | str]
    """Imported orbs: a scope we can expand, or the reference of an external orb."""


def is_circleback_orb(reference: str) -> bool:
    """True for ``circleback/circleback@<any version>``: it is expanded from our own source."""
    return reference.split("@", 1)[0].strip() == CIRCLEBACK_ORB


def pipeline_values(run: JobRun) -> dict[str, Any]:
    """The ``<< pipeline.* >>`` values of the job's pipeline (docs: pipeline-variables)."""
    if run.pipeline_values is not None:
        return dict(run.pipeline_values)
    values: dict[str, Any] = {
        "pipeline.id": run.pipeline_id,
        "pipeline.number": run.pipeline_number,
        "pipeline.project.slug": run.project_slug,
        "pipeline.project.type": run.project_slug.split("/", 1)[0],
        "pipeline.git.branch": run.branch or "",
        "pipeline.git.tag": run.tag or "",
        "pipeline.git.revision": run.revision,
        "pipeline.trigger_source": "api",
        "pipeline.trigger.type": "api",
    }
    values.update({f"pipeline.parameters.{k}": v for k, v in run.pipeline_parameters.items()})
    return values


def condition_holds(condition: Any) -> bool:
    """A ``when:``/``unless:`` step block's ``condition``.

    Empty, ``false``, ``0``, null and the string ``"false"`` are false (a boolean parameter
    substituted inside a longer string arrives as text); ``and``, ``or``, ``not``, ``equal``
    and ``matches`` work as in workflow conditions.
    """
    if isinstance(condition, str) and condition.strip().lower() == "false":
        return False
    if isinstance(condition, dict) and len(condition) == 1:
        ((op, arg),) = condition.items()
        items = arg if isinstance(arg, list) else [arg]
        if op == "and":
            return all(condition_holds(item) for item in items)
        if op == "or":
            return any(condition_holds(item) for item in items)
        if op == "not":
            return not condition_holds(arg)
    try:
        return cfg.evaluate_logic(condition)
    except cfg.ConfigError as exc:
        raise PlanError(f"condition {condition!r}: {exc}") from exc


def plan_job(run: JobRun, orb: Mapping[str, Any]) -> JobPlan:
    """Compile the started job ``run``; ``orb`` is circleback's packed orb.

    Raises :class:`PlanError` for a config CircleCI would refuse to compile.
    """
    return plan_invocation(
        run.config,
        run.job_ref,
        run.parameters,
        pre_steps=run.pre_steps,
        post_steps=run.post_steps,
        pipeline=pipeline_values(run),
        orb=orb,
    )


def plan_invocation(
    config: Mapping[str, Any],
    job_ref: str,
    parameters: Mapping[str, Any],
    *,
    pre_steps: tuple[Any, ...],
    post_steps: tuple[Any, ...],
    pipeline: Mapping[str, Any],
    orb: Mapping[str, Any],
) -> JobPlan:
    """Compile one job invocation of a workflow: the compiler both the executor and
    ``GET /pipeline/{id}/config`` use (:mod:`circleback.emulator.compiled`)."""
    return _Planner(config, job_ref, parameters, pre_steps, post_steps, pipeline, orb).plan()


class _Planner:
    """Holds what every level of expansion needs: the pipeline's values and the notes."""

    def __init__(
        self,
        config: Mapping[str, Any],
        job_ref: str,
        parameters: Mapping[str, Any],
        pre_steps: tuple[Any, ...],
        post_steps: tuple[Any, ...],
        pipeline: Mapping[str, Any],
        orb: Mapping[str, Any],
    ) -> None:
        self.job_ref = job_ref
        self.parameters = parameters
        self.pre_steps = pre_steps
        self.post_steps = post_steps
        self.pipeline = dict(pipeline)
        self.notes: list[str] = []
        self.orb = orb
        self.config_scope = self._scope("config", config)

    def plan(self) -> JobPlan:
        resolved = self._resolve(self.config_scope, self.job_ref, kind="jobs")
        if isinstance(resolved, str):
            return JobPlan(steps=(), skip_reason=resolved)
        definition, scope = resolved
        where = f"job {self.job_ref}"
        values = self._bind(definition.get("parameters"), self.parameters, where)
        body = self._substitute(
            {k: v for k, v in definition.items() if k != "parameters"}, values, where
        )
        for key in _IGNORED_JOB_KEYS:
            if key in body:
                self.notes.append(f"{key} ignored: the job runs on this machine, in bash")
        steps: list[PlannedStep] = []
        pre = self._substitute(list(self.pre_steps), {}, "pre-steps")
        self._expand(pre, self.config_scope, "pre-steps", 0, steps)
        if not isinstance(body.get("steps"), list):
            raise PlanError(f"{where} has no steps list.")
        self._expand(body["steps"], scope, self.job_ref, 0, steps)
        post = self._substitute(list(self.post_steps), {}, "post-steps")
        self._expand(post, self.config_scope, "post-steps", 0, steps)
        environment = _environment(_primary_container_environment(body), where)
        environment.update(_environment(body.get("environment"), where))
        working = body.get("working_directory")
        return JobPlan(
            steps=tuple(steps),
            environment=environment,
            working_directory=None if working is None else str(working),
            notes=tuple(self.notes),
        )

    # -- scopes and names ------------------------------------------------------------------

    def _scope(self, label: str, source: Mapping[str, Any], depth: int = 0) -> _Scope:
        orbs: dict[str, _Scope | str] = {}
        raw_orbs = source.get("orbs") or {}
        if not isinstance(raw_orbs, dict):
            raise PlanError(f"{label}: 'orbs' must be a mapping.")
        for name, ref in raw_orbs.items():
            if isinstance(ref, str) and is_circleback_orb(ref):
                orbs[str(name)] = self._scope(f"orb {name}", self.orb, depth + 1)
            elif isinstance(ref, dict) and depth < _MAX_DEPTH:
                orbs[str(name)] = self._scope(f"orb {name}", ref, depth + 1)  # an inline orb
            else:
                orbs[str(name)] = str(ref)
        return _Scope(
            label=label,
            commands=_mapping(source.get("commands"), f"{label}: commands"),
            jobs=_mapping(source.get("jobs"), f"{label}: jobs"),
            orbs=orbs,
        )

    def _resolve(
        self, scope: _Scope, name: str, *, kind: str
    ) -> tuple[Mapping[str, Any], _Scope] | str:
        """A job's or command's definition and the scope its body resolves in, or, for an
        external orb's, why it is skipped."""
        if "/" in name:
            prefix, rest = name.split("/", 1)
            target = scope.orbs.get(prefix)
            if target is None:
                raise PlanError(f"{scope.label}: {name!r} names no orb: {prefix!r} is not in orbs.")
            if isinstance(target, str):
                return f"{name} is from the orb {target}, which is not available locally"
            scope, name = target, rest
        definitions = scope.commands if kind == "commands" else scope.jobs
        definition = definitions.get(name)
        if not isinstance(definition, dict):
            what = "command or step" if kind == "commands" else "job"
            raise PlanError(f"{scope.label}: no {what} named {name!r}.")
        return definition, scope

    # -- parameters --------------------------------------------------------------------------

    def _bind(self, declared: Any, given: Mapping[str, Any], where: str) -> dict[str, Any]:
        """Declared parameters' values: the invocation's, else the declared default."""
        declared = _mapping(declared, f"{where}: parameters")
        values: dict[str, Any] = {}
        for name, declaration in declared.items():
            if name in given:
                values[name] = given[name]
            elif isinstance(declaration, dict) and "default" in declaration:
                values[name] = declaration["default"]
            else:
                raise PlanError(f"{where}: the parameter {name!r} has no default and no value.")
        extra = sorted(set(given) - set(declared))
        if extra:
            self.notes.append(f"{where}: undeclared parameter(s) ignored: {', '.join(extra)}")
        return values

    def _substitute(self, node: Any, values: Mapping[str, Any], where: str) -> Any:
        """``<< parameters.x >>`` from ``values``, then ``<< pipeline.* >>``."""
        node = cfg.substitute(
            node, {f"parameters.{k}": v for k, v in values.items()}, prefix="parameters."
        )
        leftover = sorted(set(_leftover_parameters(node)))
        if leftover:
            raise PlanError(f"{where}: unknown parameter(s) {', '.join(leftover)}.")
        try:
            return cfg.substitute(node, self.pipeline, prefix="pipeline.")
        except cfg.ConfigError as exc:
            raise PlanError(f"{where}: {exc}") from exc

    # -- steps -------------------------------------------------------------------------------

    def _expand(
        self, steps: Any, scope: _Scope, origin: str, depth: int, out: list[PlannedStep]
    ) -> None:
        if depth > _MAX_DEPTH:
            raise PlanError(f"{origin}: commands nest more than {_MAX_DEPTH} deep.")
        if steps is None:
            return
        if not isinstance(steps, list):
            raise PlanError(f"{origin}: steps must be a list.")
        for raw in _flatten(steps):
            name, args = _split_step(raw, origin)
            if name in ("when", "unless"):
                if not isinstance(args, dict) or "condition" not in args:
                    raise PlanError(f"{origin}: a {name} step needs 'condition' and 'steps'.")
                if condition_holds(args["condition"]) == (name == "when"):
                    self._expand(args.get("steps"), scope, origin, depth + 1, out)
                continue
            if name in ("run", "deploy"):  # deploy: CircleCI's deprecated alias of run
                out.append(_run_step(args, origin))
            elif name in RUNNABLE_STEPS:
                arguments = _mapping(args, f"{origin}: {name}")
                out.append(
                    PlannedStep(
                        kind=name,
                        name=str(arguments.get("name") or _DEFAULT_NAMES[name]),
                        args=arguments,
                        when=_when(arguments, origin),
                        origin=origin,
                    )
                )
            elif name in SKIPPED_STEPS:
                out.append(_skipped(name, args, origin, SKIPPED_STEPS[name]))
            else:
                self._expand_command(name, args, scope, origin, depth, out)

    def _expand_command(
        self,
        name: str,
        args: Any,
        scope: _Scope,
        origin: str,
        depth: int,
        out: list[PlannedStep],
    ) -> None:
        continuation = self._continuation_step(scope, name, args, origin)
        if continuation is not None:
            out.append(continuation)
            return
        resolved = self._resolve(scope, name, kind="commands")
        if isinstance(resolved, str):
            out.append(_skipped(name, args, origin, resolved))
            return
        definition, command_scope = resolved
        where = f"command {name}"
        given = _mapping(args, f"{origin}: {name}") if args is not None else {}
        values = self._bind(definition.get("parameters"), given, where)
        body = self._substitute(definition.get("steps"), values, where)
        self._expand(body, command_scope, f"{origin} > {name}", depth + 1, out)

    def _continuation_step(
        self, scope: _Scope, name: str, args: Any, origin: str
    ) -> PlannedStep | None:
        """``continue`` / ``finish`` of CircleCI's continuation orb, as a built-in step:
        the executor posts to ``/pipeline/continue`` itself (the orb would use curl)."""
        prefix, sep, command = name.partition("/")
        target = scope.orbs.get(prefix) if sep else None
        if not isinstance(target, str) or target.split("@")[0].strip() != CONTINUATION_ORB:
            return None
        if command not in ("continue", "finish"):
            return None
        arguments = _mapping(args, f"{origin}: {name}") if args is not None else {}
        planned = {
            "configuration_path": str(arguments.get("configuration_path") or ""),
            "parameters": arguments.get("parameters", "{}"),
            "finish": command == "finish",
        }
        if command == "continue" and not planned["configuration_path"]:
            raise PlanError(f"{origin}: {name} needs configuration_path.")
        return PlannedStep(
            kind="continuation",
            name=str(arguments.get("name") or f"Continue the pipeline ({command})"),
            args=planned,
            when=_when(arguments, origin),
            origin=origin,
        )


def _run_step(args: Any, origin: str) -> PlannedStep:
    if isinstance(args, str):
        args = {"command": args}
    arguments = _mapping(args, f"{origin}: run")
    command = arguments.get("command")
    if not isinstance(command, str) or not command.strip():
        raise PlanError(f"{origin}: a run step needs a command.")
    name = arguments.get("name") or command.strip().splitlines()[0]
    planned: dict[str, Any] = {
        "command": command,
        "environment": _environment(arguments.get("environment"), f"{origin}: run"),
    }
    if arguments.get("working_directory") is not None:
        planned["working_directory"] = str(arguments["working_directory"])
    return PlannedStep(
        kind="run", name=str(name), args=planned, when=_when(arguments, origin), origin=origin
    )


def _skipped(name: str, args: Any, origin: str, reason: str) -> PlannedStep:
    arguments = args if isinstance(args, dict) else {}
    when = arguments.get("when", "on_success")
    return PlannedStep(
        kind=name,
        name=str(arguments.get("name") or name),
        args=arguments,
        when=when if when in STEP_WHEN else "on_success",
        origin=origin,
        skip_reason=reason,
    )


def _when(arguments: Mapping[str, Any], origin: str) -> str:
    when = arguments.get("when", "on_success")
    if when not in STEP_WHEN:
        raise PlanError(f"{origin}: when must be one of {', '.join(STEP_WHEN)}, not {when!r}.")
    return str(when)


def _split_step(raw: Any, origin: str) -> tuple[str, Any]:
    if isinstance(raw, str):
        return raw, None
    if isinstance(raw, dict) and len(raw) == 1:
        ((name, args),) = raw.items()
        return str(name), args
    raise PlanError(f"{origin}: a step must be a name or a one-key mapping, not {raw!r}.")


def _flatten(steps: list[Any]) -> Iterator[Any]:
    """A ``steps`` parameter substituted as a whole value leaves a list inside the list."""
    for step in steps:
        if isinstance(step, list):
            yield from _flatten(step)
        elif step is not None:
            yield step


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise PlanError(f"{where} must be a mapping.")
    return {str(k): v for k, v in value.items()}


def _environment(value: Any, where: str) -> dict[str, str]:
    """An ``environment`` mapping (or list of one-key mappings) as strings for the process."""
    if isinstance(value, list):
        merged: dict[str, Any] = {}
        for item in value:
            merged.update(_mapping(item, f"{where}: environment"))
        value = merged
    return {k: _text(v) for k, v in _mapping(value, f"{where}: environment").items()}


def _primary_container_environment(body: Mapping[str, Any]) -> Any:
    docker = body.get("docker")
    if isinstance(docker, list) and docker and isinstance(docker[0], dict):
        return docker[0].get("environment")
    return None


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _leftover_parameters(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for value in node.values():
            yield from _leftover_parameters(value)
    elif isinstance(node, list):
        for value in node:
            yield from _leftover_parameters(value)
    elif isinstance(node, str):
        yield from _LEFTOVER_PARAMETER.findall(node)
