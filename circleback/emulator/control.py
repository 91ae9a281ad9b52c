"""The control API under ``/_emulator/``: what tests and scripts use to steer the emulator.

It can finish any job with any status, so when the emulator is served with tokens it asks
for one of them (``Circle-Token``, Basic or Bearer, as the API does). Every POST must say
``Content-Type: application/json``: a web page can send ``text/plain`` or a form across
origins without asking, but not JSON (CSRF). ``POST /projects`` reads only configs under
the directories the emulator was started with, so it cannot be used to read other files.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from pathlib import Path
from typing import TYPE_CHECKING, Any

from circleback.emulator import shapes
from circleback.emulator.faults import fault_from_json
from circleback.emulator.state import EmulatorError
from circleback.emulator.wire import Headers, Reply, encode, json_body

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

    from circleback.emulator.core import EmulatorCore

CONTROL_PREFIX = "/_emulator"
MAX_ARTIFACT_BYTES = 1 << 20


class ControlAPI:
    """Routes of the control API; ``__call__`` returns (status, headers, body)."""

    def __init__(self, emulator: EmulatorCore) -> None:
        self._emu = emulator

    def __call__(
        self, method: str, route: str, environ: WSGIEnvironment
    ) -> tuple[int, Headers, bytes]:
        try:
            self._guard(method, environ)
            reply = self._route(method, route.strip("/"), environ)
        except EmulatorError as exc:
            reply = exc.status, {"message": exc.message}, []
        except ValueError as exc:
            reply = 400, {"message": str(exc)}, []
        return encode(*reply)

    def _guard(self, method: str, environ: WSGIEnvironment) -> None:
        known = [t for t in self._emu.tokens if not self._emu.is_project_token(t)]
        if self._emu.require_control_token and known:
            token = _token(environ)
            if not any(hmac.compare_digest(token.encode(), t.encode()) for t in known):
                raise EmulatorError(401, "The control API needs one of the emulator's tokens.")
        if method in ("POST", "PUT", "PATCH"):
            media = str(environ.get("CONTENT_TYPE", "")).split(";")[0].strip().lower()
            if media != "application/json":
                raise EmulatorError(
                    415, "Control API POSTs must be sent as Content-Type: application/json."
                )

    def _route(self, method: str, route: str, environ: WSGIEnvironment) -> Reply:
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
            fault = emu.add_fault_object(fault_from_json(json_body(environ)))
            return 201, fault.to_json(), []
        if key == ("DELETE", "faults"):
            emu.clear_faults()
            return 200, {"message": "Faults cleared."}, []
        if key == ("GET", "switches"):
            return 200, emu.switches.to_json(), []
        body = json_body(environ) if method == "POST" else None
        data = body if isinstance(body, dict) else {}
        if key == ("POST", "switches"):
            return 200, emu.set_switches(data).to_json(), []
        if key == ("POST", "tick"):
            emu.tick()
            return 200, {"message": "Ticked."}, []
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
            emu.add_project(slug, self._confined(config_path))
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
                raise EmulatorError(
                    400, "status must be one of success, failed, canceled, not_run."
                )
            emu.finish_job(parts[1], status)
            return 200, self._job_dump(parts[1]), []
        if method == "POST" and len(parts) == 3 and parts[0] == "jobs" and parts[2] == "artifacts":
            path, content = data.get("path"), _content(data)
            if not isinstance(path, str) or not path.strip("/") or ".." in path.split("/"):
                raise EmulatorError(400, "path must be a relative artifact path such as a/b.json.")
            emu.add_artifact(parts[1], path.strip("/"), content)
            return 201, {"job_id": parts[1], "path": path.strip("/"), "size": len(content)}, []
        raise EmulatorError(404, f"No control route {method} {CONTROL_PREFIX}/{route}")

    def _confined(self, config_path: str) -> Path:
        """The config path, if it lies under a directory the emulator was started with."""
        roots = self._emu.config_roots
        path = Path(config_path)
        if roots is None:
            return path
        resolved = path.resolve()
        if not any(resolved.is_relative_to(root) for root in roots):
            shown = ", ".join(str(r) for r in roots) or "(none: start it with --project)"
            raise EmulatorError(
                403, f"config_path must lie under a directory given at start: {shown}"
            )
        return resolved

    def _job_dump(self, job_id: str) -> dict[str, Any]:
        return self._emu.locked(lambda s: shapes.job_json(s.job(job_id), s.switches))


def _token(environ: WSGIEnvironment) -> str:
    token = str(environ.get("HTTP_CIRCLE_TOKEN", "")).strip()
    scheme, _, value = str(environ.get("HTTP_AUTHORIZATION", "")).strip().partition(" ")
    if not token and scheme.lower() == "bearer":
        token = value.strip()
    elif not token and scheme.lower() == "basic":
        try:
            token = base64.b64decode(value.strip(), validate=True).decode().split(":")[0]
        except (binascii.Error, UnicodeDecodeError):
            token = ""
    return token


def _content(data: dict[str, Any]) -> bytes:
    """An artifact's bytes from ``content`` (text) or ``content_base64``."""
    if isinstance(data.get("content_base64"), str):
        try:
            raw = base64.b64decode(data["content_base64"], validate=True)
        except binascii.Error:
            raise EmulatorError(400, "content_base64 is not valid base64.") from None
    elif isinstance(data.get("content"), str):
        raw = data["content"].encode("utf-8")
    else:
        raise EmulatorError(400, "Give the artifact's content as content or content_base64.")
    if len(raw) > MAX_ARTIFACT_BYTES:
        raise EmulatorError(413, "Artifacts added here are limited to 1 MiB.")
    return raw
