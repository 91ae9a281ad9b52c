"""Slug mistakes are refused as before, now with the slug that was probably meant."""

from __future__ import annotations

import pytest

from circleback.suggest import suggest_slug
from tests.relay.world import World

PID = "5034460f-c7c4-4c43-9457-de07e2029e7b"


@pytest.mark.parametrize(
    ("typed", "meant"),
    [
        ("github.com/acme/b", "gh/acme/b"),
        ("acme/b", "gh/acme/b"),
        ("gh/acme/b/", "gh/acme/b"),
        ("/gh/acme/b", "gh/acme/b"),
        ("GH/acme/b", "gh/acme/b"),
        ("GH/Acme/B", "gh/Acme/B"),
        (" gh/acme/b ", "gh/acme/b"),
        ("https://github.com/acme/b.git", "gh/acme/b"),
        ("git@github.com:acme/b.git", "gh/acme/b"),
        ("https://app.circleci.com/pipelines/github/acme/b/12", "github/acme/b"),
        ("bitbucket.org/acme/b", "bb/acme/b"),
    ],
)
def test_the_refusal_names_the_slug_meant(world: World, typed: str, meant: str) -> None:
    assert suggest_slug(typed) == meant
    result = world.cli("trigger", typed, "--upstream-pipeline-id", PID)
    assert result.code == 2
    assert f"Did you mean {meant}?" in result.err
    assert world.requests() == []


@pytest.mark.parametrize("typed", ["gl/acme/b", "gh/../b", "gh/acme", "x", "gh/a/b/c/d/e"])
def test_no_guess_when_there_is_no_good_one(world: World, typed: str) -> None:
    assert suggest_slug(typed) is None
    result = world.cli("trigger", typed, "--upstream-pipeline-id", PID)
    assert result.code == 2
    assert "Did you mean" not in result.err


def test_a_valid_slug_gets_no_suggestion() -> None:
    assert suggest_slug("gh/acme/b") is None
