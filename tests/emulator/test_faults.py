"""Fault injection, in-process (mapped to httpx exceptions) and over a real socket."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from circleback.emulator import Emulator
from circleback.emulator.faults import Fault, fault_from_json
from circleback.emulator.server import EmulatorServer, make_server
from tests.emulator.helpers import TOKEN, FakeSleep

TRIGGER = r"/project/.*/pipeline$"


def _pipelines(emu: Emulator) -> int:
    return len(emu.state_dump()["pipelines"])


def test_status_fault_with_retry_after_then_normal_service(
    client: httpx.Client, emu: Emulator
) -> None:
    emu.add_fault("status", method="POST", path=TRIGGER, status=429, retry_after=7, count=2)
    for _ in range(2):
        response = client.post("/project/gh/acme/a/pipeline")
        assert response.status_code == 429
        assert response.headers["Retry-After"] == "7"
        assert response.text == "Rate limited."  # plain text, as captured
    assert _pipelines(emu) == 0
    assert client.post("/project/gh/acme/a/pipeline").status_code == 201
    assert [e["fault"] for e in emu.request_log] == ["status", "status", None]


def test_status_fault_with_custom_body_and_default_message(
    client: httpx.Client, emu: Emulator
) -> None:
    emu.add_fault("status", status=503)
    emu.add_fault("status", status=500, body={"message": "boom"})
    assert client.get("/pipeline/x").json() == {"message": "Service Unavailable"}
    assert client.get("/pipeline/x").json() == {"message": "boom"}


def test_faults_match_method_and_path(client: httpx.Client, emu: Emulator) -> None:
    emu.add_fault("status", method="POST", path=r"/approve/", status=500)
    assert client.get("/pipeline/x").status_code == 404  # GET, other path: untouched
    assert client.post("/workflow/w/approve/j").status_code == 500
    assert client.post("/workflow/w/approve/j").status_code == 404  # used up


def test_unlimited_fault_lasts_until_cleared(client: httpx.Client, emu: Emulator) -> None:
    emu.add_fault("status", status=502, count=None)
    assert [client.get("/pipeline/x").status_code for _ in range(3)] == [502, 502, 502]
    emu.clear_faults()
    assert client.get("/pipeline/x").status_code == 404


def test_latency_uses_the_injected_sleep(
    client: httpx.Client, emu: Emulator, fake_sleep: FakeSleep
) -> None:
    emu.add_fault("latency", latency_ms=1500)
    assert client.post("/project/gh/acme/a/pipeline").status_code == 201
    assert fake_sleep.calls == [1.5]


def test_drop_raises_remote_protocol_error_and_does_nothing(
    client: httpx.Client, emu: Emulator
) -> None:
    emu.add_fault("drop", path=TRIGGER)
    with pytest.raises(httpx.RemoteProtocolError):
        client.post("/project/gh/acme/a/pipeline")
    assert _pipelines(emu) == 0
    assert emu.request_log[-1]["status"] is None
    assert emu.request_log[-1]["fault"] == "drop"


def test_lost_response_acts_then_drops(client: httpx.Client, emu: Emulator) -> None:
    emu.add_fault("lost_response", path=TRIGGER)
    with pytest.raises(httpx.RemoteProtocolError):
        client.post("/project/gh/acme/a/pipeline")
    assert _pipelines(emu) == 1


def test_slow_response_times_out_in_process_after_acting(
    client: httpx.Client, emu: Emulator, fake_sleep: FakeSleep
) -> None:
    emu.add_fault("slow", path=TRIGGER)
    with pytest.raises(httpx.ReadTimeout):
        client.post("/project/gh/acme/a/pipeline")
    assert _pipelines(emu) == 1
    assert fake_sleep.calls == []  # nobody waits in-process


def test_truncated_body_is_invalid_json(client: httpx.Client, emu: Emulator) -> None:
    emu.add_fault("truncate", path=TRIGGER)
    response = client.post("/project/gh/acme/a/pipeline")
    assert response.status_code == 201
    with pytest.raises(json.JSONDecodeError):
        response.json()
    assert _pipelines(emu) == 1


def test_html_page_with_200(client: httpx.Client, emu: Emulator) -> None:
    emu.add_fault("html")
    response = client.get("/pipeline/x")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    assert response.text.startswith("<!DOCTYPE html>")


def test_unexpected_shape_with_200_does_not_act(client: httpx.Client, emu: Emulator) -> None:
    emu.add_fault("unexpected_shape", path=TRIGGER)
    emu.add_fault("unexpected_shape", body={"items": "nope"})
    first = client.post("/project/gh/acme/a/pipeline")
    assert (first.status_code, first.json()) == (200, {"unexpected": True})
    assert client.get("/pipeline/x").json() == {"items": "nope"}
    assert _pipelines(emu) == 0


def test_faults_never_touch_the_control_api(emu: Emulator, control: httpx.Client) -> None:
    emu.add_fault("drop", count=None)
    assert control.get("/state").status_code == 200


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"kind": "explode"}, "kind must be one of"),
        ({"kind": "status"}, "needs a status"),
        ({"kind": "drop", "count": 0}, "count must be at least 1"),
        ({"kind": "drop", "path": "("}, "not a valid regular expression"),
        ({"kind": "drop", "colour": "red"}, "unknown field"),
        ({"kind": "latency", "latency_ms": -1}, "cannot be negative"),
        ([], "must be a JSON object"),
    ],
)
def test_bad_fault_definitions_are_refused(data: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        fault_from_json(data)


def test_fault_round_trips_through_json() -> None:
    fault = fault_from_json({"kind": "status", "status": 429, "retry_after": 3, "count": None})
    assert isinstance(fault, Fault)
    assert fault.to_json()["retry_after"] == "3"
    assert fault.to_json()["count"] is None


# -- over a real socket ----------------------------------------------------------------------


@pytest.fixture
def server(emu: Emulator) -> Iterator[EmulatorServer]:
    with make_server(emu) as running:
        yield running


@pytest.fixture
def socket_client(server: EmulatorServer) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=server.api_url, headers={"Circle-Token": TOKEN}, timeout=5
    ) as client:
        yield client


@pytest.mark.loopback
def test_loopback_drop_closes_the_connection(socket_client: httpx.Client, emu: Emulator) -> None:
    emu.add_fault("drop", path=TRIGGER)
    with pytest.raises(httpx.RemoteProtocolError):
        socket_client.post("/project/gh/acme/a/pipeline")
    assert _pipelines(emu) == 0
    assert socket_client.post("/project/gh/acme/a/pipeline").status_code == 201


@pytest.mark.loopback
def test_loopback_lost_response_acts_then_closes(
    socket_client: httpx.Client, emu: Emulator
) -> None:
    emu.add_fault("lost_response", path=TRIGGER)
    with pytest.raises(httpx.RemoteProtocolError):
        socket_client.post("/project/gh/acme/a/pipeline")
    assert _pipelines(emu) == 1


@pytest.mark.loopback
def test_loopback_slow_response_outlasts_the_client_timeout(
    server: EmulatorServer, emu: Emulator
) -> None:
    emu.add_fault("slow", path=TRIGGER, seconds=2)
    with (
        httpx.Client(base_url=server.api_url, headers={"Circle-Token": TOKEN}, timeout=0.1) as c,
        pytest.raises(httpx.ReadTimeout),
    ):
        c.post("/project/gh/acme/a/pipeline")


@pytest.mark.loopback
def test_loopback_status_and_truncate(socket_client: httpx.Client, emu: Emulator) -> None:
    emu.add_fault("status", status=429, retry_after=1)
    emu.add_fault("truncate")
    limited = socket_client.get("/pipeline/x")
    assert (limited.status_code, limited.headers["Retry-After"]) == (429, "1")
    truncated = socket_client.get("/pipeline/x")
    with pytest.raises(json.JSONDecodeError):
        truncated.json()
