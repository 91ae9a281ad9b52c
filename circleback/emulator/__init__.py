"""A stateful CircleCI API v2 emulator, for testing circleback without a CircleCI account.

::

    emu = Emulator(projects={"gh/acme/b": Path("b/.circleci/config.yml")}, tokens=("t",))
    client = httpx.Client(transport=emu.transport(), base_url="http://127.0.0.1/api/v2")

Serve it over loopback with :func:`circleback.emulator.server.make_server`. The routes, the
control API under ``/_emulator/`` and every decision not fixed by CircleCI's spec are in
``docs/emulator.md``. :class:`LocalExecutor` runs the jobs it starts, for real, in bash;
:func:`run_locally` serves an emulator with one attached::

    with run_locally({"gh/acme/a": Path("a/.circleci/config.yml")}) as local:
        local.trigger("gh/acme/a")
        local.executor.wait_idle(60)
"""

from circleback.emulator.core import DEFAULT_PAGE_SIZE, clock_following
from circleback.emulator.executor import (
    JobRecord,
    LocalCircleCI,
    LocalExecutor,
    StepRecord,
    run_locally,
)
from circleback.emulator.faults import Fault, FaultKind
from circleback.emulator.service import Emulator
from circleback.emulator.state import EmulatorError, JobRun
from circleback.emulator.switches import Switches

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "Emulator",
    "EmulatorError",
    "Fault",
    "FaultKind",
    "JobRecord",
    "JobRun",
    "LocalCircleCI",
    "LocalExecutor",
    "StepRecord",
    "Switches",
    "clock_following",
    "run_locally",
]
