"""Every documented config snippet passes pipeline parameters to commands only through
``environment:``, never as text in a ``run`` command.

CircleCI pastes ``<< pipeline.parameters.x >>`` into a command as text before the shell
reads it, so a snippet that writes one into a command hands code execution (and the job's
token) to whoever can trigger the pipeline. The snippets are the README's, the docs', the
example projects' and the orb's own examples: a static check reads every ``run`` step of
each, and the local executor runs each config that declares string pipeline parameters
with a hostile value in every one of them, then looks for what the value would have done.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from orb_helpers import EXAMPLES, ORB_SRC, REPO

from circleback.emulator import run_locally
from circleback.orbpack import pack_orb

_YAML_BLOCK = re.compile(r"(?ms)^```ya?ml\n(.*?)^```")
#: Text that CircleCI substitutes from outside the config: pipeline values and parameters.
_SUBSTITUTION = re.compile(r"<<\s*(pipeline\.[\w.-]+|parameters\.[\w-]+)\s*>>")
#: Seconds for every snippet's jobs together to finish in the local executor.
_IDLE_TIMEOUT = 120.0


def markdown_files() -> list[Path]:
    docs = sorted((REPO / "docs").glob("*.md"))
    return [REPO / "README.md", REPO / "orbs" / "circleback" / "README.md", *docs]


def snippets() -> Iterator[tuple[str, Any]]:
    """(where, parsed YAML) for every documented config or config fragment."""
    for path in sorted(EXAMPLES.rglob(".circleci/config.yml")):
        yield str(path.relative_to(REPO)), yaml.safe_load(path.read_text())
    for name, example in pack_orb(ORB_SRC)["examples"].items():
        yield f"orb example {name}", example["usage"]
    for path in markdown_files():
        for number, match in enumerate(_YAML_BLOCK.finditer(path.read_text()), 1):
            yield f"{path.relative_to(REPO)} yaml block {number}", yaml.safe_load(match.group(1))


def run_commands(node: Any) -> Iterator[str]:
    """The command text of every ``run`` step anywhere in a config or fragment."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "run":
                if isinstance(value, str):
                    yield value
                elif isinstance(value, dict) and isinstance(value.get("command"), str):
                    yield value["command"]
            else:
                yield from run_commands(value)
    elif isinstance(node, list):
        for item in node:
            yield from run_commands(item)


SNIPPETS = list(snippets())


def test_the_snippets_are_found() -> None:
    names = [where for where, _ in SNIPPETS]
    assert sum(where.startswith("examples/") for where in names) >= 12
    assert sum(where.startswith("orb example") for where in names) >= 7
    assert any(where.startswith("README.md") for where in names)


@pytest.mark.parametrize(("where", "snippet"), SNIPPETS, ids=[w for w, _ in SNIPPETS])
def test_no_run_command_holds_a_substituted_value(where: str, snippet: Any) -> None:
    for command in run_commands(snippet):
        found = _SUBSTITUTION.findall(command)
        assert not found, (
            f"{where}: a run command contains << {found[0]} >>; pass it through the step's "
            "environment: and use the variable in the command"
        )


def test_the_static_check_catches_the_old_readme_snippet() -> None:
    unsafe = yaml.safe_load(
        '- run: circleback approve --pipeline-id "<< pipeline.parameters.triggering-pipeline-id'
        ' >>" --allow-project "gh/acme/*"\n'
    )
    assert [_SUBSTITUTION.findall(c) for c in run_commands(unsafe)] == [
        ["pipeline.parameters.triggering-pipeline-id"]
    ]


def hostile(marker_dir: Path, name: str) -> str:
    """A value that, pasted into a shell command in any usual quoting, creates a file."""
    m = marker_dir / name
    return f"$(touch {m}-1)`touch {m}-2`'; touch {m}-3; '\"; touch {m}-4; \"\ntouch {m}-5"


def runnable_configs() -> Iterator[tuple[str, dict[str, Any], dict[str, str]]]:
    """(where, config, string parameters) for each full config with string parameters;
    a fragment of steps is run as the one job of a config that declares
    triggering-pipeline-id."""
    for where, snippet in SNIPPETS:
        if isinstance(snippet, list) and any(True for _ in run_commands(snippet)):
            snippet = {
                "version": 2.1,
                "parameters": {"triggering-pipeline-id": {"type": "string", "default": ""}},
                "jobs": {"fragment": {"docker": [{"image": "cimg/base:stable"}], "steps": snippet}},
                "workflows": {"fragment": {"jobs": ["fragment"]}},
            }
        if not (isinstance(snippet, dict) and "workflows" in snippet and "jobs" in snippet):
            continue
        strings = {
            name: spec
            for name, spec in (snippet.get("parameters") or {}).items()
            if isinstance(spec, dict) and spec.get("type") == "string"
        }
        if strings:
            yield where, snippet, strings


def test_hostile_pipeline_parameters_execute_nothing_in_any_snippet(tmp_path: Path) -> None:
    markers = tmp_path / "markers"
    markers.mkdir()
    configs = tmp_path / "configs"
    projects: dict[str, Path] = {}
    triggers: dict[str, tuple[str, dict[str, str]]] = {}
    for number, (where, config, strings) in enumerate(runnable_configs()):
        slug = f"gh/snippets/s{number}"
        path = configs / f"s{number}" / "config.yml"
        path.parent.mkdir(parents=True)
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        projects[slug] = path
        triggers[slug] = (where, {name: hostile(markers, f"s{number}") for name in strings})
    assert len(triggers) >= 5, "too few snippets with string parameters: is the search broken?"

    with run_locally(projects, step_timeout=60.0) as local:
        for slug, (_, parameters) in triggers.items():
            local.trigger(slug, parameters=parameters)
        assert local.executor.wait_idle(_IDLE_TIMEOUT)
        ran = {record.project_slug for record in local.executor.records}

    assert sorted(p.name for p in markers.iterdir()) == []
    # The hostile values reached jobs that really ran: the check above was not vacuous.
    assert len(ran & set(triggers)) >= 5, sorted(ran)
