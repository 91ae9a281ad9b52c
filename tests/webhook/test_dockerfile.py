"""The Dockerfile agrees with the package (no container engine runs in the test suite).

What a ``docker build`` would find out first is checked here: every ``COPY`` source exists
and is not excluded by .dockerignore, the wheel gets what pyproject's force-include needs,
the ``serve`` extra exists, and the entry point is a command line the CLI accepts.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
from pathlib import Path

import pytest

from circleback import _cli
from circleback.serve.app import HEALTH_PATH

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "Dockerfile").read_text(encoding="utf-8")
tomllib = pytest.importorskip("tomllib", reason="reading pyproject.toml needs Python 3.11+")
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def instructions(name: str) -> list[str]:
    text = DOCKERFILE.replace("\\\n", " ")
    return [line.split(None, 1)[1] for line in text.splitlines() if line.startswith(name + " ")]


def ignored(path: str) -> bool:
    patterns = (ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    return any(fnmatch.fnmatch(path, p) or path.startswith(p.rstrip("/") + "/") for p in patterns)


def test_every_copied_source_exists_and_reaches_the_build_context() -> None:
    sources = []
    for args in instructions("COPY"):
        words = [w for w in shlex.split(args) if not w.startswith("--")]
        if "--from=" in args:
            continue
        sources += words[:-1]
    assert sources
    for source in sources:
        assert (ROOT / source).exists(), source
        assert not ignored(source), source


def test_the_wheel_gets_what_pyproject_bundles() -> None:
    bundled = PYPROJECT["tool"]["hatch"]["build"]["targets"]["wheel"]["force-include"]
    copied = " ".join(instructions("COPY"))
    needed = [*bundled, *PYPROJECT["project"].get("license-files", [])]
    for source in [*needed, PYPROJECT["project"]["readme"], "pyproject.toml"]:
        assert source in copied, source


def test_the_build_stage_builds_the_wheel_from_what_it_copies(tmp_path: Path) -> None:
    """The build stage's context, file for file, builds a wheel with the receiver in it."""
    import importlib.util
    import shutil
    import subprocess
    import sys
    import zipfile

    for module in ("build", "hatchling"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed (pip install -e '.[test]')")
    stage = DOCKERFILE.split("\nFROM ")[1]
    context = tmp_path / "src"
    context.mkdir()
    for line in stage.replace("\\\n", " ").splitlines():
        if not line.startswith("COPY ") or "--from=" in line:
            continue
        *sources, target = shlex.split(line[len("COPY ") :])
        for source in sources:
            origin = ROOT / source
            dest = context / (source if target == "./" else target)
            if origin.is_dir():
                shutil.copytree(origin, dest, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(origin, dest)
    out = tmp_path / "dist"
    built = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out)],
        cwd=context,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]
    (wheel,) = out.glob("circleback-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "circleback/serve/app.py" in names
    assert "circleback/_bundled/examples/webhook/project-b/.circleci/config.yml" in names


def test_the_serve_extra_carries_the_asgi_stack() -> None:
    extra = " ".join(PYPROJECT["project"]["optional-dependencies"]["serve"])
    assert "starlette" in extra
    assert "uvicorn" in extra
    assert "[serve]" in DOCKERFILE


def test_the_entry_point_is_a_command_the_cli_accepts(capsys: pytest.CaptureFixture[str]) -> None:
    (entry,) = instructions("ENTRYPOINT")
    argv = json.loads(entry)
    assert argv[0] == "circleback"
    assert _cli.run([*argv[1:], "--help"]) == 0
    assert "--allow-project" in capsys.readouterr().out


def test_the_port_and_health_check_match_the_receiver() -> None:
    (port,) = re.findall(r"PORT=(\d+)", DOCKERFILE)
    assert instructions("EXPOSE") == [port]
    assert HEALTH_PATH in DOCKERFILE
    assert re.search(r"^USER \d+", DOCKERFILE, re.M), "the receiver must not run as root"
