"""The orb's check job stores the chain page as the artifact ``circleback/chain.html``.

The example projects run for real in the local executor; B's tests fail, and the page in
A's artifacts shows B under A with the failed job.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from circleback.emulator import LocalCircleCI
from tests.e2e.conftest import DOWNSTREAM, IDLE_TIMEOUT, UPSTREAM, a_and_b, start_local

pytestmark = pytest.mark.loopback
__all__ = ["a_and_b", "start_local"]


def test_a_failed_check_stores_the_chain_as_an_artifact(
    start_local: Callable[..., LocalCircleCI], a_and_b: dict[str, Path]
) -> None:
    local = start_local(a_and_b, fail_jobs={(DOWNSTREAM, "build-and-test")})
    local.trigger(UPSTREAM)
    assert local.executor.wait_idle(IDLE_TIMEOUT)
    (check,) = [
        j
        for j in local.emulator.state_dump()["jobs"]
        if j["project_slug"] == UPSTREAM and j["name"] == "check-project-b"
    ]
    assert check["status"] == "failed"
    with local.client() as client:
        listed = client.get(f"/project/{UPSTREAM}/{check['job_number']}/artifacts").json()
        (page,) = [i for i in listed["items"] if i["path"] == "circleback/chain.html"]
        text = client.get(page["url"]).text
    assert text.startswith("<!DOCTYPE html>")
    assert f'data-project="{UPSTREAM}"' in text
    assert f'data-project="{DOWNSTREAM}"' in text
    assert 'data-job="build-and-test" data-status="failed"' in text
