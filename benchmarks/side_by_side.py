"""1. Per command, as processes: circleback, the tutorial's curl + jq, a minimal same-stack script.

All three talk to one emulator served over loopback, with every API request delayed by
the injected latency (0, 50, 200 ms); runs alternate (rotating which goes first) so that
noise falls on all. The minimal script (``benchmarks/minimal.py``) sends the very requests
circleback sends, with typer, pydantic-settings, httpx, pydantic and structlog and nothing
else: circleback / minimal is circleback's own overhead over its stack. Each command's
median wall time, the ratios of medians, and circleback's fixed overhead (median wall time
minus requests x latency).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _common import (
    CIRCLEBACK,
    HERE,
    TUTORIAL,
    A,
    B,
    World,
    alternate,
    baseline,
    cli_env,
    median,
    write_state,
)

LATENCIES = (0, 50, 200)
REPS = {0: 11, 50: 9, 200: 7}
QUICK_REPS = {0: 3, 50: 3, 200: 3}


class _Runner:
    def __init__(self, world: World, host: str, tmp: Path) -> None:
        self.world = world
        self.host = host
        self.tmp = tmp
        self.requests: dict[tuple[str, str], list[int]] = {}

    def timed(
        self, key: tuple[str, str], latency: int, argv: list[str], env: dict[str, str]
    ) -> float:
        self.world.emu.clear_request_log()
        self.world.latency(latency)
        start = time.perf_counter()
        proc = subprocess.run(argv, env=env, capture_output=True, check=False)
        elapsed = time.perf_counter() - start
        self.world.latency(0)
        if proc.returncode != 0:
            raise RuntimeError(f"{argv} exited {proc.returncode}: {proc.stderr.decode()[-500:]}")
        self.requests.setdefault(key, []).append(len(self.world.api_requests()))
        return elapsed

    def tutorial(self, command: str, latency: int, **env: str) -> float:
        argv = ["bash", "-eo", "pipefail", str(TUTORIAL), command]
        full = cli_env(self.host, WORKSPACE=str(self.tmp), PROJECT_B=B, CIRCLECI_HOST=self.host)
        full.update(env)
        return self.timed(("tutorial", command), latency, argv, full)

    def minimal(self, command: str, latency: int, *args: str) -> float:
        argv = [sys.executable, str(HERE / "minimal.py"), command, *args]
        return self.timed(("minimal", command), latency, argv, cli_env(self.host))

    def circleback(self, command: str, latency: int, *args: str, before: bool = False) -> float:
        env = cli_env(self.host)
        if before:
            env["PYTHONPATH"] = str(baseline())
        key = ("before" if before else "circleback", command)
        return self.timed(key, latency, [CIRCLEBACK, command, *args], env)


def run(quick: bool = False) -> dict[str, Any]:
    reps = QUICK_REPS if quick else REPS
    rows: list[dict[str, Any]] = []
    world = World()
    with tempfile.TemporaryDirectory() as tmp_name, world.served() as host:
        tmp = Path(tmp_name)
        state = tmp / "state.json"
        runner = _Runner(world, host, tmp)
        a_pid = world.upstream_on_hold(A)
        for latency in LATENCIES:
            runner.requests.clear()

            def trig_t(latency: int = latency) -> float:
                return runner.tutorial(
                    "trigger", latency, PIPELINE_ID=a_pid, WORKSPACE=str(tmp / "trig")
                )

            def trig_c(latency: int = latency, before: bool = False) -> float:
                return runner.circleback(
                    "trigger", latency, B, "--branch", "main",
                    "--upstream-pipeline-id", a_pid, "--state-file", str(tmp / "trig.json"),
                    before=before,
                )  # fmt: skip

            def trig_m(latency: int = latency) -> float:
                return runner.minimal("trigger", latency, B, a_pid, str(tmp / "trig-m.json"))

            def linked_pair() -> tuple[str, str]:
                """A on its hold, and the B it triggered (B's config carries A's id)."""
                upstream = world.upstream_on_hold(A)
                return upstream, world.trigger(B, **{"triggering-pipeline-id": upstream})

            def appr_m(latency: int = latency) -> float:
                return runner.minimal("approve", latency, *linked_pair())

            def appr_t(latency: int = latency) -> float:
                upstream = world.upstream_on_hold(A)
                return runner.tutorial("approve", latency, TRIGGERING_PIPELINE_ID=upstream)

            def appr_c(latency: int = latency, before: bool = False) -> float:
                upstream, downstream = linked_pair()
                return runner.circleback(
                    "approve", latency, "--pipeline-id", upstream, "--allow-project", "gh/acme/*",
                    "--downstream-pipeline-id", downstream, before=before,
                )  # fmt: skip

            record = world.finished_downstream(a_pid)
            write_state(state, [record])
            (tmp / "pipeline.txt").write_text(record["pipeline_id"] + "\n")

            def stat_t(latency: int = latency) -> float:
                return runner.tutorial("status", latency)

            def stat_c(latency: int = latency, before: bool = False) -> float:
                return runner.circleback(
                    "status", latency, "--state-file", str(state), before=before
                )

            def stat_m(latency: int = latency) -> float:
                return runner.minimal("status", latency, str(state))

            for command, trio in (
                ("trigger", (trig_t, trig_c, trig_m)),
                ("approve", (appr_t, appr_c, appr_m)),
                ("status", (stat_t, stat_c, stat_m)),
            ):
                arms: list[Callable[[], float]] = list(trio)
                if baseline():
                    arms.append(lambda f=trio[1]: f(before=True))
                tut, ours, mini, *old = alternate(reps[latency], *arms)
                n_ours = median(runner.requests[("circleback", command)])
                n_tut = median(runner.requests[("tutorial", command)])
                n_mini = median(runner.requests[("minimal", command)])
                rows.append(
                    {
                        "latency_ms": latency,
                        "command": command,
                        "runs": reps[latency],
                        "tutorial_s": median(tut),
                        "circleback_s": median(ours),
                        "ratio": median(ours) / median(tut),
                        "minimal_s": median(mini),
                        "minimal_requests": n_mini,
                        "ratio_minimal": median(ours) / median(mini),
                        "minimal_overhead_s": median(mini) - n_mini * latency / 1000,
                        "tutorial_requests": n_tut,
                        "circleback_requests": n_ours,
                        "circleback_overhead_s": median(ours) - n_ours * latency / 1000,
                        "tutorial_overhead_s": median(tut) - n_tut * latency / 1000,
                    }
                )
                if old:
                    n_old = median(runner.requests[("before", command)])
                    rows[-1].update(
                        before_s=median(old[0]),
                        before_ratio=median(old[0]) / median(tut),
                        before_requests=n_old,
                        before_overhead_s=median(old[0]) - n_old * latency / 1000,
                    )
    world.close()
    return {"rows": rows}


def markdown(result: dict[str, Any], before: dict[str, Any] | None) -> str:
    lines = [
        "| latency | command | runs | tutorial (requests) | minimal same-stack (requests) "
        "| circleback (requests) | circleback / tutorial | **circleback / minimal** "
        "| fixed overhead: minimal → circleback |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result["rows"]:
        lines.append(
            f"| {r['latency_ms']} ms | {r['command']} | {r['runs']} | "
            f"{r['tutorial_s'] * 1000:.0f} ms ({r['tutorial_requests']:.0f}) | "
            f"{r['minimal_s'] * 1000:.0f} ms ({r['minimal_requests']:.0f}) | "
            f"{r['circleback_s'] * 1000:.0f} ms ({r['circleback_requests']:.0f}) | "
            f"{r['ratio']:.2f} | **{r['ratio_minimal']:.2f}** | "
            f"{r['minimal_overhead_s'] * 1000:.0f} → {r['circleback_overhead_s'] * 1000:.0f} ms |"
        )
    return "\n".join(lines)
