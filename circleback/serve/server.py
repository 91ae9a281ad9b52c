"""Run the receiver with uvicorn: ``circleback serve``.

uvicorn serves the ASGI app (one process; scale out with replicas, the receiver keeps no
state). Its access log is off: the receiver logs one structured line per delivery itself,
without bodies, and never a token or secret.
"""

from __future__ import annotations

from collections.abc import Sequence

from circleback._core import RetryPolicy
from circleback.client import CircleCIClient
from circleback.serve.app import DEFAULT_BUDGET, create_app
from circleback.serve.receiver import Rules

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
    """Serve until interrupted (SIGINT/SIGTERM: uvicorn finishes requests in flight)."""
    import uvicorn

    app = create_app(client=client, rules=rules, secrets=secrets, budget=budget)
    uvicorn.run(app, host=host, port=port, access_log=False, log_config=None, proxy_headers=True)
