"""The receiver served on loopback beside a local emulator: for the demo, tests, benchmarks.

::

    with run_locally(projects) as local, receive_locally(local, allow=["gh/acme/*"]) as url:
        ...  # the emulator now delivers B's webhooks to ``url``

Installs the webhook on each ``downstream`` project through the emulator's API, exactly as
``circleback webhook install`` does against CircleCI.
"""

from __future__ import annotations

import contextlib
import secrets
import threading
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from circleback.client import CircleCIClient
from circleback.serve.app import DEFAULT_BUDGET, WEBHOOK_PATH, create_app
from circleback.serve.receiver import Rules
from circleback.serve.server import RECEIVER_RETRY

if TYPE_CHECKING:
    from circleback.emulator.executor import LocalCircleCI


@contextlib.contextmanager
def receive_locally(
    local: LocalCircleCI,
    *,
    allow: Sequence[str],
    downstream: Sequence[str] = (),
    secret: str | None = None,
    budget: float = DEFAULT_BUDGET,
    startup_timeout: float = 10.0,
) -> Iterator[str]:
    """Serve a receiver on a free loopback port; yields its webhook URL."""
    import uvicorn

    from circleback.webhook import install

    key = secret or secrets.token_hex(32)
    with CircleCIClient(
        token=local.token, host=local.server.url, retry=RECEIVER_RETRY, timeout=4.0
    ) as client:
        app = create_app(
            client=client, rules=Rules(allow_projects=tuple(allow)), secrets=[key], budget=budget
        )
        config = uvicorn.Config(
            app, host="127.0.0.1", port=0, access_log=False, log_config=None, lifespan="off"
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, name="circleback-receiver", daemon=True)
        thread.start()
        try:
            url = _wait_started(server, startup_timeout) + WEBHOOK_PATH
            for slug in downstream:
                install(client, slug, url=url, secret=key)
            yield url
        finally:
            server.should_exit = True
            thread.join(timeout=10)


def _wait_started(server: object, timeout: float) -> str:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if getattr(server, "started", False):
            sockets = server.servers[0].sockets  # type: ignore[attr-defined]
            port = sockets[0].getsockname()[1]
            return f"http://127.0.0.1:{port}"
        time.sleep(0.01)
    raise RuntimeError("the receiver did not start in time")


def wait_settled(local: LocalCircleCI, timeout: float) -> bool:
    """Wait until no job runs and no webhook is in flight, twice in a row.

    A delivery can start a job (releasing A starts its check), and a job can cause a
    delivery: so both are waited for until a round finds neither busy.
    """
    import time

    deadline = time.monotonic() + timeout
    hub = local.emulator.webhooks
    while True:
        left = deadline - time.monotonic()
        if not (local.executor.wait_idle(max(left, 0)) and hub.wait_idle(max(left, 0))):
            return False
        if local.executor.wait_idle(0) and hub.wait_idle(0):
            return True
