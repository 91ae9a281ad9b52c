"""Regenerate docs/img/chain.png from a real run.

The chain example (A → B → C, ``examples/chain``) runs in the local executor with C's tests
failing; ``circleback trace A --format html`` draws it and headless Chromium photographs
the page. Run from the repository root with the venv active: ``python docs/img/make_chain.py``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from circleback.emulator import run_locally

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "docs" / "img"
CHAIN = ROOT / "examples" / "chain"
PROJECTS = {
    f"gh/acme/project-{p}": CHAIN / f"project-{p}" / ".circleci" / "config.yml" for p in "abc"
}


def main() -> int:
    chromium = shutil.which("chromium")
    if chromium is None:
        print("chromium is not installed", file=sys.stderr)
        return 2
    with run_locally(PROJECTS, fail_jobs={("gh/acme/project-c", "test")}) as local:
        a = local.trigger("gh/acme/project-a")
        if not local.executor.wait_idle(120):
            print("the chain did not settle", file=sys.stderr)
            return 1
        env = {**os.environ, "CIRCLEBACK_HOST": local.server.url, "CIRCLEBACK_TOKEN": local.token}
        page = subprocess.run(
            [Path(sys.executable).parent / "circleback", "trace", a, "--format", "html"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    with tempfile.TemporaryDirectory() as profile:
        html = Path(profile) / "chain.html"
        html.write_text(page, encoding="utf-8")
        subprocess.run(
            [
                chromium,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--hide-scrollbars",
                f"--user-data-dir={profile}/p",
                "--window-size=1100,700",
                f"--screenshot={OUT / 'chain.png'}",
                html.as_uri(),
            ],
            capture_output=True,
            check=True,
        )
    print(OUT / "chain.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
