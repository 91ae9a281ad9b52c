"""Read a real ``.circleci/config.yml`` into what the emulator needs: parameters and workflows.

The emulator reads a project's config afresh at every trigger, as CircleCI fetches it per
pipeline, so an unreadable file errors that pipeline instead of stopping the emulator. What it
understands (everything else in the file is ignored, not rejected):

- pipeline ``parameters`` of type string, boolean, integer and enum, with defaults;
- ``workflows`` with ``when:`` / ``unless:`` (and, or, not, equal, matches), ``<< pipeline.* >>``
  values substituted first, as CircleCI compiles them before anything runs;
- job entries: ``type: approval``, ``name:``, ``requires`` (plain, and with statuses such as
  ``terminal``), ``matrix`` (with ``exclude`` and ``alias``), branch and tag ``filters``.

Config docs: https://circleci.com/docs/configuration-reference/#workflows
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

#: Statuses ``terminal`` stands for in ``requires`` (docs: configuration-reference §requires).
TERMINAL_STATUSES = ("success", "failed", "canceled", "unauthorized", "not_run")
_REQUIRE_STATUSES = frozenset(TERMINAL_STATUSES)

#: Keys of a workflow job entry that steer the workflow rather than parameterise the job.
WORKFLOW_ONLY_KEYS = frozenset(
    {
        "requires",
        "filters",
        "name",
        "context",
        "matrix",
        "type",
        "post-steps",
        "pre-steps",
        "serial-group",
    }
)

_PARAMETER_TYPES = frozenset({"string", "boolean", "integer", "enum"})
_REFERENCE = re.compile(r"<<\s*([A-Za-z0-9_.\-]+)\s*>>")

#: Bounds on a parsed config (values counted with every alias expanded, nesting levels):
#: far above any real config, far below what would stall the emulator.
MAX_CONFIG_NODES = 200_000
MAX_CONFIG_DEPTH = 64

# CircleCI's documented limits on trigger parameters (spec: TriggerPipelineParameters).
_MAX_PARAMETERS = 100
_MAX_KEY_LENGTH = 128
_MAX_VALUE_LENGTH = 512


class ConfigError(Exception):
    """The config cannot be used: the pipeline is created ``errored`` with this message."""


class ParameterError(Exception):
    """The trigger's parameters do not fit the config: the trigger is refused with 400."""


@dataclass(frozen=True)
class ParameterSpec:
    """One declared pipeline parameter."""

    name: str
    type: str
    """``string``, ``boolean``, ``integer`` or ``enum``."""
    default: Any = None
    has_default: bool = False
    enum: tuple[str, ...] = ()


@dataclass(frozen=True)
class JobSpec:
    """One job of a compiled workflow (a matrix leg is one job)."""

    name: str
    """Expanded, unique name in the workflow, as the API shows it."""
    ref: str
    """The job's key in ``jobs:``, or an orb job reference such as ``circleback/trigger``."""
    type: str
    """``build`` or ``approval``."""
    requires: tuple[tuple[str, tuple[str, ...]], ...] = ()
    """(required job name, statuses that satisfy it), in config order."""
    parameters: Mapping[str, Any] = field(default_factory=dict)
    """Invocation parameters: the entry's own keys plus matrix values."""
    pre_steps: tuple[Any, ...] = ()
    post_steps: tuple[Any, ...] = ()
    serial_group: str | None = None
    """The ``serial-group`` key (pipeline values substituted): one job of a group runs at a
    time across the organization (docs: controlling-serial-execution)."""


@dataclass(frozen=True)
class WorkflowSpec:
    """A workflow that will run in a pipeline: its name and jobs in config order."""

    name: str
    jobs: tuple[JobSpec, ...]


def read_config(path: Path) -> str:
    """The config file's text, raising ConfigError when CircleCI could not fetch it."""
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or "not UTF-8 text"
        raise ConfigError(f"Unable to read config file {path.name}: {reason}") from exc


def parse_config(text: str) -> dict[str, Any]:
    """Parse config YAML, raising ConfigError for anything CircleCI could not read.

    Configs arrive from API clients too (``POST /pipeline/continue``), so their size is
    bounded as the emulator walks them: at most :data:`MAX_CONFIG_NODES` nodes counting every
    alias expansion (a "billion laughs" document is refused, not expanded) and
    :data:`MAX_CONFIG_DEPTH` levels.
    """
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"Unable to parse YAML: {exc}") from exc
    except RecursionError:
        raise ConfigError(f"Config nests deeper than {MAX_CONFIG_DEPTH} levels.") from None
    if not isinstance(data, dict):
        raise ConfigError("Config is not a YAML mapping.")
    _check_size(data)
    return data


def _check_size(data: Any) -> None:
    nodes = 0
    stack: list[tuple[Any, int]] = [(data, 0)]
    while stack:
        node, depth = stack.pop()
        nodes += 1
        if nodes > MAX_CONFIG_NODES:
            raise ConfigError(f"Config has more than {MAX_CONFIG_NODES} values once expanded.")
        if depth > MAX_CONFIG_DEPTH:
            raise ConfigError(f"Config nests deeper than {MAX_CONFIG_DEPTH} levels.")
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)


def load_config(path: Path) -> dict[str, Any]:
    """Read and parse a config file (see :func:`read_config` and :func:`parse_config`)."""
    return parse_config(read_config(path))


def is_setup_config(config: Mapping[str, Any]) -> bool:
    """``setup: true``: a dynamic config's setup phase (docs: dynamic-config)."""
    return config.get("setup") is True


def declared_parameters(config: Mapping[str, Any]) -> dict[str, ParameterSpec]:
    """The pipeline parameters the config declares."""
    raw = config.get("parameters") or {}
    if not isinstance(raw, dict):
        raise ConfigError("Top-level 'parameters' must be a mapping.")
    specs: dict[str, ParameterSpec] = {}
    for name, decl in raw.items():
        if not isinstance(decl, dict) or decl.get("type") not in _PARAMETER_TYPES:
            raise ConfigError(
                f"Pipeline parameter '{name}' needs a type of string, boolean, integer or enum."
            )
        enum = tuple(str(v) for v in decl.get("enum") or ())
        if decl["type"] == "enum" and not enum:
            raise ConfigError(f"Enum pipeline parameter '{name}' needs a non-empty 'enum' list.")
        specs[str(name)] = ParameterSpec(
            name=str(name),
            type=decl["type"],
            default=decl.get("default"),
            has_default="default" in decl,
            enum=enum,
        )
    return specs


def check_trigger_parameters(given: Mapping[str, Any]) -> None:
    """Reject what CircleCI rejects before it even looks at the config (size limits)."""
    if len(given) > _MAX_PARAMETERS:
        raise ParameterError(f"Too many pipeline parameters: at most {_MAX_PARAMETERS} allowed.")
    for key, value in given.items():
        if len(key) > _MAX_KEY_LENGTH:
            raise ParameterError(
                f"Pipeline parameter name too long (max {_MAX_KEY_LENGTH}): {key[:32]}..."
            )
        if not isinstance(value, str | int | bool):
            raise ParameterError(
                f"Pipeline parameter '{key}' must be a string, integer or boolean."
            )
        if isinstance(value, str) and len(value) > _MAX_VALUE_LENGTH:
            raise ParameterError(
                f"Pipeline parameter '{key}' is too long (max {_MAX_VALUE_LENGTH} characters)."
            )


def resolve_parameters(
    declared: Mapping[str, ParameterSpec], given: Mapping[str, Any]
) -> dict[str, Any]:
    """Type-check the trigger's parameters and fill in defaults.

    Raises ParameterError (a 400) for undeclared or mistyped values, and ConfigError (an
    errored pipeline) for a declared parameter with neither a default nor a value.
    """
    unexpected = sorted(set(given) - set(declared))
    if unexpected:
        raise ParameterError(f"Unexpected argument(s): {', '.join(unexpected)}")
    resolved: dict[str, Any] = {}
    missing: list[str] = []
    for name, spec in declared.items():
        if name in given:
            value = given[name]
            _check_type(spec, value, origin="pipeline parameter")
            resolved[name] = value
        elif spec.has_default:
            try:
                _check_type(spec, spec.default, origin="default of pipeline parameter")
            except ParameterError as exc:
                raise ConfigError(str(exc)) from exc
            resolved[name] = spec.default
        else:
            missing.append(name)
    if missing:
        raise ConfigError(f"Missing required argument(s): {', '.join(missing)}")
    return resolved


def _check_type(spec: ParameterSpec, value: Any, *, origin: str) -> None:
    ok = {
        "string": isinstance(value, str),
        "boolean": isinstance(value, bool),
        "integer": isinstance(value, int) and not isinstance(value, bool),
        "enum": isinstance(value, str) and value in spec.enum,
    }[spec.type]
    if not ok:
        expected = f"one of [{', '.join(spec.enum)}]" if spec.type == "enum" else spec.type
        raise ParameterError(
            f"Invalid value for {origin} '{spec.name}': expected {expected}, got "
            f"{_describe(value)}."
        )


def _describe(value: Any) -> str:
    kind = {bool: "boolean", int: "integer", str: "string"}.get(type(value), type(value).__name__)
    return f"{kind} {value!r}" if kind != "NoneType" else "null"


def substitute(value: Any, values: Mapping[str, Any], *, prefix: str) -> Any:
    """Replace ``<< name >>`` references whose name starts with ``prefix``, recursively.

    A string that is one whole reference takes the value's own type (so ``when:`` sees a real
    boolean); references inside longer strings are formatted as CircleCI prints them.
    Unknown ``pipeline.parameters.*`` references are config errors, as in CircleCI.
    """
    if isinstance(value, dict):
        return {k: substitute(v, values, prefix=prefix) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, values, prefix=prefix) for v in value]
    if not isinstance(value, str) or "<<" not in value:
        return value

    def lookup(name: str) -> Any:
        if name in values:
            return values[name]
        if name.startswith("pipeline.parameters."):
            raise ConfigError(f"Unknown variable(s): {name}")
        return None

    whole = _REFERENCE.fullmatch(value.strip())
    if whole and whole.group(1).startswith(prefix):
        found = lookup(whole.group(1))
        return value if found is None and whole.group(1) not in values else found

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if not name.startswith(prefix):
            return match.group(0)
        found = lookup(name)
        return match.group(0) if found is None and name not in values else _format(found)

    return _REFERENCE.sub(replace, value)


def _format(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def evaluate_logic(statement: Any) -> bool:
    """CircleCI's logic statements for ``when:``/``unless:`` (docs: §logic-statements)."""
    if isinstance(statement, dict) and len(statement) == 1:
        ((op, arg),) = statement.items()
        if op == "and":
            return all(evaluate_logic(s) for s in _as_list(arg))
        if op == "or":
            return any(evaluate_logic(s) for s in _as_list(arg))
        if op == "not":
            return not evaluate_logic(arg)
        if op == "equal":
            items = _as_list(arg)
            return all(item == items[0] for item in items[1:])
        if op == "matches":
            if not isinstance(arg, dict) or "pattern" not in arg or "value" not in arg:
                raise ConfigError("'matches' needs 'pattern' and 'value'.")
            return re.fullmatch(str(arg["pattern"]), _format(arg["value"])) is not None
    return statement not in (None, False, 0, "", [], {})


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def compile_workflows(
    config: Mapping[str, Any],
    pipeline_values: Mapping[str, Any],
    *,
    branch: str | None,
    tag: str | None,
) -> list[WorkflowSpec]:
    """The workflows this pipeline runs, with jobs filtered for its branch or tag.

    Workflows whose ``when:`` is false, or whose jobs are all filtered out, are left out:
    CircleCI does not create them either.
    """
    raw = config.get("workflows")
    if raw is None:
        return []
    if not isinstance(raw, dict):
        raise ConfigError("'workflows' must be a mapping.")
    jobs = config.get("jobs") or {}
    if not isinstance(jobs, dict):
        raise ConfigError("'jobs' must be a mapping.")
    result: list[WorkflowSpec] = []
    for name, body in raw.items():
        if name == "version":
            continue
        if not isinstance(body, dict) or not isinstance(body.get("jobs"), list):
            raise ConfigError(f"Workflow '{name}' needs a 'jobs' list.")
        body = substitute(body, pipeline_values, prefix="pipeline.")
        if "when" in body and not evaluate_logic(body["when"]):
            continue
        if "unless" in body and evaluate_logic(body["unless"]):
            continue
        specs = _compile_jobs(str(name), body["jobs"], jobs, branch=branch, tag=tag)
        if specs:
            result.append(WorkflowSpec(name=str(name), jobs=tuple(specs)))
    return result


@dataclass
class _Entry:
    """A job entry after matrix expansion, before requires are resolved."""

    name: str
    alias: str
    ref: str
    body: dict[str, Any]
    matrix_values: dict[str, Any]


def _compile_jobs(
    workflow: str,
    entries: list[Any],
    jobs: Mapping[str, Any],
    *,
    branch: str | None,
    tag: str | None,
) -> list[JobSpec]:
    expanded: list[_Entry] = []
    for entry in entries:
        ref, body = _split_entry(workflow, entry)
        if ref not in jobs and "/" not in ref and body.get("type") != "approval":
            raise ConfigError(f"Cannot find a definition for job named {ref}")
        expanded.extend(_expand_matrix(workflow, ref, body))

    names = [e.name for e in expanded]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(
            f"Job name(s) {', '.join(duplicates)} used more than once in workflow "
            f"'{workflow}'; give each a unique 'name'."
        )
    by_alias: dict[str, list[str]] = {}
    for e in expanded:
        if e.alias != e.name:
            by_alias.setdefault(e.alias, []).append(e.name)

    specs: list[JobSpec] = []
    for e in expanded:
        requires: list[tuple[str, tuple[str, ...]]] = []
        for req_name, statuses in _requires(workflow, e.name, e.body.get("requires")):
            if req_name in names:
                targets = [req_name]
            elif req_name in by_alias:
                targets = by_alias[req_name]
            else:
                raise ConfigError(
                    f"Job '{e.name}' requires '{req_name}', which is the name of 0 other jobs "
                    f"in workflow '{workflow}'"
                )
            requires.extend((t, statuses) for t in targets)
        params = {k: v for k, v in e.body.items() if k not in WORKFLOW_ONLY_KEYS}
        params.update(e.matrix_values)
        specs.append(
            JobSpec(
                name=e.name,
                ref=e.ref,
                type="approval" if e.body.get("type") == "approval" else "build",
                requires=tuple(requires),
                parameters=params,
                pre_steps=tuple(e.body.get("pre-steps") or ()),
                post_steps=tuple(e.body.get("post-steps") or ()),
                serial_group=_serial_group(e.name, e.body.get("serial-group")),
            )
        )
    kept = {
        e.name for e in expanded if _passes_filters(e.body.get("filters"), branch=branch, tag=tag)
    }
    # A job whose requirement was filtered out cannot run either; drop it, transitively.
    changed = True
    while changed:
        changed = False
        for spec in specs:
            if spec.name in kept and any(r not in kept for r, _ in spec.requires):
                kept.discard(spec.name)
                changed = True
    return [s for s in specs if s.name in kept]


def _serial_group(job: str, raw: Any) -> str | None:
    if raw is None:
        return None
    if not isinstance(raw, str) or not raw.strip():
        raise ConfigError(f"'serial-group' of job '{job}' must be a non-empty string.")
    return raw.strip()


def _split_entry(workflow: str, entry: Any) -> tuple[str, dict[str, Any]]:
    if isinstance(entry, str):
        return entry, {}
    if isinstance(entry, dict) and len(entry) == 1:
        ((ref, body),) = entry.items()
        if body is None:
            return str(ref), {}
        if isinstance(body, dict):
            return str(ref), body
    raise ConfigError(f"Workflow '{workflow}' has a job entry that is not a name or a mapping.")


def _expand_matrix(workflow: str, ref: str, body: dict[str, Any]) -> Iterator[_Entry]:
    matrix = body.get("matrix")
    if matrix is None:
        name = str(body.get("name") or ref)
        yield _Entry(name=name, alias=name, ref=ref, body=body, matrix_values={})
        return
    params = matrix.get("parameters") if isinstance(matrix, dict) else None
    if not isinstance(params, dict) or not params:
        raise ConfigError(f"Matrix of job '{ref}' in workflow '{workflow}' needs 'parameters'.")
    for key, values in params.items():
        if not isinstance(values, list) or not values:
            raise ConfigError(f"Matrix parameter '{key}' of job '{ref}' must be a non-empty list.")
    excluded = matrix.get("exclude") or []
    alias = str(matrix.get("alias") or ref)
    keys = list(params)
    for combo in itertools.product(*(params[k] for k in keys)):
        values = dict(zip(keys, combo, strict=True))
        if values in excluded:
            continue
        matrix_refs = {f"matrix.{k}": v for k, v in values.items()}
        leg = {k: v for k, v in body.items() if k != "matrix"}
        leg = substitute(leg, matrix_refs, prefix="matrix.")
        name = str(leg.get("name") or "-".join([ref, *(_format(v) for v in combo)]))
        yield _Entry(name=name, alias=alias, ref=ref, body=leg, matrix_values=values)


def _requires(workflow: str, job: str, raw: Any) -> Iterator[tuple[str, tuple[str, ...]]]:
    if raw is None:
        return
    if not isinstance(raw, list):
        raise ConfigError(f"'requires' of job '{job}' in workflow '{workflow}' must be a list.")
    for item in raw:
        if isinstance(item, str):
            yield item, ("success",)
        elif isinstance(item, dict) and len(item) == 1:
            ((name, statuses),) = item.items()
            yield str(name), _statuses(job, _as_list(statuses))
        else:
            raise ConfigError(f"Job '{job}' has a 'requires' item that is not a job name.")


def _statuses(job: str, raw: list[Any]) -> tuple[str, ...]:
    result: list[str] = []
    for status in raw:
        expanded = TERMINAL_STATUSES if status == "terminal" else (status,)
        for s in expanded:
            if s not in _REQUIRE_STATUSES:
                raise ConfigError(f"Job '{job}' requires an unknown status {s!r}.")
            if s not in result:
                result.append(s)
    return tuple(result)


def _passes_filters(filters: Any, *, branch: str | None, tag: str | None) -> bool:
    """CircleCI's rule: jobs run for every branch, and for a tag only if ``tags`` allows it."""
    filters = filters if isinstance(filters, dict) else {}
    if tag is not None:
        tags = filters.get("tags")
        return isinstance(tags, dict) and _allowed(tags, tag)
    branches = filters.get("branches")
    return not isinstance(branches, dict) or _allowed(branches, branch or "")


def _allowed(rule: Mapping[str, Any], value: str) -> bool:
    if "only" in rule and not any(_matches(p, value) for p in _as_list(rule["only"])):
        return False
    return not ("ignore" in rule and any(_matches(p, value) for p in _as_list(rule["ignore"])))


def _matches(pattern: Any, value: str) -> bool:
    text = str(pattern)
    if len(text) >= 2 and text.startswith("/") and text.endswith("/"):
        return re.fullmatch(text[1:-1], value) is not None
    return text == value
