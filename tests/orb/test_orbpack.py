"""circleback.orbpack: the orb source tree packed the way `circleci orb pack` packs it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from orb_helpers import ORB_SRC

from circleback.errors import ConfigurationError
from circleback.orbpack import find_orb_src, main, pack_orb, pack_orb_yaml


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def src(tmp_path: Path) -> Path:
    """A small orb source tree: one of each component, and a script."""
    root = tmp_path / "src"
    write(root / "@orb.yml", "version: 2.1\ndescription: A test orb.\n")
    write(
        root / "commands" / "greet.yml",
        "description: Say hello.\nsteps:\n  - run:\n      command: <<include(scripts/greet.sh)>>\n",
    )
    write(root / "scripts" / "greet.sh", "#!/bin/bash\necho hello\n")
    write(root / "jobs" / "hello.yml", "description: A job.\nexecutor: default\nsteps: [greet]\n")
    write(root / "executors" / "default.yml", "docker:\n  - image: cimg/base:stable\n")
    write(root / "examples" / "basic.yml", "description: Use it.\nusage:\n  version: 2.1\n")
    return root


def test_orb_yml_is_the_top_and_each_file_is_keyed_by_its_name(src: Path) -> None:
    packed = pack_orb(src)

    assert list(packed) == ["version", "description", "commands", "examples", "executors", "jobs"]
    assert packed["version"] == 2.1
    assert packed["jobs"] == {
        "hello": {"description": "A job.", "executor": "default", "steps": ["greet"]}
    }
    assert packed["executors"]["default"] == {"docker": [{"image": "cimg/base:stable"}]}
    assert packed["examples"]["basic"]["usage"] == {"version": 2.1}


def test_an_include_that_is_the_whole_value_becomes_the_file(src: Path) -> None:
    packed = pack_orb(src)

    step = packed["commands"]["greet"]["steps"][0]
    assert step == {"run": {"command": "#!/bin/bash\necho hello\n"}}


def test_includes_tolerate_spaces_inside_the_brackets(src: Path) -> None:
    write(src / "commands" / "spaced.yml", "steps:\n  - run: '<< include(scripts/greet.sh) >>'\n")

    assert pack_orb(src)["commands"]["spaced"]["steps"] == [{"run": "#!/bin/bash\necho hello\n"}]


def test_yaml_and_at_files_in_subdirectories_pack_like_the_real_tool(src: Path) -> None:
    write(src / "commands" / "extra.yaml", "steps: [checkout]\n")
    write(src / "commands" / "@shared.yml", "shared_first:\n  steps: [checkout]\n")

    commands = pack_orb(src)["commands"]

    assert list(commands) == ["shared_first", "extra", "greet"]


def test_scripts_and_hidden_files_are_not_packed(src: Path) -> None:
    write(src / ".hidden.yml", "not: packed\n")

    packed = pack_orb(src)

    assert "scripts" not in packed
    assert "hidden" not in packed
    assert ".hidden" not in packed


def test_yaml_text_round_trips_and_keeps_scripts_as_literal_blocks(src: Path) -> None:
    text = pack_orb_yaml(src)

    assert yaml.safe_load(text) == pack_orb(src)
    assert "command: |\n" in text
    assert "echo hello" in text


def test_a_missing_orb_yml_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"@orb\.yml not found") as caught:
        pack_orb(tmp_path)
    assert "src/" in caught.value.hint


def test_a_missing_include_names_the_file_and_where_it_was_used(src: Path) -> None:
    (src / "scripts" / "greet.sh").unlink()

    with pytest.raises(
        ConfigurationError, match=r"commands\.greet\.steps\[0\]\.run\.command"
    ) as caught:
        pack_orb(src)
    assert "greet.sh" in caught.value.message
    assert "relative to the orb's src/" in caught.value.hint


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("echo <<include(scripts/greet.sh)>>", "entire value"),
        ("<<include(scripts/greet.sh)>> <<include(scripts/greet.sh)>>", "multiple include"),
    ],
)
def test_an_include_inside_a_longer_value_is_refused(src: Path, value: str, message: str) -> None:
    write(src / "commands" / "greet.yml", f"steps:\n  - run: '{value}'\n")

    with pytest.raises(ConfigurationError, match=message):
        pack_orb(src)


def test_bad_yaml_is_a_configuration_error_naming_the_file(src: Path) -> None:
    write(src / "jobs" / "broken.yml", "steps: [unclosed\n")

    with pytest.raises(ConfigurationError, match=r"broken\.yml is not valid YAML") as caught:
        pack_orb(src)
    assert "yamllint" in caught.value.hint


@pytest.mark.parametrize(("text", "kind"), [("", "empty"), ("- a list\n", "a list")])
def test_a_file_that_is_not_a_mapping_is_refused(src: Path, text: str, kind: str) -> None:
    write(src / "jobs" / "odd.yml", text)

    with pytest.raises(ConfigurationError, match=kind):
        pack_orb(src)


def test_two_files_claiming_one_key_are_refused(src: Path) -> None:
    write(src / "commands" / "greet.yaml", "steps: [checkout]\n")

    with pytest.raises(ConfigurationError, match="'greet' is defined twice"):
        pack_orb(src)


def test_find_orb_src_finds_the_checkout_orb() -> None:
    assert find_orb_src() == ORB_SRC


def test_main_prints_the_packed_orb(capsys: pytest.CaptureFixture[str], src: Path) -> None:
    assert main([str(src)]) == 0

    assert yaml.safe_load(capsys.readouterr().out) == pack_orb(src)


def test_main_defaults_to_circleback_own_orb(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0

    assert "trigger_pipeline" in yaml.safe_load(capsys.readouterr().out)["commands"]


def test_main_reports_errors_with_a_hint_and_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main([str(tmp_path)]) == 2

    err = capsys.readouterr().err
    assert err.startswith("error: ")
    assert "\nhint: " in err
