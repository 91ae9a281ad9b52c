"""6. Install: time to install circleback into a fresh venv from built wheels, and footprint.

The wheel is built from the source tree (``BENCH_SRC``, default this checkout); its
dependencies are fetched once into a local wheelhouse, so the timed installs are offline
and repeatable: ``pip`` and ``uv`` (installed into a throwaway tool venv when not on PATH),
each into a fresh venv, median of several runs, no cache for uv. Footprint: the bytes of
every installed distribution's files, pip itself excluded.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import ROOT, median

UV_TOOL = Path(tempfile.gettempdir()) / "circleback-bench-uv"
_SIZES = """
import json, importlib.metadata as md
sizes = {}
for dist in md.distributions():
    total = 0
    for f in dist.files or ():
        p = f.locate()
        if p.is_file():
            total += p.stat().st_size
    sizes[dist.metadata["Name"]] = total
print(json.dumps(sizes))
"""


def _run(*args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, check=True, capture_output=True, text=True, **kwargs)


def _uv() -> str | None:
    found = shutil.which("uv") or (UV_TOOL / "bin" / "uv")
    if Path(found).exists():
        return str(found)
    try:
        _run(sys.executable, "-m", "venv", str(UV_TOOL))
        _run(str(UV_TOOL / "bin" / "pip"), "install", "-q", "uv")
    except subprocess.CalledProcessError:
        return None
    return str(UV_TOOL / "bin" / "uv")


def _fresh_venv(where: Path) -> Path:
    _run(sys.executable, "-m", "venv", "--without-pip", str(where))
    return where / "bin" / "python"


def run(quick: bool = False) -> dict[str, Any]:
    src = Path(os.environ.get("BENCH_SRC", ROOT))
    reps = 2 if quick else 3
    pip = [sys.executable, "-m", "pip"]
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        house = tmp / "wheels"
        _run(*pip, "wheel", "-q", "--no-deps", "-w", str(house), str(src))
        wheel = next(house.glob("circleback-*.whl"))
        _run(*pip, "wheel", "-q", "-w", str(house), str(wheel))
        offline = ["--no-index", "--find-links", str(house), "circleback"]
        # The target interpreter goes in at index 3: after "python -m pip" / "uv pip install".
        tools: dict[str, list[str]] = {"pip": [*pip, "install", "-q", *offline]}
        uv = _uv()
        if uv:
            tools["uv"] = [uv, "pip", "install", "-q", "--no-cache", *offline]
        times: dict[str, list[float]] = {name: [] for name in tools}
        sizes: dict[str, int] = {}
        for rep in range(reps):
            for name, command in tools.items():
                python = _fresh_venv(tmp / f"venv-{name}-{rep}")
                argv = [*command[:3], "--python", str(python), *command[3:]]
                start = time.perf_counter()
                _run(*argv)
                times[name].append(time.perf_counter() - start)
                if not sizes:
                    sizes = json.loads(_run(str(python), "-c", _SIZES).stdout)
                    _run(str(python), "-P", "-c", "import circleback._cli", cwd=tmp)
        sizes.pop("pip", None)
        dependencies = sorted(sizes.items(), key=lambda kv: kv[1], reverse=True)
    return {
        "wheel": wheel.name,
        "runs": reps,
        "install_s": {name: median(values) for name, values in times.items()},
        "footprint_mb": sum(sizes.values()) / 1e6,
        "distributions": [(name, size / 1e6) for name, size in dependencies],
    }


def markdown(result: dict[str, Any], before: dict[str, Any] | None) -> str:
    old = before or {}
    lines = [
        f"Fresh venv, offline from a local wheelhouse, median of {result['runs']} installs:",
        "",
        "| | before | after |",
        "|---|---:|---:|",
    ]
    for tool, seconds in result["install_s"].items():
        prev = old.get("install_s", {}).get(tool)
        lines.append(
            f"| install with {tool} | {f'{prev:.2f} s' if prev else '-'} | {seconds:.2f} s |"
        )
    prev_mb = old.get("footprint_mb")
    prev_n = len(old.get("distributions", [])) or None
    lines.append(
        f"| installed footprint | {f'{prev_mb:.1f} MB' if prev_mb else '-'} | "
        f"{result['footprint_mb']:.1f} MB |"
    )
    lines.append(f"| distributions installed | {prev_n or '-'} | {len(result['distributions'])} |")
    after = dict(result["distributions"])
    lines += ["", "| distribution | MB before | MB after |", "|---|---:|---:|"]
    names = dict(old.get("distributions", [])) | after
    for name in sorted(names, key=lambda n: names[n], reverse=True):
        b = dict(old.get("distributions", [])).get(name)
        a = after.get(name)
        lines.append(
            f"| {name} | {f'{b:.2f}' if b is not None else '-'} | "
            f"{f'{a:.2f}' if a is not None else '**dropped**'} |"
        )
    return "\n".join(lines)
