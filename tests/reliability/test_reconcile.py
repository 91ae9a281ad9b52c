"""Trigger reconciliation: an ambiguous trigger never becomes a second downstream pipeline.

Library level (``relay.trigger`` over the emulator's in-process transport, realistic
defaults: async creation, no parameters in ``trigger_parameters``): each test makes one
trigger's outcome unknown in a particular way and checks which pipeline is adopted
(proven from its compiled config), when the trigger is sent again, and when it fails
"outcome unknown" with the reason spelt out.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from circleback import errors
from circleback.client import CircleCIClient
from circleback.emulator import Emulator
from circleback.relay.trigger import (
    DuplicateDownstream,
    ReconcilePolicy,
    TriggerOutcomeUnknown,
    TriggerRequest,
    trigger,
)
from tests.relay.world import HOST, PROJECTS, TOKEN, A, B, FakeTime
from tests.reliability.conftest import RealClock

CALLBACK = "triggering-pipeline-id"
TRIGGER_PATH = r"/project/gh/acme/b/pipeline$"


class Recorder(httpx.BaseTransport):
    """Pass requests to the emulator, noting each; ``before`` runs ahead of each request."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner
        self.calls: list[tuple[str, str]] = []
        self.before: Any = None

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.calls.append((request.method, request.url.path))
        if self.before is not None:
            self.before(request)
        return self.inner.handle_request(request)


class Setup:
    def __init__(self, clock: RealClock, layout: str = "absent") -> None:
        self.clock = clock
        self.time = FakeTime()
        self.emu = Emulator(
            projects=PROJECTS,
            tokens=(TOKEN,),
            clock=clock,
            sleep=self.time.sleep,
            switches={"trigger_parameters": layout},
        )
        self.net = Recorder(self.emu.transport())
        self.client = CircleCIClient(
            token=TOKEN,
            host=HOST,
            transport=self.net,
            sleep=self.time.sleep,
            clock=self.time.clock,
        )
        # A real pipeline of A (trigger refuses an upstream id that does not exist), made
        # a day ago so that the clock can still be moved back for "earlier" pipelines.
        clock.shift = timedelta(days=-1)
        self.upstream = self.emu.locked(
            lambda st: st.trigger(A, branch="main", tag=None, parameters={})
        ).id
        clock.shift = timedelta(0)
        self.known: list[str] = []

    def request(self, **kwargs: Any) -> TriggerRequest:
        return TriggerRequest(project_slug=B, upstream_pipeline_id=self.upstream, **kwargs)

    def run(self, **kwargs: Any) -> str:
        record = trigger(
            self.client,
            self.request(**kwargs),
            sleep=self.time.sleep,
            clock=self.time.clock,
            now=self.clock,
            known_pipeline_ids=self.known,
        )
        return record.pipeline_id

    def ours(self) -> list[dict[str, Any]]:
        return [
            p
            for p in self.emu.state_dump()["pipelines"]
            if p["project_slug"] == B and p["sent_parameters"].get(CALLBACK) == self.upstream
        ]

    def sent(self, pipeline_id: str) -> dict[str, Any]:
        found = [p for p in self.emu.state_dump()["pipelines"] if p["id"] == pipeline_id]
        return dict(found[0]["sent_parameters"])

    def posts(self) -> int:
        return sum(1 for m, p in self.net.calls if m == "POST")

    def looks(self) -> int:
        return sum(1 for m, p in self.net.calls if m == "GET" and p.endswith(f"{B}/pipeline"))

    def earlier_pipeline(self, minutes: float = 10.0, slug: str = B, **parameters: Any) -> str:
        """A pipeline of B triggered before this attempt (an earlier run of A's job)."""
        self.clock.shift = timedelta(minutes=-minutes)
        try:
            return self.emu.locked(
                lambda s: s.trigger(
                    slug,
                    branch="main",
                    tag=None,
                    parameters={CALLBACK: self.upstream, **parameters},
                    definition_id=None,
                    not_found_message="Project not found",
                )
            ).id
        finally:
            self.clock.shift = timedelta(0)


@pytest.fixture
def s(clock: RealClock) -> Iterator[Setup]:
    setup = Setup(clock)
    yield setup
    setup.client.close()


@pytest.mark.parametrize("layout", ["absent", "namespaces", "echo"])
def test_a_lost_answer_adopts_the_pipeline_it_created(clock: RealClock, layout: str) -> None:
    # Why: with CircleCI's real trigger_parameters (none, or namespaces only) the created
    # pipeline looked "not ours" and the trigger was sent again: two B pipelines, exit 0.
    s = Setup(clock, layout)
    s.emu.add_fault("lost_response", method="POST", path=TRIGGER_PATH)
    pid = s.run(branch="main")
    assert [p["id"] for p in s.ours()] == [pid]
    assert s.posts() == 1
    assert s.looks() == 1


def test_a_lost_answer_never_adopts_a_pipeline_sent_other_parameters(s: Setup) -> None:
    # Why: triggered with requested-by=staging, then again from the same A with
    # requested-by=prod, whose request is dropped: the staging pipeline was adopted.
    staging = s.earlier_pipeline(minutes=0, **{"requested-by": "staging"})
    s.emu.add_fault("drop", method="POST", path=TRIGGER_PATH)
    pid = s.run(branch="main", parameters={"requested-by": "prod"})
    assert pid != staging
    assert s.posts() == 2  # provably not created (B shows requested-by: staging): sent again
    assert s.sent(pid)["requested-by"] == "prod"


def test_parameters_the_config_cannot_show_make_the_outcome_unknown(s: Setup) -> None:
    # B does not use `deploy` anywhere, so its value cannot be read back: never adopt on a
    # guess, never send again; say what to look at.
    candidate = s.earlier_pipeline(minutes=0, deploy=True)
    s.emu.add_fault("drop", method="POST", path=TRIGGER_PATH)
    with pytest.raises(TriggerOutcomeUnknown) as info:
        s.run(branch="main", parameters={"deploy": False})
    assert s.posts() == 1
    assert candidate in info.value.message
    assert "does not show deploy" in info.value.message
    assert info.value.exit_code == errors.EXIT_API


def test_a_pipeline_already_recorded_is_never_adopted(s: Setup) -> None:
    recorded = s.earlier_pipeline(minutes=0)
    s.known = [recorded]
    s.emu.add_fault("drop", method="POST", path=TRIGGER_PATH)
    pid = s.run(branch="main")
    assert pid != recorded
    assert s.posts() == 2


def test_a_dropped_request_is_sent_again_once_none_is_found(s: Setup) -> None:
    s.emu.add_fault("drop", method="POST", path=TRIGGER_PATH)
    pid = s.run(branch="main")
    assert [p["id"] for p in s.ours()] == [pid]
    assert s.posts() == 2
    # after the retry, one more look confirms the first attempt did not land late
    assert s.looks() == 2


def test_the_look_waits_for_a_request_still_in_flight(s: Setup) -> None:
    s.emu.add_fault("drop", method="POST", path=TRIGGER_PATH)
    landed: list[str] = []

    def lands_while_we_wait(n: int) -> None:
        landed.append(s.earlier_pipeline(minutes=0))

    s.time.on_sleep = lands_while_we_wait
    pid = s.run(branch="main")
    assert pid == landed[0]
    assert s.posts() == 1
    assert s.time.sleeps[0] == ReconcilePolicy().settle


def test_a_pipeline_from_an_earlier_run_of_the_job_is_not_adopted(s: Setup) -> None:
    old = s.earlier_pipeline(minutes=10)
    s.emu.add_fault("drop", method="POST", path=TRIGGER_PATH)
    pid = s.run(branch="main")
    assert pid != old
    assert s.posts() == 2


def test_two_candidates_fail_clearly_and_nothing_more_is_sent(s: Setup) -> None:
    first = s.earlier_pipeline(minutes=0)
    s.emu.add_fault("lost_response", method="POST", path=TRIGGER_PATH)
    with pytest.raises(TriggerOutcomeUnknown) as info:
        s.run(branch="main")
    assert len(s.ours()) == 2
    assert first in info.value.message
    assert s.posts() == 1
    assert info.value.exit_code == errors.EXIT_API


def test_a_late_landing_after_the_retry_is_reported_never_silent(s: Setup) -> None:
    s.emu.add_fault("drop", method="POST", path=TRIGGER_PATH)

    def first_attempt_lands_late(request: httpx.Request) -> None:
        if request.method == "POST" and s.posts() == 2:
            s.earlier_pipeline(minutes=0)

    s.net.before = first_attempt_lands_late
    with pytest.raises(DuplicateDownstream, match="landed too"):
        s.run(branch="main")
    assert len(s.ours()) == 2


def test_an_unreadable_list_fails_without_sending_again(s: Setup) -> None:
    s.emu.add_fault("lost_response", method="POST", path=TRIGGER_PATH)
    s.emu.add_fault("status", status=503, method="GET", path=TRIGGER_PATH, count=None)
    with pytest.raises(TriggerOutcomeUnknown, match="could not be read") as info:
        s.run(branch="main")
    assert s.posts() == 1
    assert len(s.ours()) == 1
    assert "rerun this job only if there is none" in info.value.hint
    assert "Nothing was sent again" in info.value.hint


def test_a_recent_pipeline_still_pending_cannot_be_judged(s: Setup) -> None:
    # Its compiled config is empty until it leaves `pending`: it could be ours.
    s.emu.set_switches(creation_delay=3600.0)
    s.earlier_pipeline(minutes=0)
    s.emu.add_fault("drop", method="POST", path=TRIGGER_PATH)
    with pytest.raises(TriggerOutcomeUnknown, match="cannot be told"):
        s.run(branch="main")
    assert s.posts() == 1
    assert s.looks() == ReconcilePolicy().looks  # looked again while it was pending


def test_attempts_are_bounded_and_the_error_says_none_was_created(s: Setup) -> None:
    s.emu.add_fault("status", status=502, method="POST", path=TRIGGER_PATH, count=None)
    with pytest.raises(errors.ServerError) as info:
        s.run(branch="main")
    assert s.posts() == ReconcilePolicy().max_attempts
    assert s.ours() == []
    assert "No pipeline of gh/acme/b was created" in info.value.hint


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        ({"kind": "status", "status": 404}, errors.NotFound),
        ({"kind": "status", "status": 401}, errors.AuthenticationError),
        ({"kind": "status", "status": 400}, errors.APIError),
        ({"kind": "status", "status": 429, "count": None}, errors.RateLimited),
    ],
)
def test_a_refusal_is_not_reconciled(s: Setup, fault: dict[str, Any], error: type) -> None:
    kind = fault.pop("kind")
    s.emu.add_fault(kind, method="POST", path=TRIGGER_PATH, **fault)
    with pytest.raises(error) as info:
        s.run(branch="main")
    assert not info.value.outcome_unknown
    assert s.ours() == []
    # Only a 404 looks at B's pipelines: to tell "cannot see the project" from an
    # undeclared parameter in its hint, not to reconcile.
    assert s.looks() == (1 if error is errors.NotFound else 0)


def test_ci_skip_is_final_not_ambiguous(s: Setup) -> None:
    s.emu.set_ci_skip(True)
    with pytest.raises(errors.NotCreated):
        s.run(branch="main", definition_id=str(uuid.uuid4()))
    assert s.looks() == 0
    assert s.posts() == 1


def test_pipeline_run_and_tags_are_reconciled_too(s: Setup) -> None:
    s.emu.add_fault("lost_response", method="POST", path=r"/pipeline/run$")
    definition = s.emu.state_dump()["projects"]
    definition_id = next(p["definition_id"] for p in definition if p["slug"] == B)
    pid = s.run(branch="main", definition_id=definition_id)
    assert [p["id"] for p in s.ours()] == [pid]
    s.emu.add_fault("lost_response", method="POST", path=r"/project/gh/acme/b-tags/pipeline$")
    record = trigger(
        s.client,
        TriggerRequest(project_slug="gh/acme/b-tags", upstream_pipeline_id=s.upstream, tag="v1"),
        sleep=s.time.sleep,
        clock=s.time.clock,
        now=s.clock,
    )
    tagged = [p for p in s.emu.state_dump()["pipelines"] if p["project_slug"] == "gh/acme/b-tags"]
    assert [p["id"] for p in tagged] == [record.pipeline_id]
    assert s.posts() == 2
