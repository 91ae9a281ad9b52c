"""6. Install: the seconds the orb's install adds to each orb job, and the footprint.

Two measurements:

* **Per orb job** (``orb_jobs``): the orb's own ``install.sh`` run for real, as a job runs
  it, with ``pip`` (python3 -m venv) and with ``uv`` on PATH: *cold* (empty install dir and
  empty pip/uv cache: a job on a cache miss, fetching every file from the package index),
  *warm package cache* (empty install dir, the tool's download cache kept: what caching
  pip's or uv's cache instead of the venv would give) and *warm* (the install dir restored
  from CircleCI's cache: what the orb does on a hit; the cache download itself is not
  measurable here). circleback is not on PyPI yet, so its wheel is built from the source
  tree and found with ``--find-links``; its dependencies come from the index
  (https://pypi.org/simple, machine pip config ignored). ``PYTHONDONTWRITEBYTECODE=1`` is
  set, as CI images do, and the installed package is checked for compiled bytecode.
* **Offline** (``run``'s install_s): fresh venv from a local wheelhouse, for the footprint
  and a network-free comparison with the "before" figures.

Every figure is a median; the pip and uv runs alternate so drift hits both.
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

from _common import HERE, ROOT, machine, median

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


INSTALL_SH = ROOT / "orbs" / "circleback" / "src" / "scripts" / "install.sh"
PINS = ROOT / "orbs" / "circleback" / "src" / "scripts" / "pins.txt"
INDEX = "https://pypi.org/simple"
#: The orb's jobs that install circleback; approve without an upstream id installs nothing.
INSTALLING_JOBS = ("trigger", "check", "sweep", "approve (with an upstream id)")


def _install_job(
    tmp: Path, *, tool: str, uv: str | None, house: Path, install_dir: Path, cache: Path,
    skip: bool = False,
) -> float:  # fmt: skip
    """Seconds for one run of the orb's install.sh, as a job on a Linux image runs it."""
    bin_dir = tmp / f"bin-{tool}"
    if not bin_dir.exists():
        bin_dir.mkdir()
        (bin_dir / "python3").symlink_to(sys._base_executable)  # not this venv: no circleback
        if tool == "uv" and uv:
            (bin_dir / "uv").symlink_to(uv)
    home = tmp / "home"
    home.mkdir(exist_ok=True)
    env = {
        "PATH": f"{bin_dir}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),
        "LC_ALL": "C.UTF-8",
        "PARAM_PINS": PINS.read_text(),
        "PARAM_PACKAGE": "circleback",
        "PARAM_INSTALL_DIR": str(install_dir),
        "PIP_CONFIG_FILE": os.devnull,
        "PIP_INDEX_URL": INDEX,
        "PIP_FIND_LINKS": str(house),
        "PIP_CACHE_DIR": str(cache),
        "UV_NO_CONFIG": "1",
        "UV_INDEX_URL": INDEX,
        "UV_FIND_LINKS": str(house),
        "UV_CACHE_DIR": str(cache),
        "UV_PYTHON_DOWNLOADS": "never",
        "UV_NATIVE_TLS": "1",  # the system's certificates, as pip uses them
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    for name in ("SSL_CERT_FILE", "PIP_CERT", "HTTPS_PROXY", "https_proxy", "NO_PROXY"):
        if name in os.environ:
            env[name] = os.environ[name]
    if skip:
        env.update(PARAM_SKIP_WITHOUT_UPSTREAM="true", PARAM_UPSTREAM_PIPELINE_ID="")
    start = time.perf_counter()
    _run("bash", "-eo", "pipefail", "-c", INSTALL_SH.read_text(), env=env, cwd=tmp)
    return time.perf_counter() - start


def _compiled(install_dir: Path) -> tuple[int, int]:
    """(.py files, .pyc files) of the installed circleback package."""
    package = next(install_dir.glob("*/venv/lib/python*/site-packages/circleback"))
    return len(list(package.rglob("*.py"))), len(list(package.rglob("*.pyc")))


def orb_jobs(quick: bool = False) -> dict[str, Any]:
    """Install seconds per orb job: cold, warm package cache and warm, with pip and uv."""
    reps = 2 if quick else 3
    src = Path(os.environ.get("BENCH_SRC", ROOT))
    uv = _uv()
    tools = ["pip", "uv"] if uv else ["pip"]
    times: dict[str, dict[str, list[float]]] = {
        t: {"cold": [], "warm_package_cache": [], "warm": []} for t in tools
    }
    compiled: dict[str, tuple[int, int]] = {}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        house = tmp / "house"
        _run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(house), str(src))
        noop = [
            _install_job(tmp, tool="pip", uv=uv, house=house, install_dir=tmp / "noop",
                         cache=tmp / "noop-cache", skip=True)
            for _ in range(reps)
        ]  # fmt: skip
        for rep in range(reps):
            for tool in tools:
                cache = tmp / f"cache-{tool}-{rep}"
                first = tmp / f"install-{tool}-{rep}-a"
                second = tmp / f"install-{tool}-{rep}-b"
                common = {"tmp": tmp, "tool": tool, "uv": uv, "house": house, "cache": cache}
                times[tool]["cold"].append(_install_job(install_dir=first, **common))
                times[tool]["warm_package_cache"].append(_install_job(install_dir=second, **common))
                times[tool]["warm"].append(_install_job(install_dir=first, **common))
                compiled.setdefault(tool, _compiled(first))
    return {
        "runs": reps,
        "index": INDEX,
        "seconds": {t: {k: median(v) for k, v in kinds.items()} for t, kinds in times.items()},
        "noop_s": median(noop),
        "compiled": compiled,
    }


def orb_jobs_markdown(result: dict[str, Any]) -> str:
    seconds = result["seconds"]
    lines = [
        f"The orb's install.sh, run for real, median of {result['runs']} runs; dependencies "
        f"from {result['index']} (circleback's own wheel from a local --find-links until it "
        "is on PyPI); PYTHONDONTWRITEBYTECODE=1 as CI images set it.",
        "",
        "| orb job | installer | cold (cache miss) | warm package cache | warm (cache hit) |",
        "|---|---|---:|---:|---:|",
    ]
    for job in INSTALLING_JOBS:
        for tool, s in seconds.items():
            lines.append(
                f"| {job} | {tool} | {s['cold']:.2f} s | {s['warm_package_cache']:.2f} s | "
                f"{s['warm']:.2f} s |"
            )
    lines.append(
        f"| approve (no upstream id) | none | {result['noop_s']:.3f} s | "
        f"{result['noop_s']:.3f} s | {result['noop_s']:.3f} s |"
    )
    for tool, (py, pyc) in result["compiled"].items():
        lines.append("")
        lines.append(f"Bytecode after the {tool} install: {pyc} .pyc for {py} .py files.")
    lines += [
        "",
        "Every installing job pays the same: the install does not depend on the job. A cache",
        "hit also pays CircleCI's cache download, which cannot be measured here.",
    ]
    return "\n".join(lines)


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
        "orb_jobs": orb_jobs(quick),
        "wheel": wheel.name,
        "runs": reps,
        "install_s": {name: median(values) for name, values in times.items()},
        "footprint_mb": sum(sizes.values()) / 1e6,
        "distributions": [(name, size / 1e6) for name, size in dependencies],
    }


def markdown(result: dict[str, Any], before: dict[str, Any] | None) -> str:
    old = before or {}
    lines = []
    if "orb_jobs" in result:
        lines += ["Per orb job:", "", orb_jobs_markdown(result["orb_jobs"]), ""]
    lines += [
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


ORB_JOBS_RESULTS = HERE / "INSTALL.md"


if __name__ == "__main__":
    import argparse
    import datetime

    parser = argparse.ArgumentParser(
        description="install seconds per orb job; writes benchmarks/INSTALL.md"
    )
    parser.add_argument("--quick", action="store_true")
    figures = orb_jobs(parser.parse_args().quick)
    taken = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    ORB_JOBS_RESULTS.write_text(
        "# Install seconds per orb job\n\n"
        "`.venv/bin/python benchmarks/install.py` (needs the package index; a few minutes). "
        f"Taken {taken} on {machine()}, a machine shared with other work: absolute "
        "seconds vary run to run, the pip/uv ratio and the cold/warm gap less so.\n\n"
        f"{orb_jobs_markdown(figures)}\n"
    )
    print(json.dumps(figures, indent=2))
    print(f"wrote {ORB_JOBS_RESULTS}")
