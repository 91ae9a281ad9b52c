"""The whole circleback, A and B, with every step run in dash and in busybox sh.

On Alpine CircleCI has no bash and runs steps in busybox ``sh``, which never reads
``$BASH_ENV``. Here the local executor runs each ``run`` step of the example projects (the
orb's scripts calling the real circleback CLI, which talks to the emulator) in that shell:
A triggers B, parks on its hold, B releases it, A's check passes.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from orb_helpers import EXAMPLES, SHELLS, require_shell

from circleback.emulator import run_locally

A, B = "gh/acme/project-a", "gh/acme/project-b"
WHICH = "gh/acme/which-shell"
WHICH_CONFIG = """\
version: 2.1
jobs:
  which:
    docker: [{image: alpine:3.20}]
    steps:
      - run: readlink "/proc/$$/exe"
workflows:
  which:
    jobs: [which]
"""


@pytest.mark.parametrize("shell", ["dash", "busybox"])
def test_a_and_b_end_to_end_in_a_posix_shell(tmp_path: Path, shell: str) -> None:
    program = require_shell(shell)
    which = tmp_path / "which.yml"
    which.write_text(WHICH_CONFIG)
    projects = {
        A: EXAMPLES / "project-a" / ".circleci" / "config.yml",
        B: EXAMPLES / "project-b" / ".circleci" / "config.yml",
        WHICH: which,
    }

    with run_locally(projects, shell=SHELLS[shell]) as local:
        local.trigger(WHICH)
        local.trigger(A)
        assert local.executor.wait_idle(120)
        records = {(r.project_slug, r.job_name): r for r in local.executor.records}

    # The steps really ran in that shell.
    assert Path(records[(WHICH, "which")].output.strip()).resolve() == Path(program).resolve()
    check = records[(A, "check-project-b")]
    assert check.status == "success", check.output[-3000:]
    approve = records[(B, "approve-upstream")]
    assert approve.status == "success", approve.output[-3000:]
    assert "+ circleback approve" in approve.output
    assert records[(A, "deploy")].status == "success"
