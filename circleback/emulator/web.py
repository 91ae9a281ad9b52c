"""The emulator's answer to the links circleback prints: small read-only HTML pages.

circleback links pipelines, workflows and jobs the way CircleCI's web app does
(``<app>/pipelines/<slug>/<number>/workflows/<id>/jobs/<n>``); against the emulator the
app is the emulator itself, so those paths must resolve there, not answer 404. Each page
shows what the control API's state holds about that thing, with links up and down.
Everything else goes to the emulator's own WSGI app untouched.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from html import escape
from typing import Any
from urllib.parse import unquote

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
PREFIX = "/pipelines/"

_STYLE = (
    "body{font:14px/1.5 system-ui,sans-serif;margin:24px 32px;color:#1f2328}"
    "table{border-collapse:collapse}td,th{padding:2px 12px 2px 0;text-align:left}"
    ".s{font-weight:600}.note{color:#656d76}"
)


def with_web_pages(app: WSGIApp, state: Callable[[], dict[str, Any]]) -> WSGIApp:
    """Wrap ``app`` so ``GET /pipelines/…`` (and ``/``) answer pages built from ``state()``."""

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = str(environ.get("PATH_INFO", ""))
        if environ.get("REQUEST_METHOD") == "GET" and (path == "/" or path.startswith(PREFIX)):
            status, body = page(path, state())
            data = body.encode("utf-8")
            start_response(
                status,
                [
                    ("Content-Type", "text/html; charset=utf-8"),
                    ("Content-Length", str(len(data))),
                    ("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'"),
                ],
            )
            return [data]
        return app(environ, start_response)

    return wrapped


def page(path: str, dump: dict[str, Any]) -> tuple[str, str]:
    """The status line and HTML for a path under ``/pipelines/`` (or the index ``/``)."""
    if path == "/":
        return "200 OK", _index(dump)
    parts = [unquote(p) for p in path[len(PREFIX) :].strip("/").split("/")]
    if len(parts) < 4 or not parts[3].isdigit():
        return _missing("No pipeline here: links look like /pipelines/gh/acme/b/1.")
    slug, number = "/".join(parts[:3]), int(parts[3])
    pipeline = next(
        (p for p in dump["pipelines"] if p["project_slug"] == slug and p["number"] == number),
        None,
    )
    if pipeline is None:
        return _missing(f"{slug} has no pipeline #{number} in this emulator.")
    rest = parts[4:]
    if not rest:
        return "200 OK", _pipeline(pipeline, dump)
    if len(rest) >= 2 and rest[0] == "workflows":
        workflow = next(
            (
                w
                for w in dump["workflows"]
                if w["id"] == rest[1] and w["pipeline_id"] == pipeline["id"]
            ),
            None,
        )
        if workflow is None:
            return _missing(f"{slug} #{number} has no workflow {rest[1]}.")
        if len(rest) == 2:
            return "200 OK", _workflow(pipeline, workflow, dump)
        if len(rest) == 4 and rest[2] == "jobs" and rest[3].isdigit():
            job = next(
                (
                    j
                    for j in dump["jobs"]
                    if j["workflow_id"] == workflow["id"] and j.get("job_number") == int(rest[3])
                ),
                None,
            )
            if job is not None:
                return "200 OK", _job(pipeline, workflow, job)
            return _missing(f"Workflow {workflow['name']} has no job #{rest[3]}.")
    return _missing("Not a page of this emulator.")


def _doc(title: str, *body: str) -> str:
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}'
        f"</title><style>{_STYLE}</style></head><body><h1>{escape(title)}</h1>"
        + "".join(body)
        + '<p class="note">circleback emulator: what its state holds (JSON: '
        '<a href="/_emulator/state">/_emulator/state</a>).</p></body></html>'
    )


def _missing(why: str) -> tuple[str, str]:
    return "404 Not Found", _doc(
        "Not found", f"<p>{escape(why)}</p>", '<p><a href="/">All pipelines</a></p>'
    )


def _pipeline_href(p: dict[str, Any]) -> str:
    return f"{PREFIX}{p['project_slug']}/{p['number']}"


def _index(dump: dict[str, Any]) -> str:
    rows = "".join(
        f'<tr><td><a href="{escape(_pipeline_href(p))}">{escape(p["project_slug"])} '
        f'#{p["number"]}</a></td><td class="s">{escape(str(p["state"]))}</td>'
        f"<td>{escape(str(p['created_at']))}</td></tr>"
        for p in dump["pipelines"]
    )
    projects = ", ".join(escape(p["slug"]) for p in dump["projects"]) or "none"
    return _doc(
        "circleback emulator",
        f"<p>Projects: {projects}</p>",
        f"<table><tr><th>pipeline</th><th>state</th><th>created</th></tr>{rows}</table>"
        if rows
        else "<p>No pipelines yet.</p>",
    )


def _pipeline(p: dict[str, Any], dump: dict[str, Any]) -> str:
    base = _pipeline_href(p)
    rows = "".join(
        f'<tr><td><a href="{escape(base)}/workflows/{escape(w["id"])}">{escape(w["name"])}</a>'
        f'</td><td class="s">{escape(str(w["status"]))}</td></tr>'
        for w in dump["workflows"]
        if w["pipeline_id"] == p["id"]
    )
    errors = "".join(f"<li>{escape(str(e.get('message')))}</li>" for e in p.get("errors", []))
    params = ", ".join(f"{escape(k)}={escape(repr(v))}" for k, v in p.get("parameters", {}).items())
    return _doc(
        f"{p['project_slug']} #{p['number']}",
        f"<p>Pipeline {escape(p['id'])}: <span class='s'>{escape(str(p['state']))}</span></p>",
        f"<ul>{errors}</ul>" if errors else "",
        f"<p>Parameters: {params or 'none'}</p>",
        f"<table><tr><th>workflow</th><th>status</th></tr>{rows}</table>",
        '<p><a href="/">All pipelines</a></p>',
    )


def _workflow(p: dict[str, Any], w: dict[str, Any], dump: dict[str, Any]) -> str:
    base = f"{_pipeline_href(p)}/workflows/{w['id']}"
    rows = "".join(
        "<tr><td>"
        + (
            f'<a href="{escape(base)}/jobs/{j["job_number"]}">{escape(j["name"])}</a>'
            if j.get("job_number") is not None
            else escape(j["name"])
        )
        + f'</td><td>{escape(str(j["type"]))}</td><td class="s">{escape(str(j["status"]))}'
        "</td></tr>"
        for j in dump["jobs"]
        if j["workflow_id"] == w["id"]
    )
    return _doc(
        f"{p['project_slug']} #{p['number']} · {w['name']}",
        f"<p>Workflow {escape(w['id'])}: <span class='s'>{escape(str(w['status']))}</span></p>",
        f"<table><tr><th>job</th><th>type</th><th>status</th></tr>{rows}</table>",
        f'<p><a href="{escape(_pipeline_href(p))}">Back to the pipeline</a></p>',
    )


def _job(p: dict[str, Any], w: dict[str, Any], j: dict[str, Any]) -> str:
    base = f"{_pipeline_href(p)}/workflows/{w['id']}"
    facts = "".join(
        f"<tr><th>{escape(k)}</th><td>{escape(str(j.get(k)))}</td></tr>"
        for k in ("status", "type", "job_number", "started_at", "stopped_at", "approved_by")
        if j.get(k) is not None
    )
    return _doc(
        f"{p['project_slug']} #{p['number']} · {w['name']} · {j['name']}",
        f"<table>{facts}</table>",
        f'<p><a href="{escape(base)}">Back to the workflow</a></p>',
    )
