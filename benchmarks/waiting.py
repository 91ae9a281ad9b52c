"""5. What waiting costs: A's billed job-seconds while B runs for T seconds.

Modelled with the emulator alone (the local executor was still changing when this was
written): a tiny driver runs each build job the emulator starts, for real, with the
``circleback`` CLI over loopback, and finishes it with the CLI's exit status. B's
``build-and-test`` takes T seconds; B's ``approve-upstream`` job (``requires`` it as
``terminal``) runs ``circleback approve``. A either parks on a free approval job and then
checks (circleback), or keeps a job running ``circleback status`` from the trigger on
(polling). Job-seconds are the emulator's ``stopped_at - started_at`` of A's build jobs;
approval jobs run on no executor and cost nothing.
"""

from __future__ import annotations

import subprocess
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from _common import CIRCLEBACK, TOKEN, World, cli_env

DURATIONS = (5, 15)
QUICK_DURATIONS = (3,)
_JOB = "{docker: [{image: cimg/base:current}], steps: [{run: make}]}"
CONFIGS = {
    "gh/acme/a-hold": f"""version: 2.1
jobs: {{trigger: {_JOB}, check: {_JOB}}}
workflows:
  main:
    jobs:
      - trigger
      - wait-for-triggered-pipeline: {{type: approval, requires: [trigger]}}
      - check: {{requires: [wait-for-triggered-pipeline]}}
""",
    "gh/acme/a-poll": f"""version: 2.1
jobs: {{trigger: {_JOB}, check: {_JOB}}}
workflows:
  main:
    jobs:
      - trigger
      - check: {{requires: [trigger]}}
""",
    "gh/acme/b": f"""version: 2.1
parameters:
  triggering-pipeline-id: {{type: string, default: ""}}
jobs: {{build-and-test: {_JOB}, approve-upstream: {_JOB}}}
workflows:
  test:
    jobs:
      - build-and-test
      - approve-upstream: {{requires: [{{build-and-test: terminal}}]}}
""",
}


class _Driver:
    """Runs the jobs the emulator starts: the real CLI for A's and B's circleback steps."""

    def __init__(self, tmp: Path, duration: float, approve: bool) -> None:
        self.tmp = tmp
        self.duration = duration
        self.approve = approve
        self.world: World | None = None
        self.host = ""
        self.threads: list[threading.Thread] = []

    def on_job_start(self, run: Any) -> None:
        thread = threading.Thread(target=self._run, args=(run,), daemon=True)
        self.threads.append(thread)
        thread.start()

    def _cli(self, *args: str) -> str:
        done = subprocess.run([CIRCLEBACK, *args], env=cli_env(self.host), capture_output=True)
        return "success" if done.returncode == 0 else "failed"

    def _run(self, run: Any) -> None:
        state = str(self.tmp / f"{run.pipeline_id}.json")
        if run.job_name == "trigger":
            status = self._cli(
                "trigger", "gh/acme/b", "--branch", "main",
                "--upstream-pipeline-id", run.pipeline_id, "--state-file", state,
            )  # fmt: skip
        elif run.job_name == "check":
            status = self._cli("status", "--state-file", state, "--timeout", "10m")
        elif run.job_name == "build-and-test":
            time.sleep(self.duration)
            status = "success"
        elif not self.approve:  # polling: B has nothing to call back
            status = "success"
        else:  # approve-upstream
            upstream = str(run.pipeline_parameters["triggering-pipeline-id"])
            status = self._cli("approve", "--pipeline-id", upstream, "--allow-project", "gh/acme/*")
        assert self.world is not None
        self.world.emu.finish_job(run.job_id, status)


def _seconds(job: dict[str, Any]) -> float:
    start = datetime.fromisoformat(job["started_at"].replace("Z", "+00:00"))
    stop = datetime.fromisoformat(job["stopped_at"].replace("Z", "+00:00"))
    return (stop - start).total_seconds()


def scenario(slug: str, duration: float, tmp: Path) -> dict[str, Any]:
    driver = _Driver(tmp, duration, approve=slug.endswith("-hold"))
    projects = {k: tmp / f"{k.rsplit('/', 1)[1]}.yml" for k in CONFIGS}
    world = World(projects=projects, on_job_start=driver.on_job_start)
    driver.world = world
    with world.served() as host:
        driver.host = host
        start = time.perf_counter()
        pid = world.trigger(slug)
        deadline = time.monotonic() + duration + 120
        while time.monotonic() < deadline:
            workflows = world.items(f"/pipeline/{pid}/workflow")
            if workflows and all(w["status"] not in ("running", "on_hold") for w in workflows):
                break
            time.sleep(0.2)
        wall = time.perf_counter() - start
        jobs = world.items(f"/workflow/{workflows[0]['id']}/job")
        status = workflows[0]["status"]
    world.close()
    billed = {j["name"]: _seconds(j) for j in jobs if j["type"] == "build" and j["stopped_at"]}
    return {
        "status": status,
        "wall_s": wall,
        "job_seconds": sum(billed.values()),
        "jobs": billed,
    }


def run(quick: bool = False) -> dict[str, Any]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        for slug, text in CONFIGS.items():
            (tmp / f"{slug.rsplit('/', 1)[1]}.yml").write_text(text)
        for duration in QUICK_DURATIONS if quick else DURATIONS:
            hold = scenario("gh/acme/a-hold", duration, tmp)
            poll = scenario("gh/acme/a-poll", duration, tmp)
            rows.append({"b_seconds": duration, "hold": hold, "poll": poll})
    return {"rows": rows, "token": bool(TOKEN)}


def markdown(result: dict[str, Any], before: dict[str, Any] | None) -> str:
    lines = [
        "| B runs for T | A with circleback's hold: job-seconds (trigger + check) "
        "| A polling from one job: job-seconds (trigger + polling check) | polling / hold |",
        "|---:|---:|---:|---:|",
    ]
    for r in result["rows"]:
        hold, poll = r["hold"], r["poll"]
        h = " + ".join(f"{v:.1f}" for v in hold["jobs"].values())
        p = " + ".join(f"{v:.1f}" for v in poll["jobs"].values())
        ratio = poll["job_seconds"] / hold["job_seconds"]
        lines.append(
            f"| {r['b_seconds']} s | {hold['job_seconds']:.1f} s ({h}) | "
            f"{poll['job_seconds']:.1f} s ({p}) | {ratio:.1f}x |"
        )
    lines += [
        "",
        "The hold's cost does not grow with T: A's jobs only trigger and check. A polling job "
        "costs T plus up to one poll interval of overshoot (status polls after 5 s, then "
        "x1.5 each time up to 60 s), so per hour of B it costs about one job-hour.",
    ]
    return "\n".join(lines)
