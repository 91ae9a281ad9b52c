"""The repository's own CircleCI configuration: .circleci/config.yml (the setup pipeline)
and .circleci/test-deploy.yml (the orb's tests on every executor, and the release).

Both validate against CircleCI's schema; their shape is the one orb-tools expects; and the
parts of test-deploy.yml the local executor can run (the orb's commands and jobs, with the
packed orb injected as orb-tools/continue injects it) are run.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import yaml
from orb_helpers import REPO, require_tool
from test_orb_validation import run_tool

from circleback.emulator import run_locally

CIRCLECI = REPO / ".circleci"
CONFIG = CIRCLECI / "config.yml"
TEST_DEPLOY = CIRCLECI / "test-deploy.yml"


def load(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(path.read_text())
    return loaded


def entries(workflow: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A workflow's job invocations by name (``name:`` or the job's own)."""
    found = {}
    for entry in workflow["jobs"]:
        job, args = (entry, {}) if isinstance(entry, str) else next(iter(entry.items()))
        found[(args or {}).get("name", job)] = {"job": job, **(args or {})}
    return found


def test_both_configs_match_circleci_schema() -> None:
    checker = require_tool("check-jsonschema")

    result = run_tool(checker, "--builtin-schema", "vendor.circle-ci", CONFIG, TEST_DEPLOY)

    assert result.returncode == 0, result.stdout + result.stderr


def test_setup_pipeline_lints_packs_reviews_and_tests_before_continuing() -> None:
    config = load(CONFIG)
    assert config["setup"] is True
    (workflow,) = config["workflows"].values()
    jobs = entries(workflow)
    for job in ("orb-tools/lint", "orb-tools/pack", "orb-tools/review"):
        assert jobs[job]["source_dir"] == "orbs/circleback/src", job
    assert jobs["shellcheck/check"]["shell"] == "sh"
    assert set(jobs["orb-tools/continue"]["requires"]) == set(jobs) - {"orb-tools/continue"}
    # The suite runs the way .ci/run runs it.
    (run,) = [s["run"] for s in config["jobs"]["python-tests"]["steps"] if "run" in s]
    assert run["command"] == "bash .ci/run"


def test_release_publishes_the_package_before_the_orb_that_pins_it() -> None:
    deploy = load(TEST_DEPLOY)
    assert deploy["orbs"]["circleback"] == {}  # orb-tools/continue injects the packed orb
    jobs = entries(deploy["workflows"]["test-deploy"])
    package_tags = jobs["publish-package"]["filters"]["tags"]["only"]
    orb_tags = jobs["orb-tools/publish"]["filters"]["tags"]["only"]
    assert re.fullmatch(package_tags.strip("/"), "package-v1.2.3")
    assert not re.fullmatch(package_tags.strip("/"), "v1.2.3")
    assert re.fullmatch(orb_tags.strip("/"), "v1.2.3")
    # The orb is published only after the released package installed, hash-checked, from
    # PyPI on every executor.
    assert "released-install-test" in jobs["orb-tools/publish"]["requires"]
    released = jobs["released-install-test"]
    assert set(released["matrix"]["parameters"]["executor"]) == set(deploy["executors"])
    install = deploy["jobs"]["released-install-test"]["steps"][0]["circleback/install"]
    assert "package" not in install


def test_the_orb_is_tested_on_every_kind_of_executor() -> None:
    deploy = load(TEST_DEPLOY)
    kinds = {
        next(k for k in e if k in ("docker", "machine", "macos"))
        for e in deploy["executors"].values()
    }
    assert kinds == {"docker", "machine", "macos"}
    images = [e["docker"][0]["image"] for e in deploy["executors"].values() if "docker" in e]
    assert any(image.startswith("alpine:") for image in images)  # busybox sh, no bash
    assert any(image.startswith("cimg/base:") for image in images)  # python3 without ensurepip
    jobs = entries(deploy["workflows"]["test-deploy"])
    tested = set(jobs["orb-commands-test"]["matrix"]["parameters"]["executor"])
    tested.add(jobs["orb-commands-test-alpine"]["executor"])
    assert tested == set(deploy["executors"])


def runnable_test_deploy() -> dict[str, Any]:
    """test-deploy.yml reduced to what runs on this machine, with the orb injected.

    Kept: the orb's command tests and job tests. Dropped: what needs the network, an
    account or another orb (the package build, the round trip to a real downstream, the
    release jobs, orb-tools).
    """
    deploy = copy.deepcopy(load(TEST_DEPLOY))
    deploy["orbs"] = {"circleback": "circleback/circleback@dev:alpha"}
    workflow = deploy["workflows"]["test-deploy"]
    kept = []
    for entry in workflow["jobs"]:
        job, args = next(iter(entry.items()))
        if job in ("orb-commands-test", "circleback/approve"):
            args = {k: v for k, v in args.items() if k not in ("requires", "filters")}
            kept.append({job: args})
    workflow["jobs"] = kept
    return deploy


def test_test_deploy_orb_jobs_run_in_the_local_executor(tmp_path: Path) -> None:
    config = tmp_path / "test-deploy.yml"
    config.write_text(yaml.safe_dump(runnable_test_deploy(), sort_keys=False))

    with run_locally({"gh/circleback/circleback": config}, step_timeout=90.0) as local:
        local.trigger("gh/circleback/circleback")
        assert local.executor.wait_idle(180)
        records = {r.job_name: r for r in local.executor.records}

    assert set(records) >= {
        "orb-commands-test-cimg-python",
        "orb-commands-test-cimg-base",
        "orb-commands-test-machine",
        "orb-commands-test-macos",
        "orb-commands-test-alpine",
        "approve-job-without-upstream",
    }
    for name, record in records.items():
        assert record.status == "success", (name, record.output[-2000:])
    for name in ("orb-commands-test-macos", "orb-commands-test-cimg-base"):
        steps = {s.name: s for s in records[name].steps}
        demo = steps["Run A and B end to end on the embedded emulator"]
        assert demo.status == "success"
        assert "B succeeded, so A's check passed" in demo.output
        assert steps["Check the installed circleback"].output.startswith("circleback ")
    alpine = [s.name for s in records["orb-commands-test-alpine"].steps]
    assert "Run A and B end to end on the embedded emulator" not in alpine
    approve = records["approve-job-without-upstream"]
    assert "nothing to approve" in approve.output
