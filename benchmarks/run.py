"""Run every benchmark and write ``benchmarks/RESULTS.md`` (and the raw figures as JSON).

    .venv/bin/python benchmarks/run.py            # about 4 minutes
    .venv/bin/python benchmarks/run.py --quick    # fewer runs, for checking the harness

"Before" columns come from ``benchmarks/before.json``, written by the same script run
against the code before the performance work (see RESULTS.md for the exact command).
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

import install
import round_trips
import scale
import side_by_side
import startup
import waiting
from _common import HERE, machine

SECTIONS = {
    "round_trips": round_trips,
    "side_by_side": side_by_side,
    "startup": startup,
    "scale": scale,
    "waiting": waiting,
    "install": install,
}
BASELINE = "f10bc36"
PREPARE = f"mkdir -p /tmp/before && git archive {BASELINE} | tar -x -C /tmp/before"
COMMAND = ".venv/bin/python benchmarks/run.py --baseline /tmp/before"
BEFORE_COMMAND = (
    "BENCH_SRC=/tmp/before PYTHONPATH=/tmp/before .venv/bin/python benchmarks/run.py "
    "--json benchmarks/before.json --no-markdown"
)


def _row(rows: list[dict[str, Any]], **match: Any) -> dict[str, Any]:
    return next(r for r in rows if all(r[k] == v for k, v in match.items()))


def verdicts(results: dict[str, Any]) -> list[str]:
    """Each target of the issue, met or not, from the figures just measured."""
    out: list[str] = []

    def say(ok: bool, text: str) -> None:
        out.append(f"- {'**met**' if ok else '**not met**'}: {text}")

    if "round_trips" in results:
        n = _row(results["round_trips"]["rows"], page_size=20, workflows=1, command="approve")
        say(n["circleback"] <= 3, f"approve ≤ 3 requests in the common case ({n['circleback']}).")
    if "side_by_side" in results:
        rows = results["side_by_side"]["rows"]
        for latency, target in ((200, 1.2), (50, 2.0)):
            for command in ("trigger", "approve", "status"):
                r = _row(rows, latency_ms=latency, command=command)
                say(
                    r["ratio"] <= target,
                    f"{command} ratio at {latency} ms ≤ {target} ({r['ratio']:.2f}; "
                    f"{r['circleback_requests']:.0f} requests vs the tutorial's "
                    f"{r['tutorial_requests']:.0f}).",
                )
        overs = [
            _row(rows, latency_ms=lat, command="approve")["circleback_overhead_s"] * 1000
            for lat in (0, 50, 200)
        ]
        shown = " / ".join(f"{o:.0f}" for o in overs)
        say(
            sorted(overs)[1] <= 250,
            f"approve's fixed overhead ≤ 250 ms (median of the three latencies; at 0 / 50 / "
            f"200 ms: {shown} ms).",
        )
    if "startup" in results:
        m = results["startup"]["medians"]
        v, a = m["circleback --version"], m['circleback approve --pipeline-id ""']
        say(v <= 0.15, f"`--version` ≤ 150 ms ({v * 1000:.0f} ms).")
        say(a <= 0.15, f"no-op approve ≤ 150 ms ({a * 1000:.0f} ms).")
        say(not results["startup"]["orb"]["started"], "the orb's no-op path starts no Python.")
    return out


def write_markdown(results: dict[str, Any], before: dict[str, Any] | None, path: Path) -> None:
    b = before or {}
    parts = [
        "# Benchmarks: circleback against the tutorial's curl + jq, and at scale",
        "",
        f"Machine: {results['machine']}. Taken {results['date']}, in {results['seconds']:.0f} s.",
        "",
        f"Reproduce: `{PREPARE} && {COMMAND}` (about 4 minutes; writes this file and "
        "`benchmarks/results.json`; `--quick` for a fast check). `--baseline` points at "
        f"commit `{BASELINE}`, the code before this work: sections 2 and 3 run it as a third "
        "arm, alternating with circleback and the tutorial, so before and after are measured "
        "together. Sections 1, 4, 5 and 6 take their *before* column from "
        f"`benchmarks/before.json`, written by `{BEFORE_COMMAND}`.",
        "",
        "Timings come from a shared machine: every time is a median, every comparison a "
        "ratio of medians measured in the same run with alternating runs. Request counts "
        "are exact. Nothing here is asserted in the test suite (`tests/perf/` asserts "
        "behaviour only).",
        "",
        "## Targets",
        "",
        *verdicts(results),
        "",
    ]
    notes = Path(HERE / "NOTES.md")
    if notes.exists():
        parts += [notes.read_text().strip(), ""]
    titles = {
        "round_trips": "1. Round trips (happy path, from the emulator's request log)",
        "side_by_side": "2. End to end, side by side with the tutorial",
        "startup": "3. Start-up",
        "scale": "4. Scale",
        "waiting": "5. What waiting costs",
        "install": "6. Install",
    }
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
    results |= {
        "machine": machine(),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }
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
