"""The local executor runs a dynamic config: the setup job continues the pipeline for real."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from circleback.emulator import run_locally

pytestmark = [
    pytest.mark.loopback,
    pytest.mark.skipif(shutil.which("bash") is None, reason="the executor runs steps in bash"),
]

SETUP = """\
version: 2.1
setup: true
orbs:
  continuation: circleci/continuation@1.1.0
parameters:
  triggering-pipeline-id: {type: string, default: ""}
jobs:
  generate:
    docker: [{image: cimg/base:current}]
    steps:
      - run:
          name: generate the config
          command: |
            test -n "$CIRCLE_CONTINUATION_KEY"
            mkdir -p .circleci
            cp "$CONTINUE_SOURCE" .circleci/continue.yml
      - continuation/continue:
          configuration_path: .circleci/continue.yml
          parameters: '{"build-docs": true}'
workflows:
  setup:
    jobs: [generate]
"""
CONTINUE = """\
version: 2.1
parameters:
  triggering-pipeline-id: {type: string, default: ""}
  build-docs: {type: boolean, default: false}
jobs:
  test:
    docker: [{image: cimg/base:current}]
    environment: {UPSTREAM: << pipeline.parameters.triggering-pipeline-id >>}
    steps:
      - run: echo "upstream=$UPSTREAM key=${CIRCLE_CONTINUATION_KEY:-none}"
  docs:
    docker: [{image: cimg/base:current}]
    steps: [{run: echo docs}]
workflows:
  test:
    jobs: [test]
  docs:
    when: << pipeline.parameters.build-docs >>
    jobs: [docs]
"""
FINISH = SETUP.replace(
    """      - continuation/continue:
          configuration_path: .circleci/continue.yml
          parameters: '{"build-docs": true}'
""",
    "      - continuation/finish\n",
)


def _until(condition: Callable[[], bool], timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        threading.Event().wait(0.02)
    return True


def _project(tmp_path: Path, text: str) -> dict[str, Path]:
    config = tmp_path / "setup.yml"
    config.write_text(text)
    (tmp_path / "continue.yml").write_text(CONTINUE)
    return {"gh/acme/dyn": config}


@pytest.mark.parametrize("delays", [{}, {"creation_delay": 0.2, "workflow_delay": 0.2}])
def test_a_setup_job_continues_the_pipeline_with_its_key(
    tmp_path: Path, delays: dict[str, float]
) -> None:
    env = {"CONTINUE_SOURCE": str(tmp_path / "continue.yml")}
    switches = {"creation": "async", **delays}
    with run_locally(_project(tmp_path, SETUP), env=env, switches=switches) as local:
        pipeline_id = local.trigger("gh/acme/dyn", parameters={"triggering-pipeline-id": "up-1"})
        # The server's ticker creates the pipeline once the delays pass; wait for that (a
        # bounded wait for an outcome, not a timing assertion), then for the jobs.
        assert _until(lambda: len(local.emulator.state_dump()["workflows"]) == 3)
        assert local.executor.wait_idle(60)
        generate = local.executor.record("gh/acme/dyn", "generate")
        assert generate.status == "success", generate.output
        assert generate.step("Continue the pipeline (continue)").status == "success"
        test = local.executor.record("gh/acme/dyn", "test")
        assert test.status == "success"
        assert "upstream=up-1 key=none" in test.output  # only setup jobs get the key
        assert local.executor.record("gh/acme/dyn", "docs").status == "success"
        with local.client() as client:
            pipeline = client.get(f"/pipeline/{pipeline_id}").json()
            assert pipeline["state"] == "created"
            tags = {
                w["name"]: w.get("tag")
                for w in client.get(f"/pipeline/{pipeline_id}/workflow").json()["items"]
            }
        assert tags == {"setup": "setup", "test": None, "docs": None}


def test_finish_ends_setup_without_running_anything_more(tmp_path: Path) -> None:
    env = {"CONTINUE_SOURCE": str(tmp_path / "continue.yml")}
    with run_locally(_project(tmp_path, FINISH), env=env, switches={"creation": "async"}) as local:
        pipeline_id = local.trigger("gh/acme/dyn")
        assert local.executor.wait_idle(60)
        assert [r.job_name for r in local.executor.records] == ["generate"]
        with local.client() as client:
            assert client.get(f"/pipeline/{pipeline_id}").json()["state"] == "created"
            items = client.get(f"/pipeline/{pipeline_id}/workflow").json()["items"]
        assert [w["name"] for w in items] == ["setup"]
