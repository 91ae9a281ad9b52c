"""chain.sh: the check job draws the chain for A's Artifacts tab, and never fails for it."""

from __future__ import annotations

from orb_helpers import Sandbox

PID = "5034460f-c7c4-4c43-9457-de07e2029e7b"


def test_chain_draws_this_pipeline_with_the_named_token(sandbox: Sandbox) -> None:
    result = sandbox.run(
        "chain.sh",
        {
            "CIRCLE_PIPELINE_ID": PID,
            "PARAM_TOKEN_VAR": "MY_TOKEN",
            "MY_TOKEN": "secret-b",
            "PARAM_OUTPUT": "~/out/chain.html",
        },
    )
    assert result.returncode == 0, result.stderr
    assert result.calls_to("circleback") == [["trace", PID, "--format", "html"]]
    assert result.tokens_seen_by("circleback") == ["secret-b"]
    assert (sandbox.home / "out" / "chain.html").is_file()
    assert "circleback/chain.html" in result.stdout


def test_a_failure_to_draw_never_fails_the_check(sandbox: Sandbox) -> None:
    result = sandbox.run(
        "chain.sh",
        {
            "CIRCLE_PIPELINE_ID": PID,
            "CIRCLE_TOKEN": "t",
            "FAKE_EXIT": "3",
            "PARAM_OUTPUT": "~/out/chain.html",
        },
    )
    assert result.returncode == 0
    assert "could not draw the chain" in result.stderr
    assert not (sandbox.home / "out" / "chain.html").exists()


def test_nothing_to_draw_without_a_pipeline_id_or_token(sandbox: Sandbox) -> None:
    assert sandbox.run("chain.sh", {"CIRCLE_TOKEN": "t"}).calls == []
    unset = sandbox.run("chain.sh", {"CIRCLE_PIPELINE_ID": PID})
    assert unset.returncode == 0
    assert unset.calls == []
    assert "CIRCLE_TOKEN" in unset.stderr
