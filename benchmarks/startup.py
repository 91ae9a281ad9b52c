"""2. Start-up: whole processes (``--version``, ``--help``, the no-op approve) and imports.

Medians over alternating runs, each against ``python -c "import typer"`` (the goal: at most
1.3 times that) and ``python -c pass`` (the floor every Python command pays).
``-X importtime`` shows where the rest goes. The orb's no-op path is checked by
running its script with ``circleback`` and ``python`` on PATH replaced by tripwires.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import CIRCLEBACK, ROOT, alternate, baseline, cli_env, median

ORB_APPROVE = ROOT / "orbs" / "circleback" / "src" / "scripts" / "approve.sh"
COMMANDS = {
    "python -c pass (floor)": [sys.executable, "-c", "pass"],
    'python -c "import typer"': [sys.executable, "-c", "import typer"],
    "circleback --version": [CIRCLEBACK, "--version"],
    "circleback --help": [CIRCLEBACK, "--help"],
    "circleback approve --help": [CIRCLEBACK, "approve", "--help"],
    "circleback approve": [CIRCLEBACK, "approve"],
    'circleback approve --pipeline-id ""': [CIRCLEBACK, "approve", "--pipeline-id", ""],
}
#: What the approve command imports on its full path (no network needed to import it).
FULL_APPROVE_IMPORTS = (
    "from circleback import _cli\n"
    "getattr(_cli, '_skip_httpx_cli', lambda: None)()\n"
    "import circleback.client, circleback.relay.approve, circleback.settings\n"
    "import circleback._logging, circleback._logging as l; l._import_structlog()\n"
    "import pydantic_settings"
)


def _timed(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, env=env, capture_output=True, check=True)
    return time.perf_counter() - start


def importtime(argv: list[str], env: dict[str, str], top: int = 10) -> list[tuple[str, float]]:
    """The ``top`` modules by cumulative import time (ms), outermost entries only."""
    done = subprocess.run(
        # -P: never import circleback from the working directory instead of PYTHONPATH.
        [sys.executable, "-X", "importtime", "-P", *argv],
        env=env,
        capture_output=True,
        text=True,
    )
    rows: list[tuple[str, float]] = []
    total = 0.0
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative, raw = line.split("|")
        name = raw.strip()
        rows.append((name, int(cumulative) / 1000))
        if len(raw) - len(raw.lstrip()) == 1:  # an import made by the program itself
            total += int(cumulative) / 1000
    rows.sort(key=lambda r: r[1], reverse=True)
    return [("(all imports, top level)", total), *rows[:top]]


def orb_noop() -> dict[str, Any]:
    """Run the orb's approve.sh with no upstream id; PATH's circleback/python are tripwires."""
    with tempfile.TemporaryDirectory() as tmp:
        trip = Path(tmp) / "tripped"
        for name in ("circleback", "python", "python3", "pip", "pipx"):
            shim = Path(tmp) / name
            shim.write_text(f"#!/bin/sh\necho {name} >> {trip}\n")
            shim.chmod(0o755)
        env = {"PATH": f"{tmp}:/usr/bin:/bin", "PARAM_UPSTREAM_PIPELINE_ID": ""}
        times = [_timed(["bash", str(ORB_APPROVE)], env) for _ in range(11)]
        started = trip.read_text().split() if trip.exists() else []
    lines = ORB_APPROVE.read_text().splitlines()
    exit_line = next(i for i, text in enumerate(lines, 1) if 'if [ -z "$upstream_id" ]' in text)
    return {"median_s": median(times), "started": started, "exit_line": exit_line}


def run(quick: bool = False) -> dict[str, Any]:
    env = cli_env("http://127.0.0.1:9")
    env.pop("CI")
    reps = 5 if quick else 21
    arms = [(name, argv, env) for name, argv in COMMANDS.items()]
    old_env = dict(env, PYTHONPATH=str(baseline())) if baseline() else None
    if old_env:  # the code before this work, alternating with it in this same run
        arms += [(f"{name} [before]", argv, old_env) for name, argv in COMMANDS.items()]
    results = alternate(reps, *[lambda a=argv, e=e: _timed(a, e) for _, argv, e in arms])
    medians = {name: median(times) for (name, _, _), times in zip(arms, results, strict=True)}
    noop_argv = ["-c", "from circleback._cli import main; main()", "approve", "--pipeline-id", ""]
    out: dict[str, Any] = {
        "runs": reps,
        "medians": {k: v for k, v in medians.items() if not k.endswith("[before]")},
        "importtime_noop": importtime(noop_argv, env),
        "importtime_full": importtime(["-c", FULL_APPROVE_IMPORTS], env),
        "orb": orb_noop(),
    }
    if old_env:
        out["before"] = {
            "medians": {
                k.removesuffix(" [before]"): v for k, v in medians.items() if k.endswith("[before]")
            },
            "importtime_noop": importtime(noop_argv, old_env),
            "importtime_full": importtime(["-c", FULL_APPROVE_IMPORTS], old_env),
        }
    return out


def markdown(result: dict[str, Any], before: dict[str, Any] | None) -> str:
    same_run = "before" in result
    before = result["before"] if same_run else before
    lines = [
        f"Median of {result['runs']} alternating runs each; before: "
        + (
            "the code before this work, alternating in this same run."
            if same_run
            else "from `before.json` (a separate run)."
        ),
        "",
        "| process | median | / `import typer` | goal |",
        "|---|---:|---:|---|",
    ]
    typer_s = result["medians"]['python -c "import typer"']
    for name, seconds in result["medians"].items():
        goal = "≤ 1.3" if name.startswith("circleback") else ""
        lines.append(f"| `{name}` | {seconds * 1000:.0f} ms | {seconds / typer_s:.2f} | {goal} |")
    for key, title in (
        ("importtime_noop", 'no-op approve (`circleback approve --pipeline-id ""`)'),
        ("importtime_full", "everything the approve command imports on its full path"),
    ):
        lines += [
            "",
            f"`python -X importtime`, {title}: cumulative ms, largest first "
            "(`-`: not among the largest in that version)",
            "",
        ]
        lines += ["| module | before | after |", "|---|---:|---:|"]
        old_rows = dict((before or {}).get(key, []))
        new_rows = dict(result[key])
        names = sorted(
            old_rows.keys() | new_rows.keys(),
            key=lambda n: max(old_rows.get(n, 0), new_rows.get(n, 0)),
            reverse=True,
        )
        for name in names:
            old = f"{old_rows[name]:.0f}" if name in old_rows else "-"
            new = f"{new_rows[name]:.0f}" if name in new_rows else "-"
            lines.append(f"| `{name}` | {old} | {new} |")
    orb = result["orb"]
    started = ", ".join(orb["started"]) or "nothing"
    lines += [
        "",
        f"Orb no-op: `orbs/circleback/src/scripts/approve.sh` with an empty upstream id exits at "
        f'line {orb["exit_line"]} (`if [ -z "$upstream_id" ]` … `exit 0`), before the CLI '
        f"check, the token or the install; with tripwire `circleback`/`python`/`pip` on PATH it "
        f"started **{started}**, median {orb['median_s'] * 1000:.0f} ms (bash alone).",
    ]
    return "\n".join(lines)
