"""Release readiness: the sdist and the wheel build, pass ``twine check``, and carry what a
release needs: the bundled orb (with its pins) and examples in the wheel, the whole source
(orb, pin.py, examples, docs, tests, and the CI and lint configuration the tests read) in the
sdist, and nothing of a checkout's."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
from orb_helpers import EXAMPLES, ORB_SRC, REPO

from circleback import __version__
from circleback.orbpack import pack_orb


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sdist and wheel, built from this checkout without network (no isolation)."""
    for module in ("build", "hatchling", "twine"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed (pip install -e '.[test]')")
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(REPO)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return out


def test_twine_check_passes(dist: Path) -> None:
    files = sorted(str(p) for p in dist.iterdir())
    assert len(files) == 2

    result = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", *files],
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr


def test_the_wheel_bundles_the_orb_its_pins_and_the_examples(dist: Path, tmp_path: Path) -> None:
    (wheel,) = dist.glob(f"circleback-{__version__}-py3-none-any.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        archive.extractall(tmp_path)  # noqa: S202 (the wheel this test just built)
    bundled = tmp_path / "circleback" / "_bundled"
    for path in ORB_SRC.rglob("*"):
        if path.is_file():
            assert f"circleback/_bundled/orb/{path.relative_to(ORB_SRC)}" in names, path
    for config in EXAMPLES.rglob(".circleci/config.yml"):
        assert f"circleback/_bundled/examples/{config.relative_to(EXAMPLES)}" in names, config
    # The installed package packs the same orb as the checkout.
    assert pack_orb(bundled / "orb") == pack_orb(ORB_SRC)
    assert not [n for n in names if n.startswith(("tests/", "orbs/", ".circleci/"))]
    assert f"circleback-{__version__}.dist-info/licenses/LICENSE" in names


def test_the_sdist_is_the_whole_source_and_nothing_else(dist: Path) -> None:
    (sdist,) = dist.glob(f"circleback-{__version__}.tar.gz")
    with tarfile.open(sdist) as archive:
        names = {n.split("/", 1)[1] for n in archive.getnames() if "/" in n}
    for required in (
        "pyproject.toml",
        "README.md",
        "CHANGELOG.md",
        "LICENSE",
        "orbs/circleback/src/@orb.yml",
        "orbs/circleback/src/scripts/pins.txt",
        "orbs/circleback/pin.py",
        "examples/project-b/.circleci/config.yml",
        "circleback/_cli.py",
        "tests/orb/test_packaging.py",
        # What the tests read besides the package: the suite must run from the sdist.
        ".circleci/config.yml",
        ".circleci/test-deploy.yml",
        ".yamllint",
        ".ci/run",
    ):
        assert required in names, required
    assert not [n for n in names if n.startswith((".venv/", ".git/", "dist/"))]
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
