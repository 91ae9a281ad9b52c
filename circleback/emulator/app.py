"""The WSGI application: CircleCI API v2 routes under ``/api/v2``, control under ``/_emulator``.

Routing works on the raw request path when the server provides it (``RAW_URI`` or
``REQUEST_URI``; the emulator's server and transport do), because CircleCI tells an escaped
slash from a real one: the legacy trigger accepts ``gh%2Facme%2Fb``, ``pipeline/run`` answers
404 for it.

Spec: the OpenAPI document vendored as ``tests/data/circleci-api-v2.openapi.json``; every
error body is ``{"message": ...}``. The control API is :mod:`circleback.emulator.control`.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

from circleback.emulator import compiled, shapes, webhooks
from circleback.emulator.control import CONTROL_PREFIX, ControlAPI
from circleback.emulator.faults import Fault, FaultSignal
from circleback.emulator.state import EmulatorError, State, iso
from circleback.emulator.wire import (
    BAD_BODY,
    Headers,
    RawBody,
    Reply,
    encode,
    host_allowed,
    json_body,
    send,
    status_line,
)

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

    from circleback.emulator.core import EmulatorCore

_T = TypeVar("_T")
Handler = Callable[[list[str], dict[str, list[str]], Any], Reply]

API_PREFIX = "/api/v2"
#: Where artifact contents are served, shaped like CircleCI's artifact URLs.
ARTIFACT_PREFIX = "/output/job"
#: ``pipeline/run``'s ``provider`` path parameter (spec: components.parameters.providerNoGitlab).
PROVIDERS = frozenset({"github", "gh", "bitbucket", "bb", "circleci"})
CI_SKIP_MESSAGE = "Ignoring pipeline due to CI skip in the commit"
#: 401 body, as captured (observed/errors-3.json).
LOG_IN_FIRST = "You must log in first."
QUERY_AUTH = (
    "Support for query parameter authentication has been deprecated to improve security. "
    "Please use a supported authentication method such as header-based, or basic authentication."
)
_HTML = (
    b"<!DOCTYPE html><html><head><title>Sign in</title></head>"
    b"<body><h1>Please sign in</h1><p>This page is not the CircleCI API.</p></body></html>"
)


class WSGIApp:
    """The emulator as a WSGI callable; one instance per emulator."""

    def __init__(self, emulator: EmulatorCore) -> None:
        self._emu = emulator
        self._control = ControlAPI(emulator)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        method = str(environ.get("REQUEST_METHOD", "GET")).upper()
        raw_path, query = _raw_target(environ)
        path = unquote(raw_path)
        if not host_allowed(environ, self._emu.allowed_hosts):
            # A page on another site whose name resolves here (DNS rebinding) is refused.
            return send(start_response, *encode(421, {"message": "Misdirected request."}, []))
        if path == CONTROL_PREFIX or path.startswith(CONTROL_PREFIX + "/"):
            status, headers, body = self._control(method, path[len(CONTROL_PREFIX) :], environ)
            return send(start_response, status, headers, body)

        fault = self._emu.take_fault(method, path, query)
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
        return send(start_response, status, headers, body)

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
            return encode(*self._api(method, raw_path, query, environ))
        if fault.latency_ms:
            self._emu.sleep(fault.latency_ms / 1000)
        if fault.kind == "drop":
            raise FaultSignal("drop")
        if fault.kind == "status":
            headers = [("Retry-After", fault.retry_after)] if fault.retry_after else []
            body = fault.status_body()
            if isinstance(body, str):  # CircleCI's 429 is plain text "Rate limited."
                plain = [("Content-Type", "text/plain; charset=utf-8"), *headers]
                return fault.status or 500, plain, body.encode()
            return encode(fault.status or 500, body, headers)
        if fault.kind == "html":
            return 200, [("Content-Type", "text/html; charset=utf-8")], _HTML
        if fault.kind == "unexpected_shape":
            shape = fault.body if fault.body is not None else {"unexpected": True}
            return encode(200, shape, [])
        status, headers, body = encode(*self._api(method, raw_path, query, environ))
        if fault.kind == "lost_response":
            raise FaultSignal("lost_response")
        if fault.kind == "slow":
            raise FaultSignal(
                "slow", seconds=fault.seconds, response=(status_line(status), headers, body)
            )
        if fault.kind == "truncate":
            body = body[: len(body) // 2]
        return status, headers, body

    # -- the API ---------------------------------------------------------------------------

    def _api(self, method: str, raw_path: str, query: str, environ: WSGIEnvironment) -> Reply:
        try:
            if raw_path.startswith(ARTIFACT_PREFIX + "/") and method == "GET":
                token = self._authenticate(query, environ)
                return self._artifact_content(raw_path, token)
            if not (raw_path == API_PREFIX or raw_path.startswith(API_PREFIX + "/")):
                raise EmulatorError(404, "Not found")
            token = self._authenticate(query, environ)
            raw = [s for s in raw_path[len(API_PREFIX) :].split("/") if s]
            route = self._route(raw)
            if route is None:
                raise EmulatorError(404, "Not found")
            handlers, args = route
            if method not in handlers:
                raise EmulatorError(405, "Method not allowed")
            environ["circleback.token"] = token
            return handlers[method](args, parse_qs(query), environ)
        except EmulatorError as exc:
            return exc.status, {"message": exc.message}, []

    def _authenticate(self, query: str, environ: WSGIEnvironment) -> str:
        """``Circle-Token``, HTTP Basic with the token as user, or Bearer (spec:
        securitySchemes); returns the token. 401 "You must log in first." otherwise."""
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
            raise EmulatorError(401, LOG_IN_FIRST)
        known = self._emu.tokens
        if known and not any(hmac.compare_digest(token.encode(), t.encode()) for t in known):
            raise EmulatorError(401, LOG_IN_FIRST)
        return token

    def _route(self, raw: list[str]) -> tuple[dict[str, Handler], list[str]] | None:
        """Handlers by method and the path's arguments. A project slug is three segments,
        each of which may arrive with its slashes escaped (``gh%2Facme%2Fb``): the spec allows
        that on every ``project-slug`` route. ``pipeline/run`` takes three separate path
        parameters, so an escaped slug does not reach it (CircleCI answers 404)."""
        seg = [unquote(s) for s in raw]
        n = len(seg)
        if seg and seg[0] == "webhook" and n <= 2:
            return self._webhook_routes(seg), seg
        if n >= 1 and seg[0] == "project":
            if n == 6 and seg[4:] == ["pipeline", "run"]:
                return {"POST": self._trigger_run}, seg[1:4]
            flat = [part for s in seg[1:] for part in s.split("/")]
            slug, rest = "/".join(flat[:3]), flat[3:]
            if len(flat) == 3:
                return {"GET": self._get_project}, [slug]
            if len(flat) < 4:
                return None
            if rest == ["pipeline"]:
                return {"POST": self._trigger, "GET": self._list_pipelines}, [slug]
            if len(rest) == 2 and rest[0] == "pipeline" and rest[1].isdigit():
                return {"GET": self._pipeline_by_number}, [slug, rest[1]]
            if len(rest) == 2 and rest[0].isdigit() and rest[1] == "artifacts":
                return {"GET": self._list_artifacts}, [slug, rest[0]]
            if len(rest) == 2 and rest[0] == "job" and rest[1].isdigit():
                return {"GET": self._job_details}, [slug, rest[1]]
            if len(rest) == 3 and rest[0] == "job" and rest[1].isdigit() and rest[2] == "cancel":
                return {"POST": self._cancel_job_by_number}, [slug, rest[1]]
            return None
        if seg == ["me"]:
            return {"GET": self._me}, []
        if seg == ["pipeline"]:
            return {"GET": self._list_org_pipelines}, []
        if seg == ["pipeline", "continue"]:
            return {"POST": self._continue}, []
        if n >= 2 and seg[0] == "pipeline":
            if n == 2:
                return {"GET": self._get_pipeline}, [seg[1]]
            if n == 3 and seg[2] == "workflow":
                return {"GET": self._list_workflows}, [seg[1]]
            if n == 3 and seg[2] == "config":
                return {"GET": self._pipeline_config}, [seg[1]]
            if n == 3 and seg[2] == "values":
                return {"GET": self._pipeline_values}, [seg[1]]
        if n == 3 and seg[0] == "jobs" and seg[2] == "cancel":
            return {"POST": self._cancel_job_by_id}, [seg[1]]
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

    # -- access: a token limited to some projects sees nothing of the others -----------------

    def _project(self, state: State, slug: str, environ: Any, missing: str = "") -> str:
        """The configured slug, or 404 as CircleCI answers a token without access."""
        project = state.project(slug, missing or "Project not found")
        if not self._emu.token_may_see(environ["circleback.token"], project.slug):
            raise EmulatorError(404, missing or "Project not found")
        return project.slug

    def _visible(self, environ: Any, slug: str, what: str) -> None:
        if not self._emu.token_may_see(environ["circleback.token"], slug):
            raise EmulatorError(404, f"{what} not found")

    # Each handler takes (path args, query, environ) and returns (status, body, headers).

    def _webhook_routes(self, seg: list[str]) -> dict[str, Handler]:
        """``/webhook`` and ``/webhook/{id}`` (circleback.emulator.webhooks)."""

        def handler(method: str) -> Handler:
            def run(args: list[str], query: dict[str, list[str]], environ: Any) -> Reply:
                body = json_body(environ) if method in ("POST", "PUT") else None
                return (*webhooks.api(self._emu, method, args, query, body), [])

            return run

        methods = ("GET", "POST") if len(seg) == 1 else ("GET", "PUT", "DELETE")
        return {m: handler(m) for m in methods}

    def _get_project(self, args: list[str], query: dict[str, list[str]], environ: Any) -> Reply:
        """``GET /project/{slug}`` (getProjectBySlug): what ``webhook install`` needs."""
        slug = self._emu.locked(lambda s: self._project(s, args[0], environ))
        return (*webhooks.get_project(self._emu, slug), [])

    def _trigger(self, args: list[str], query: dict[str, list[str]], environ: Any) -> Reply:
        """``POST /project/{slug}/pipeline`` (triggerPipeline): 201 PipelineCreation.

        A body sent without ``Content-Type: application/json`` is read as no body at all:
        CircleCI then runs the default branch with default parameters (api-preview-docs
        #46, #67).
        """
        body = _trigger_body(environ)
        if not isinstance(body, dict) or set(body) - {"branch", "tag", "parameters"}:
            raise EmulatorError(400, BAD_BODY)
        branch, tag = _ref(body)
        parameters = _parameters(body)
        return self._create(args[0], branch, tag, parameters, None, "Project not found", environ)

    def _trigger_run(self, args: list[str], query: dict[str, list[str]], environ: Any) -> Reply:
        """``POST /project/{provider}/{org}/{project}/pipeline/run`` (triggerPipelineRun)."""
        missing = "Project does not exist."
        if args[0] not in PROVIDERS:
            raise EmulatorError(404, missing)
        body = _trigger_body(environ)
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
        return self._create(
            "/".join(args), branch, tag, parameters, definition_id, missing, environ
        )

    def _create(
        self,
        slug: str,
        branch: str | None,
        tag: str | None,
        parameters: dict[str, Any],
        definition_id: str | None,
        missing: str,
        environ: Any,
    ) -> Reply:
        if self._emu.ci_skip:
            self._emu.locked(lambda s: self._project(s, slug, environ, missing))
            return 200, {"message": CI_SKIP_MESSAGE}, []

        def trigger(state: State) -> dict[str, Any]:
            known = self._project(state, slug, environ, missing)
            pipeline = state.trigger(
                known,
                branch=branch,
                tag=tag,
                parameters=parameters,
                definition_id=definition_id,
                not_found_message=missing,
            )
            return shapes.pipeline_creation(pipeline)

        return 201, self._emu.locked(trigger), []

    def _list_pipelines(self, args: list[str], query: dict[str, list[str]], environ: Any) -> Reply:
        """``GET /project/{slug}/pipeline``: newest first, optional ``branch`` filter."""
        branch = query.get("branch", [None])[0]

        def items(state: State) -> list[tuple[int, dict[str, Any]]]:
            slug = self._project(state, args[0], environ)
            return [
                (p.number, shapes.pipeline_json(p, state.switches))
                for p in reversed(list(state.pipelines.values()))
                if p.project_slug == slug and (not branch or p.branch == branch)
            ]

        return 200, self._page(self._emu.locked(items), query, descending=True), []

    def _list_org_pipelines(
        self, args: list[str], query: dict[str, list[str]], environ: Any
    ) -> Reply:
        """``GET /pipeline?org-slug=`` (listPipelines): the org's pipelines, newest first.

        ``org-slug`` (``gh/acme``, ``github/acme`` or escaped) narrows to one organization;
        ``mine`` is accepted and ignored, since every emulated pipeline is the one user's.
        """
        org = query.get("org-slug", [""])[0]
        wanted = _org_of(org) if org else None

        def items(state: State) -> list[tuple[int, dict[str, Any]]]:
            found = [
                p
                for p in state.pipelines.values()
                if (wanted is None or _org_of(p.project_slug) == wanted)
                and self._emu.token_may_see(environ["circleback.token"], p.project_slug)
            ]
            return [(i, shapes.pipeline_json(p, state.switches)) for i, p in enumerate(found)][::-1]

        return 200, self._page(self._emu.locked(items), query, descending=True), []

    def _pipeline_by_number(
        self, args: list[str], query: dict[str, list[str]], environ: Any
    ) -> Reply:
        def find(state: State) -> dict[str, Any]:
            slug = self._project(state, args[0], environ)
            for p in state.pipelines.values():
                if p.project_slug == slug and p.number == int(args[1]):
                    return shapes.pipeline_json(p, state.switches)
            raise EmulatorError(404, "Pipeline not found")

        return 200, self._emu.locked(find), []

    def _pipeline(self, state: State, pipeline_id: str, environ: Any) -> Any:
        pipeline = state.pipeline(pipeline_id)
        self._visible(environ, pipeline.project_slug, "Pipeline")
        return pipeline

    def _get_pipeline(self, args: list[str], query: dict[str, list[str]], environ: Any) -> Reply:
        return (
            200,
            self._emu.locked(
                lambda s: shapes.pipeline_json(self._pipeline(s, args[0], environ), s.switches)
            ),
            [],
        )

    def _pipeline_config(self, args: list[str], query: dict[str, list[str]], environ: Any) -> Reply:
        """``GET /pipeline/{id}/config`` (getPipelineConfigById): PipelineConfig.

        ``compiled`` comes from :mod:`circleback.emulator.compiled`; ``setup-config`` and
        ``compiled-setup-config`` exist only for a setup (dynamic config) pipeline.
        """

        def gather(state: State) -> tuple[Any, ...]:
            pipeline = self._pipeline(state, args[0], environ)
            return pipeline, state.pipeline_values(pipeline)

        pipeline, values = self._emu.locked(gather)
        body: dict[str, Any] = {"source": pipeline.source, "compiled": ""}
        if pipeline.config is not None and not pipeline.errors and pipeline.state != "pending":
            main = pipeline.config if pipeline.setup_config is None or pipeline.continued else None
            if main is not None:
                body["compiled"] = compiled.compile_text(
                    main, pipeline.source, values, branch=pipeline.branch, tag=pipeline.tag
                )
        if pipeline.setup_config is not None and pipeline.setup_source is not None:
            body["setup-config"] = pipeline.setup_source
            body["compiled-setup-config"] = compiled.compile_text(
                pipeline.setup_config,
                pipeline.setup_source,
                values,
                branch=pipeline.branch,
                tag=pipeline.tag,
            )
        return 200, body, []

    def _pipeline_values(self, args: list[str], query: dict[str, list[str]], environ: Any) -> Reply:
        """``GET /pipeline/{id}/values`` (getPipelineValuesById): the ``pipeline.*`` values,
        keyed as configs write them. Parameters are not among them: no public source shows
        that they are, so nothing may rely on it."""

        def values(state: State) -> dict[str, Any]:
            pipeline = self._pipeline(state, args[0], environ)
            return {
                k: v
                for k, v in state.pipeline_values(pipeline).items()
                if not k.startswith("pipeline.parameters.")
            }

        return 200, self._emu.locked(values), []

    def _continue(self, args: list[str], query: dict[str, list[str]], environ: Any) -> Reply:
        """``POST /pipeline/continue`` (continuePipeline): 200 MessageResponse."""
        body = json_body(environ)
        if not isinstance(body, dict) or set(body) - {
            "continuation-key",
            "configuration",
            "parameters",
        }:
            raise EmulatorError(400, BAD_BODY)
        key, configuration = body.get("continuation-key"), body.get("configuration")
        if not isinstance(key, str) or not isinstance(configuration, str):
            raise EmulatorError(400, BAD_BODY)
        parameters = _parameters(body)
        self._emu.locked(lambda s: s.continue_pipeline(key, configuration, parameters))
        return 200, {"message": "Pipeline continued."}, []

    def _list_workflows(self, args: list[str], query: dict[str, list[str]], environ: Any) -> Reply:
        """``GET /pipeline/{id}/workflow``: newest first, so a rerun comes before its original."""

        def items(state: State) -> list[tuple[int, dict[str, Any]]]:
            ids = self._pipeline(state, args[0], environ).workflow_ids
            return [
                (i, shapes.workflow_json(state, state.workflows[w], state.switches))
                for i, w in enumerate(ids)
            ][::-1]

        return 200, self._page(self._emu.locked(items), query, descending=True), []

    def _workflow(self, state: State, workflow_id: str, environ: Any) -> Any:
        workflow = state.workflow(workflow_id)
        self._visible(environ, state.pipelines[workflow.pipeline_id].project_slug, "Workflow")
        return workflow

    def _get_workflow(self, args: list[str], query: dict[str, list[str]], environ: Any) -> Reply:
        return (
            200,
            self._emu.locked(
                lambda s: shapes.workflow_json(s, self._workflow(s, args[0], environ), s.switches)
            ),
            [],
        )

    def _list_jobs(self, args: list[str], query: dict[str, list[str]], environ: Any) -> Reply:
        """``GET /workflow/{id}/job``: config order; paginated although the spec omits the param."""

        def items(state: State) -> list[tuple[int, dict[str, Any]]]:
            ids = self._workflow(state, args[0], environ).job_ids
            return [(i, shapes.job_json(state.jobs[j], state.switches)) for i, j in enumerate(ids)]

        return 200, self._page(self._emu.locked(items), query, descending=False), []

    def _job_details(self, args: list[str], query: dict[str, list[str]], environ: Any) -> Reply:
        """``GET /project/{slug}/job/{number}`` (getJobDetails): Job Details."""

        def details(state: State) -> dict[str, Any]:
            slug = self._project(state, args[0], environ)
            job = state.job_by_number(slug, int(args[1]))
            return shapes.job_details(state, job, state.switches)

        return 200, self._emu.locked(details), []

    def _cancel_job_by_number(
        self, args: list[str], query: dict[str, list[str]], environ: Any
    ) -> Reply:
        """``POST /project/{slug}/job/{number}/cancel`` (cancelJob): 200 MessageResponse."""

        def cancel(state: State) -> None:
            slug = self._project(state, args[0], environ)
            state.cancel_job(state.job_by_number(slug, int(args[1])))

        self._emu.locked(cancel)
        return 200, {"message": "Accepted."}, []

    def _cancel_job_by_id(
        self, args: list[str], query: dict[str, list[str]], environ: Any
    ) -> Reply:
        """``POST /jobs/{id}/cancel`` (cancelJobByJobID): 200 MessageResponse."""

        def cancel(state: State) -> None:
            job = state.job(args[0])
            self._visible(environ, job.project_slug, "Job")
            state.cancel_job(job)

        self._emu.locked(cancel)
        return 200, {"message": "Job cancelled successfully."}, []

    def _me(self, args: list[str], query: dict[str, list[str]], environ: Any) -> Reply:
        """``GET /me`` (getCurrentUser): User; a project token is not a user (401)."""
        if self._emu.is_project_token(environ["circleback.token"]):
            raise EmulatorError(401, LOG_IN_FIRST)
        return 200, shapes.user_json(), []

    def _list_artifacts(self, args: list[str], query: dict[str, list[str]], environ: Any) -> Reply:
        """``GET /project/{slug}/{job-number}/artifacts`` (getJobArtifacts): a page of Artifact."""
        origin = _origin(environ)

        def items(state: State) -> list[tuple[int, dict[str, Any]]]:
            slug = self._project(state, args[0], environ)
            job = state.job_by_number(slug, int(args[1]))
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

    def _artifact_content(self, raw_path: str, token: str) -> Reply:
        """An artifact's bytes, behind the same token as the API (private projects need it)."""
        parts = raw_path[len(ARTIFACT_PREFIX) + 1 :].split("/")
        if len(parts) < 4 or parts[1:3] != ["artifacts", "0"]:
            raise EmulatorError(404, "Not found")
        job_id, path = unquote(parts[0]), "/".join(unquote(p) for p in parts[3:])

        def find(state: State) -> bytes:
            job = state.jobs.get(job_id)
            if job is not None and self._emu.token_may_see(token, job.project_slug):
                for stored, content in state.artifacts.get(job_id, []):
                    if stored == path:
                        return content
            raise EmulatorError(404, "Artifact not found")

        return 200, RawBody(self._emu.locked(find)), []

    def _approve(self, args: list[str], query: dict[str, list[str]], environ: Any) -> Reply:
        """``POST /workflow/{id}/approve/{approval_request_id}``: 202 MessageResponse."""

        def approve(state: State) -> None:
            self._workflow(state, args[0], environ)
            state.approve(args[0], args[1])

        self._emu.locked(approve)
        return 202, {"message": "Accepted."}, []

    def _cancel(self, args: list[str], query: dict[str, list[str]], environ: Any) -> Reply:
        def cancel(state: State) -> None:
            self._workflow(state, args[0], environ)
            state.cancel(args[0])

        self._emu.locked(cancel)
        return 202, {"message": "Accepted."}, []

    def _rerun(self, args: list[str], query: dict[str, list[str]], environ: Any) -> Reply:
        """``POST /workflow/{id}/rerun``: 202 ``{workflow_id}`` of the new workflow."""
        body = json_body(environ)
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

        def rerun(state: State) -> str:
            self._workflow(state, args[0], environ)
            return state.rerun(args[0], from_failed=flags["from_failed"], jobs=jobs).id

        return 202, {"workflow_id": self._emu.locked(rerun)}, []

    def _page(
        self, items: Sequence[tuple[int, _T]], query: dict[str, list[str]], *, descending: bool
    ) -> dict[str, Any]:
        """One page of a keyed list; the token is the last key shown, so pages stay stable.

        On the last page ``next_page_token`` is null, or left out with the
        ``last_page_token: omit`` switch (alpinweis/pycircleci#36).
        """
        token = query.get("page-token", [""])[0]
        if token:
            after = _decode_token(token)
            items = [i for i in items if (i[0] < after if descending else i[0] > after)]
        page = list(items[: self._emu.page_size])
        more = len(items) > len(page)
        body: dict[str, Any] = {"items": [item for _, item in page]}
        if more:
            body["next_page_token"] = _encode_token(page[-1][0])
        elif self._emu.switches.last_page_token == "null":  # noqa: S105  (not a secret)
            body["next_page_token"] = None
        return body


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


def _is_json(environ: WSGIEnvironment) -> bool:
    media = str(environ.get("CONTENT_TYPE", "")).split(";")[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


def _trigger_body(environ: WSGIEnvironment) -> Any:
    """A trigger's JSON body; one not declared as JSON is read and dropped (``_trigger``)."""
    if _is_json(environ):
        body = json_body(environ)
        return {} if body is None else body
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > 0:
        environ["wsgi.input"].read(min(length, 1 << 20))
    return {}


def _org_of(slug: str) -> str:
    """``gh/acme`` of ``gh/acme/b`` or ``github/acme``: the organization a slug names."""
    provider, _, rest = unquote(slug).partition("/")
    provider = {"github": "gh", "bitbucket": "bb"}.get(provider, provider)
    return f"{provider}/{rest.split('/')[0]}"


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


def _origin(environ: WSGIEnvironment) -> str:
    """``scheme://host[:port]`` the client used, so artifact URLs point back at this server."""
    scheme = str(environ.get("wsgi.url_scheme", "http"))
    host = str(environ.get("HTTP_HOST") or environ.get("SERVER_NAME", "127.0.0.1"))
    return f"{scheme}://{host}"
