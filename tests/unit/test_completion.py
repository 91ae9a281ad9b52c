"""The completion rule (``circleback.relay.completion``): one verdict for every caller."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from circleback.models import Pipeline, Workflow
from circleback.relay.completion import Phase, Watch, judge, newest_by_name

T0 = datetime(2026, 11, 30, 12, tzinfo=timezone.utc)
PID = "5034460f-c7c4-4c43-9457-de07e2029e7b"


def wf(name: str, status: str, *, at: int = 0, tag: str | None = None, **extra: Any) -> Workflow:
    return Workflow.model_validate(
        {
            "id": f"00000000-0000-4000-8000-{at:012d}",
            "name": name,
            "status": status,
            "created_at": (T0 + timedelta(seconds=at)).isoformat(),
            "pipeline_id": PID,
            "pipeline_number": 7,
            "project_slug": "gh/acme/b",
            **({"tag": tag} if tag else {}),
            **extra,
        }
    )


def pipeline(state: str) -> Pipeline:
    return Pipeline.model_validate(
        {
            "id": PID,
            "number": 7,
            "project_slug": "gh/acme/b",
            "state": state,
            "created_at": T0.isoformat(),
        }
    )


def test_dynamic_config_between_setup_and_continuation_is_not_done() -> None:
    # Why: B's setup workflow succeeded but its continuation has not run; the pipeline is
    # `pending` and only the setup workflow exists. That is not done.
    verdict = judge("pending", [wf("setup", "success", tag="setup")])
    assert verdict.phase is Phase.WAITING
    assert "continuation" in verdict.reason
    assert not verdict.succeeded


def test_setup_done_but_continued_workflows_not_listed_is_not_done() -> None:
    verdict = judge("created", [wf("setup", "success", tag="setup")])
    assert verdict.phase is Phase.WAITING


def test_after_continuation_the_continued_workflows_decide() -> None:
    flows = [wf("setup", "success", tag="setup"), wf("tests", "failed", at=5)]
    verdict = judge("created", flows)
    assert verdict.done
    assert not verdict.succeeded


def test_failed_setup_workflow_is_done_and_failed() -> None:
    verdict = judge("setup", [wf("setup", "failed", tag="setup")])
    assert verdict.phase is Phase.SETUP_FAILED
    assert verdict.done
    assert not verdict.succeeded


def test_queued_is_known_and_not_final() -> None:
    # Why: a workflow queued behind a serial group was taken as final and failed A.
    verdict = judge("created", [wf("deploy", "queued")])
    assert verdict.phase is Phase.WAITING
    assert verdict.unknown == ()


def test_unknown_status_is_not_final_and_reported() -> None:
    verdict = judge("created", [wf("tests", "paused-for-reasons")])
    assert verdict.phase is Phase.WAITING
    assert verdict.unknown == ("tests: paused-for-reasons",)
    assert not verdict.waiting_only_on_workflows


@pytest.mark.parametrize("status", ["success", "failed", "error", "canceled", "not_run"])
def test_known_final_statuses_are_done(status: str) -> None:
    verdict = judge("created", [wf("tests", status)])
    assert verdict.done
    assert verdict.succeeded is (status == "success")


def test_newest_run_per_name_decides() -> None:
    flows = [wf("tests", "failed", at=1), wf("tests", "success", at=9)]
    live, superseded = newest_by_name(flows)
    assert [w.status for w in live] == ["success"]
    assert superseded == (flows[0].id,)
    assert judge("created", flows).succeeded


def test_errored_pipeline_is_done_and_failed() -> None:
    verdict = judge("errored", [])
    assert verdict.phase is Phase.ERRORED
    assert not verdict.succeeded


def test_no_workflows_is_decided_only_after_the_grace() -> None:
    # Why: "ran no workflows" after two looks 5 s apart fails a slow CircleCI.
    now = [0.0]
    watch = Watch(clock=lambda: now[0], no_workflow_grace=60.0)
    assert watch.judge(pipeline("created"), []).phase is Phase.WAITING
    now[0] = 30.0
    assert watch.judge(pipeline("created"), []).phase is Phase.WAITING
    now[0] = 61.0
    assert watch.judge(pipeline("created"), []).phase is Phase.NO_WORKFLOWS


def test_workflows_appearing_reset_the_grace() -> None:
    now = [0.0]
    watch = Watch(clock=lambda: now[0], no_workflow_grace=60.0)
    watch.judge(pipeline("created"), [])
    now[0] = 50.0
    assert watch.judge(pipeline("created"), [wf("t", "running")]).phase is Phase.WAITING
    now[0] = 70.0
    assert watch.judge(pipeline("created"), []).phase is Phase.WAITING


def test_pending_pipeline_without_workflows_never_counts_as_empty() -> None:
    now = [0.0]
    watch = Watch(clock=lambda: now[0], no_workflow_grace=1.0)
    watch.judge(pipeline("pending"), [])
    now[0] = 100.0
    assert watch.judge(pipeline("pending"), []).phase is Phase.WAITING
