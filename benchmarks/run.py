"""Run every benchmark and write ``benchmarks/RESULTS.md`` (and the raw figures as JSON).

    .venv/bin/python benchmarks/run.py            # about 10 minutes on 2 shared CPUs
    .venv/bin/python benchmarks/run.py --quick    # fewer runs, for checking the harness

Not part of pytest: nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import critical_path
import install
import round_trips
import scale
import side_by_side
import startup
from _common import HERE, machine

SECTIONS = {
    "side_by_side": side_by_side,
    "startup": startup,
    "critical_path": critical_path,
    "scale": scale,
    "round_trips": round_trips,
    "install": install,
}
COMMAND = ".venv/bin/python benchmarks/run.py"


def _row(rows: list[dict[str, Any]], **match: Any) -> dict[str, Any]:
    return next(r for r in rows if all(r[k] == v for k, v in match.items()))


def verdicts(results: dict[str, Any]) -> list[str]:
    """Each goal of the issue, met or not, from the figures just measured."""
    out: list[str] = []

    def say(ok: bool, text: str) -> None:
        out.append(f"- {'**met**' if ok else '**not met**'}: {text}")

    if "side_by_side" in results:
        rows = results["side_by_side"]["rows"]
        for command in ("approve", "status", "trigger"):
            r = _row(rows, latency_ms=200, command=command)
            say(
                r["ratio_minimal"] <= 1.15,
                f"{command} at 200 ms per request ≤ 1.15 x the same-stack minimal script "
                f"({r['ratio_minimal']:.2f}; {r['circleback_requests']:.0f} requests each).",
            )
    if "startup" in results:
        m = results["startup"]["medians"]
        floor = m['python -c "import typer"']
        for name in (
            "circleback --version",
            "circleback --help",
            'circleback approve --pipeline-id ""',
        ):
            say(
                m[name] / floor <= 1.3,
                f'`{name}` ≤ 1.3 x `python -c "import typer"` ({m[name] / floor:.2f}: '
                f"{m[name] * 1000:.0f} vs {floor * 1000:.0f} ms).",
            )
    if "scale" in results:
        approve = [r for r in results["scale"]["approve"] if r["other_workflows"] == "finished"]
        say(
            all(r["requests"] == r["minimum_requests"] for r in approve),
            "approve requests = the minimum at every size ("
            + ", ".join(f"{r['requests']}/{r['minimum_requests']}" for r in approve)
            + ").",
        )
        status = results["scale"]["status"]
        say(
            all(s["concurrent_requests"] == s["minimum_requests"] for s in status),
            "status requests = the minimum ("
            + ", ".join(f"{s['concurrent_requests']}/{s['minimum_requests']}" for s in status)
            + ").",
        )
        small, big = approve[0], approve[-1]
        growth = big["jobs"] / small["jobs"]
        # Flat: the peak must not follow the work. Holding every job would multiply it by
        # the growth in jobs; bounded caches (urllib.parse keeps 128 URLs) may add a little.
        say(
            big["peak_kib"] <= 2 * small["peak_kib"],
            f"approve's memory flat (peak at {growth:.0f}x the jobs ≤ 2x): "
            f"{small['peak_kib']:.0f} KiB at {small['jobs']} jobs, "
            f"{big['peak_kib']:.0f} KiB at {big['jobs']}.",
        )
        per = [s["peak_kib"] / s["fanout"] for s in status]
        say(
            per[-1] <= 1.5 * per[0],
            "status's memory per downstream pipeline flat: "
            + ", ".join(f"{s['peak_kib'] / s['fanout']:.0f} KiB at {s['fanout']}" for s in status)
            + ".",
        )
    if "critical_path" in results:
        cb = _row(results["critical_path"]["rows"], arm="circleback")
        out.append(
            f"- reported: hold release latency {cb['release_seconds']:.1f} s after B's work "
            f"ends, with a modelled job start of {results['critical_path']['job_start_s']} s "
            "(bounded by one job start plus `circleback approve`; see section 3)."
        )
    return out


def write_markdown(results: dict[str, Any], before: dict[str, Any] | None, path: Path) -> None:
    parts = [
        "# Benchmarks: circleback against its stack, the tutorial's curl + jq, and at scale",
        "",
        f"Machine: {results['machine']}. Taken {results['date']}, in "
        f"{results.get('seconds', 0):.0f} s."
        + "".join(
            f" Section `{name}` measured again at {when}."
            for name, when in results.get("refreshed", {}).items()
        ),
        "",
        f"Reproduce: `{COMMAND}` (writes this file and `benchmarks/results.json`; "
        "`--quick` for a fast check of the harness, `--only SECTION` to refresh one).",
        "",
        "Timings come from a shared machine (2 CPUs, other work running): every time is a "
        "median, every comparison a ratio of medians measured in the same run with "
        "alternating runs. Request counts are exact. Nothing here is asserted in the test "
        "suite (`tests/perf/` asserts behaviour only: imported modules, request counts).",
        "",
        "## Goals",
        "",
        *verdicts(results),
        "",
    ]
    notes = Path(HERE / "NOTES.md")
    if notes.exists():
        parts += [notes.read_text().strip(), ""]
    titles = {
        "side_by_side": "1. Per command: circleback, the tutorial, a minimal same-stack script",
        "startup": "2. Start-up",
        "critical_path": "3. A's critical path in the local executor",
        "scale": "4. Scale",
        "round_trips": "5. Round trips (happy path, from the emulator's request log)",
        "install": "6. Install",
    }
    b = before or {}
    for name, module in SECTIONS.items():
        if name in results:
            parts += [f"## {titles[name]}", "", (module.__doc__ or "").strip(), ""]
            parts += [module.markdown(results[name], b.get(name)), ""]
    # benchmarks/hostile.py keeps its own section (between its markers): carry it over.
    old = path.read_text() if path.exists() else ""
    start, end = old.find("<!-- hostile:begin"), old.find("<!-- hostile:end -->")
    if 0 <= start < end:
        parts += [old[start : end + len("<!-- hostile:end -->")], ""]
    path.write_text("\n".join(parts))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs (checks the harness)")
    parser.add_argument("--only", nargs="*", choices=list(SECTIONS), help="run only these")
    parser.add_argument("--json", type=Path, default=HERE / "results.json")
    parser.add_argument("--before", type=Path, default=HERE / "before.json")
    parser.add_argument("--markdown", type=Path, default=HERE / "RESULTS.md")
    parser.add_argument("--no-markdown", action="store_true")
    parser.add_argument(
        "--render-only", action="store_true", help="rewrite RESULTS.md from the JSON, run nothing"
    )
    parser.add_argument(
        "--baseline", type=Path, help="source tree of the code before; adds a 'before' arm"
    )
    args = parser.parse_args()
    if args.baseline:
        os.environ["BENCH_BASELINE"] = str(args.baseline.resolve())
    if args.render_only:
        before = json.loads(args.before.read_text()) if args.before.exists() else None
        write_markdown(json.loads(args.json.read_text()), before, args.markdown)
        return
    started = time.perf_counter()
    results: dict[str, Any] = {}
    if args.only and args.json.exists():  # refresh some sections, keep the others
        results = json.loads(args.json.read_text())
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    if args.only:  # the header keeps the full run's date; say which sections are newer
        results["refreshed"] = {**results.get("refreshed", {}), **dict.fromkeys(args.only, now)}
    else:
        results |= {"machine": machine(), "date": now, "refreshed": {}}
    for name in args.only or SECTIONS:
        t = time.perf_counter()
        print(f"{name} ...", file=sys.stderr, flush=True)
        results[name] = SECTIONS[name].run(quick=args.quick)
        print(f"{name}: {time.perf_counter() - t:.0f} s", file=sys.stderr, flush=True)
    if not args.only:
        results["seconds"] = time.perf_counter() - started
    args.json.write_text(json.dumps(results, indent=1) + "\n")
    if not args.no_markdown:
        before = json.loads(args.before.read_text()) if args.before.exists() else None
        write_markdown(results, before, args.markdown)
        print(f"wrote {args.markdown}", file=sys.stderr)


if __name__ == "__main__":
    main()
