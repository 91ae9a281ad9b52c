"""Run the receiver with uvicorn: ``circleback serve``.

uvicorn serves the ASGI app (one process; scale out with replicas, the receiver keeps no
state). Its access log is off: the receiver logs one structured line per delivery itself,
without bodies, and never a token or secret. The listening socket is bound here, before
uvicorn starts, so that a port in use or out of range is a configuration error (exit 2)
with a hint, not uvicorn's bare message or a traceback, and so that "listening" is logged
only once it is true.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Sequence

from circleback import errors
from circleback._core import RetryPolicy
from circleback.client import CircleCIClient
from circleback.serve.app import DEFAULT_BUDGET, HEALTH_PATH, WEBHOOK_PATH, create_app
from circleback.serve.receiver import Rules

logger = logging.getLogger("circleback.serve")

#: The receiver's API retries must fit inside one delivery's answer budget.
RECEIVER_RETRY = RetryPolicy(max_attempts=3, base_delay=0.25, max_delay=2.0, total_budget=5.0)


def serve(
    client: CircleCIClient,
    rules: Rules,
    secrets: Sequence[str],
    *,
    host: str,
    port: int,
    budget: float = DEFAULT_BUDGET,
) -> None:
    """Serve until interrupted (SIGINT/SIGTERM: uvicorn finishes requests in flight).

    Raises ``ConfigurationError`` for a missing secret or allow-list (``create_app``) and
    for an address it cannot listen on.
    """
    import uvicorn

    app = create_app(client=client, rules=rules, secrets=secrets, budget=budget)
    sock = listen(host, port)
    shown = f"[{host}]" if ":" in host else host
    logger.info(
        f"listening on http://{shown}:{port}{WEBHOOK_PATH} (health: {HEALTH_PATH})",
        extra={"allow_projects": ",".join(rules.allow_projects)},
    )
    config = uvicorn.Config(
        app, host=host, port=port, access_log=False, log_config=None, proxy_headers=True
    )
    with sock:
        uvicorn.Server(config).run(sockets=[sock])


def listen(host: str, port: int) -> socket.socket:
    """A socket bound to ``host``:``port`` (as uvicorn binds: SO_REUSEADDR), or
    ``ConfigurationError`` naming the address and what to change."""
    hint = "Choose a free --port (or PORT), and a --host that is an address of this machine."
    if not 1 <= port <= 65535:
        raise errors.ConfigurationError(f"--port {port} is not between 1 and 65535.", hint=hint)
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise errors.ConfigurationError(
            f"Cannot listen on {host}:{port}: {exc.strerror or exc}.", hint=hint
        ) from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise errors.ConfigurationError(
            f"Cannot listen on {host}:{port}: {exc.strerror or exc}.", hint=hint
        ) from None
    return sock
