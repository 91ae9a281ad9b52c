"""The local executor on small configs: what it compiles, runs, skips, and how jobs end.

One pipeline exercises most config features at once (jobs run in milliseconds), and a few
more cover the ways a job can end: a failing or timed-out step, a cancel while a step runs,
an executor error, a config it cannot compile.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from circleback.emulator import JobRun, LocalCircleCI, StepRecord
from circleback.emulator.steps import PlanError, condition_holds
from tests.e2e.conftest import IDLE_TIMEOUT

pytestmark = pytest.mark.loopback

FEATURES = """\
version: 2.1
orbs:
  ext: someone/else@1.2.3
parameters:
  flag:
    type: boolean
    default: false
  greeting:
    type: string
    default: hello
commands:
  say:
    parameters:
      text:
        type: string
      extra:
        type: steps
        default: []
    steps:
      - run:
          name: say << parameters.text >>
          command: echo "said << parameters.text >>" >> ~/said.txt
      - << parameters.extra >>
jobs:
  produce:
    parameters:
      lines:
        type: string
        default: ""
      size:
        type: string
        default: small
    docker:
      - image: cimg/base:stable
        environment:
          FROM_IMAGE: "yes"
    environment:
      JOB_LEVEL: job
    steps:
      - checkout
      - restore_cache:
          keys: [anything]
      - run:
          name: environment
          environment:
            LINES: << parameters.lines >>
            SIZE: << parameters.size >>
          command: |
            mkdir -p out
            printf '%s' "$LINES" > out/lines.txt
            echo "$SIZE" > out/size.txt
            env | sort > out/env.txt
            echo 'export FROM_BASH_ENV=carried' >> "$BASH_ENV"
      - run: test "$FROM_BASH_ENV" = carried
      - say:
          text: << pipeline.parameters.greeting >>
          extra:
            - run: echo extra-ran
      - when:
          condition: << pipeline.parameters.flag >>
          steps:
            - run: echo flag-on
      - unless:
          condition: << pipeline.parameters.flag >>
          steps:
            - run: {name: flag-off, command: echo flag-off}
      - when:
          condition:
            equal: [small, << parameters.size >>]
          steps:
            - run: {name: small-size, command: "true"}
      - persist_to_workspace:
          root: out
          paths: ["*.txt"]
      - ext/something
      - store_test_results:
          path: out
  consume:
    steps:
      - attach_workspace:
          at: ~/ws
      - run: {name: read workspace, command: 'test "$(cat ~/ws/size.txt)" = large'}
      - run: {name: fails, command: "echo failing; exit 3"}
      - run: {name: after failure, command: echo never}
      - run: {name: on fail, when: on_fail, command: echo on-fail-ran}
      - run: {name: always, when: always, command: echo always-ran}
workflows:
  main:
    jobs:
      - produce:
          lines: |
            first line
            second "quoted" line
          matrix:
            parameters:
              size: [large]
      - consume:
          requires: [produce-large]
          pre-steps:
            - run: {name: pre, command: echo pre-ran}
          post-steps:
            - run: {name: post, when: always, command: echo post-ran}
      - ext/external-job
"""

ONE_JOB = """\
version: 2.1
jobs:
  only:
    steps:
      - run: {name: the step, command: %s}
      - run: {name: cleanup, when: always, command: echo cleaned}
workflows:
  main:
    jobs: [only]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def features(
    tmp_path: Path, start_local: Callable[..., LocalCircleCI], monkeypatch: pytest.MonkeyPatch
) -> tuple[LocalCircleCI, str]:
    monkeypatch.setenv("CIRCLEBACK_E2E_DEVELOPER_SECRET", "must-not-leak")
    local = start_local({"gh/acme/features": write(tmp_path, FEATURES)})
    pipeline_id = local.trigger("gh/acme/features")
    assert local.executor.wait_idle(IDLE_TIMEOUT)
    return local, pipeline_id


def statuses(steps: list[StepRecord]) -> list[tuple[str, str]]:
    return [(s.name, s.status) for s in steps]


def test_orb_free_features_compile_and_run(features: tuple[LocalCircleCI, str]) -> None:
    local, _ = features
    produce = local.executor.record("gh/acme/features", "produce-large")
    assert produce.status == "success", produce
    assert statuses(produce.steps) == [
        ("checkout", "skipped"),
        ("restore_cache", "skipped"),
        ("environment", "success"),
        ('test "$FROM_BASH_ENV" = carried', "success"),
        ("say hello", "success"),
        ("echo extra-ran", "success"),
        ("flag-off", "success"),
        ("Persisting to workspace", "success"),
        ("ext/something", "skipped"),
        ("Uploading test results", "success"),
    ]
    assert "someone/else@1.2.3" in (produce.step("ext/something").reason or "")
    assert any("docker ignored" in note for note in produce.notes)
    home = produce.directory / "home"
    assert (home / "said.txt").read_text() == "said hello\n"
    working = home / "project"
    # A multi-line parameter reaches the step as one value, quotes and all.
    assert (working / "out" / "lines.txt").read_text() == 'first line\nsecond "quoted" line\n'
    assert (working / "out" / "size.txt").read_text() == "large\n"  # the matrix value
    stored = sorted(p.name for p in produce.test_results)
    assert stored == ["env.txt", "lines.txt", "size.txt"]


def test_jobs_get_circleci_builtin_environment_and_nothing_else(
    features: tuple[LocalCircleCI, str],
) -> None:
    local, pipeline_id = features
    produce = local.executor.record("gh/acme/features", "produce-large")
    env = dict(
        line.split("=", 1)
        for line in (produce.directory / "home/project/out/env.txt").read_text().splitlines()
        if "=" in line
    )
    assert env["CI"] == env["CIRCLECI"] == "true"
    assert env["CIRCLE_PIPELINE_ID"] == pipeline_id
    assert env["CIRCLE_WORKFLOW_ID"] == produce.workflow_id
    assert env["CIRCLE_WORKFLOW_JOB_ID"] == produce.job_id
    assert env["CIRCLE_JOB"] == "produce-large"
    assert env["CIRCLE_BUILD_NUM"] == str(produce.job_number)
    assert env["CIRCLE_BUILD_URL"].endswith(f"/jobs/{produce.job_number}")
    assert (env["CIRCLE_PROJECT_USERNAME"], env["CIRCLE_PROJECT_REPONAME"]) == ("acme", "features")
    assert env["CIRCLE_BRANCH"] == "main"
    assert env["HOME"] == str(produce.directory / "home")
    assert env["CIRCLEBACK_HOST"] == local.server.url
    assert env["CIRCLE_TOKEN"] == local.token
    assert (env["JOB_LEVEL"], env["FROM_IMAGE"]) == ("job", "yes")
    assert "CIRCLEBACK_E2E_DEVELOPER_SECRET" not in env


def test_failure_stops_on_success_steps_but_not_always_and_on_fail(
    features: tuple[LocalCircleCI, str],
) -> None:
    local, _ = features
    consume = local.executor.record("gh/acme/features", "consume")
    assert consume.status == "failed"
    assert statuses(consume.steps) == [
        ("pre", "success"),
        ("Attaching workspace", "success"),
        ("read workspace", "success"),
        ("fails", "failed"),
        ("after failure", "not_run"),
        ("on fail", "success"),
        ("always", "success"),
        ("post", "success"),
    ]
    assert consume.step("fails").exit_code == 3
    assert consume.step("after failure").reason == "an earlier step failed"
    external = local.executor.record("gh/acme/features", "ext/external-job")
    assert external.status == "success"
    assert statuses(external.steps) == [("ext/external-job", "skipped")]
    state = local.emulator.state_dump()
    assert {j["name"]: j["status"] for j in state["jobs"]} == {
        "produce-large": "success",
        "consume": "failed",
        "ext/external-job": "success",
    }


def test_a_step_that_runs_too_long_is_killed_and_fails(
    tmp_path: Path, start_local: Callable[..., LocalCircleCI]
) -> None:
    local = start_local({"gh/acme/slow": write(tmp_path, ONE_JOB % "sleep 300")}, step_timeout=0.5)
    local.trigger("gh/acme/slow")
    assert local.executor.wait_idle(IDLE_TIMEOUT)
    record = local.executor.record("gh/acme/slow", "only")
    assert record.status == "failed"
    assert record.step("the step").reason == "timed out after 0.5s"
    assert record.step("cleanup").status == "success"


def test_a_job_canceled_while_its_step_runs_is_stopped_not_finished(
    tmp_path: Path, start_local: Callable[..., LocalCircleCI]
) -> None:
    step_started = threading.Event()

    def started(run: JobRun, step: StepRecord) -> None:
        step_started.set()

    local = start_local(
        {"gh/acme/slow": write(tmp_path, ONE_JOB % "sleep 300")}, before_step=started
    )
    local.trigger("gh/acme/slow")
    assert step_started.wait(IDLE_TIMEOUT)
    workflow_id = local.executor.record("gh/acme/slow", "only").workflow_id
    with local.client() as client:
        assert client.post(f"/workflow/{workflow_id}/cancel").status_code == 202
    assert local.executor.wait_idle(IDLE_TIMEOUT)  # long before the 300 s sleep ends
    record = local.executor.record("gh/acme/slow", "only")
    assert record.status == "canceled"
    assert record.error is None
    assert record.step("the step").status == "canceled"
    assert [s.name for s in record.steps] == ["the step"]  # nothing runs after a cancel


def test_fail_jobs_makes_the_first_run_step_fail(
    tmp_path: Path, start_local: Callable[..., LocalCircleCI]
) -> None:
    local = start_local(
        {"gh/acme/one": write(tmp_path, ONE_JOB % "echo fine")},
        fail_jobs=lambda run: run.job_name == "only",
    )
    local.trigger("gh/acme/one")
    assert local.executor.wait_idle(IDLE_TIMEOUT)
    record = local.executor.record("gh/acme/one", "only")
    assert record.status == "failed"
    assert "failing this step on purpose" in record.step("the step").output
    assert "fine" not in record.step("the step").output
    assert record.step("cleanup").status == "success"  # only the first run step fails


def test_step_output_is_bounded_to_its_start_and_end(
    tmp_path: Path, start_local: Callable[..., LocalCircleCI]
) -> None:
    command = "'echo START; head -c 200000 /dev/zero | tr \\\\0 x; echo; echo END'"
    local = start_local({"gh/acme/loud": write(tmp_path, ONE_JOB % command)}, output_limit=1000)
    local.trigger("gh/acme/loud")
    assert local.executor.wait_idle(IDLE_TIMEOUT)
    output = local.executor.record("gh/acme/loud", "only").step("the step").output
    assert output.startswith("START\n")
    assert output.endswith("END\n")
    assert "bytes of output omitted" in output
    assert len(output) < 1100


def test_an_executor_error_fails_the_job_instead_of_leaving_it_running(
    tmp_path: Path, start_local: Callable[..., LocalCircleCI]
) -> None:
    def broken(run: JobRun, step: StepRecord) -> None:
        raise RuntimeError("boom")

    local = start_local({"gh/acme/one": write(tmp_path, ONE_JOB % "exit 0")}, before_step=broken)
    local.trigger("gh/acme/one")
    assert local.executor.wait_idle(IDLE_TIMEOUT)
    record = local.executor.record("gh/acme/one", "only")
    assert record.status == "failed"
    assert record.error == "executor error: RuntimeError: boom"
    assert local.emulator.state_dump()["jobs"][0]["status"] == "failed"


@pytest.mark.parametrize(
    ("step", "message"),
    [
        ("- no-such-command", "no command or step named 'no-such-command'"),
        ("- nope/thing", "'nope' is not in orbs"),
        ("- run: echo << parameters.missing >>", "unknown parameter(s) missing"),
    ],
)
def test_a_config_that_cannot_compile_fails_the_job_with_the_reason(
    tmp_path: Path, start_local: Callable[..., LocalCircleCI], step: str, message: str
) -> None:
    config = ONE_JOB.replace("      - run: {name: the step, command: %s}", f"      {step}")
    local = start_local({"gh/acme/bad": write(tmp_path, config)})
    local.trigger("gh/acme/bad")
    assert local.executor.wait_idle(IDLE_TIMEOUT)
    record = local.executor.record("gh/acme/bad", "only")
    assert record.status == "failed"
    assert message in (record.error or ""), record.error


@pytest.mark.parametrize(
    ("condition", "holds"),
    [
        ("", False),
        (None, False),
        (False, False),
        ("false", False),
        (" False ", False),
        ("0d4e-some-id", True),
        (True, True),
        ({"not": ""}, True),
        ({"and": ["x", "false"]}, False),
        ({"or": ["", "x"]}, True),
        ({"equal": ["a", "a"]}, True),
        ({"equal": ["a", "b"]}, False),
        ({"matches": {"pattern": "^v.*", "value": "v1"}}, True),
    ],
)
def test_step_conditions(condition: Any, holds: bool) -> None:
    assert condition_holds(condition) is holds


def test_a_malformed_condition_is_a_plan_error() -> None:
    with pytest.raises(PlanError):
        condition_holds({"matches": {"pattern": "x"}})


def test_the_api_token_is_required_to_call_the_emulator(
    tmp_path: Path, start_local: Callable[..., LocalCircleCI]
) -> None:
    """The served emulator accepts only the executor's token, as CircleCI accepts only yours."""
    local = start_local({"gh/acme/one": write(tmp_path, ONE_JOB % "exit 0")})
    response = httpx.post(
        f"{local.api_url}/project/gh/acme/one/pipeline", headers={"Circle-Token": "wrong"}
    )
    assert response.status_code == 401
