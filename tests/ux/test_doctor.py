"""``circleback doctor``: each kind of broken setup is named with its fix; nothing is created."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import respx

from circleback import _cli
from circleback.doctor import Finding, Level, exit_code

BASE = "https://circleci.com/api/v2"
TOKEN = "CCIPAT_d0ct0r-t0ken"
A, B = "gh/acme/a", "gh/acme/b"
PIPE_A = "11111111-1111-4111-8111-111111111111"
PIPE_B = "22222222-2222-4222-8222-222222222222"
APP_B = "circleci/8e1a5d2c-0d9d-4bfb-9d4f-1f2b3c4d5e6f/a1b2c3d4-e5f6-4a5b-8c9d-0e1f2a3b4c5d"

SOURCE_A = """version: 2.1
orbs: {circleback: circleback/circleback@0.1.0}
workflows:
  main:
    jobs:
      - circleback/trigger: {name: trigger-b, project_slug: gh/acme/b}
      - wait-for-triggered-pipeline: {type: approval, requires: [trigger-b]}
      - circleback/check: {requires: [wait-for-triggered-pipeline]}
"""
SOURCE_B = """version: 2.1
orbs: {circleback: circleback/circleback@0.1.0}
parameters:
  triggering-pipeline-id: {type: string, default: ""}
workflows:
  test:
    jobs:
      - build-and-test
      - circleback/approve:
          upstream_pipeline_id: << pipeline.parameters.triggering-pipeline-id >>
          allow_project: gh/acme/*
          requires: [{build-and-test: terminal}]
"""


class Recorder:
    def __init__(self, router: respx.MockRouter) -> None:
        self.router = router

    @property
    def methods(self) -> set[str]:
        return {call.request.method for call in self.router.calls}

    @property
    def paths(self) -> list[str]:
        return [call.request.url.path for call in self.router.calls]


def _pipeline(pid: str, slug: str) -> dict[str, Any]:
    return {
        "id": pid,
        "errors": [],
        "project_slug": slug,
        "number": 3,
        "state": "created",
        "created_at": "2026-11-22T10:00:00Z",
    }


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[respx.MockRouter]:
    for name in (
        "CIRCLEBACK_TOKEN",
        "CIRCLE_TOKEN",
        "CIRCLECI_API_KEY",
        "CIRCLEBACK_HOST",
        "CI",
        "CIRCLEBACK_ALLOW_PROJECTS",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CIRCLE_TOKEN", TOKEN)
    monkeypatch.setattr(_cli, "RUNTIME", _cli.Runtime(sleep=lambda s: None, clock=lambda: 0.0))
    with respx.mock(base_url=BASE, assert_all_called=False) as router:
        router.get("/me").respond(
            200, json={"id": "u1", "login": "jane", "name": "Jane Doe", "avatar_url": None}
        )
        for slug, pid, source in ((A, PIPE_A, SOURCE_A), (B, PIPE_B, SOURCE_B)):
            router.get(f"/project/{slug}/pipeline").respond(
                200, json={"items": [_pipeline(pid, slug)], "next_page_token": None}
            )
            router.get(f"/pipeline/{pid}/config").respond(
                200, json={"source": source, "compiled": "version: 2\n"}
            )
        yield router


def _doctor(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = _cli.run(["--log-format", "console", "doctor", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def _findings(out: str) -> list[dict[str, Any]]:
    return list(json.loads(out)["findings"])


def _by_check(findings: list[dict[str, Any]], check: str) -> list[dict[str, Any]]:
    return [f for f in findings if f["check"] == check]


def test_a_good_setup_passes_every_check_and_only_reads(
    api: respx.MockRouter, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _doctor(capsys, "--upstream", A, "--downstream", B, "--json")
    assert code == 0, out
    findings = _findings(out)
    assert {f["check"] for f in findings} == {
        "host",
        "token",
        "access",
        "hold",
        "callback-parameter",
        "callback",
        "callback-runs",
        "allow-list",
    }
    assert all(f["level"] == "ok" for f in findings), findings
    assert all(f["fix"] is None for f in findings)
    (token,) = _by_check(findings, "token")
    assert "jane (Jane Doe)" in token["message"]
    assert Recorder(api).methods == {"GET"}
    assert TOKEN not in out


def test_the_human_report_ends_with_a_verdict(
    api: respx.MockRouter, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _doctor(capsys, "--upstream", A, "--downstream", B)
    assert code == 0
    assert out.strip().splitlines()[-1] == "No problem found."
    assert out.splitlines()[0].startswith("ok    host")
    assert err == ""


def test_no_token_is_a_finding_and_nothing_is_sent(
    api: respx.MockRouter, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CIRCLE_TOKEN")
    code, out, _ = _doctor(capsys, "--downstream", B, "--json")
    assert code == 2
    (token,) = _by_check(_findings(out), "token")
    assert token["level"] == "fail"
    assert "CIRCLEBACK_TOKEN" in token["fix"]
    assert api.calls.call_count == 0


def test_a_refused_token_says_to_make_a_personal_one(
    api: respx.MockRouter, capsys: pytest.CaptureFixture[str]
) -> None:
    api.get("/me").respond(401, json={"message": "You must log in first."})
    code, out, _ = _doctor(capsys, "--downstream", B, "--json")
    assert code == 2
    (token,) = _by_check(_findings(out), "token")
    assert token["level"] == "fail"
    assert "personal API token" in token["fix"]
    assert Recorder(api).paths == ["/api/v2/me"]


def test_a_bad_host_is_a_finding(
    api: respx.MockRouter, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CIRCLEBACK_HOST", "http://circleci.example.com")
    code, out, _ = _doctor(capsys, "--json")
    assert code == 2
    (host,) = _by_check(_findings(out), "host")
    assert host["level"] == "fail"
    assert "https" in host["fix"]
    assert api.calls.call_count == 0


def test_a_project_the_token_cannot_read(
    api: respx.MockRouter, capsys: pytest.CaptureFixture[str]
) -> None:
    api.get(f"/project/{B}/pipeline").respond(404, json={"message": "Project not found"})
    code, out, _ = _doctor(capsys, "--upstream", A, "--downstream", B, "--json")
    assert code == 2
    (access,) = [f for f in _by_check(_findings(out), "access") if f["subject"] == B]
    assert access["level"] == "fail"
    assert "access" in access["fix"]


def test_a_b_that_does_not_declare_the_parameter(
    api: respx.MockRouter, capsys: pytest.CaptureFixture[str]
) -> None:
    undeclared = SOURCE_B.replace('  triggering-pipeline-id: {type: string, default: ""}\n', "")
    undeclared = undeclared.replace("parameters:\n", "parameters: {}\n")
    api.get(f"/pipeline/{PIPE_B}/config").respond(200, json={"source": undeclared})
    code, out, _ = _doctor(capsys, "--downstream", B, "--json")
    assert code == 2
    (param,) = _by_check(_findings(out), "callback-parameter")
    assert param["level"] == "fail"
    assert "triggering-pipeline-id: {type: string" in param["fix"]


def test_a_parameter_of_the_wrong_type(
    api: respx.MockRouter, capsys: pytest.CaptureFixture[str]
) -> None:
    typed = SOURCE_B.replace('{type: string, default: ""}', "{type: integer, default: 0}")
    api.get(f"/pipeline/{PIPE_B}/config").respond(200, json={"source": typed})
    code, out, _ = _doctor(capsys, "--downstream", B, "--json")
    assert code == 2
    (param,) = _by_check(_findings(out), "callback-parameter")
    assert "'integer'" in param["message"]


def test_a_b_that_never_calls_back(
    api: respx.MockRouter, capsys: pytest.CaptureFixture[str]
) -> None:
    silent = SOURCE_B.split("      - circleback/approve:")[0]
    api.get(f"/pipeline/{PIPE_B}/config").respond(200, json={"source": silent})
    code, out, _ = _doctor(capsys, "--downstream", B, "--json")
    assert code == 2
    (callback,) = _by_check(_findings(out), "callback")
    assert callback["level"] == "fail"
    assert "circleback/approve" in callback["fix"]


def test_an_allow_list_that_refuses_a(
    api: respx.MockRouter, capsys: pytest.CaptureFixture[str]
) -> None:
    api.get("/project/gh/other/a/pipeline").respond(
        200, json={"items": [], "next_page_token": None}
    )
    code, out, _ = _doctor(capsys, "--upstream", "gh/other/a", "--downstream", B, "--json")
    (allow,) = _by_check(_findings(out), "allow-list")
    assert allow["level"] == "fail"
    assert "gh/other/a" in allow["fix"]
    assert code == 2


def test_allow_patterns_given_on_the_command_line_count_too(
    api: respx.MockRouter, capsys: pytest.CaptureFixture[str]
) -> None:
    no_allow = SOURCE_B.replace("          allow_project: gh/acme/*\n", "")
    api.get(f"/pipeline/{PIPE_B}/config").respond(200, json={"source": no_allow})
    code, out, _ = _doctor(capsys, "--upstream", A, "--downstream", B, "--json")
    (unknown,) = _by_check(_findings(out), "allow-list")
    assert unknown["level"] == "warn"
    assert code == 0
    code, out, _ = _doctor(
        capsys, "--upstream", A, "--downstream", B, "--allow-project", "gh/acme/b", "--json"
    )
    (refused,) = _by_check(_findings(out), "allow-list")
    assert refused["level"] == "fail"
    assert code == 2


def test_a_hold_missing_from_a(api: respx.MockRouter, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _doctor(capsys, "--upstream", A, "--job-name", "gate", "--json")
    assert code == 2
    (hold,) = _by_check(_findings(out), "hold")
    assert "wait-for-triggered-pipeline" in hold["message"]  # the approval jobs A does have


def test_a_github_app_project_lists_its_definition_ids(
    api: respx.MockRouter, capsys: pytest.CaptureFixture[str]
) -> None:
    project_id = APP_B.rsplit("/", 1)[1]
    api.get(f"/project/{APP_B}/pipeline").respond(
        200, json={"items": [_pipeline(PIPE_B, APP_B)], "next_page_token": None}
    )
    api.get(f"/projects/{project_id}/pipeline-definitions").respond(
        200, json={"items": [{"id": "def-1", "name": "main pipeline"}]}
    )
    code, out, _ = _doctor(capsys, "--downstream", APP_B, "--json")
    (definition,) = _by_check(_findings(out), "definition-id")
    assert definition["level"] == "warn"
    assert "def-1 (main pipeline)" in definition["message"]
    assert "--definition-id" in definition["fix"]
    assert code == 0


def test_an_api_that_keeps_failing_cannot_tell(
    api: respx.MockRouter, capsys: pytest.CaptureFixture[str]
) -> None:
    api.get(f"/project/{B}/pipeline").respond(503, text="busy")
    code, out, _ = _doctor(capsys, "--downstream", B, "--json")
    assert code == 3
    (access,) = _by_check(_findings(out), "access")
    assert access["level"] == "unknown"
    assert access["fix"]


def test_a_b_without_pipelines_is_a_step_to_take(
    api: respx.MockRouter, capsys: pytest.CaptureFixture[str]
) -> None:
    api.get(f"/project/{B}/pipeline").respond(200, json={"items": [], "next_page_token": None})
    code, out, _ = _doctor(capsys, "--downstream", B, "--json")
    (param,) = _by_check(_findings(out), "callback-parameter")
    assert param["level"] == "warn"
    assert "Run a pipeline" in param["fix"]
    assert code == 0


def test_a_mistyped_slug_is_a_finding_with_a_suggestion(
    api: respx.MockRouter, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _doctor(capsys, "--downstream", "github.com/acme/b", "--json")
    assert code == 2
    (access,) = _by_check(_findings(out), "access")
    assert "gh/acme/b" in access["fix"]


@pytest.mark.parametrize(
    ("levels", "code"),
    [([], 0), (["ok", "warn"], 0), (["ok", "unknown"], 3), (["unknown", "fail"], 2)],
)
def test_exit_codes(levels: list[str], code: int) -> None:
    assert exit_code([Finding("c", "s", Level(v), "m") for v in levels]) == code


def test_doctor_never_follows_a_redirect_with_the_token(
    api: respx.MockRouter, capsys: pytest.CaptureFixture[str]
) -> None:
    api.get("/me").mock(
        return_value=httpx.Response(302, headers={"Location": "https://evil.example/"})
    )
    code, out, _ = _doctor(capsys, "--json")
    (token,) = _by_check(_findings(out), "token")
    assert token["level"] == "unknown"
    assert code == 3
    assert all(c.request.url.host == "circleci.com" for c in api.calls)


@pytest.mark.parametrize(
    ("requires", "level"),
    [
        ("[{build-and-test: terminal}]", "ok"),
        ("[{build-and-test: [failed, canceled, success]}]", "ok"),
        ("[build-and-test]", "fail"),
        ("[{build-and-test: success}]", "fail"),
        ("[]", "warn"),
    ],
)
def test_the_callback_must_run_however_b_ends(
    api: respx.MockRouter, capsys: pytest.CaptureFixture[str], requires: str, level: str
) -> None:
    source = SOURCE_B.replace("[{build-and-test: terminal}]", requires)
    api.get(f"/pipeline/{PIPE_B}/config").respond(200, json={"source": source})
    code, out, _ = _doctor(capsys, "--downstream", B, "--json")
    (runs,) = _by_check(_findings(out), "callback-runs")
    assert runs["level"] == level
    assert code == (2 if level == "fail" else 0)
    if level == "fail":
        assert "build-and-test: terminal" in runs["fix"]


def test_a_404_from_me_cannot_tell_and_the_project_checks_still_run(
    api: respx.MockRouter, capsys: pytest.CaptureFixture[str]
) -> None:
    api.get("/me").respond(404, json={"message": "Not found"})
    code, out, _ = _doctor(capsys, "--downstream", B, "--json")
    findings = _findings(out)
    (token,) = _by_check(findings, "token")
    assert token["level"] == "unknown"
    assert "project API token" in token["message"]
    assert [f["level"] for f in _by_check(findings, "callback")] == ["ok"]
    assert code == 3
