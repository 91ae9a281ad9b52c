"""Shared pieces of the benchmarks: an emulated CircleCI world, timing and formatting.

Timings on shared machines are noisy, so every figure is a median over repeated runs and
every comparison is a ratio of medians measured in the same run, alternating the two
sides so drift hits both equally.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import statistics
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent
CONFIGS = HERE / "configs"
TUTORIAL = HERE / "tutorial.sh"
TOKEN = "CCIPAT_bench-t0ken"
A, A10, B = "gh/acme/a", "gh/acme/a10", "gh/acme/b"
PROJECTS = {A: CONFIGS / "a.yml", A10: CONFIGS / "a10.yml", B: CONFIGS / "b.yml"}
HOLD = "wait-for-triggered-pipeline"
BIN = Path(sys.executable).parent
CIRCLEBACK = str(BIN / "circleback")


def median(values: list[float]) -> float:
    return statistics.median(values)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def baseline() -> str | None:
    """The source tree of the code before this work, for "before" arms in the same run."""
    return os.environ.get("BENCH_BASELINE") or None


def cli_env(host: str, **extra: str) -> dict[str, str]:
    """The environment of a CI step: token, emulator host, ``CI`` set (JSON logs)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CIRCLE", "CI"))}
    env.update(
        CIRCLEBACK_TOKEN=TOKEN, CIRCLECI_API_KEY=TOKEN, CIRCLEBACK_HOST=host, CI="true", **extra
    )
    return env


class World:
    """An emulator (in-process, optionally served over loopback) and setup shortcuts.

    Setup goes through the in-process transport before any latency fault is added, so
    only the command under test pays the injected latency.
    """

    def __init__(
        self,
        page_size: int = 20,
        projects: dict[str, Path] | None = None,
        on_job_start: Callable[[Any], None] | None = None,
    ) -> None:
        import httpx

        from circleback.emulator import Emulator

        self.emu = Emulator(
            projects=projects or PROJECTS,
            tokens=(TOKEN,),
            page_size=page_size,
            on_job_start=on_job_start,
        )
        self.api = httpx.Client(
            transport=self.emu.transport(),
            base_url="http://127.0.0.1/api/v2",
            headers={"Circle-Token": TOKEN},
        )
        self.server: Any = None

    @contextlib.contextmanager
    def served(self) -> Iterator[str]:
        """Serve over loopback; yields the host URL for ``CIRCLEBACK_HOST``."""
        from circleback.emulator.server import make_server

        with make_server(self.emu) as server:
            self.server = server
            yield server.url

    def close(self) -> None:
        self.api.close()

    # -- setup ------------------------------------------------------------------------

    def trigger(self, slug: str, **parameters: Any) -> str:
        body: dict[str, Any] = {"branch": "main"}
        if parameters:
            body["parameters"] = parameters
        response = self.api.post(f"/project/{slug}/pipeline", json=body)
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    def finish(self, slug: str, job: str, pipeline_id: str, status: str = "success") -> None:
        self.emu.finish_job_by_name(slug, job, status, pipeline_id=pipeline_id)

    def upstream_on_hold(self, slug: str = A) -> str:
        """A pipeline of A that built, triggered, and now sits on its hold."""
        pid = self.trigger(slug)
        self.finish(slug, "build", pid)
        self.finish(slug, "trigger", pid)
        return pid

    def finished_downstream(self, upstream_id: str, slug: str = B) -> dict[str, Any]:
        """A pipeline of B whose jobs all succeeded, as a state-file record."""
        pid = self.trigger(slug, **{"triggering-pipeline-id": upstream_id})
        self.finish(slug, "build-and-test", pid)
        pipe = self.api.get(f"/pipeline/{pid}").json()
        return {
            "project_slug": slug,
            "pipeline_id": pid,
            "number": pipe["number"],
            "state": pipe["state"],
            "url": f"https://app.circleci.com/pipelines/{slug}/{pipe['number']}",
        }

    def items(self, path: str) -> list[dict[str, Any]]:
        """Every item of a list endpoint, following pages."""
        items: list[dict[str, Any]] = []
        token = None
        while True:
            page = self.api.get(path, params={"page-token": token} if token else {}).json()
            items.extend(page["items"])
            token = page["next_page_token"]
            if token is None:
                return items

    def hold_status(self, pipeline_id: str) -> str:
        for wf in self.items(f"/pipeline/{pipeline_id}/workflow"):
            for job in self.items(f"/workflow/{wf['id']}/job"):
                if job["name"] == HOLD:
                    return str(job["status"])
        return "missing"

    # -- measuring ----------------------------------------------------------------------

    def api_requests(self) -> list[dict[str, Any]]:
        return [r for r in self.emu.request_log if not r["path"].startswith("/_emulator")]

    def latency(self, latency_ms: int) -> None:
        """Every API request from now on answers ``latency_ms`` later (0: none)."""
        self.emu.clear_faults()
        if latency_ms:
            self.emu.add_fault("latency", latency_ms=latency_ms, count=None)


def write_state(path: Path, records: list[dict[str, Any]]) -> None:
    """A state file as ``circleback trigger --state-file`` writes it (format version 1)."""
    path.write_text(json.dumps({"version": 1, "downstream": records}))


def run_cli_in_process(world: World, args: list[str], env: dict[str, str]) -> int:
    """``circleback ARGS`` in this process, through the emulator's in-process transport."""
    from circleback import _cli

    saved_env = dict(os.environ)
    saved_runtime = _cli.RUNTIME
    os.environ.clear()
    os.environ.update(env)
    _cli.RUNTIME = _cli.Runtime(transport=world.emu.transport())
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            return _cli.run(args)
    finally:
        _cli.RUNTIME = saved_runtime
        os.environ.clear()
        os.environ.update(saved_env)


def alternate(reps: int, *runs: Callable[[], float]) -> list[list[float]]:
    """Run each callable ``reps`` times, interleaved, rotating which goes first."""
    results: list[list[float]] = [[] for _ in runs]
    for rep in range(reps):
        order = list(range(len(runs)))
        order = order[rep % len(order) :] + order[: rep % len(order)]
        for i in order:
            results[i].append(runs[i]())
    return results


def machine() -> str:
    """One line about where the figures were taken."""
    import platform

    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = ""
    with contextlib.suppress(OSError, IndexError, ValueError):
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kb / 1024 / 1024:.1f} GiB RAM"
    return (
        f"{platform.system()} {platform.release()}, {cpu}, {os.cpu_count()} CPUs{mem}, "
        f"Python {platform.python_version()}"
    )
