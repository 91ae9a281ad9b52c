"""CircleCI's orb review rules (orb-tools' review job, RC001-RC012), checked here offline.

RC006 and RC007 fetch the display URLs; offline, the test checks what can be checked: the
URLs are https, and point at this project's own page (PyPI), not at a GitHub organisation
that is not ours.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import yaml
from orb_helpers import ORB_SRC

from circleback import __version__

#: orb-tools' default max_command_length for RC009.
MAX_COMMAND_LENGTH = 64
SNAKE_FILE = re.compile(r"^[a-z0-9_@]+\.yml$")


def load(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(path.read_text())
    return loaded


def component_files(*kinds: str) -> list[Path]:
    return sorted(p for kind in kinds for p in (ORB_SRC / kind).glob("*.yml"))


def runs(node: Any) -> Iterator[Any]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "run":
                yield value
            else:
                yield from runs(value)
    elif isinstance(node, list):
        for item in node:
            yield from runs(item)


def test_rc001_source_url_is_set() -> None:
    assert load(ORB_SRC / "@orb.yml")["display"]["source_url"]


def test_rc002_every_component_has_a_description() -> None:
    for path in component_files("jobs", "examples", "commands", "executors"):
        assert str(load(path).get("description") or "").strip() not in ("", '""'), path


def test_rc003_there_is_a_usage_example() -> None:
    assert component_files("examples")


def test_rc004_example_names_do_not_say_example() -> None:
    for path in component_files("examples"):
        assert "example" not in path.name, path


def test_rc005_the_orb_description_is_detailed_and_states_platforms() -> None:
    description = load(ORB_SRC / "@orb.yml")["description"]
    assert len(description) >= 64
    assert "Supported platforms" in description
    for platform in ("Alpine", "macOS", "machine", "busybox sh", "dash"):
        assert platform in description, platform


def test_rc006_rc007_display_urls_are_ours_and_https() -> None:
    display = load(ORB_SRC / "@orb.yml")["display"]
    for key in ("home_url", "source_url"):
        url = urlparse(display[key])
        assert url.scheme == "https", key
        # The package's own PyPI page, published before the orb (docs/release.md).
        assert (url.netloc, url.path.rstrip("/")) == ("pypi.org", "/project/circleback"), key


def test_rc008_every_run_step_has_a_name() -> None:
    for path in component_files("jobs", "commands"):
        for run in runs(load(path)):
            assert isinstance(run, dict), f"{path}: a run step written as a string"
            assert str(run.get("name") or "").strip(), f"{path}: a run step without a name"


def test_rc009_long_commands_are_included() -> None:
    for path in component_files("jobs", "commands"):
        for run in runs(load(path)):
            command = str(run["command"])
            if len(command) > MAX_COMMAND_LENGTH:
                assert command.startswith("<<include("), f"{path}: {command[:40]}"


def test_rc010_components_and_their_parameters_are_snake_case() -> None:
    for path in component_files("jobs", "commands", "executors"):
        assert "-" not in path.name, path
        assert SNAKE_FILE.match(path.name), path
        for parameter in load(path).get("parameters") or {}:
            assert "-" not in parameter, f"{path}: {parameter}"


def test_rc011_examples_show_the_current_major_version() -> None:
    major = __version__.split(".")[0]
    for path in component_files("examples"):
        reference = load(path)["usage"]["orbs"]["circleback"]
        assert reference.split("@")[1].split(".")[0] == major, path


def test_rc012_no_default_with_an_environment_variable_is_used_in_a_key() -> None:
    for path in component_files("jobs", "commands", "executors"):
        component = load(path)
        text = json.dumps(component)
        for name, spec in (component.get("parameters") or {}).items():
            default = str(spec.get("default", ""))
            if "$" in default and not default.endswith("$"):
                keys = re.findall(r'"key": "([^"]*)"', text)
                assert not [k for k in keys if f"parameters.{name}" in k], f"{path}: {name}"


def test_the_default_executor_takes_a_resource_class() -> None:
    executor = load(ORB_SRC / "executors" / "default.yml")
    spec = executor["parameters"]["resource_class"]
    assert spec["default"] == "small"
    assert {"small", "medium", "arm.medium"} <= set(spec["enum"])
    assert executor["resource_class"] == "<< parameters.resource_class >>"
