"""Forged and hostile input, fuzzed with hypothesis: never a traceback, never a stray request.

Ids, slugs, job and workflow names, parameters, state files, emulator configs, the fault
control API, job lists and workflow lists a hostile server might send: each property
holds for every example. Requests are checked on the wire against the endpoints circleback
uses, so path traversal, ``%2F``, ``?``, ``#``, control characters, very long values and
non-ASCII can never reach another endpoint. Example counts are fixed (``FUZZ_EXAMPLES``
in ``matrix.py``) and derandomized, so CI sees the same examples every run.
"""

from __future__ import annotations

import contextlib
import json
import re
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from circleback.client import CircleCIClient
from circleback.emulator import Emulator
from circleback.errors import CirclebackError
from circleback.relay import approve, project_allowed
from circleback.relay.trigger import parse_parameter
from tests.relay.world import HOST, PROJECTS, TOKEN, B, Result, World
from tests.reliability.conftest import Wire
from tests.reliability.matrix import FUZZ_EXAMPLES

_F = TypeVar("_F", bound=Callable[..., Any])
HOLD = "wait-for-triggered-pipeline"
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
NAME = r"[A-Za-z0-9_.-]{1,100}"
#: Every endpoint circleback may call, as raw (still percent-encoded) paths.
ENDPOINTS = [
    re.compile(f"/api/v2/{p}")
    for p in (
        rf"pipeline/{UUID}",
        rf"pipeline/{UUID}/workflow",
        rf"pipeline/{UUID}/config",
        rf"project/(gh|github|bb|bitbucket)/{NAME}/{NAME}/[0-9]+/artifacts",
        rf"workflow/{UUID}/job",
        rf"workflow/{UUID}/approve/{UUID}",
        rf"project/(gh|github|bb|bitbucket)/{NAME}/{NAME}/pipeline",
        r"project/circleci/[A-Za-z0-9_-]{1,100}/[A-Za-z0-9_-]{1,100}/pipeline",
        r"project/circleci/[A-Za-z0-9_-]{1,100}/[A-Za-z0-9_-]{1,100}/pipeline/run",
        rf"project/(gh|github|bb|bitbucket)/{NAME}/{NAME}/pipeline/run",
    )
]
HOSTILE = [
    "",
    " ",
    "null",
    "..",
    "../../workflow",
    "%2F",
    "a%2Fb",
    "?x=1",
    "#frag",
    "a\nb",
    "\x1b[31m",
    "\u202e",
    "é",
    "\u212a",
    "x" * 5000,
    str(uuid.uuid4()) + "/../x",
    str(uuid.uuid4()) + "?page-token=x",
    str(uuid.uuid4()).upper(),
    f" {uuid.uuid4()} ",
]
#: Text a real argv can carry (no NUL), biased towards the characters that break URLs.
ARG = st.one_of(
    st.sampled_from(HOSTILE),
    st.text(st.characters(blacklist_characters="\x00"), max_size=80),
    st.text(alphabet="/.%?#&=\\ \t\n-_aZ9", max_size=40),
)


def fuzz(name: str) -> Callable[[_F], _F]:
    """Hypothesis settings for one fuzz target: its registered example count, no deadline."""
    return settings(  # type: ignore[no-any-return]
        max_examples=FUZZ_EXAMPLES[name],
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


def run(world: World, wire: Wire, *args: str) -> Result:
    wire.requests.clear()
    result = world.cli(*args)
    assert "Traceback" not in result.err
    assert "circleback bug" not in result.err, result.err
    assert result.code in {0, 1, 2, 3, 4}
    if result.code == 2:
        # Bad input acts on nothing: at most it was checked against CircleCI by reading
        # (an upstream id that does not exist is refused only after a look).
        assert all(r.method == "GET" for r in wire.requests), "bad input must act on nothing"
    for request in wire.requests:
        path = request.url.raw_path.decode("ascii").partition("?")[0]
        assert any(p.fullmatch(path) for p in ENDPOINTS), path
        assert set(request.url.params) <= {"page-token", "branch"}
    return result


_UPSTREAMS: dict[int, str] = {}


def real_upstream(world: World) -> str:
    """One real pipeline of A per world: trigger refuses an upstream id that does not exist."""
    if id(world) not in _UPSTREAMS:
        _UPSTREAMS[id(world)] = world.trigger("gh/acme/a")
    return _UPSTREAMS[id(world)]


def is_uuid(text: str) -> bool:
    try:
        return len(text.strip()) == 36 and bool(uuid.UUID(text.strip()))
    except ValueError:
        return False


# -- ids and slugs ------------------------------------------------------------------------


@fuzz("ids")
@given(
    value=st.one_of(ARG, st.uuids().map(str)),
    command=st.sampled_from(["status", "approve", "trigger"]),
)
def test_ids(world: World, wire: Wire, value: str, command: str) -> None:
    args = {
        "status": ["status", "--pipeline-id", value],
        "approve": ["approve", "--pipeline-id", value, "--allow-project", "gh/acme/*"],
        "trigger": ["trigger", B, "--upstream-pipeline-id", value],
    }[command]
    result = run(world, wire, *args)
    blank_approve = command == "approve" and not value.strip()
    if not is_uuid(value) and not blank_approve:
        assert result.code == 2
    if is_uuid(value):  # uuid.UUID's spellings (hyphens anywhere) reach the canonical form
        canonical = str(uuid.UUID(value.strip()))
        assert all(canonical in str(r.url) or r.method == "POST" for r in wire.requests[:1])


@fuzz("slugs")
@given(
    org=ARG, project=ARG, provider=st.sampled_from(["gh", "github", "bb", "circleci", "gl", "GH"])
)
@example(org="acme", project="b", provider="gh")
@example(org="acme%2Fb", project="x", provider="gh")
@example(org="..", project="b", provider="gh")
def test_slugs(world: World, wire: Wire, org: str, project: str, provider: str) -> None:
    slug = f"{provider}/{org}/{project}"
    upstream = real_upstream(world)
    result = run(world, wire, "trigger", slug, "--upstream-pipeline-id", upstream)
    posts = [r for r in wire.requests if r.method == "POST"]
    if posts:
        assert posts[0].url.raw_path.decode() in {
            f"/api/v2/project/{slug}/pipeline",
            f"/api/v2/project/{slug}/pipeline/run",
        }
    else:
        assert result.code == 2


# -- names and parameters -----------------------------------------------------------------


@fuzz("names")
@given(job=st.one_of(ARG, st.just(HOLD), st.just(HOLD.upper())), workflow=st.one_of(st.none(), ARG))
def test_job_and_workflow_names(world: World, wire: Wire, job: str, workflow: str | None) -> None:
    a = world.upstream_on_hold()
    args = ["approve", "--pipeline-id", a, "--allow-project", "gh/acme/*", "--job-name", job]
    args += ["--downstream-pipeline-id", world.downstream(a)]
    result = run(
        world, wire, *args, *(["--workflow-name", workflow] if workflow is not None else [])
    )
    approved = [r for r in wire.requests if "/approve/" in r.url.path]
    hold = world.job_status(a, HOLD)
    if approved:
        assert job == HOLD
        assert workflow in {None, "main"}
        assert hold == "success"
    else:
        assert hold == "on_hold"
        assert result.code != 0 or not job.strip()


@fuzz("parameters")
@given(raw=st.lists(ARG.map(lambda t: t if "=" in t else f"k{t}=v"), max_size=4))
def test_parameters(world: World, wire: Wire, raw: list[str]) -> None:
    upstream = real_upstream(world)
    args = ["trigger", B, "--upstream-pipeline-id", upstream]
    for item in raw:
        args += ["--parameter", item]
    result = run(world, wire, *args)
    posts = [r for r in wire.requests if r.method == "POST"]
    if not posts:
        assert result.code == 2
        return
    sent = json.loads(posts[0].content)["parameters"]
    expected = dict(parse_parameter(item) for item in raw)
    assert sent == {**expected, "triggering-pipeline-id": upstream}
    assert posts[0].url.raw_path == b"/api/v2/project/gh/acme/b/pipeline"


# -- state files --------------------------------------------------------------------------

JSON = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=False, allow_infinity=False),
        ARG,
    ),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(ARG, inner, max_size=3)),
    max_leaves=12,
)
ENTRY = st.fixed_dictionaries(
    {
        "project_slug": st.one_of(st.just(B), ARG),
        "pipeline_id": st.one_of(st.uuids().map(str), ARG),
        "number": st.one_of(st.integers(), st.booleans(), ARG),
    },
    optional={"state": JSON, "url": JSON},
)
STATE = st.one_of(
    JSON,
    st.fixed_dictionaries(
        {"version": st.sampled_from([1, "1", 2]), "downstream": st.lists(ENTRY, max_size=3)}
    ),
)


@fuzz("state-files")
@given(document=STATE, raw=st.one_of(st.none(), st.binary(max_size=64)))
def test_state_files(
    world: World, wire: Wire, tmp_path: Path, document: Any, raw: bytes | None
) -> None:
    path = tmp_path / "state.json"
    path.write_bytes(raw if raw is not None else json.dumps(document).encode())
    result = run(world, wire, "status", "--state-file", str(path), "--timeout", "1m")
    assert result.code != 0 or wire.requests


# -- what a hostile server sends ----------------------------------------------------------

JOB_STATUSES = ["on_hold", "success", "blocked", "running", "failed", "canceled", "mystery"]


@fuzz("job-lists")
@given(
    jobs=st.lists(
        st.tuples(
            st.sampled_from([HOLD, HOLD.upper(), HOLD + " ", "deploy", ""]),
            st.sampled_from(["approval", "build", "Approval", "manual"]),
            st.sampled_from(JOB_STATUSES),
        ),
        max_size=6,
    )
)
def test_only_an_on_hold_approval_job_of_that_exact_name_is_approved(
    world: World, jobs: list[tuple[str, str, str]]
) -> None:
    a = world.upstream_on_hold()
    items = [
        {
            "id": str(uuid.uuid4()),
            "name": name,
            "type": kind,
            "status": status,
            "started_at": None,
            "dependencies": [],
            "project_slug": "gh/acme/a",
        }
        for name, kind, status in jobs
    ]
    world.emu.add_fault(
        "unexpected_shape",
        method="GET",
        path="/job$",
        count=None,
        body={"items": items, "next_page_token": None},
    )
    world.emu.clear_request_log()
    client = CircleCIClient(
        token=TOKEN,
        host=HOST,
        transport=world.emu.transport(),
        sleep=world.time.sleep,
        clock=world.time.clock,
    )
    # A clean error is fine; anything else escapes and fails the test.
    with client, contextlib.suppress(CirclebackError):
        approve(
            client,
            a,
            allow_projects=["gh/acme/*"],
            hold_wait=10,
            sleep=world.time.sleep,
            clock=world.time.clock,
        )
    world.emu.clear_faults()
    eligible = {
        i["id"]
        for i in items
        if (i["name"], i["type"], i["status"]) == (HOLD, "approval", "on_hold")
    }
    for entry in world.requests():
        if "/approve/" in entry["path"]:
            assert entry["path"].rsplit("/", 1)[1] in eligible


WORKFLOW_STATUSES = ["success", "failed", "error", "canceled", "not_run", "unauthorized", "mystery"]


@fuzz("workflow-lists")
@given(
    workflows=st.lists(
        st.tuples(st.sampled_from(["test", "lint", "deploy"]), st.sampled_from(WORKFLOW_STATUSES)),
        max_size=5,
    )
)
def test_status_passes_only_when_every_workflow_succeeded(
    world: World, wire: Wire, workflows: list[tuple[str, str]]
) -> None:
    b = world.trigger(B)
    template = world.workflows(b)[0]
    items = [
        {
            **template,
            "id": str(uuid.uuid4()),
            "name": name,
            "status": status,
            "created_at": f"2026-11-22T12:00:{i:02d}Z",
        }
        for i, (name, status) in enumerate(workflows)
    ]
    world.emu.add_fault(
        "unexpected_shape",
        method="GET",
        path="/workflow$",
        count=None,
        body={"items": items, "next_page_token": None},
    )
    world.emu.add_fault(
        "unexpected_shape",
        method="GET",
        path="/job$",
        count=None,
        body={"items": [], "next_page_token": None},
    )
    result = run(world, wire, "status", "--pipeline-id", b, "--timeout", "1m")
    world.emu.clear_faults()
    newest = dict(workflows)  # later items are newer: the last status of a name counts
    all_succeeded = bool(newest) and all(s == "success" for s in newest.values())
    if result.code == 0:
        assert all_succeeded, "status passed a pipeline that did not succeed"
    elif all_succeeded:
        pytest.fail(f"status failed a pipeline whose workflows all succeeded: {result.err}")


# -- the emulator's own inputs ------------------------------------------------------------

KEYS = [
    "version",
    "parameters",
    "jobs",
    "workflows",
    "requires",
    "type",
    "approval",
    "filters",
    "branches",
    "only",
    "ignore",
    "matrix",
    "alias",
    "when",
    "unless",
    "steps",
    "run",
    "default",
    "enum",
    "string",
    "boolean",
    "integer",
    "name",
    "docker",
    "image",
    "exclude",
    "triggering-pipeline-id",
    "<< pipeline.parameters.x >>",
    "equal",
    "and",
    "or",
    "not",
]
YAML_VALUE = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.sampled_from(KEYS), ARG),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(KEYS), inner, max_size=4)
    ),
    max_leaves=20,
)
CONFIG = st.fixed_dictionaries(
    {"version": st.sampled_from([2.1, 2, "2.1"])},
    optional={"parameters": YAML_VALUE, "jobs": YAML_VALUE, "workflows": YAML_VALUE},
)


@fuzz("emulator-configs")
@given(
    config=st.one_of(CONFIG, YAML_VALUE),
    parameters=st.dictionaries(st.sampled_from(KEYS), YAML_VALUE, max_size=2),
)
@example(
    config={"version": 2.1, "workflows": {"w": {"jobs": [{"j": {"requires": ["j"]}}]}}},
    parameters={},
)
def test_emulator_configs(tmp_path: Path, config: Any, parameters: dict[str, Any]) -> None:
    path = tmp_path / "config.yml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    emu = Emulator(projects={"gh/acme/f": path}, tokens=(TOKEN,))
    with httpx.Client(
        transport=emu.transport(), base_url=f"{HOST}/api/v2", headers={"Circle-Token": TOKEN}
    ) as api:
        created = api.post("/project/gh/acme/f/pipeline", json={"parameters": parameters})
        assert created.status_code in {201, 400}, created.text
        assert "message" in created.json() or created.status_code == 201
        if created.status_code == 201:
            pid = created.json()["id"]
            assert api.get(f"/pipeline/{pid}").status_code == 200
            for wf in api.get(f"/pipeline/{pid}/workflow").json()["items"]:
                assert api.get(f"/workflow/{wf['id']}/job").status_code == 200


@fuzz("fault-controls")
@given(
    body=st.one_of(
        JSON,
        st.dictionaries(
            st.sampled_from(
                [
                    "kind",
                    "method",
                    "path",
                    "count",
                    "status",
                    "retry_after",
                    "latency_ms",
                    "seconds",
                    "body",
                ]
            ),
            JSON,
            max_size=5,
        ),
    )
)
def test_the_fault_control_api(body: Any) -> None:
    emu = Emulator(projects=PROJECTS, tokens=(TOKEN,), sleep=lambda s: None)
    with httpx.Client(transport=emu.transport(), base_url=HOST) as control:
        # The control API takes JSON only (415 otherwise): say so even for a null body.
        answer = control.post(
            "/_emulator/faults",
            content=json.dumps(body),
            headers={"Content-Type": "application/json"},
        )
        assert answer.status_code in {201, 400}, answer.text


# -- the allow-list -----------------------------------------------------------------------

ORG = st.text(alphabet="acmeACME-_.ev1/%2F", min_size=0, max_size=12)


@fuzz("allow-list")
@given(provider=st.sampled_from(["gh", "github", "GH", "bb", "gl", ""]), org=ORG, repo=ORG)
@example(provider="gh", org="acme-evil", repo="x")
@example(provider="gh", org="acme%2Fevil", repo="x")
@example(provider="gh", org="acme/../evil", repo="x")
@example(provider="github", org="ACME", repo="x")
def test_the_allow_list_cannot_be_bypassed(provider: str, org: str, repo: str) -> None:
    slug = f"{provider}/{org}/{repo}"
    parts = slug.split("/")
    legit = len(parts) == 3 and parts[0].lower() in {"gh", "github"} and parts[1].lower() == "acme"
    assert project_allowed(slug, ["gh/acme/*"]) is legit
    assert project_allowed(slug, ["gh/acme/x"]) is (legit and parts[2].lower() == "x")


def test_unicode_case_folding_does_not_widen_the_allow_list() -> None:
    assert not project_allowed("gh/\u212aevin/x", ["gh/kevin/*"])


def test_every_fuzz_target_is_registered() -> None:
    targets = {
        name
        for name, value in globals().items()
        if name.startswith("test_") and hasattr(value, "hypothesis")
    }
    assert len(targets) == len(FUZZ_EXAMPLES)
