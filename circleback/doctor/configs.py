"""What a CircleCI config says, as far as doctor needs it: parameters, holds, the callback.

Read from a pipeline's ``source`` (the config as written; the ``compiled`` text has no
``parameters`` block) with PyYAML; anything that is not YAML reads as "cannot tell".
"""

from __future__ import annotations

import re
from typing import Any

ALLOW_PATTERN = re.compile(
    r"""(?:allow_project\s*:|--allow-project[\s=]+|CIRCLEBACKALLOW_PATTERN_PROJECTS\s*[:=])\s*"""
    r"""["']?([^"'\n#]+)"""
)


def load(text: str) -> Any:
    import yaml

    try:
        return yaml.safe_load(text) if text.strip() else {}
    except yaml.YAMLError:
        return None


def declared_parameters(source: str) -> dict[str, Any] | None:
    """The declared pipeline parameters, or None when the source is not YAML."""
    data = load(source)
    if not isinstance(data, dict):
        return None
    params = data.get("parameters")
    return {str(k): v if isinstance(v, dict) else {} for k, v in (params or {}).items()}


def approval_jobs(text: str) -> set[str]:
    """Names of ``type: approval`` jobs in a config's workflows."""
    data = load(text)
    found: set[str] = set()
    workflows = data.get("workflows") if isinstance(data, dict) else None
    for workflow in (workflows or {}).values():
        jobs = workflow.get("jobs") if isinstance(workflow, dict) else None
        for entry in jobs or []:
            if not isinstance(entry, dict):
                continue
            for name, body in entry.items():
                if isinstance(body, dict) and body.get("type") == "approval":
                    found.add(str(body.get("name") or name))
    return found


def allow_patterns(source: str) -> list[str]:
    """``allow_project`` values written in a config (not those from parameters)."""
    return [m.strip() for m in ALLOW_PATTERN.findall(source) if "<<" not in m and m.strip()]


def callback_requires(source: str) -> list[tuple[str, list[Any]]]:
    """Each ``circleback/approve`` job entry in a config: its workflow and ``requires``."""
    data = load(source)
    found: list[tuple[str, list[Any]]] = []
    workflows = data.get("workflows") if isinstance(data, dict) else None
    for name, workflow in (workflows or {}).items():
        jobs = workflow.get("jobs") if isinstance(workflow, dict) else None
        for entry in jobs or []:
            if not isinstance(entry, dict) or "circleback/approve" not in entry:
                continue
            body = entry["circleback/approve"]
            requires = body.get("requires") if isinstance(body, dict) else None
            found.append((str(name), requirements(requires)))
    return found


def requirements(requires: Any) -> list[Any]:
    """``requires`` as a list of names (success only) and ``{name: statuses}`` that are fine.

    A ``{name: status}`` item that includes ``terminal`` (or ``failed`` and ``canceled``) is
    dropped from the plain names: it runs whatever that job ends as.
    """
    items = requires if isinstance(requires, list) else [requires] if requires else []
    result: list[Any] = []
    for item in items:
        if isinstance(item, dict):
            for job, statuses in item.items():
                wanted = statuses if isinstance(statuses, list) else [statuses]
                ok = "terminal" in wanted or {"failed", "canceled"} <= set(wanted)
                result.append({job: statuses} if ok else str(job))
        else:
            result.append(str(item))
    return result
