"""The receiver as an ASGI application (Starlette): ``POST /webhook`` and ``GET /healthz``.

Each delivery is answered within ``budget`` seconds of its arrival, body included (a body
still arriving then is answered 408), well inside the 10 s after which
CircleCI counts a delivery as failed and sends it again (CircleCI docs, "Outbound
webhooks"). The API work runs in a worker thread; when it takes longer than the budget the
answer is 503, so CircleCI delivers again, and the work goes on meanwhile: both are
idempotent, and the redelivery covers this process dying (or, as a function, being frozen)
before the work ends. Answers: 401 for a missing or wrong signature, 400 for a body
that is not JSON (or nested past Python's recursion limit), 413 for an oversized body,
otherwise the verdict's status (see ``circleback.serve.receiver.HTTP_STATUS``): 503 asks
CircleCI to deliver again later, also when the work failed unexpectedly (logged by type).
A repeat of a delivery this process answered for good is answered from memory, without
API reads (replays: the signature has no timestamp); past ``max_in_flight`` deliveries
being worked on, the answer is 503 at once.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from circleback import errors
from circleback._version import __version__
from circleback.client import CircleCIClient
from circleback.serve import signature
from circleback.serve.receiver import Decision, Rules, Verdict, handle

logger = logging.getLogger("circleback.serve")

#: Seconds before a delivery is answered 503 while its work goes on (CircleCI waits 10 s).
DEFAULT_BUDGET = 8.0
#: Deliveries are a few kilobytes; anything much larger is not CircleCI's.
MAX_BODY = 1 << 20
WEBHOOK_PATH = "/webhook"
HEALTH_PATH = "/healthz"
#: Deliveries worked on at once per process; past it the answer is 503 at once. Each
#: holds a worker thread for up to a few API calls' time; CircleCI delivers again later.
MAX_IN_FLIGHT = 32
#: Deliveries each process remembers having answered for good (a few MB at most).
MEMORY = 4096
#: Verdicts after which CircleCI sends nothing more (a 2xx) and the API cannot change the
#: answer: a repeat of such a delivery is answered from memory.
_FOR_GOOD = frozenset(
    {
        Verdict.RELEASED,
        Verdict.ALREADY_RELEASED,
        Verdict.IGNORED,
        Verdict.REFUSED,
        Verdict.CANCELED_DOWNSTREAM,
    }
)


def create_app(
    *,
    client: CircleCIClient,
    rules: Rules,
    secrets: Sequence[str],
    budget: float = DEFAULT_BUDGET,
    max_body: int = MAX_BODY,
    max_in_flight: int = MAX_IN_FLIGHT,
) -> Starlette:
    """The receiver's ASGI app; ``client`` is shared by every request (httpx is thread-safe).

    Raises ``ConfigurationError`` when no signing secret or no allow-list is given: a
    receiver that accepted unsigned events, or released any project, would be an open door.
    """
    keys = tuple(s for s in secrets if s)
    if not keys:
        raise errors.ConfigurationError(
            "No webhook signing secret: refusing to accept unsigned events.",
            hint="Set CIRCLEBACK_WEBHOOK_SECRETS to the secret given to 'circleback webhook "
            "install' (comma-separated to rotate).",
        )
    if not rules.allow_projects:
        raise errors.ConfigurationError(
            "No --allow-project: the receiver would release any hold its token can reach.",
            hint="Pass --allow-project with the upstream projects' slugs (e.g. gh/acme/*), "
            "or set CIRCLEBACK_ALLOW_PROJECTS.",
        )

    answered = _Answered(MEMORY)
    in_flight = [0]  # deliveries whose work has not ended (counted before it starts)

    def ended(done: asyncio.Future[Decision]) -> None:
        in_flight[0] -= 1

    async def receive(request: Request) -> JSONResponse:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + budget  # one answer time for the whole request
        try:
            body = await asyncio.wait_for(_read_body(request, max_body), budget)
        except asyncio.TimeoutError:
            # A client trickling its body must not hold a connection (or its answer) open.
            return _answer(408, "the body did not arrive in time")
        except ClientDisconnect:
            return _answer(400, "the client hung up before its body arrived")  # unheard
        if body is None:
            return _answer(413, "the body is too large for a CircleCI webhook")
        if not signature.verify(body, request.headers.get(signature.HEADER), keys):
            logger.warning(
                "rejected a delivery: missing or wrong signature",
                extra={"client": request.client.host if request.client else None},
            )
            return _answer(401, "missing or invalid circleci-signature")
        try:
            event = json.loads(body)
        except (ValueError, RecursionError):  # RecursionError: nested past Python's limit
            return _answer(400, "the body is not JSON (or is nested too deeply)")
        context = _context(event)
        key = hashlib.sha256(body).digest()
        before = answered.get(key)
        if before is not None:
            # A duplicate or a replay (the signature has no timestamp): answered as before,
            # without spending the token's rate limit on reads that would change nothing.
            _log(before, context)
            return JSONResponse(before.to_json(), status_code=before.http_status)
        if in_flight[0] >= max_in_flight:
            # Slow API calls must not pile up work (and worker threads) without end.
            logger.warning(
                "too many deliveries in progress; asking for this one again", extra=context
            )
            return JSONResponse(
                {"verdict": "retry", "reason": "busy; deliver again later"}, status_code=503
            )
        in_flight[0] += 1
        work = loop.run_in_executor(None, handle, client, event, rules)
        work.add_done_callback(ended)
        work.add_done_callback(lambda done: answered.remember(key, done))
        try:
            remaining = max(0.0, deadline - loop.time())
            decision: Decision = await asyncio.wait_for(asyncio.shield(work), remaining)
        except asyncio.TimeoutError:
            # Asking for the delivery again is safe (the release is idempotent) and covers
            # this process dying, or being frozen (a function), before the work ends.
            logger.warning("still working when the answer was due", extra=context)
            work.add_done_callback(lambda done: _log_late(done, context))
            return JSONResponse(
                {"verdict": "retry", "reason": "still working; deliver again (idempotent)"},
                status_code=503,
            )
        except Exception as exc:
            # A bug, not the sender's fault: one log line (its type only: a message could
            # quote what it should not), and a 503 so that CircleCI delivers again.
            logger.error(f"a delivery's work failed: {type(exc).__name__}", extra=context)
            return JSONResponse(
                {"verdict": "retry", "reason": "the receiver failed; deliver again (idempotent)"},
                status_code=503,
            )
        _log(decision, context)
        return JSONResponse(decision.to_json(), status_code=decision.http_status)

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "version": __version__})

    return Starlette(
        routes=[
            Route(WEBHOOK_PATH, receive, methods=["POST"]),
            Route(HEALTH_PATH, health, methods=["GET"]),
        ]
    )


class _Answered:
    """Deliveries this process answered for good, by the digest of their signed bytes.

    Only an optimisation: nothing depends on it (another replica, or this one after a
    restart, reaches the same answer from the API). A repeat of a delivery that released
    A is answered ``already_released``; others get their answer again. Touched only from
    the event loop's thread (done callbacks run there), so it needs no lock.
    """

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[bytes, Decision] = OrderedDict()

    def get(self, key: bytes) -> Decision | None:
        decision = self._items.get(key)
        if decision is not None:
            self._items.move_to_end(key)
        return decision

    def remember(self, key: bytes, done: asyncio.Future[Decision]) -> None:
        if done.cancelled() or done.exception() is not None:
            return
        decision = done.result()
        if decision.verdict not in _FOR_GOOD:
            return
        if decision.verdict is Verdict.RELEASED:
            decision = Decision(
                Verdict.ALREADY_RELEASED,
                f"a repeat of a delivery that {decision.reason}",
                decision.details,
            )
        self._items[key] = decision
        self._items.move_to_end(key)
        while len(self._items) > self._size:
            self._items.popitem(last=False)


async def _read_body(request: Request, limit: int) -> bytes | None:
    """The raw body (the signature is over these exact bytes), or None past ``limit``."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _answer(status: int, message: str) -> JSONResponse:
    return JSONResponse({"message": message}, status_code=status)


def _context(event: Any) -> dict[str, Any]:
    """Fields that identify a delivery in the log (never its whole body)."""
    if not isinstance(event, dict):
        return {}
    workflow = event.get("workflow")
    return {
        "event_id": str(event.get("id", ""))[:64],
        "event_type": str(event.get("type", ""))[:40],
        "workflow": str(workflow.get("name", ""))[:100] if isinstance(workflow, dict) else "",
    }


def _log(decision: Decision, context: dict[str, Any]) -> None:
    fields = {**context, **decision.details, "verdict": decision.verdict.value}
    level = logging.WARNING if decision.verdict.value in {"refused", "retry"} else logging.INFO
    logger.log(level, decision.reason, extra=fields)


def _log_late(done: asyncio.Future[Decision], context: dict[str, Any]) -> None:
    if done.cancelled():  # pragma: no cover - the executor's futures are not cancelled
        return
    failure = done.exception()
    if failure is not None:
        logger.error(f"a delivery's work failed: {type(failure).__name__}", extra=context)
        return
    _log(done.result(), context)
