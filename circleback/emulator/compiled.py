"""``GET /pipeline/{id}/config``: a pipeline's config compiled as CircleCI shows it.

CircleCI's ``compiled`` field is what ``circleci config process`` prints: ``version: 2``, every
orb job and command expanded into plain steps, ``<< parameters.* >>`` and
``<< pipeline.* >>`` substituted, the top-level ``orbs``, ``commands``, ``executors`` and
``parameters`` keys gone, then the original source as ``#`` comments (circleci-cli#359). So a
value passed as a pipeline parameter appears literally only where the config uses it.

Each job is compiled by :func:`circleback.emulator.steps.plan_invocation`, the same code that
plans the job when the local executor runs it, with the same pipeline values: what this
shows is what the executor runs.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import yaml

from circleback.emulator import config as cfg
from circleback.emulator.steps import JobPlan, PlanError, PlannedStep, plan_invocation

__all__ = ["compile_text", "packed_circleback_orb"]


@functools.cache
def packed_circleback_orb() -> Mapping[str, Any]:
    """circleback's own orb, packed once per process ({} when its source is not found)."""
    from circleback.orbpack import find_orb_src, pack_orb

    try:
        return pack_orb(find_orb_src())
    except (OSError, ValueError, RuntimeError):
        return {}


def compile_text(
    config: Mapping[str, Any],
    source: str,
    pipeline_values: Mapping[str, Any],
    *,
    branch: str | None,
    tag: str | None,
    orb: Mapping[str, Any] | None = None,
) -> str:
    """The compiled config text, or "" when it cannot be compiled (the spec allows empty)."""
    orb = packed_circleback_orb() if orb is None else orb
    try:
        workflows = cfg.compile_workflows(config, pipeline_values, branch=branch, tag=tag)
        jobs: dict[str, Any] = {}
        flows: dict[str, Any] = {}
        for workflow in workflows:
            entries: list[Any] = []
            for spec in workflow.jobs:
                entry: dict[str, Any] = {}
                if spec.requires:
                    entry["requires"] = [
                        name if statuses == ("success",) else {name: list(statuses)}
                        for name, statuses in spec.requires
                    ]
                if spec.type == "approval":
                    entry["type"] = "approval"
                else:
                    plan = plan_invocation(
                        config,
                        spec.ref,
                        spec.parameters,
                        pre_steps=spec.pre_steps,
                        post_steps=spec.post_steps,
                        pipeline=pipeline_values,
                        orb=orb,
                    )
                    jobs[spec.name] = _job(plan)
                if spec.serial_group is not None:
                    entry["serial-group"] = spec.serial_group
                entries.append({spec.name: entry} if entry else spec.name)
            flows[workflow.name] = {"jobs": entries}
    except (cfg.ConfigError, PlanError):
        return ""
    compiled: dict[str, Any] = {"version": 2}
    if jobs:
        compiled["jobs"] = jobs
    compiled["workflows"] = flows
    text = yaml.safe_dump(compiled, sort_keys=False, default_flow_style=False, width=1000)
    original = "".join(f"# {line}".rstrip() + "\n" for line in source.splitlines())
    return f"{text}\n# Original config.yml file:\n{original}"


def _job(plan: JobPlan) -> dict[str, Any]:
    job: dict[str, Any] = {}
    if plan.environment:
        job["environment"] = dict(plan.environment)
    if plan.working_directory is not None:
        job["working_directory"] = plan.working_directory
    if plan.skip_reason is not None:
        job["steps"] = []
        return job
    job["steps"] = [_step(step) for step in plan.steps]
    return job


def _step(step: PlannedStep) -> dict[str, Any]:
    args = {k: v for k, v in step.args.items() if v not in ({}, None)}
    if step.kind == "run":
        args = {"name": step.name, **args}
    if step.when != "on_success":
        args["when"] = step.when
    return {step.kind: args or None}
