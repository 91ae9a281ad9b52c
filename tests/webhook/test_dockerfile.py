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
    for source in [*bundled, PYPROJECT["project"]["readme"], "pyproject.toml"]:
        assert source in copied, source


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
