"""``circleback serve`` as a process: the command line a container runs, on loopback."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from circleback.emulator import Emulator
from circleback.emulator.server import make_server
from circleback.serve.signature import sign
from tests.webhook.world import PROJECTS, SECRET, TOKEN

pytestmark = pytest.mark.loopback

CIRCLEBACK = str(Path(sys.executable).parent / "circleback")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def receiver() -> Iterator[tuple[str, subprocess.Popen[str]]]:
    emu = Emulator(projects=PROJECTS, tokens=(TOKEN,))
    with make_server(emu) as server:
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CIRCLE", "CI"))}
        env.update(
            CIRCLEBACK_TOKEN=TOKEN,
            CIRCLEBACK_HOST=server.url,
            CIRCLEBACK_WEBHOOK_SECRETS=f"{SECRET},second-secret-0123456789",
            CIRCLEBACK_ALLOW_PROJECTS="gh/acme/*",
            PORT=str(port),
        )
        process = subprocess.Popen(
            [CIRCLEBACK, "--log-format", "json", "serve"],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:  # wait for it to listen; bounded, nothing timed is asserted
                try:
                    httpx.get(f"{url}/healthz", timeout=1).raise_for_status()
                    break
                except httpx.HTTPError:
                    if process.poll() is not None or time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
            yield url, process
        finally:
            process.terminate()
            process.wait(timeout=10)


def test_the_served_receiver_checks_signatures_and_logs_json(
    receiver: tuple[str, subprocess.Popen[str]],
) -> None:
    url, process = receiver
    body = json.dumps({"type": "job-completed", "id": "e1"}).encode()

    unsigned = httpx.post(f"{url}/webhook", content=body)
    signed = httpx.post(
        f"{url}/webhook",
        content=body,
        headers={"circleci-signature": sign(body, "second-secret-0123456789")},
    )

    assert unsigned.status_code == 401
    assert signed.status_code == 200
    assert signed.json()["verdict"] == "ignored"
    process.terminate()
    _, err = process.communicate(timeout=10)
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert any(e.get("verdict") == "ignored" and e.get("event_id") == "e1" for e in lines)
    assert SECRET not in err
    assert TOKEN not in err
