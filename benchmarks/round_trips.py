"""5. Round trips: API requests per command on the happy path, from the emulator's log.

Counts do not depend on the machine, so they are exact. Each command runs once per case
(page size 20 and 2; A with 1 and 10 workflows): circleback through its CLI in-process,
the tutorial's curl + jq over loopback, against the same emulator.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from _common import A10, TUTORIAL, A, B, World, cli_env, run_cli_in_process, write_state

ALLOW = ["--allow-project", "gh/acme/*"]


def _count(world: World, action: Any) -> tuple[int, Any]:
    world.emu.clear_request_log()
    outcome = action()
    return len(world.api_requests()), outcome


def _tutorial(host: str, command: str, workspace: Path, **env: str) -> int:
    return subprocess.run(
        ["bash", "-eo", "pipefail", str(TUTORIAL), command],
        env=cli_env(host, WORKSPACE=str(workspace), PROJECT_B=B, CIRCLECI_HOST=host, **env),
        capture_output=True,
        check=False,
    ).returncode


def case(page_size: int, upstream: str, tmp: Path) -> list[dict[str, Any]]:
    world = World(page_size=page_size)
    rows: list[dict[str, Any]] = []
    env = cli_env("http://127.0.0.1")
    state = tmp / f"state-{page_size}-{upstream.rsplit('/', 1)[1]}.json"

    def row(command: str, ours: int, tutorial: int | None, released: str = "") -> None:
        rows.append(
            {
                "page_size": page_size,
                "workflows": 10 if upstream == A10 else 1,
                "command": command,
                "circleback": ours,
                "tutorial": tutorial,
                "tutorial_released_hold": released,
            }
        )

    with world.served() as host:
        a_pid = world.upstream_on_hold(upstream)
        n, _ = _count(
            world,
            lambda: run_cli_in_process(
                world,
                [
                    *("trigger", B, "--branch", "main", "--upstream-pipeline-id", a_pid),
                    *("--state-file", str(state)),
                ],
                env,
            ),
        )
        t, _ = _count(world, lambda: _tutorial(host, "trigger", tmp, PIPELINE_ID=a_pid))
        row("trigger", n, t)

        b_pid = json.loads(state.read_text())["downstream"][0]["pipeline_id"]
        approve = ["approve", "--pipeline-id", a_pid, *ALLOW, "--downstream-pipeline-id", b_pid]
        n, code = _count(world, lambda: run_cli_in_process(world, approve, env))
        assert code == 0, "circleback approve failed"
        assert world.hold_status(a_pid) == "success", "circleback approve released nothing"
        a2 = world.upstream_on_hold(upstream)
        t, _ = _count(world, lambda: _tutorial(host, "approve", tmp, TRIGGERING_PIPELINE_ID=a2))
        released = "yes" if world.hold_status(a2) == "success" else "**no**"
        row("approve", n, t, released)

        a3 = world.upstream_on_hold(upstream)
        b3 = world.trigger(B, **{"triggering-pipeline-id": a3})
        by_name = ["approve", "--pipeline-id", a3, *ALLOW, "--workflow-name", "main"]
        by_name += ["--downstream-pipeline-id", b3]
        n, code = _count(world, lambda: run_cli_in_process(world, by_name, env))
        assert code == 0, "circleback approve --workflow-name failed"
        row("approve --workflow-name main", n, None)

        record = world.finished_downstream(a_pid)
        write_state(state, [record])
        (tmp / "pipeline.txt").write_text(record["pipeline_id"] + "\n")
        n, code = _count(
            world, lambda: run_cli_in_process(world, ["status", "--state-file", str(state)], env)
        )
        assert code == 0, "circleback status failed"
        t, _ = _count(world, lambda: _tutorial(host, "status", tmp))
        row("status --state-file", n, t)
    world.close()
    return rows


def run(quick: bool = False) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for page_size in (20, 2):
            for upstream in (A, A10):
                rows.extend(case(page_size, upstream, Path(tmp)))
    return {"rows": rows}


def markdown(result: dict[str, Any], before: dict[str, Any] | None) -> str:
    lines = [
        "| page size | A's workflows | command | circleback | tutorial "
        "| tutorial released the hold? |",
        "|---:|---:|---|---:|---:|---|",
    ]
    for r in result["rows"]:
        tut = "-" if r["tutorial"] is None else r["tutorial"]
        lines.append(
            f"| {r['page_size']} | {r['workflows']} | `{r['command']}` | "
            f"{r['circleback']} | {tut} | {r['tutorial_released_hold'] or '-'} |"
        )
    return "\n".join(lines)
