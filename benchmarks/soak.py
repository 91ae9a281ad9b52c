"""Soak the emulator over loopback: client threads doing trigger/approve/list cycles.

Usage::

    python benchmarks/soak.py --seconds 30 --threads 8

Each thread repeats one circleback cycle through the real client against an emulator
served on 127.0.0.1: trigger a pipeline (with a parameter naming the cycle), find its
workflow and its approval job, approve it, read the jobs back, and list the project's
pipelines. At the end the emulator's state is checked against what the clients saw: no
5xx, no lost or duplicated pipeline, every hold approved exactly once. Requests per
second is printed as a figure, never asserted: it depends on the machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from circleback.client import CircleCIClient
from circleback.emulator import Emulator
from circleback.emulator.server import make_server

SLUG = "gh/soak/a"
TOKEN = "soak-token"
CONFIG = """\
version: 2.1
parameters:
  cycle: {type: string, default: ""}
jobs:
  build: {docker: [{image: cimg/base:current}], steps: [{run: make}]}
workflows:
  main:
    jobs:
      - build
      - hold: {type: approval}
"""


class Counting(httpx.HTTPTransport):
    """The network, counting requests and the statuses that came back."""

    def __init__(self) -> None:
        super().__init__()
        self.statuses: Counter[int] = Counter()
        self.failures = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        try:
            response = super().handle_request(request)
        except httpx.TransportError:
            self.failures += 1
            raise
        self.statuses[response.status_code] += 1
        return response


@dataclass
class Worker:
    """What one client thread did and saw."""

    index: int
    triggered: dict[str, str] = field(default_factory=dict)
    """Pipeline id -> the cycle parameter it was triggered with."""
    errors: list[str] = field(default_factory=list)
    transport: Counting = field(default_factory=Counting)


@dataclass
class SoakResult:
    threads: int
    seconds: float
    cycles: int
    requests: int
    problems: list[str]

    @property
    def requests_per_second(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def ok(self) -> bool:
        return not self.problems


def _cycle(client: CircleCIClient, worker: Worker, number: int) -> None:
    cycle = f"{worker.index}-{number}"
    branch = f"soak-{worker.index}"
    created = client.trigger_pipeline(SLUG, branch=branch, parameters={"cycle": cycle})
    worker.triggered[created.id] = cycle
    workflows = list(client.list_pipeline_workflows(created.id))
    if len(workflows) != 1:
        raise AssertionError(f"pipeline {created.id} has {len(workflows)} workflows")
    hold = next(j for j in client.list_workflow_jobs(workflows[0].id) if j.name == "hold")
    if hold.status != "on_hold":
        raise AssertionError(f"hold of {created.id} is {hold.status} before approval")
    client.approve_job(workflows[0].id, hold.approval_request_id or hold.id)
    after = next(j for j in client.list_workflow_jobs(workflows[0].id) if j.name == "hold")
    if after.status != "success":
        raise AssertionError(f"hold of {created.id} is {after.status} after approval")
    newest = next(iter(client.list_project_pipelines(SLUG, branch=branch)))
    if newest.id != created.id:
        raise AssertionError(f"newest pipeline on {branch} is not {created.id}")


def _work(url: str, worker: Worker, stop: threading.Event) -> None:
    with CircleCIClient(token=TOKEN, host=url, transport=worker.transport) as client:
        number = 0
        while not stop.is_set():
            try:
                _cycle(client, worker, number)
            except Exception as exc:
                worker.errors.append(f"thread {worker.index} cycle {number}: {exc!r}")
            number += 1


def _check(emu: Emulator, workers: list[Worker]) -> list[str]:
    """Compare the emulator's final state with what the clients were told."""
    problems = [e for w in workers for e in w.errors][:20]
    state = emu.state_dump()
    pipelines = [p for p in state["pipelines"] if p["project_slug"] == SLUG]
    seen = {pid: cycle for w in workers for pid, cycle in w.triggered.items()}
    stored = {p["id"]: p["sent_parameters"].get("cycle") for p in pipelines}
    if set(stored) - set(seen):
        problems.append(f"{len(set(stored) - set(seen))} pipelines no client was told about")
    if set(seen) - set(stored):
        problems.append(f"{len(set(seen) - set(stored))} pipelines lost")
    duplicated = [c for c, n in Counter(stored.values()).items() if n > 1]
    if duplicated:
        problems.append(f"{len(duplicated)} cycles triggered more than once")
    if any(stored.get(pid) != cycle for pid, cycle in seen.items() if pid in stored):
        problems.append("a pipeline carries another cycle's parameter")
    numbers = sorted(p["number"] for p in pipelines)
    if numbers != list(range(1, len(numbers) + 1)):
        problems.append("pipeline numbers are not 1..N without gaps or repeats")
    holds = [j for j in state["jobs"] if j["name"] == "hold" and j["pipeline_id"] in seen]
    not_released = [j for j in holds if j["status"] != "success"]
    if not_released:
        problems.append(f"{len(not_released)} holds of finished cycles not approved")
    server_errors = [r for r in emu.request_log if (r["status"] or 0) >= 500 or r["fault"]]
    if server_errors:
        problems.append(f"{len(server_errors)} 5xx or faulted responses")
    approvals = Counter(r["path"] for r in emu.request_log if "/approve/" in r["path"])
    if any(n > 1 for n in approvals.values()):
        problems.append("a hold was approved more than once")
    failures = sum(w.transport.failures for w in workers)
    if failures:
        problems.append(f"{failures} requests got no response")
    return problems


def run_soak(seconds: float, threads: int) -> SoakResult:
    """Soak an emulator on loopback for ``seconds`` with ``threads`` clients."""
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "config.yml"
        config.write_text(CONFIG, encoding="utf-8")
        emu = Emulator(projects={SLUG: config}, tokens=(TOKEN,))
        workers = [Worker(i) for i in range(threads)]
        stop = threading.Event()
        with make_server(emu) as server:
            pool = [
                threading.Thread(target=_work, args=(server.url, w, stop), daemon=True)
                for w in workers
            ]
            started = time.perf_counter()
            for thread in pool:
                thread.start()
            stop.wait(seconds)
            stop.set()
            for thread in pool:
                thread.join()
            elapsed = time.perf_counter() - started
        requests = sum(sum(w.transport.statuses.values()) for w in workers)
        cycles = sum(len(w.triggered) for w in workers)
        return SoakResult(threads, elapsed, cycles, requests, _check(emu, workers))


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} CPUs, Python {platform.python_version()}, {sys.platform}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args(argv)
    result = run_soak(args.seconds, args.threads)
    figures: dict[str, Any] = {
        "threads": result.threads,
        "seconds": round(result.seconds, 1),
        "cycles": result.cycles,
        "requests": result.requests,
        "requests/s": round(result.requests_per_second, 1),
        "cycles/s": round(result.cycles / result.seconds, 1),
        "machine": machine(),
    }
    for key, value in figures.items():
        print(f"{key:>11}: {value}")
    for problem in result.problems:
        print(f"    PROBLEM: {problem}")
    print("     result: " + ("ok" if result.ok else "FAILED"))
    return 0 if result.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
