"""Input validation: ids, slugs and path segments, before any request."""

from __future__ import annotations

import pytest

from circleback import errors
from circleback.validation import parse_project_slug, parse_uuid, segment

UUID = "5034460f-c7c4-4c43-9457-de07e2029e7b"


@pytest.mark.parametrize(
    ("slug", "opaque", "path"),
    [
        ("gh/acme/api", False, "gh/acme/api"),
        ("github/Acme-Co/my.repo_1", False, "github/Acme-Co/my.repo_1"),
        ("bb/acme/api", False, "bb/acme/api"),
        (f"circleci/{UUID}/{UUID}", True, f"circleci/{UUID}/{UUID}"),
    ],
)
def test_valid_slugs(slug: str, opaque: bool, path: str) -> None:
    parsed = parse_project_slug(slug)
    assert str(parsed) == slug
    assert parsed.is_opaque is opaque
    assert parsed.path == path


@pytest.mark.parametrize(
    "slug",
    [
        "acme/api",
        "gh/acme/api/extra",
        "gl/acme/api",
        "gh/../api",
        "gh/acme/..",
        "gh/acme/a%2Fb",
        "gh/acme/a?b",
        "gh/acme/a#b",
        "gh/acme/a\nb",
        "gh/acme/" + "a" * 101,
        "circleci/org/pro.ject",
        "",
    ],
)
def test_invalid_slugs_are_refused_with_a_hint(slug: str) -> None:
    with pytest.raises(errors.ConfigurationError) as info:
        parse_project_slug(slug)
    assert info.value.exit_code == 2
    assert "vcs/org/repo" in info.value.hint


def test_uuid_is_canonicalised() -> None:
    assert parse_uuid(UUID.upper(), what="pipeline id") == UUID


@pytest.mark.parametrize(
    "value",
    ["", "null", "5034460fc7c44c439457de07e2029e7b", UUID + "/../x", "{" + UUID[:-2] + "}"],
)
def test_bad_uuids_are_refused(value: str) -> None:
    with pytest.raises(errors.ConfigurationError, match="not a UUID"):
        parse_uuid(value, what="pipeline id")


def test_segment_encodes_separators() -> None:
    assert segment("a/b?c#d") == "a%2Fb%3Fc%23d"
