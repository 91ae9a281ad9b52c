"""Write or check the orb's pins (src/scripts/pins.txt): the circleback release the orb
installs, hash-pinned with every dependency, for every platform and Python the orb runs on.

    python orbs/circleback/pin.py --unreleased  # after a version bump: pin it, no hashes
    python orbs/circleback/pin.py               # at release, after the package is on PyPI
    python orbs/circleback/pin.py --check       # in CI: the pins agree with the package

Writing resolves ``circleback==<version>`` (the version in circleback/_version.py) from
the package index with ``uv pip compile --universal --generate-hashes``, so that pip's and
uv's ``--require-hashes`` install exactly the files that were released, whoever publishes
what later. It fails, and writes nothing, when the version is not on the index yet: the
package is published before the orb that pins it (docs/release.md).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from pathlib import Path

ORB = Path(__file__).resolve().parent
PINS = ORB / "src" / "scripts" / "pins.txt"
VERSION_FILE = ORB.parents[1] / "circleback" / "_version.py"
#: The oldest Python the orb installs onto: the lock holds every file from there upward.
PYTHON_FLOOR = "3.10"

_BOOTSTRAP = re.compile(r"(?m)^# bootstrap-pip: https://\S+\.whl sha256=[0-9a-f]{64}$")
_PIN = re.compile(r"(?m)^circleback==([^\s\\;]+)")

_HEADER = """\
# The circleback release this orb installs: the one place the orb names a version.
# Written by `python orbs/circleback/pin.py` at release time, after the package is on PyPI
# (docs/release.md); `python orbs/circleback/pin.py --check` verifies it. Do not edit by hand.
#
# status: released
# Every requirement below carries the sha256 of each file released for it; the orb installs
# them with --require-hashes, so nothing else can be installed under these names.
#
"""


def package_version() -> str:
    """The version in circleback/_version.py (read as text: importing is not needed)."""
    found = re.search(r'(?m)^__version__ = "([^"]+)"$', VERSION_FILE.read_text())
    if not found:
        raise SystemExit(f"error: no __version__ in {VERSION_FILE}")
    return found.group(1)


def check(text: str, version: str) -> list[str]:
    """What is wrong with the pins ``text`` for ``version``; empty when nothing is."""
    problems = []
    pinned = _PIN.findall(text)
    if pinned != [version]:
        problems.append(f"the pins name circleback {pinned or 'nothing'}, the package is {version}")
    if not _BOOTSTRAP.search(text):
        problems.append("no '# bootstrap-pip: <url> sha256=<hex>' line")
    requirements = [
        block
        for block in re.split(r"(?m)^(?=[A-Za-z0-9])", text)
        if block.strip() and not block.startswith("#")
    ]
    if "# status: released" in text:
        unhashed = [b.split()[0] for b in requirements if "--hash=sha256:" not in b]
        if unhashed:
            problems.append(f"released pins without hashes: {', '.join(unhashed)}")
    elif "# status: unreleased" not in text:
        problems.append("no '# status: released' or '# status: unreleased' line")
    elif "--hash" in text:
        problems.append("unreleased pins carry hashes")
    return problems


_UNRELEASED = """\
# The circleback release this orb installs: the one place the orb names a version.
# Written by `python orbs/circleback/pin.py` at release time, after the package is on PyPI
# (docs/release.md); `python orbs/circleback/pin.py --check` verifies it. Do not edit by hand.
#
# status: unreleased
# circleback {version} is not on PyPI yet, so this file carries no hashes and the orb refuses to
# install "circleback" from PyPI by name (whoever claims the name there would receive your
# token). Until the release, give the orb's `package` parameter (a wheel URL ending in
# #sha256=<digest>, or a git URL at a tag), or bring your own (CIRCLEBACK_SKIP_INSTALL=1).
#
{bootstrap}
circleback=={version}
"""


def render_unreleased(version: str, bootstrap_line: str) -> str:
    """The pins of a version not released yet: named, with no hashes."""
    return _UNRELEASED.format(version=version, bootstrap=bootstrap_line)


def render(compiled: str, bootstrap_line: str) -> str:
    """The pins file from ``uv pip compile`` output and the bootstrap pip line kept."""
    body = "\n".join(
        line for line in compiled.splitlines() if line.strip() and not line.startswith("#")
    )
    return f"{_HEADER}{bootstrap_line}\n{body}\n"


def compile_lock(version: str) -> str:
    uv = shutil.which("uv")
    if uv is None:
        raise SystemExit("error: uv is needed to write the pins (pip install uv)")
    result = subprocess.run(
        [
            uv,
            "pip",
            "compile",
            "-",
            "--universal",
            "--generate-hashes",
            "--no-header",
            "--no-annotate",
            "--python-version",
            PYTHON_FLOOR,
            "--refresh",
            "--python-preference",
            "only-system",
        ],
        input=f"circleback=={version}\n",
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(
            f"error: could not resolve circleback=={version} from the index:\n{result.stderr}"
            "hint: publish the package first (docs/release.md), then pin the orb."
        )
    return result.stdout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="check the pins, write nothing")
    parser.add_argument(
        "--unreleased", action="store_true", help="pin the package's version, without hashes"
    )
    parser.add_argument(
        "--compiled", type=Path, help="use this `uv pip compile` output instead of running uv"
    )
    args = parser.parse_args(argv)
    version = package_version()
    current = PINS.read_text()
    if args.check:
        problems = check(current, version)
        for problem in problems:
            print(f"error: {PINS.name}: {problem}", file=sys.stderr)
        return 1 if problems else 0
    bootstrap = _BOOTSTRAP.search(current)
    if not bootstrap:
        print(f"error: {PINS.name} has no bootstrap-pip line to keep", file=sys.stderr)
        return 1
    if args.unreleased:
        text = render_unreleased(version, bootstrap.group(0))
    else:
        compiled = args.compiled.read_text() if args.compiled else compile_lock(version)
        text = render(compiled, bootstrap.group(0))
    problems = check(text, version)
    if problems:
        for problem in problems:
            print(f"error: the new pins: {problem}", file=sys.stderr)
        return 1
    PINS.write_text(text)
    state = "unreleased, no hashes" if args.unreleased else "hash-pinned"
    print(f"wrote {PINS} (circleback {version}, {state})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
