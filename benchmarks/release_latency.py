"""Hold release latency: B's last job ends -> A's hold approved, callback job vs webhook.

Both arms run the example projects for real in the local executor (bash steps, the
circleback orb, the CLI over loopback):

- **callback**: examples/project-b: B's ``approve-upstream`` job (``requires`` B's tests
  as ``terminal``) must start, install circleback and run ``circleback approve``;
- **webhook**: examples/webhook/project-b has no callback job: the emulator sends B's
  signed ``workflow-completed`` webhook to ``circleback serve`` (uvicorn on loopback),
  which re-reads B and releases A.

CircleCI takes time to start each job (provisioning an executor, pulling an image): that
is modelled as a delay before the first step of every job, the same in both arms
(``--start-delay``, seconds, several values); B's tests take ``B_WORK`` seconds so that A
reaches its hold before B ends, as it does in real use. The latency is read from the
emulator's own timestamps (switched to milliseconds): A's hold ``stopped_at`` minus B's
``build-and-test`` ``stopped_at``. Arms alternate run by run, so drift on this shared
machine hits both; figures are medians.

    .venv/bin/python benchmarks/release_latency.py [--quick] [--json PATH]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from circleback.emulator import JobRun, StepRecord, run_locally  # noqa: E402
from circleback.serve.local import receive_locally, wait_settled  # noqa: E402

A, B = "gh/acme/project-a", "gh/acme/project-b"
EXAMPLES = ROOT / "examples"
CONFIG_A = EXAMPLES / "project-a" / ".circleci" / "config.yml"
CONFIG_B = {
    "callback": EXAMPLES / "project-b" / ".circleci" / "config.yml",
    "webhook": EXAMPLES / "webhook" / "project-b" / ".circleci" / "config.yml",
}
HOLD = "wait-for-triggered-pipeline"
TIMEOUT = 180.0
#: Job timestamps with milliseconds: CircleCI's whole seconds cannot time a release.
SWITCHES = {"timestamps": "millis"}


#: Seconds B's tests take: long enough for A to reach its hold first, as in real use
#: (otherwise both arms measure A's own progress, not the release).
B_WORK = 2.0


class StartDelay:
    """Sleeps ``seconds`` before the first step of each job (CircleCI's job start time),
    and B's tests ``B_WORK`` seconds more (B doing its work)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._started: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, run: JobRun, step: StepRecord) -> None:
        with self._lock:
            first = run.job_id not in self._started
            self._started.add(run.job_id)
        if not first:
            return
        work = B_WORK if (run.project_slug, run.job_name) == (B, "build-and-test") else 0.0
        if self.seconds + work:
            time.sleep(self.seconds + work)


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def one_run(arm: str, start_delay: float) -> dict[str, Any]:
    """Run A and B once; the latency and how the run ended."""
    projects = {A: CONFIG_A, B: CONFIG_B[arm]}
    with contextlib.ExitStack() as stack:
        local = stack.enter_context(
            run_locally(projects, switches=SWITCHES, before_step=StartDelay(start_delay))
        )
        if arm == "webhook":
            stack.enter_context(receive_locally(local, allow=["gh/acme/*"], downstream=[B]))
        local.trigger(A)
        settled = wait_settled(local, TIMEOUT)
        state = local.emulator.state_dump()
    jobs = {(j["project_slug"], j["name"]): j for j in state["jobs"]}
    hold, tests = jobs[(A, HOLD)], jobs[(B, "build-and-test")]
    deploy = jobs[(A, "deploy")]["status"]
    if not settled or hold["status"] != "success" or deploy != "success":
        raise RuntimeError(f"{arm} run did not complete: hold {hold['status']}, deploy {deploy}")
    latency = (_moment(hold["stopped_at"]) - _moment(tests["stopped_at"])).total_seconds()
    b_jobs = sorted(name for (slug, name) in jobs if slug == B)
    return {"latency": latency, "b_jobs": b_jobs}


def measure(delays: list[float], repeats: int) -> dict[str, Any]:
    results: dict[str, Any] = {"repeats": repeats, "delays": {}}
    for delay in delays:
        samples: dict[str, list[float]] = {"callback": [], "webhook": []}
        b_jobs: dict[str, list[str]] = {}
        for i in range(repeats):
            order = ("callback", "webhook") if i % 2 == 0 else ("webhook", "callback")
            for arm in order:
                run = one_run(arm, delay)
                samples[arm].append(run["latency"])
                b_jobs[arm] = run["b_jobs"]
        cb, wh = (statistics.median(samples[a]) for a in ("callback", "webhook"))
        results["delays"][str(delay)] = {
            "callback_s": cb,
            "webhook_s": wh,
            "ratio_callback_over_webhook": cb / wh if wh else None,
            "samples": samples,
            "b_jobs": b_jobs,
        }
        print(
            f"start delay {delay:>4.1f}s: callback {cb * 1000:6.0f} ms, "
            f"webhook {wh * 1000:6.0f} ms, ratio {cb / wh if wh else float('nan'):.1f}",
            flush=True,
        )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one run per arm, delays 0 and 1")
    parser.add_argument("--start-delay", type=float, action="append", help="seconds (repeat)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    delays = args.start_delay or ([0.0, 1.0] if args.quick else [0.0, 2.0, 5.0])
    repeats = 1 if args.quick else args.repeats
    started = time.monotonic()
    results = measure(delays, repeats)
    results["wall_s"] = time.monotonic() - started
    print(f"took {results['wall_s']:.0f}s")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
