"""3. A's critical path in the local executor: what circleback adds beyond B's own run time.

A and B are real CircleCI configs (``benchmarks/configs/critical/``) run by the local
executor against the emulator over loopback, with the orb's commands expanded and every
job's first step delayed by a modelled job start (CircleCI starts a job in seconds; the
delay is a parameter, the same for every arm). B's work is one job of ``T`` seconds.

- **circleback**: A triggers B (orb), parks on a free approval job, checks B (orb); B's
  ``approve-upstream`` job requires its work as ``terminal``.
- **tutorial**: the blog's curl + jq (``benchmarks/tutorial.sh``): B approves from the
  last step of its own job, A checks once.
- **polling**: A triggers B, then one job runs ``circleback status`` until B is final.

From the emulator's timestamps: *added* = (A's end - A's start) - B's own run time (B's
creation to its last working job's end); *release* = from B's work ending to A's hold
being approved; *check* = from the release to A's end. Polling has no hold: its release
is from B's work ending to A's end.
"""

from __future__ import annotations

import statistics
import threading
import time
from datetime import datetime
from typing import Any

from _common import HERE, TUTORIAL

CONFIGS = HERE / "configs" / "critical"
ARMS = {
    "circleback": ("gh/acme/a-circleback", "gh/acme/b-circleback"),
    "tutorial": ("gh/acme/a-tutorial", "gh/acme/b-tutorial"),
    "polling": ("gh/acme/a-poll", "gh/acme/b-plain"),
}
B_SECONDS = 5
JOB_START_S = 2.0
REPS, QUICK_REPS = 3, 1


def _when(text: str | None) -> float | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


class _JobStart:
    """``before_step``: the first step of each job waits the modelled job start."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.started: set[str] = set()
        self.lock = threading.Lock()

    def __call__(self, run: Any, step: Any) -> None:
        with self.lock:
            first = run.job_id not in self.started
            self.started.add(run.job_id)
        if first:
            time.sleep(self.seconds)


def scenario(arm: str, b_seconds: float, job_start: float) -> dict[str, Any]:
    from circleback.emulator import run_locally

    a_slug, b_slug = ARMS[arm]
    projects = {slug: CONFIGS / f"{slug.rsplit('/', 1)[1]}.yml" for slug in (a_slug, b_slug)}
    env = {"B_SECONDS": str(b_seconds), "TUTORIAL": str(TUTORIAL)}
    with run_locally(projects, env=env, before_step=_JobStart(job_start)) as local:
        started = time.time()
        local.trigger(a_slug)
        assert local.executor.wait_idle(120 + b_seconds)
        dump = local.emulator.state_dump()
    jobs = {(j["project_slug"], j["name"]): j for j in dump["jobs"]}
    pipelines = {p["project_slug"]: p for p in dump["pipelines"]}
    a_end = _when(jobs[(a_slug, "check")]["stopped_at"])
    b_created = _when(pipelines[b_slug]["created_at"])
    b_work_end = _when(jobs[(b_slug, "build-and-test")]["stopped_at"])
    hold = jobs.get((a_slug, "wait-for-triggered-pipeline"))
    released = _when(hold.get("stopped_at")) if hold else None
    assert a_end is not None
    assert b_created is not None
    assert b_work_end is not None
    a_status = {name: j["status"] for (slug, name), j in jobs.items() if slug == a_slug}
    billed = sum(
        (_when(j["stopped_at"]) or 0) - (_when(j["started_at"]) or 0)
        for (slug, _), j in jobs.items()
        if slug == a_slug and j["type"] == "build" and j.get("started_at")
    )
    return {
        "a_seconds": a_end - started,
        "b_own_seconds": b_work_end - b_created,
        "added_seconds": (a_end - started) - (b_work_end - b_created),
        "trigger_seconds": b_created - started,
        "release_seconds": (released if released is not None else a_end) - b_work_end,
        "check_seconds": a_end - released if released is not None else None,
        "a_job_seconds": billed,
        "a_jobs": a_status,
    }


def run(quick: bool = False) -> dict[str, Any]:
    reps = QUICK_REPS if quick else REPS
    runs: dict[str, list[dict[str, Any]]] = {arm: [] for arm in ARMS}
    for rep in range(reps):
        order = list(ARMS)
        order = order[rep % len(order) :] + order[: rep % len(order)]
        for arm in order:
            runs[arm].append(scenario(arm, B_SECONDS, JOB_START_S))
    rows = []
    for arm, results in runs.items():
        row: dict[str, Any] = {"arm": arm, "runs": len(results)}
        for key in results[0]:
            values = [r[key] for r in results]
            if isinstance(values[0], (int, float)):
                row[key] = statistics.median(values)
            elif key == "a_jobs":
                row[key] = values[-1]
        rows.append(row)
    return {"b_seconds": B_SECONDS, "job_start_s": JOB_START_S, "rows": rows}


def markdown(result: dict[str, Any], before: dict[str, Any] | None) -> str:
    d = result["job_start_s"]
    lines = [
        f"B's work: {result['b_seconds']} s; modelled job start: {d} s per job (medians).",
        "",
        "| A | A's wall time | B's own run time | **added to A** | trigger → B created "
        "| B's work ends → hold released | release → A done | A's billed job-seconds "
        "| A's jobs |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in result["rows"]:
        check = f"{r['check_seconds']:.1f} s" if r.get("check_seconds") is not None else "-"
        jobs = ", ".join(f"{k}: {v}" for k, v in sorted(r["a_jobs"].items()))
        lines.append(
            f"| {r['arm']} | {r['a_seconds']:.1f} s | {r['b_own_seconds']:.1f} s | "
            f"**{r['added_seconds']:.1f} s** | {r['trigger_seconds']:.1f} s | "
            f"{r['release_seconds']:.1f} s | {check} | {r['a_job_seconds']:.1f} s | {jobs} |"
        )
    lines += [
        "",
        "What bounds the hold release latency: after B's work ends, one job start (B's "
        "callback job) plus `circleback approve` (7 requests), then one job start (A's check "
        "job) plus `circleback status` (2 requests). With a real job start of S seconds, "
        f"circleback's release + check is about 2 x S plus the two commands (here S = {d} s). "
        "The tutorial saves B's callback job start by approving from inside B's running job; "
        "its one-shot check then races B's job to its end (here the check's own job start "
        "let B finish first; on CircleCI it can see B `running` and fail A). Polling saves "
        "both starts but bills A for all of B's run time.",
    ]
    return "\n".join(lines)
