"""The orb and the example configs against CircleCI's schema, yamllint, shellcheck, and the
orb development kit's conventions (descriptions, snake_case, scripts only via include).

The schema is CircleCI's config schema as shipped with check-jsonschema
(``--builtin-schema vendor.circle-ci``); the three tools come from the test venv.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from orb_helpers import EXAMPLES, ORB_SRC, PINS, REPO, SCRIPTS, YAMLLINT_CONFIG, require_tool

from circleback.orbpack import pack_orb, pack_orb_yaml

ORB_REF = "circleback/circleback@0.1.0"
SNAKE_CASE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")
INCLUDE = re.compile(r"^<<include\(scripts/([a-z_]+\.sh)\)>>$")
COMPONENT_KINDS = ("commands", "jobs", "executors")
#: Keys a workflow may give any job invocation, besides the job's own parameters.
WORKFLOW_JOB_KEYS = {
    "name", "requires", "context", "filters", "type", "matrix", "pre-steps", "post-steps",
    "serial-group", "override-with",
}  # fmt: skip

EXAMPLE_CONFIGS = sorted(EXAMPLES.rglob(".circleci/config.yml"))


def source_files() -> dict[str, dict[str, Any]]:
    """Every component file as loaded YAML, keyed "kind/name" (before packing)."""
    files = {}
    for kind in (*COMPONENT_KINDS, "examples"):
        for path in sorted((ORB_SRC / kind).glob("*.yml")):
            files[f"{kind}/{path.stem}"] = yaml.safe_load(path.read_text())
    return files


def run_tool(*argv: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in argv], cwd=REPO, capture_output=True, text=True, timeout=120, check=False
    )


def run_steps(steps: list[Any]) -> Iterator[dict[str, Any]]:
    """Every `run` step's mapping, looking inside when/unless blocks."""
    for step in steps:
        if not isinstance(step, dict):
            continue
        for key, body in step.items():
            if key == "run" and isinstance(body, dict):
                yield body
            elif key in ("when", "unless"):
                yield from run_steps(body["steps"])


# -- CircleCI's schema --------------------------------------------------------------------


def test_packed_orb_matches_circleci_schema(tmp_path: Path) -> None:
    checker = require_tool("check-jsonschema")
    packed = tmp_path / "orb.yml"
    packed.write_text(pack_orb_yaml(ORB_SRC))

    result = run_tool(checker, "--builtin-schema", "vendor.circle-ci", packed)

    assert result.returncode == 0, result.stdout + result.stderr


def test_example_configs_match_circleci_schema() -> None:
    checker = require_tool("check-jsonschema")
    # project-a/b, fan-out (3), fan-in (3), chain (a, b, c and the cycling c), webhook B
    assert len(EXAMPLE_CONFIGS) == 13

    result = run_tool(checker, "--builtin-schema", "vendor.circle-ci", *EXAMPLE_CONFIGS)

    assert result.returncode == 0, result.stdout + result.stderr


def test_every_orb_usage_example_is_a_config_matching_circleci_schema(tmp_path: Path) -> None:
    checker = require_tool("check-jsonschema")
    usages = []
    for name, example in pack_orb(ORB_SRC)["examples"].items():
        path = tmp_path / f"{name}.yml"
        path.write_text(yaml.safe_dump(example["usage"], sort_keys=False))
        usages.append(path)
    assert len(usages) >= 7

    result = run_tool(checker, "--builtin-schema", "vendor.circle-ci", *usages)

    assert result.returncode == 0, result.stdout + result.stderr


# -- linters ------------------------------------------------------------------------------


def test_yamllint_passes_from_the_repository_root() -> None:
    """orb-tools' lint job runs yamllint from the root, where it reads .yamllint."""
    yamllint = require_tool("yamllint")
    assert YAMLLINT_CONFIG.is_file()

    result = run_tool(yamllint, "--strict", ".")

    assert result.returncode == 0, result.stdout + result.stderr


def test_shellcheck_passes_on_every_script() -> None:
    shellcheck = require_tool("shellcheck")
    scripts = sorted(SCRIPTS.glob("*.sh"))
    assert scripts

    # --shell=sh: POSIX only, no bashisms (macOS's bash 3.2, dash and busybox read these).
    result = run_tool(shellcheck, "--shell=sh", "--severity=style", *scripts)

    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("script", sorted(p.name for p in SCRIPTS.glob("*.sh")))
def test_scripts_never_write_what_circleci_reads_as_a_parameter(script: str) -> None:
    # CircleCI expands << ... >> in included scripts too: a here-document would break.
    assert "<<" not in (SCRIPTS / script).read_text()


@pytest.mark.parametrize("script", sorted(p.name for p in SCRIPTS.glob("*.sh")))
def test_scripts_are_posix_sh_that_switch_tracing_off_first(script: str) -> None:
    lines = (SCRIPTS / script).read_text().splitlines()
    code = [line for line in lines if line.strip() and not line.startswith("#")]
    assert lines[0] == "#!/bin/sh"
    # Before anything else runs: an inherited set -x must not trace the token.
    assert code[0].startswith("set +x")
    assert code[1] == "set -eu"
    assert "pipefail" not in "\n".join(code)  # dash has none; the scripts need none


def _functions(text: str) -> dict[str, str]:
    """Each shell function defined at the top level: name -> its whole text."""
    pattern = re.compile(r"(?ms)^([a-z_]+)\(\) \{\n.*?^\}$")
    return {m.group(1): m.group(0) for m in pattern.finditer(text)}


def test_helpers_shared_by_the_scripts_are_the_same_everywhere() -> None:
    """Each script is included on its own, so helpers are copied: the copies must agree."""
    seen: dict[str, tuple[str, str]] = {}
    for path in sorted(SCRIPTS.glob("*.sh")):
        for name, body in _functions(path.read_text()).items():
            if name in seen:
                assert body == seen[name][1], f"{name}() differs in {path.name}, {seen[name][0]}"
            else:
                seen[name] = (path.name, body)
    assert {"die", "strip", "quote", "env_subst", "load_token"} <= set(seen)


# -- the orb development kit's conventions ------------------------------------------------


def test_src_holds_only_orb_yaml_and_scripts() -> None:
    allowed_dirs = {"commands", "jobs", "executors", "examples", "scripts"}
    for path in ORB_SRC.rglob("*"):
        rel = path.relative_to(ORB_SRC)
        if path.is_dir():
            assert rel.parts[0] in allowed_dirs, rel
            assert len(rel.parts) == 1, rel
        elif rel.parts[0] == "scripts":
            assert path.suffix == ".sh" or rel == Path("scripts/pins.txt"), rel
        else:
            assert path.suffix == ".yml", rel
            assert len(rel.parts) == 2 or rel == Path("@orb.yml"), rel


def test_orb_top_level_declares_version_description_and_display() -> None:
    top = yaml.safe_load((ORB_SRC / "@orb.yml").read_text())

    assert top["version"] == 2.1
    assert top["description"].strip()
    assert set(top["display"]) == {"home_url", "source_url"}


def test_every_component_and_parameter_is_described_and_snake_case() -> None:
    for key, component in source_files().items():
        kind, name = key.split("/")
        if kind != "examples":
            assert SNAKE_CASE.match(name), key
        assert str(component.get("description", "")).strip(), f"{key} has no description"
        for param, spec in (component.get("parameters") or {}).items():
            assert SNAKE_CASE.match(param), f"{key}: parameter {param}"
            assert str(spec.get("description", "")).strip(), f"{key}: {param} has no description"


def test_token_parameters_are_env_var_names_defaulting_to_circle_token() -> None:
    seen = 0
    for key, component in source_files().items():
        params = component.get("parameters") or {}
        if "token" in params:
            seen += 1
            assert params["token"]["type"] == "env_var_name", key
            assert params["token"]["default"] == "CIRCLE_TOKEN", key
    assert seen == 8  # four commands and four jobs that talk to CircleCI


def test_every_job_takes_an_executor_defaulting_to_the_orbs_own() -> None:
    executors = {k.split("/")[1] for k in source_files() if k.startswith("executors/")}
    assert executors == {"default"}
    for key, job in source_files().items():
        if key.startswith("jobs/"):
            assert job["parameters"]["executor"] == {
                "type": "executor",
                "default": "default",
                "description": job["parameters"]["executor"]["description"],
            }, key
            assert job["executor"] == "<< parameters.executor >>", key


def test_the_pins_name_the_packages_version_and_nothing_else_does() -> None:
    """One place names the version the orb installs: scripts/pins.txt."""
    from circleback import __version__

    pinned = re.findall(r"(?m)^circleback==([^\s\\;]+)", PINS.read_text())
    assert pinned == [__version__]
    for key, component in source_files().items():
        version = (component.get("parameters") or {}).get("version")
        if version is not None:
            assert version["default"] == "", key
    for path in ORB_SRC.rglob("*.yml"):
        assert __version__ not in path.read_text().replace(f"@{__version__}", ""), path


def test_the_pins_are_either_released_with_hashes_or_say_they_are_not() -> None:
    text = PINS.read_text()
    requirements = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    if "# status: released" in text:
        hashed = [line for line in requirements if "--hash=sha256:" in line]
        assert hashed, "a released pins file hash-pins every requirement"
    else:
        assert "# status: unreleased" in text
        assert "--hash" not in text
        assert "not on PyPI yet" in text
    bootstrap = re.search(r"(?m)^# bootstrap-pip: (https://\S+\.whl) sha256=[0-9a-f]{64}$", text)
    assert bootstrap, "the pins name a pip wheel (URL and sha256) for Pythons without pip"
    assert bootstrap.group(1).startswith("https://files.pythonhosted.org/")


def test_run_steps_include_a_script_and_pass_parameters_only_as_environment() -> None:
    used_scripts = set()
    for key, component in source_files().items():
        if not key.startswith("commands/"):
            continue
        declared = set(component.get("parameters") or {})
        for run in run_steps(component["steps"]):
            match = INCLUDE.match(run["command"])
            assert match, f"{key}: a run step's whole command must be <<include(scripts/x.sh)>>"
            script = match.group(1)
            used_scripts.add(script)
            env = run.get("environment", {})
            for var, value in env.items():
                assert var.startswith("PARAM_"), f"{key}: {var}"
                if var == "PARAM_PINS":
                    assert value == "<<include(scripts/pins.txt)>>", key
                    continue
                for ref in re.findall(r"<<\s*([\w.-]+)\s*>>", str(value)):
                    assert ref == "pipeline.id" or (
                        ref.startswith("parameters.") and ref.split(".", 1)[1] in declared
                    ), f"{key}: {var} refers to {ref}"
            # Every PARAM_ the step sets is read by its script, and vice versa, except the
            # install script's approve-only switch, which defaults to off, and the token's
            # variable name, which install has no parameter for (it checks the usual names).
            read = set(re.findall(r"\bPARAM_[A-Z_]+\b", (SCRIPTS / script).read_text()))
            optional = {
                "PARAM_SKIP_WITHOUT_UPSTREAM",
                "PARAM_UPSTREAM_PIPELINE_ID",
                "PARAM_TOKEN_VAR",
            }
            assert set(env) <= read, f"{key}: sets {sorted(set(env) - read)} that {script} ignores"
            missing = read - set(env) - (optional if script == "install.sh" else set())
            assert not missing, f"{key}: {script} reads {sorted(missing)}, never set"
    assert used_scripts == {p.name for p in SCRIPTS.glob("*.sh")}, "an unused script"


def test_approve_upstream_runs_every_step_always_but_saves_only_a_good_install() -> None:
    """A post-step must run after B's job failed, so every step is `when: always`, except
    save_cache: saved after a failed install, an empty or broken install would sit under
    the key for good (CircleCI never overwrites a cache), and every later job would
    install from scratch. It saves only when every step before it succeeded."""
    steps = source_files()["commands/approve_upstream"]["steps"]
    flat = []
    for step in steps:
        if "when" in step:
            assert step["when"]["condition"] == "<< parameters.upstream_pipeline_id >>"
            flat.extend(step["when"]["steps"])
        else:
            flat.append(step)
    for step in flat:
        ((kind, body),) = step.items()
        if kind == "save_cache":
            assert body.get("when", "on_success") == "on_success", step
        else:
            assert body["when"] == "always", step
    assert any("save_cache" in step for step in flat)


def test_approve_upstream_checks_for_an_upstream_before_installing() -> None:
    steps = source_files()["commands/approve_upstream"]["steps"]
    runs = list(run_steps(steps))
    install = next(r for r in runs if "install.sh" in r["command"])
    assert install["environment"]["PARAM_SKIP_WITHOUT_UPSTREAM"] == "true"
    assert install["environment"]["PARAM_UPSTREAM_PIPELINE_ID"] == (
        "<< parameters.upstream_pipeline_id >>"
    )
    # Cache steps cannot check in shell: they exist only when the id is non-empty.
    for step in steps:
        if "restore_cache" in step or "save_cache" in step:
            pytest.fail("cache steps of approve_upstream must sit inside a when block")


# -- examples use the orb as it is --------------------------------------------------------


#: Examples that by design do not use the orb: B in the webhook mode has no callback job.
WITHOUT_ORB = {EXAMPLES / "webhook" / "project-b" / ".circleci" / "config.yml"}


def all_configs() -> Iterator[tuple[str, dict[str, Any]]]:
    for path in EXAMPLE_CONFIGS:
        if path not in WITHOUT_ORB:
            yield str(path.relative_to(REPO)), yaml.safe_load(path.read_text())
    for name, example in pack_orb(ORB_SRC)["examples"].items():
        yield f"orb example {name}", example["usage"]


def orb_invocations(config: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(kind, component, arguments) for every use of the orb in a config."""

    def steps_of(steps: list[Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
        for step in steps:
            name, args = (step, {}) if isinstance(step, str) else next(iter(step.items()))
            if name.startswith("circleback/"):
                yield "commands", name.split("/", 1)[1], args or {}

    for job in (config.get("jobs") or {}).values():
        yield from steps_of(job.get("steps", []))
        executor = job.get("executor")
        if isinstance(executor, str) and executor.startswith("circleback/"):
            yield "executors", executor.split("/", 1)[1], {}
    for workflow in (config.get("workflows") or {}).values():
        for entry in workflow["jobs"]:
            name, args = (entry, {}) if isinstance(entry, str) else next(iter(entry.items()))
            args = args or {}
            yield from steps_of(args.get("post-steps", []) + args.get("pre-steps", []))
            if name.startswith("circleback/"):
                own = {k: v for k, v in args.items() if k not in WORKFLOW_JOB_KEYS}
                yield "jobs", name.split("/", 1)[1], own


@pytest.mark.parametrize(("where", "config"), list(all_configs()), ids=lambda v: str(v)[:40])
def test_examples_use_the_orb_with_its_real_parameters(where: str, config: dict[str, Any]) -> None:
    packed = pack_orb(ORB_SRC)
    assert config["orbs"] == {"circleback": ORB_REF}, where
    uses = list(orb_invocations(config))
    assert uses, f"{where} does not use the orb"
    for kind, name, args in uses:
        assert name in packed[kind], f"{where}: no {kind} {name} in the orb"
        params = packed[kind][name].get("parameters") or {}
        unknown = set(args) - set(params)
        assert not unknown, f"{where}: circleback/{name} has no parameter {sorted(unknown)}"
        required = {p for p, spec in params.items() if "default" not in spec}
        assert required <= set(args), f"{where}: circleback/{name} needs {sorted(required)}"


def test_downstream_examples_declare_the_callback_parameter_and_wait_for_terminal() -> None:
    for path in EXAMPLE_CONFIGS:
        config = yaml.safe_load(path.read_text())
        approvals = [
            entry["circleback/approve"]
            for entry in next(iter(config["workflows"].values()))["jobs"]
            if isinstance(entry, dict) and "circleback/approve" in entry
        ]
        if not approvals:
            continue
        assert config["parameters"]["triggering-pipeline-id"] == {
            "type": "string",
            "default": "",
            "description": config["parameters"]["triggering-pipeline-id"]["description"],
        }
        (approve,) = approvals
        assert approve["upstream_pipeline_id"] == "<< pipeline.parameters.triggering-pipeline-id >>"
        assert all(next(iter(r.values())) == "terminal" for r in approve["requires"]), path


def test_every_hold_job_upstream_is_released_by_a_downstream_job_name() -> None:
    def config(*parts: str) -> dict[str, Any]:
        return yaml.safe_load((EXAMPLES.joinpath(*parts, ".circleci", "config.yml")).read_text())

    def holds(cfg: dict[str, Any]) -> set[str]:
        return {
            name
            for wf in cfg["workflows"].values()
            for entry in wf["jobs"]
            if isinstance(entry, dict)
            for name, args in entry.items()
            if (args or {}).get("type") == "approval"
        }

    def released(cfg: dict[str, Any]) -> str:
        for wf in cfg["workflows"].values():
            for entry in wf["jobs"]:
                if isinstance(entry, dict) and "circleback/approve" in entry:
                    return str(
                        entry["circleback/approve"].get("job_name", "wait-for-triggered-pipeline")
                    )
        raise AssertionError("no circleback/approve job")

    assert holds(config("project-a")) == {released(config("project-b"))}
    fan_out = {released(config("fan-out", p)) for p in ("project-c", "project-d")}
    assert fan_out == {"wait-for-project-c", "wait-for-project-d"}
    assert holds(config("fan-out", "project-a")) == fan_out
    # Fan-in: one hold, released by either downstream (the last to finish).
    fan_in = {released(config("fan-in", p)) for p in ("project-c", "project-d")}
    assert fan_in == {"wait-for-triggered-pipelines"}
    assert holds(config("fan-in", "project-a")) == fan_in
    # The chain: B holds for C as A holds for B; the cycling C holds too (never reached).
    assert holds(config("chain", "project-a")) == {released(config("chain", "project-b"))}
    assert holds(config("chain", "project-b")) == {released(config("chain", "project-c"))}
    assert holds(config("chain", "project-b")) == {released(config("chain", "project-c-cycle"))}


def test_fan_in_downstreams_share_the_callback_job_name_and_set_fan_in() -> None:
    """--fan-in tells siblings apart from their callback job by its name (CIRCLE_JOB)."""
    approvals = []
    for project in ("project-c", "project-d"):
        path = EXAMPLES / "fan-in" / project / ".circleci" / "config.yml"
        for entry in yaml.safe_load(path.read_text())["workflows"]["test"]["jobs"]:
            if isinstance(entry, dict) and "circleback/approve" in entry:
                approvals.append(entry["circleback/approve"])
    assert [a["fan_in"] for a in approvals] == [True, True]
    assert {a["name"] for a in approvals} == {"approve-upstream"}


def test_chain_b_releases_a_only_after_checking_c() -> None:
    path = EXAMPLES / "chain" / "project-b" / ".circleci" / "config.yml"
    jobs = yaml.safe_load(path.read_text())["workflows"]["test"]["jobs"]
    entries = {next(iter(e)): next(iter(e.values())) for e in jobs if isinstance(e, dict)}
    approve = entries["circleback/approve"]
    assert {"check-project-c": "terminal"} in approve["requires"]
    assert entries["circleback/trigger"]["max_depth"] == 3


def test_project_a_runs_either_its_main_workflow_or_the_sweep() -> None:
    path = EXAMPLES / "project-a" / ".circleci" / "config.yml"
    config = yaml.safe_load(path.read_text())
    assert config["parameters"]["run-sweep"]["default"] is False
    assert config["parameters"]["sweep-grace"]["default"] == "1h"
    main = config["workflows"]["build-and-deploy"]
    sweep = config["workflows"]["sweep-orphaned-holds"]
    assert main["unless"] == sweep["when"] == "<< pipeline.parameters.run-sweep >>"
    (job,) = sweep["jobs"]
    assert job["circleback/sweep"]["project_slug"] == "<< pipeline.project.slug >>"


def test_orb_jobs_pass_their_own_parameters_to_the_orbs_commands() -> None:
    packed = pack_orb(ORB_SRC)
    for job_name, job in packed["jobs"].items():
        own = set(job["parameters"])
        for step in job["steps"]:
            (command, args) = next(iter(step.items())) if isinstance(step, dict) else (step, {})
            assert command in packed["commands"], f"jobs/{job_name}: no command {command}"
            params = packed["commands"][command].get("parameters") or {}
            args = args or {}
            assert set(args) <= set(params), f"jobs/{job_name}: {command} gets {sorted(args)}"
            required = {p for p, spec in params.items() if "default" not in spec}
            assert required <= set(args), f"jobs/{job_name}: {command} needs {sorted(required)}"
            for param, value in args.items():
                assert param in own, f"jobs/{job_name}: no parameter {param} to pass on"
                assert value == f"<< parameters.{param} >>", f"jobs/{job_name}: {command}.{param}"
