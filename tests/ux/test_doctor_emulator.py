"""doctor against the emulator: the example projects pass, a bare B fails, nothing is created."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from circleback import _cli
from circleback.emulator import Emulator

REPO = Path(__file__).resolve().parents[2]
TOKEN = "CCIPAT_doctor-emulator-t0ken"
A, B, BARE = "gh/acme/project-a", "gh/acme/project-b", "gh/acme/bare"


@pytest.fixture
def emu(monkeypatch: pytest.MonkeyPatch) -> Emulator:
    for name in ("CIRCLEBACK_TOKEN", "CIRCLE_TOKEN", "CIRCLECI_API_KEY", "CI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CIRCLEBACK_TOKEN", TOKEN)
    monkeypatch.setenv("CIRCLEBACK_HOST", "http://127.0.0.1")
    emulator = Emulator(
        projects={
            A: REPO / "examples/project-a/.circleci/config.yml",
            B: REPO / "examples/project-b/.circleci/config.yml",
            BARE: Path(__file__).parent / "configs" / "b_bare.yml",
        },
        tokens=(TOKEN,),
    )
    with httpx.Client(
        transport=emulator.transport(),
        base_url="http://127.0.0.1/api/v2",
        headers={"Circle-Token": TOKEN},
    ) as api:
        for slug in (A, B, BARE):
            assert api.post(f"/project/{slug}/pipeline", json={"branch": "main"}).status_code == 201
    monkeypatch.setattr(
        _cli, "RUNTIME", _cli.Runtime(transport=emulator.transport(), sleep=lambda s: None)
    )
    return emulator


def _doctor(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[dict[str, str]]]:
    capsys.readouterr()
    code = _cli.run(["--log-format", "console", "doctor", *args, "--json"])
    return code, json.loads(capsys.readouterr().out)["findings"]


def test_the_examples_pass_and_doctor_only_reads(
    emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    before = len(emu.state_dump()["pipelines"])
    emu.clear_request_log()
    code, findings = _doctor(capsys, "--upstream", A, "--downstream", B)
    assert code == 0, findings
    assert {f["level"] for f in findings} == {"ok"}
    (token,) = [f for f in findings if f["check"] == "token"]
    assert "acts as" in token["message"]
    assert {r["method"] for r in emu.request_log} == {"GET"}
    assert len(emu.state_dump()["pipelines"]) == before


def test_a_downstream_without_the_parameter_or_a_callback_fails(
    emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    code, findings = _doctor(capsys, "--upstream", A, "--downstream", BARE)
    assert code == 2
    failed = {f["check"] for f in findings if f["level"] == "fail"}
    assert failed == {"callback-parameter", "callback"}
    assert all(f["fix"] for f in findings if f["level"] != "ok")
