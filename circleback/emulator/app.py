"""The WSGI application: CircleCI API v2 routes under ``/api/v2``, control under ``/_emulator``.

Routing works on the raw request path when the server provides it (``RAW_URI`` or
``REQUEST_URI``; the emulator's server and transport do), because CircleCI tells an escaped
slash from a real one: the legacy trigger accepts ``gh%2Facme%2Fb``, ``pipeline/run`` answers
404 for it.

Spec: ``shared/reference/circleci-api-v2.openapi.json``; every error body is
``{"message": ...}``.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import uuid
from collections.abc import Callable, Iterable, Sequence
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

from circleback.emulator import shapes, webhooks
from circleback.emulator.faults import Fault, FaultSignal, fault_from_json
from circleback.emulator.state import EmulatorError, State, iso

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

    from circleback.emulator.core import Emulator

_T = TypeVar("_T")
Headers = list[tuple[str, str]]
Reply = tuple[int, Any, Headers]

API_PREFIX = "/api/v2"
CONTROL_PREFIX = "/_emulator"
#: Where artifact contents are served, shaped like CircleCI's artifact URLs.
ARTIFACT_PREFIX = "/output/job"
#: ``pipeline/run``'s ``provider`` path parameter (spec: components.parameters.providerNoGitlab).
PROVIDERS = frozenset({"github", "gh", "bitbucket", "bb", "circleci"})
CI_SKIP_MESSAGE = "Ignoring pipeline due to CI skip in the commit"
BAD_BODY = "Unexpected request body provided."
INVALID_TOKEN = "Invalid token provided."  # noqa: S105  (a message, not a secret)
QUERY_AUTH = (
    "Support for query parameter authentication has been deprecated to improve security. "
    "Please use a supported authentication method such as header-based, or basic authentication."
)
_HTML = (
    b"<!DOCTYPE html><html><head><title>Sign in</title></head>"
    b"<body><h1>Please sign in</h1><p>This page is not the CircleCI API.</p></body></html>"
)
_MAX_BODY = 1 << 20


class WSGIApp:
    """The emulator as a WSGI callable; one instance per :class:`Emulator`."""

    def __init__(self, emulator: Emulator) -> None:
        self._emu = emulator

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        method = str(environ.get("REQUEST_METHOD", "GET")).upper()
        raw_path, query = _raw_target(environ)
        path = unquote(raw_path)
        if path == CONTROL_PREFIX or path.startswith(CONTROL_PREFIX + "/"):
            status, headers, body = self._control(method, path, query, environ)
            return _send(start_response, status, headers, body)

        fault = self._emu.take_fault(method, path)
        entry: dict[str, Any] = {
            "time": iso(self._emu.now()),
            "method": method,
            "path": raw_path,
            "query": _redact(query),
            "status": None,
            "fault": fault.kind if fault else None,
        }
        try:
            status, headers, body = self._api_with_fault(fault, method, raw_path, query, environ)
        except FaultSignal:
            self._emu.log_request(entry)
            raise
        entry["status"] = status
        self._emu.log_request(entry)
        return _send(start_response, status, headers, body)

    # -- faults ------------------------------------------------------------------------------

    def _api_with_fault(
        self,
        fault: Fault | None,
        method: str,
        raw_path: str,
        query: str,
        environ: WSGIEnvironment,
    ) -> tuple[int, Headers, bytes]:
        if fault is None:
            return _encode(*self._api(method, raw_path, query, environ))
        if fault.latency_ms:
            self._emu.sleep(fault.latency_ms / 1000)
        if fault.kind == "drop":
            raise FaultSignal("drop")
        if fault.kind == "status":
            headers = [("Retry-After", fault.retry_after)] if fault.retry_after else []
            return _encode(fault.status or 500, fault.status_body(), headers)
        if fault.kind == "html":
            return 200, [("Content-Type", "text/html; charset=utf-8")], _HTML
        if fault.kind == "unexpected_shape":
            shape = fault.body if fault.body is not None else {"unexpected": True}
            return _encode(200, shape, [])
        status, headers, body = _encode(*self._api(method, raw_path, query, environ))
        if fault.kind == "lost_response":
            raise FaultSignal("lost_response")
        if fault.kind == "slow":
            raise FaultSignal(
                "slow", seconds=fault.seconds, response=(_line(status), headers, body)
            )
        if fault.kind == "truncate":
            body = body[: len(body) // 2]
        return status, headers, body

    # -- the API -----------------------------------------------------------------------------

    def _api(self, method: str, raw_path: str, query: str, environ: WSGIEnvironment) -> Reply:
        try:
            if raw_path.startswith(ARTIFACT_PREFIX + "/") and method == "GET":
                self._authenticate(query, environ)
                return self._artifact_content(raw_path)
            if not (raw_path == API_PREFIX or raw_path.startswith(API_PREFIX + "/")):
                raise EmulatorError(404, "Not found")
            self._authenticate(query, environ)
            raw = [s for s in raw_path[len(API_PREFIX) :].split("/") if s]
            route = self._route(raw)
            if route is None:
                raise EmulatorError(404, "Not found")
            handlers, args = route
            if method not in handlers:
                raise EmulatorError(405, "Method not allowed")
            return handlers[method](args, parse_qs(query), environ)
        except EmulatorError as exc:
            return exc.status, {"message": exc.message}, []

    def _authenticate(self, query: str, environ: WSGIEnvironment) -> None:
        """``Circle-Token``, or HTTP Basic with the token as user (spec: securitySchemes)."""
        if "circle-token" in parse_qs(query, keep_blank_values=True):
            raise EmulatorError(401, QUERY_AUTH)
        token = str(environ.get("HTTP_CIRCLE_TOKEN", "")).strip()
        authorization = str(environ.get("HTTP_AUTHORIZATION", "")).strip()
        if not token and authorization:
            scheme, _, value = authorization.partition(" ")
            if scheme.lower() == "basic":
                try:
                    token = base64.b64decode(value.strip(), validate=True).decode().split(":")[0]
                except (binascii.Error, UnicodeDecodeError):
                    token = ""
            elif scheme.lower() == "bearer":
                # Not in the 2025-10 spec's securitySchemes, but CircleCI's docs now recommend it.
                token = value.strip()
        if not token:
            raise EmulatorError(401, INVALID_TOKEN)
        known = self._emu.tokens
        if known and not any(hmac.compare_digest(token.encode(), t.encode()) for t in known):
            raise EmulatorError(401, INVALID_TOKEN)

    def _route(
        self, raw: list[str]
    ) -> (
        tuple[dict[str, Callable[[list[str], dict[str, list[str]], Any], Reply]], list[str]] | None
    ):
        seg = [unquote(s) for s in raw]
        n = len(seg)
        if seg and seg[0] == "webhook" and n <= 2:
            return self._webhook_routes(seg), seg
        slug = "/".join(seg[1:])
        if seg and seg[0] == "project" and slug.count("/") == 2 and seg[-1] != "pipeline":
            return {"GET": self._get_project}, [slug]
        if n >= 2 and seg[0] == "project":
            if n == 6 and seg[4:] == ["pipeline", "run"]:
                return {"POST": self._trigger_run}, seg[1:4]
            if raw[-1] == "pipeline" and n >= 3:
                return {"POST": self._trigger, "GET": self._list_pipelines}, ["/".join(seg[1:-1])]
            if n >= 4 and seg[-2] == "pipeline" and seg[-1].isdigit():
                return {"GET": self._pipeline_by_number}, ["/".join(seg[1:-2]), seg[-1]]
            if n >= 5 and seg[-1] == "artifacts" and seg[-2].isdigit():
                return {"GET": self._list_artifacts}, ["/".join(seg[1:-2]), seg[-2]]
            return None
        if n >= 2 and seg[0] == "pipeline":
            if n == 2:
                return {"GET": self._get_pipeline}, [seg[1]]
            if n == 3 and seg[2] == "workflow":
                return {"GET": self._list_workflows}, [seg[1]]
        if n >= 2 and seg[0] == "workflow":
            if n == 2:
                return {"GET": self._get_workflow}, [seg[1]]
            if n == 3 and seg[2] == "job":
                return {"GET": self._list_jobs}, [seg[1]]
            if n == 4 and seg[2] == "approve":
                return {"POST": self._approve}, [seg[1], seg[3]]
            if n == 3 and seg[2] == "rerun":
                return {"POST": self._rerun}, [seg[1]]
            if n == 3 and seg[2] == "cancel":
                return {"POST": self._cancel}, [seg[1]]
        return None

    # Each handler takes (path args, query, environ) and returns (status, body, headers).

    def _webhook_routes(
        self, seg: list[str]
    ) -> dict[str, Callable[[list[str], dict[str, list[str]], Any], Reply]]:
        """``/webhook`` and ``/webhook/{id}`` (circleback.emulator.webhooks)."""

        def handler(method: str) -> Callable[[list[str], dict[str, list[str]], Any], Reply]:
            def run(args: list[str], query: dict[str, list[str]], environ: Any) -> Reply:
                body = _json_body(environ) if method == "POST" else None
                return (*webhooks.api(self._emu, method, args, query, body), [])

            return run

        methods = ("GET", "POST") if len(seg) == 1 else ("GET", "DELETE")
        return {m: handler(m) for m in methods}

    def _get_project(self, args: list[str], query: dict[str, list[str]], environ: Any) -> Reply:
        """``GET /project/{slug}`` (getProjectBySlug): what ``webhook install`` needs."""
        return (*webhooks.get_project(self._emu, args[0]), [])

    def _trigger(self, args: list[str], query: dict[str, list[str]], environ: Any) -> Reply:
        """``POST /project/{slug}/pipeline`` (triggerPipeline): 201 PipelineCreation."""
        body = _json_body(environ)
        body = {} if body is None else body
        if not isinstance(body, dict) or set(body) - {"branch", "tag", "parameters"}:
            raise EmulatorError(400, BAD_BODY)
        branch, tag = _ref(body)
        parameters = _parameters(body)
        return self._create(args[0], branch, tag, parameters, None, "Project not found")

    def _trigger_run(self, args: list[str], query: dict[str, list[str]], environ: Any) -> Reply:
        """``POST /project/{provider}/{org}/{project}/pipeline/run`` (triggerPipelineRun)."""
        missing = "Project does not exist."
        if args[0] not in PROVIDERS:
            raise EmulatorError(404, missing)
        body = _json_body(environ)
        body = {} if body is None else body
        if not isinstance(body, dict) or set(body) - {
            "definition_id",
            "config",
            "checkout",
            "parameters",
        }:
            raise EmulatorError(400, BAD_BODY)
        definition_id = body.get("definition_id")
        if definition_id is not None:
            try:
                definition_id = str(uuid.UUID(str(definition_id)))
            except ValueError:
                raise EmulatorError(400, BAD_BODY) from None
        refs = []
        for key in ("checkout", "config"):
            part = body.get(key, {})
            if not isinstance(part, dict) or set(part) - {"branch", "tag"}:
                raise EmulatorError(400, BAD_BODY)
            refs.append(_ref(part))
        branch, tag = next((r for r in refs if r != (None, None)), (None, None))
        parameters = _parameters(body)
        return self._create("/".join(args), branch, tag, parameters, definition_id, missing)

    def _create(
        self,
        slug: str,
        branch: str | None,
        tag: str | None,
        parameters: dict[str, Any],
        definition_id: str | None,
        missing: str,
    ) -> Reply:
        if self._emu.ci_skip:
            self._emu.locked(lambda s: s.project(slug, missing))
            return 200, {"message": CI_SKIP_MESSAGE}, []
        pipeline = self._emu.locked(
            lambda s: s.trigger(
                slug,
                branch=branch,
                tag=tag,
                parameters=parameters,
                definition_id=definition_id,
                not_found_message=missing,
            )
        )
        return 201, shapes.pipeline_creation(pipeline), []

    def _list_pipelines(self, args: list[str], query: dict[str, list[str]], environ: Any) -> Reply:
        """``GET /project/{slug}/pipeline``: newest first, optional ``branch`` filter."""
        branch = query.get("branch", [None])[0]

        def items(state: State) -> list[tuple[int, dict[str, Any]]]:
            state.project(args[0])
            return [
                (p.number, shapes.pipeline_json(p))
                for p in reversed(list(state.pipelines.values()))
                if p.project_slug == args[0] and (not branch or p.branch == branch)
            ]

        return 200, self._page(self._emu.locked(items), query, descending=True), []

    def _pipeline_by_number(
        self, args: list[str], query: dict[str, list[str]], environ: Any
    ) -> Reply:
        def find(state: State) -> dict[str, Any]:
            state.project(args[0])
            for p in state.pipelines.values():
                if p.project_slug == args[0] and p.number == int(args[1]):
                    return shapes.pipeline_json(p)
            raise EmulatorError(404, "Pipeline not found")

        return 200, self._emu.locked(find), []

    def _get_pipeline(self, args: list[str], query: dict[str, list[str]], environ: Any) -> Reply:
        return 200, self._emu.locked(lambda s: shapes.pipeline_json(s.pipeline(args[0]))), []

    def _list_workflows(self, args: list[str], query: dict[str, list[str]], environ: Any) -> Reply:
        """``GET /pipeline/{id}/workflow``: newest first, so a rerun comes before its original."""

        def items(state: State) -> list[tuple[int, dict[str, Any]]]:
            ids = state.pipeline(args[0]).workflow_ids
            return [
                (i, shapes.workflow_json(state, state.workflows[w])) for i, w in enumerate(ids)
            ][::-1]

        return 200, self._page(self._emu.locked(items), query, descending=True), []

    def _get_workflow(self, args: list[str], query: dict[str, list[str]], environ: Any) -> Reply:
        return (
            200,
            self._emu.locked(lambda s: shapes.workflow_json(s, s.workflow(args[0]))),
            [],
        )

    def _list_jobs(self, args: list[str], query: dict[str, list[str]], environ: Any) -> Reply:
        """``GET /workflow/{id}/job``: config order; paginated although the spec omits the param."""

        def items(state: State) -> list[tuple[int, dict[str, Any]]]:
            ids = state.workflow(args[0]).job_ids
            return [(i, shapes.job_json(state.jobs[j])) for i, j in enumerate(ids)]

        return 200, self._page(self._emu.locked(items), query, descending=False), []

    def _list_artifacts(self, args: list[str], query: dict[str, list[str]], environ: Any) -> Reply:
        """``GET /project/{slug}/{job-number}/artifacts`` (getJobArtifacts): a page of Artifact."""
        origin = _origin(environ)

        def items(state: State) -> list[tuple[int, dict[str, Any]]]:
            job = state.job_by_number(args[0], int(args[1]))
            return [
                (
                    i,
                    {
                        "path": path,
                        "node_index": 0,
                        "url": f"{origin}{ARTIFACT_PREFIX}/{job.id}/artifacts/0/"
                        + "/".join(quote(part, safe="") for part in path.split("/")),
                    },
                )
                for i, (path, _) in enumerate(state.artifacts.get(job.id, []))
            ]

        return 200, self._page(self._emu.locked(items), query, descending=False), []

    def _artifact_content(self, raw_path: str) -> Reply:
        """An artifact's bytes, behind the same token as the API (private projects need it)."""
        parts = raw_path[len(ARTIFACT_PREFIX) + 1 :].split("/")
        if len(parts) < 4 or parts[1:3] != ["artifacts", "0"]:
            raise EmulatorError(404, "Not found")
        job_id, path = unquote(parts[0]), "/".join(unquote(p) for p in parts[3:])

        def find(state: State) -> bytes:
            for stored, content in state.artifacts.get(job_id, []):
                if stored == path:
                    return content
            raise EmulatorError(404, "Artifact not found")

        return 200, RawBody(self._emu.locked(find)), []

    def _approve(self, args: list[str], query: dict[str, list[str]], environ: Any) -> Reply:
        """``POST /workflow/{id}/approve/{approval_request_id}``: 202 MessageResponse."""
        self._emu.locked(lambda s: s.approve(args[0], args[1]))
        return 202, {"message": "Accepted."}, []

    def _cancel(self, args: list[str], query: dict[str, list[str]], environ: Any) -> Reply:
        self._emu.locked(lambda s: s.cancel(args[0]))
        return 202, {"message": "Accepted."}, []

    def _rerun(self, args: list[str], query: dict[str, list[str]], environ: Any) -> Reply:
        """``POST /workflow/{id}/rerun``: 202 ``{workflow_id}`` of the new workflow."""
        body = _json_body(environ)
        body = {} if body is None else body
        if not isinstance(body, dict):
            raise EmulatorError(400, BAD_BODY)
        flags = {k: body.get(k, False) for k in ("from_failed", "enable_ssh", "sparse_tree")}
        jobs = body.get("jobs")
        if not all(isinstance(v, bool) for v in flags.values()) or not (
            jobs is None or (isinstance(jobs, list) and all(isinstance(j, str) for j in jobs))
        ):
            raise EmulatorError(400, BAD_BODY)
        if flags["from_failed"] and jobs:
            raise EmulatorError(400, "from_failed and jobs are mutually exclusive.")
        if (flags["enable_ssh"] or flags["sparse_tree"]) and not jobs:
            raise EmulatorError(400, "enable_ssh and sparse_tree require jobs.")
        workflow = self._emu.locked(
            lambda s: s.rerun(args[0], from_failed=flags["from_failed"], jobs=jobs)
        )
        return 202, {"workflow_id": workflow.id}, []

    def _page(
        self, items: Sequence[tuple[int, _T]], query: dict[str, list[str]], *, descending: bool
    ) -> dict[str, Any]:
        """One page of a keyed list; the token is the last key shown, so pages stay stable."""
        token = query.get("page-token", [""])[0]
        if token:
            after = _decode_token(token)
            items = [i for i in items if (i[0] < after if descending else i[0] > after)]
        page = list(items[: self._emu.page_size])
        more = len(items) > len(page)
        return {
            "items": [item for _, item in page],
            "next_page_token": _encode_token(page[-1][0]) if more else None,
        }

    # -- the control API ---------------------------------------------------------------------

    def _control(
        self, method: str, path: str, query: str, environ: WSGIEnvironment
    ) -> tuple[int, Headers, bytes]:
        try:
            reply = self._control_route(method, path[len(CONTROL_PREFIX) :].strip("/"), environ)
        except EmulatorError as exc:
            reply = exc.status, {"message": exc.message}, []
        except ValueError as exc:
            reply = 400, {"message": str(exc)}, []
        return _encode(*reply)

    def _control_route(self, method: str, route: str, environ: WSGIEnvironment) -> Reply:
        emu = self._emu
        parts = route.split("/")
        key = (method, route)
        if key == ("GET", "state"):
            return 200, emu.state_dump(), []
        if key == ("POST", "reset"):
            emu.reset()
            return 200, {"message": "Reset."}, []
        if key == ("GET", "requests"):
            return 200, {"items": emu.request_log}, []
        if key == ("DELETE", "requests"):
            emu.clear_request_log()
            return 200, {"message": "Request log cleared."}, []
        if key == ("GET", "faults"):
            return 200, {"items": [f.to_json() for f in emu.faults]}, []
        if key == ("POST", "faults"):
            fault = emu.add_fault_object(fault_from_json(_json_body(environ)))
            return 201, fault.to_json(), []
        if key == ("DELETE", "faults"):
            emu.clear_faults()
            return 200, {"message": "Faults cleared."}, []
        body = _json_body(environ) if method == "POST" else None
        data = body if isinstance(body, dict) else {}
        if key == ("POST", "page-size"):
            emu.set_page_size(data.get("page_size"))  # type: ignore[arg-type]
            return 200, {"page_size": emu.page_size}, []
        if key == ("POST", "ci-skip"):
            enabled = data.get("enabled", True)
            if not isinstance(enabled, bool):
                raise EmulatorError(400, "enabled must be true or false.")
            emu.set_ci_skip(enabled)
            return 200, {"ci_skip": emu.ci_skip}, []
        if key == ("POST", "projects"):
            slug, config_path = data.get("slug"), data.get("config_path")
            if not isinstance(slug, str) or not isinstance(config_path, str):
                raise EmulatorError(400, "slug and config_path must be strings.")
            emu.add_project(slug, config_path)
            return 201, {"slug": slug, "config_path": config_path}, []
        if key == ("POST", "jobs/finish"):
            slug, name, status = data.get("project_slug"), data.get("job_name"), data.get("status")
            pipeline_id = data.get("pipeline_id")
            if not all(isinstance(v, str) for v in (slug, name, status)):
                raise EmulatorError(400, "project_slug, job_name and status must be strings.")
            job_id = emu.finish_job_by_name(
                str(slug), str(name), str(status), pipeline_id=pipeline_id
            )
            return 200, self._job_dump(job_id), []
        if method == "POST" and len(parts) == 3 and parts[0] == "jobs" and parts[2] == "finish":
            status = data.get("status")
            if not isinstance(status, str):
                raise EmulatorError(400, "status must be one of success, failed, canceled.")
            emu.finish_job(parts[1], status)
            return 200, self._job_dump(parts[1]), []
        raise EmulatorError(404, f"No control route {method} {CONTROL_PREFIX}/{route}")

    def _job_dump(self, job_id: str) -> dict[str, Any]:
        return self._emu.locked(lambda s: shapes.job_json(s.job(job_id)))


def _raw_target(environ: WSGIEnvironment) -> tuple[str, str]:
    """(raw path, query) as the client sent them, falling back to the decoded PATH_INFO."""
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if raw:
        parts = urlsplit(str(raw))
        return parts.path or "/", parts.query
    path = str(environ.get("SCRIPT_NAME", "")) + str(environ.get("PATH_INFO", ""))
    return path or "/", str(environ.get("QUERY_STRING", ""))


def _redact(query: str) -> str:
    """The query as logged: a ``circle-token`` value never reaches the log."""
    if "circle-token" not in query.lower():
        return query
    pairs = parse_qs(query, keep_blank_values=True)
    return urlencode(
        [
            (k, "REDACTED" if k.lower() == "circle-token" else v)
            for k, vs in pairs.items()
            for v in vs
        ]
    )


def _json_body(environ: WSGIEnvironment) -> Any:
    """The request's JSON, None when there is no body; 400 when it is not JSON."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length <= 0:
        return None
    if length > _MAX_BODY:
        raise EmulatorError(413, "Request body too large.")
    raw = environ["wsgi.input"].read(length)
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise EmulatorError(400, BAD_BODY) from None


def _ref(body: dict[str, Any]) -> tuple[str | None, str | None]:
    branch, tag = body.get("branch"), body.get("tag")
    if not isinstance(branch, str | None) or not isinstance(tag, str | None):
        raise EmulatorError(400, BAD_BODY)
    if branch is not None and tag is not None:
        raise EmulatorError(400, "branch and tag are mutually exclusive.")
    return branch, tag


def _parameters(body: dict[str, Any]) -> dict[str, Any]:
    parameters = body.get("parameters", {})
    if parameters is None:
        return {}
    if not isinstance(parameters, dict):
        raise EmulatorError(400, BAD_BODY)
    return parameters


def _encode_token(key: int) -> str:
    return base64.urlsafe_b64encode(f"cbemu:{key}".encode()).decode().rstrip("=")


def _decode_token(token: str) -> int:
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        prefix, _, key = text.partition(":")
        if prefix != "cbemu":
            raise ValueError(token)
        return int(key)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise EmulatorError(400, "Invalid page-token.") from None


def _line(status: int) -> str:
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"{status} Unknown"


class RawBody(bytes):
    """A reply body sent as it is (artifact contents), not encoded as JSON."""


def _encode(status: int, body: Any, headers: Headers) -> tuple[int, Headers, bytes]:
    if isinstance(body, RawBody):
        return status, [("Content-Type", "application/octet-stream"), *headers], bytes(body)
    data = json.dumps(body, separators=(",", ":")).encode()
    return status, [("Content-Type", "application/json"), *headers], data


def _origin(environ: WSGIEnvironment) -> str:
    """``scheme://host[:port]`` the client used, so artifact URLs point back at this server."""
    scheme = str(environ.get("wsgi.url_scheme", "http"))
    host = str(environ.get("HTTP_HOST") or environ.get("SERVER_NAME", "127.0.0.1"))
    return f"{scheme}://{host}"


def _send(start_response: StartResponse, status: int, headers: Headers, body: bytes) -> list[bytes]:
    start_response(_line(status), [*headers, ("Content-Length", str(len(body)))])
    return [body]
