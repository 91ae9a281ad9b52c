"""How project configs shape pipelines: parameters, matrix, requires, filters, when, errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from circleback.emulator import Emulator, JobRun
from circleback.emulator.config import (
    ConfigError,
    compile_workflows,
    evaluate_logic,
    substitute,
)
from tests.emulator.helpers import Api


def _pipeline(emu: Emulator, pipeline_id: str) -> dict[str, Any]:
    return next(p for p in emu.state_dump()["pipelines"] if p["id"] == pipeline_id)


# -- parameters ------------------------------------------------------------------------------


def test_declared_parameters_get_defaults_and_given_values(api: Api, emu: Emulator) -> None:
    pipeline_id = api.trigger("gh/acme/b", parameters={"triggering-pipeline-id": "abc"})
    pipeline = _pipeline(emu, pipeline_id)
    assert pipeline["parameters"] == {
        "triggering-pipeline-id": "abc",
        "run-deploy": False,
        "shards": 2,
        "environment": "staging",
    }
    assert pipeline["sent_parameters"] == {"triggering-pipeline-id": "abc"}
    assert "trigger_parameters" not in pipeline


def test_undeclared_parameter_errors_the_pipeline(client: httpx.Client, emu: Emulator) -> None:
    response = client.post(
        "/project/gh/acme/b/pipeline", json={"parameters": {"nope": "x", "zzz": 1}}
    )
    assert response.status_code == 201
    (pipeline,) = emu.state_dump()["pipelines"]
    assert pipeline["state"] == "errored"
    assert pipeline["errors"] == [
        {"type": "config", "message": "Unexpected argument(s): nope, zzz"}
    ]
    assert emu.state_dump()["workflows"] == []


def test_undeclared_parameter_is_a_400_in_that_variant(client: httpx.Client, emu: Emulator) -> None:
    emu.set_switches(parameter_errors="bad_request")
    response = client.post(
        "/project/gh/acme/b/pipeline", json={"parameters": {"nope": "x", "zzz": 1}}
    )
    assert response.status_code == 400
    assert response.json() == {"message": "Unexpected argument(s): nope, zzz"}
    assert emu.state_dump()["pipelines"] == []


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("run-deploy", "true", "expected boolean, got string 'true'"),
        ("shards", True, "expected integer, got boolean True"),
        ("shards", "3", "expected integer, got string '3'"),
        ("triggering-pipeline-id", 5, "expected string, got integer 5"),
        ("environment", "qa", "expected one of [staging, production], got string 'qa'"),
    ],
)
def test_mistyped_parameter_errors_the_pipeline_with_a_clear_message(
    client: httpx.Client, emu: Emulator, name: str, value: Any, expected: str
) -> None:
    response = client.post("/project/gh/acme/b/pipeline", json={"parameters": {name: value}})
    assert response.status_code == 201
    (pipeline,) = emu.state_dump()["pipelines"]
    assert pipeline["state"] == "errored"
    assert pipeline["errors"][0]["message"] == (
        f"Invalid value for pipeline parameter '{name}': {expected}."
    )


def test_parameter_size_limits_are_enforced(client: httpx.Client) -> None:
    too_long = client.post(
        "/project/gh/acme/b/pipeline",
        json={"parameters": {"triggering-pipeline-id": "x" * 513}},
    )
    too_many = client.post(
        "/project/gh/acme/b/pipeline", json={"parameters": {f"p{i}": 1 for i in range(101)}}
    )
    nested = client.post("/project/gh/acme/b/pipeline", json={"parameters": {"a": {"b": 1}}})
    assert [too_long.status_code, too_many.status_code, nested.status_code] == [400, 400, 400]


def test_pipeline_values_are_substituted_into_job_parameters(
    api: Api, started: list[JobRun]
) -> None:
    pipeline_id = api.trigger("gh/acme/b", parameters={"shards": 7, "triggering-pipeline-id": "up"})
    workflow = api.workflow(pipeline_id, "build-and-test")
    jobs = api.jobs(workflow["id"])
    build = next(r for r in started if r.job_name == "build")
    assert build.pipeline_parameters["shards"] == 7
    assert build.pre_steps == ({"run": "echo start"},)
    assert build.post_steps == ({"run": "echo done"},)
    assert jobs["test"]["status"] == "blocked"


# -- workflows: when, filters ----------------------------------------------------------------


def test_when_logic_on_pipeline_parameters_gates_a_workflow(api: Api) -> None:
    plain = api.trigger("gh/acme/b")
    gated = api.trigger("gh/acme/b", parameters={"run-deploy": True, "environment": "production"})
    half = api.trigger("gh/acme/b", parameters={"run-deploy": True})
    assert set(api.workflows(plain)) == {"build-and-test"}
    assert set(api.workflows(gated)) == {"build-and-test", "deploy"}
    assert set(api.workflows(half)) == {"build-and-test"}


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ({"branch": "main"}, {"build", "deploy", "publish", "docs"}),
        ({"branch": "release/1.2"}, {"build", "deploy", "publish", "docs"}),
        ({"branch": "feature"}, {"build", "docs"}),  # publish needs deploy
        ({"tag": "v1.2.3"}, {"build", "release"}),
        ({"tag": "v1.2-rc"}, {"build"}),
    ],
)
def test_branch_and_tag_filters_choose_the_jobs(
    api: Api, ref: dict[str, str], expected: set[str]
) -> None:
    pipeline_id = api.trigger("gh/acme/filters", **ref)
    assert set(api.jobs(api.workflow(pipeline_id, "main")["id"])) == expected


def test_jobs_requiring_a_filtered_out_job_are_left_out(api: Api) -> None:
    # publish allows every tag, but requires deploy, which never runs for tags.
    pipeline_id = api.trigger("gh/acme/filters", tag="v1.2.3")
    assert "publish" not in api.jobs(api.workflow(pipeline_id)["id"])


def test_a_workflow_with_every_job_filtered_out_is_not_created(api: Api) -> None:
    assert api.workflows(api.trigger("gh/acme/filters", branch="wip-x")) == {}
    assert api.workflows(api.trigger("gh/acme/filters", tag="nightly")) == {}


def test_logic_statements() -> None:
    assert evaluate_logic({"or": [False, {"not": False}]})
    assert not evaluate_logic({"and": [True, ""]})
    assert evaluate_logic({"equal": [1, 1, 1]})
    assert not evaluate_logic({"equal": ["a", "b"]})
    assert evaluate_logic({"matches": {"pattern": "^v.*", "value": "v1"}})
    assert not evaluate_logic(0)
    with pytest.raises(ConfigError):
        evaluate_logic({"matches": {"pattern": "x"}})


def test_substitute_keeps_types_of_whole_references_and_formats_embedded_ones() -> None:
    values = {"pipeline.parameters.flag": True, "pipeline.number": 4}
    assert substitute("<< pipeline.parameters.flag >>", values, prefix="pipeline.") is True
    assert substitute("n=<<pipeline.number>>", values, prefix="pipeline.") == "n=4"
    assert substitute("<< parameters.x >>", values, prefix="pipeline.") == "<< parameters.x >>"
    with pytest.raises(ConfigError, match=r"Unknown variable\(s\): pipeline.parameters.nope"):
        substitute("<< pipeline.parameters.nope >>", values, prefix="pipeline.")


# -- matrix and requires ---------------------------------------------------------------------


def test_matrix_expands_names_and_requires_of_the_alias_mean_every_leg(api: Api) -> None:
    jobs = api.jobs(api.workflow(api.trigger("gh/acme/matrix"))["id"])
    assert list(jobs) == [
        "lint",
        "test-3.10-linux",
        "test-3.11-linux",
        "test-3.11-macos",
        "nightly-3.12",
        "nightly-3.13",
        "report",
        "lint-1",
        "lint-true",
    ]
    by_id = {j["id"]: name for name, j in jobs.items()}
    assert sorted(by_id[d] for d in jobs["report"]["dependencies"]) == [
        "nightly-3.12",
        "nightly-3.13",
        "test-3.10-linux",
        "test-3.11-linux",
        "test-3.11-macos",
    ]
    assert [by_id[d] for d in jobs["test-3.11-macos"]["dependencies"]] == ["lint"]


def test_matrix_values_become_job_parameters(api: Api, started: list[JobRun]) -> None:
    api.trigger("gh/acme/matrix")
    legs = {r.job_name: dict(r.parameters) for r in started if r.job_ref == "test"}
    assert legs == {
        "nightly-3.12": {"python": "3.12", "os": "linux"},
        "nightly-3.13": {"python": "3.13", "os": "linux"},
    }


def test_requires_with_statuses_are_shown_per_job_id(api: Api) -> None:
    jobs = api.jobs(api.workflow(api.trigger("gh/acme/b"), "build-and-test")["id"])
    requires = jobs["approve-upstream"]["requires"]
    terminal = ["success", "failed", "canceled", "unauthorized", "not_run"]
    assert requires == {
        jobs["build"]["id"]: terminal,
        jobs["test"]["id"]: ["success", "failed", "canceled", "not_run", "unauthorized"],
    }
    assert jobs["test"]["requires"] == {jobs["build"]["id"]: ["success"]}


def test_orb_jobs_are_build_jobs_and_keep_their_reference(
    api: Api, emu: Emulator, started: list[JobRun]
) -> None:
    pipeline_id = api.trigger("gh/acme/a")
    build = api.jobs(api.workflow(pipeline_id)["id"])["build"]
    emu.finish_job(build["id"], "success")
    trigger = next(r for r in started if r.job_name == "trigger")
    assert trigger.job_ref == "circleback/trigger"
    assert dict(trigger.parameters) == {"project_slug": "gh/acme/b"}


def test_workflow_entry_keys_that_steer_the_workflow_are_not_job_parameters(
    api: Api, emu: Emulator, started: list[JobRun]
) -> None:
    pipeline_id = api.trigger("gh/acme/a")
    jobs = api.jobs(api.workflow(pipeline_id)["id"])
    emu.finish_job(jobs["build"]["id"], "success")
    emu.finish_job(next(r for r in started if r.job_name == "trigger").job_id, "success")
    wait = api.jobs(api.workflow(pipeline_id)["id"])["wait-for-triggered-pipeline"]
    api.client.post(f"/workflow/{api.workflow(pipeline_id)['id']}/approve/{wait['id']}")
    check = next(r for r in started if r.job_name == "check-status")
    assert dict(check.parameters) == {}


# -- errored configs -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("slug", "message"),
    [
        ("gh/acme/broken", "Unable to parse YAML"),
        ("gh/acme/gone", "Unable to read config file does-not-exist.yml"),
        ("gh/acme/undefined", "Cannot find a definition for job named integration-test"),
        ("gh/acme/badreq", "Job 'build' requires 'compile', which is the name of 0 other jobs"),
        ("gh/acme/missing", "Missing required argument(s): target"),
    ],
)
def test_unusable_config_gives_an_errored_pipeline_with_201(
    api: Api, slug: str, message: str
) -> None:
    pipeline_id = api.trigger(slug)
    pipeline = api.client.get(f"/pipeline/{pipeline_id}").json()
    assert pipeline["state"] == "errored"
    assert pipeline["errors"][0]["type"] == "config"
    assert message in pipeline["errors"][0]["message"]
    assert api.workflows(pipeline_id) == {}


def test_config_is_read_at_each_trigger(tmp_path: Path, make_emulator: Any) -> None:
    config = tmp_path / "config.yml"
    config.write_text("version: 2.1\njobs: {a: {steps: []}}\nworkflows: {w: {jobs: [a]}}\n")
    emu = make_emulator(projects={"gh/x/y": config})
    client = httpx.Client(
        transport=emu.transport(),
        base_url="http://localhost/api/v2",
        headers={"Circle-Token": "s3cret-token-value"},
    )
    api = Api(client)
    first = api.trigger("gh/x/y")
    config.write_text("workflows: [")
    second = api.trigger("gh/x/y")
    assert client.get(f"/pipeline/{first}").json()["state"] == "created"
    assert client.get(f"/pipeline/{second}").json()["state"] == "errored"


@pytest.mark.parametrize(
    ("workflows", "message"),
    [
        ({"w": {"jobs": ["a", "a"]}}, "used more than once"),
        ({"w": {"jobs": [{"a": {"requires": "b"}}]}}, "must be a list"),
        ({"w": {"jobs": [{"a": {"requires": [{"a": "weird"}]}}]}}, "unknown status"),
        ({"w": {"jobs": [{"a": {"matrix": {"parameters": {"x": 1}}}}]}}, "non-empty list"),
        ({"w": {"jobs": [{"a": {"matrix": {}}}]}}, "needs 'parameters'"),
        ({"w": {"jobs": [["a"]]}}, "not a name or a mapping"),
        ({"w": {}}, "needs a 'jobs' list"),
    ],
)
def test_malformed_workflows_are_config_errors(workflows: dict[str, Any], message: str) -> None:
    config = {"jobs": {"a": {"steps": []}}, "workflows": workflows}
    with pytest.raises(ConfigError, match=message):
        compile_workflows(config, {}, branch="main", tag=None)
