"""Reports, packed orbs and state files are written with the mode a plain open() gives."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.relay.world import B, World

# -- files ---------------------------------------------------------------------------------


@pytest.fixture
def umask_022() -> Iterator[object]:
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_orb_pack_output_gets_the_usual_mode(
    world: World, tmp_path: Path, umask_022: object
) -> None:
    out = tmp_path / "orb.yml"
    assert world.cli("orb", "pack", "-o", str(out)).code == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o644


def test_junit_and_state_files_get_the_usual_mode(
    world: World, tmp_path: Path, umask_022: object
) -> None:
    a = world.upstream_on_hold()
    state = tmp_path / "state.json"
    b = world.cli("trigger", B, "--upstream-pipeline-id", a, "--state-file", str(state))
    assert b.code == 0
    world.finish_all(b.out.strip())
    junit = tmp_path / "results" / "junit.xml"
    assert world.cli("status", "--state-file", str(state), "--junit", str(junit)).code == 0
    assert stat.S_IMODE(junit.stat().st_mode) == 0o644
    assert stat.S_IMODE(state.stat().st_mode) == 0o644


def test_an_existing_file_keeps_its_mode(world: World, tmp_path: Path) -> None:
    out = tmp_path / "orb.yml"
    out.write_text("old")
    out.chmod(0o640)
    assert world.cli("orb", "pack", "-o", str(out)).code == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o640
    assert out.read_text() != "old"
