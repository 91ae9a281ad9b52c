"""4. Scale: approve over 50 workflows and up to 2,000 jobs; status over up to 100 downstreams.

Approve: A's pipeline has 50 workflows; the oldest holds N jobs with the hold last, at
page size 20. The emulator runs in its own process (``circleback emulator``) so that this
process's peak memory (tracemalloc, during approve only) is circleback's alone. Requests
come from the emulator's request log; the minimum is what any correct client must read:
every page of workflows (3), every job page of the hold's workflow, the proof that B is
the pipeline A triggered (B's compiled config; the hold here requires no job, so no job
of A can hold A's record), and the approval.

Status: 20 and 100 finished downstream pipelines, every request delayed 50 ms; one poll,
with the pool bounded to 1 (sequential) and at its default, in the same run. The minimum
is one request per downstream pipeline (its workflow list). Peak memory: tracemalloc over
one poll.
"""

from __future__ import annotations

import statistics
import subprocess
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

import httpx
from _common import CIRCLEBACK, PROJECTS, TOKEN, B, World, alternate, cli_env, median

WORKFLOWS = 50
SIZES = (200, 500, 1000, 2000)
QUICK_SIZES = (200, 2000)
FANOUTS = (20, 100)
WORKFLOW_PAGES = -(-WORKFLOWS // 20)
LATENCY_MS = 50


def _config(jobs: int) -> str:
    lines = [
        "# Generated: 50 workflows; the oldest ('big') holds the hold after many jobs.",
        "version: 2.1",
        "jobs:",
        "  j: {docker: [{image: cimg/base:current}], steps: [{run: make}]}",
        "workflows:",
        "  big:",
        "    jobs:",
    ]
    lines += [f"      - j: {{name: j{i}}}" for i in range(1, jobs)]
    lines.append("      - wait-for-triggered-pipeline: {type: approval}")
    for w in range(2, WORKFLOWS + 1):
        lines += [f"  side-{w}:", "    jobs: [{j: {name: lint}}]"]
    return "\n".join(lines) + "\n"


class _Remote:
    """An emulator in its own process, driven over HTTP."""

    def __init__(self, projects: dict[str, Path]) -> None:
        args = [CIRCLEBACK, "emulator", "--token", TOKEN, "--page-size", "20"]
        for slug, path in projects.items():
            args += ["--project", f"{slug}={path}"]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True, env=cli_env(""))
        assert self.proc.stdout is not None
        self.url = self.proc.stdout.readline().strip()
        self.http = httpx.Client(base_url=self.url, headers={"Circle-Token": TOKEN}, timeout=60)

    def on_hold(self, slug: str, finish_sides: bool) -> tuple[str, str]:
        """A pipeline of ``slug`` on its hold, and the B it triggered (setup requests cleared)."""
        pid = self.http.post(f"/api/v2/project/{slug}/pipeline", json={"branch": "main"})
        pipeline_id = str(pid.json()["id"])
        if finish_sides:
            for _ in range(WORKFLOWS - 1):
                body = {"project_slug": slug, "job_name": "lint", "status": "success"}
                self.http.post("/_emulator/jobs/finish", json={**body, "pipeline_id": pipeline_id})
        body_b = {"branch": "main", "parameters": {"triggering-pipeline-id": pipeline_id}}
        b = self.http.post(f"/api/v2/project/{B}/pipeline", json=body_b).json()["id"]
        self.http.delete("/_emulator/requests")
        return pipeline_id, str(b)

    def requests(self) -> int:
        return len(self.http.get("/_emulator/requests").json()["items"])

    def close(self) -> None:
        self.http.close()
        self.proc.terminate()
        self.proc.wait(timeout=10)


def _approve(url: str, pair: tuple[str, str]) -> None:
    from circleback.client import CircleCIClient
    from circleback.relay import Outcome, approve

    pipeline_id, downstream = pair
    with CircleCIClient(token=TOKEN, host=url) as client:
        result = approve(
            client, pipeline_id, allow_projects=["gh/acme/*"], downstream_pipeline_id=downstream
        )
    assert result.outcome is Outcome.APPROVED, result


def approve_at_scale(sizes: tuple[int, ...], reps: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        projects = {}
        for n in sizes:
            path = Path(tmp) / f"a{n}.yml"
            path.write_text(_config(n))
            projects[f"gh/acme/a{n}"] = path
        remote = _Remote({**projects, B: PROJECTS[B]})
        try:
            cases = [(n, True) for n in sizes] + [(sizes[-1], False)]
            for n, finish_sides in cases:
                slug = f"gh/acme/a{n}"
                times, cpu = [], []
                for _ in range(reps):
                    pid = remote.on_hold(slug, finish_sides)
                    start, start_cpu = time.perf_counter(), time.process_time()
                    _approve(remote.url, pid)
                    times.append(time.perf_counter() - start)
                    cpu.append(time.process_time() - start_cpu)
                requests = remote.requests()
                pid = remote.on_hold(slug, finish_sides)
                tracemalloc.start()
                _approve(remote.url, pid)
                _, peak = tracemalloc.get_traced_memory()
                tracemalloc.stop()
                rows.append(
                    {
                        "jobs": n,
                        "job_pages": -(-n // 20),
                        # + B's compiled config (the proof of the link) + the approval.
                        "minimum_requests": WORKFLOW_PAGES + -(-n // 20) + 2,
                        "other_workflows": "finished" if finish_sides else "running",
                        "requests": requests,
                        "seconds": median(times),
                        "cpu_seconds": median(cpu),
                        "peak_kib": peak / 1024,
                    }
                )
        finally:
            remote.close()
    return rows


def status_fanout(fanout: int, reps: int) -> dict[str, Any]:
    from circleback.client import CircleCIClient
    from circleback.relay import Downstream, wait_for_downstream

    world = World(projects=PROJECTS)
    with world.served() as host:
        a_pid = world.upstream_on_hold()
        records = [Downstream(**world.finished_downstream(a_pid)) for _ in range(fanout)]
        world.latency(LATENCY_MS)
        counts: dict[str, int] = {}

        def poll(label: str, **kwargs: Any) -> float:
            world.emu.clear_request_log()
            start = time.perf_counter()
            with CircleCIClient(token=TOKEN, host=host) as client:
                assert wait_for_downstream(client, records, **kwargs).succeeded
            counts[label] = len(world.api_requests())
            return time.perf_counter() - start

        seq, par = alternate(
            reps, lambda: poll("sequential", concurrency=1), lambda: poll("concurrent")
        )
        tracemalloc.start()
        poll("memory")
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        world.latency(0)
    world.close()
    return {
        "fanout": fanout,
        "latency_ms": LATENCY_MS,
        "minimum_requests": fanout,
        "sequential_s": median(seq),
        "sequential_requests": counts["sequential"],
        "concurrent_s": median(par),
        "concurrent_requests": counts["concurrent"],
        "peak_kib": peak / 1024,
    }


def run(quick: bool = False) -> dict[str, Any]:
    rows = approve_at_scale(QUICK_SIZES if quick else SIZES, 2 if quick else 3)
    base = [r for r in rows if r["other_workflows"] == "finished"]
    per_page = [r["seconds"] / r["job_pages"] for r in base]
    return {
        "approve": rows,
        "ms_per_page_spread": (min(per_page) * 1000, max(per_page) * 1000),
        "ms_per_page_median": statistics.median(per_page) * 1000,
        "status": [status_fanout(n, 2 if quick else 3) for n in FANOUTS],
    }


def markdown(result: dict[str, Any], before: dict[str, Any] | None) -> str:
    lines = [
        f"Approve, {WORKFLOWS} workflows in A, hold last in the oldest workflow, page size 20 "
        "(median of the timed runs; peak = tracemalloc in the approving process):",
        "",
        "| jobs in the hold's workflow | A's other workflows | requests | minimum "
        "| wall time | circleback's CPU per request | peak memory |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    for r in result["approve"]:
        lines.append(
            f"| {r['jobs']} | {r['other_workflows']} | {r['requests']} | "
            f"{r['minimum_requests']} | {r['seconds'] * 1000:.0f} ms | "
            f"{r.get('cpu_seconds', 0) * 1000 / r['requests']:.1f} ms | "
            f"{r['peak_kib']:.0f} KiB |"
        )
    lines += [
        "",
        "Above the minimum, approve reads the artifacts of every build job of the hold's "
        "workflow that has started, looking for A's trigger record (one request per job); "
        "only the jobs the hold depends on can hold it. While A's other workflows still run "
        "(last row), each also costs one job list first. Memory "
        "does not follow the jobs: they are streamed a page at a time and the search stops "
        "at the hold. The peak's small growth from 200 to 2,000 jobs is bounded caches "
        "filling up (urllib.parse keeps the last 128 URLs it split; httpx's URL parsing); "
        "what approve leaves allocated afterwards is the same at every size (about "
        "130-150 KiB).",
        "",
        f"Status, one poll over finished downstream pipelines, {LATENCY_MS} ms per request "
        "(medians):",
        "",
        "| downstream pipelines | requests | minimum | sequential (pool of 1) "
        "| default pool | peak memory |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for s in result["status"]:
        lines.append(
            f"| {s['fanout']} | {s['concurrent_requests']} | {s['minimum_requests']} | "
            f"{s['sequential_s'] * 1000:.0f} ms | {s['concurrent_s'] * 1000:.0f} ms | "
            f"{s['peak_kib']:.0f} KiB |"
        )
    return "\n".join(lines)
