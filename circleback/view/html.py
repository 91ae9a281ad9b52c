"""The chain as one self-contained HTML page (``circleback trace --format html``).

No scripts, fonts, images or stylesheets from anywhere: the CSS is inline and a
Content-Security-Policy forbids every other source, so the page opens the same from A's
Artifacts tab, a mail attachment or a machine without network. Every text from the API
is escaped, and only ``http(s)`` URLs become links (records come from artifacts, which
anyone who can run A's jobs can write).
"""

from __future__ import annotations

from datetime import datetime, timezone
from html import escape
from urllib.parse import urlsplit

from circleback.view.chain import JobView, PipelineView, WorkflowView

#: Forbids every external source: only the page's own inline style applies.
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'"

_STYLE = """
:root { --ok:#1a7f37; --bad:#cf222e; --run:#0969da; --hold:#9a6700; --off:#6e7781;
  --line:#d0d7de; --ink:#1f2328; --soft:#656d76; --card:#fff; --bg:#f6f8fa; }
* { box-sizing: border-box; }
body { margin: 0; padding: 24px 32px; background: var(--bg); color: var(--ink);
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
header h1 { font-size: 20px; margin: 0 0 4px; }
header p { margin: 0 0 20px; color: var(--soft); }
a { color: inherit; }
ul.tree, ul.kids { list-style: none; margin: 0; padding: 0; }
ul.kids { margin-left: 28px; }
ul.kids > li { position: relative; padding: 14px 0 0 30px; }
ul.kids > li::before { content: ""; position: absolute; left: 0; top: 0; bottom: 0;
  border-left: 2px solid var(--line); }
ul.kids > li:last-child::before { bottom: auto; height: 34px; }
ul.kids > li::after { content: ""; position: absolute; left: 0; top: 32px; width: 26px;
  border-top: 2px solid var(--line); }
.card { background: var(--card); border: 1px solid var(--line); border-left: 5px solid var(--off);
  border-radius: 8px; padding: 10px 14px; max-width: 760px; box-shadow: 0 1px 2px #0000000f; }
.card.s-success { border-left-color: var(--ok); }
.card.s-failed, .card.s-error, .card.s-errored, .card.s-failing,
.card.s-unauthorized { border-left-color: var(--bad); }
.card.s-running { border-left-color: var(--run); }
.card.s-on_hold { border-left-color: var(--hold); }
.head { display: flex; align-items: baseline; gap: 10px; flex-wrap: wrap; }
.head .slug { font-weight: 600; font-size: 15px; text-decoration: none; }
.head .slug:hover { text-decoration: underline; }
.head .id { color: var(--soft); font: 12px ui-monospace, SFMono-Regular, Menlo, monospace; }
.badge { display: inline-block; padding: 0 8px; border-radius: 10px; font-size: 12px;
  font-weight: 600; color: #fff; background: var(--off); white-space: nowrap; }
.badge.s-success { background: var(--ok); }
.badge.s-failed, .badge.s-error, .badge.s-errored, .badge.s-failing,
.badge.s-unauthorized, .badge.s-infrastructure_fail, .badge.s-timedout { background: var(--bad); }
.badge.s-running, .badge.s-queued, .badge.s-blocked { background: var(--run); }
.badge.s-on_hold { background: var(--hold); }
.wf { margin-top: 8px; }
.wfhead { display: flex; gap: 8px; align-items: baseline; }
.wfhead a { font-weight: 600; }
.dur { color: var(--soft); white-space: nowrap; margin-left: auto; padding-left: 12px; }
ul.jobs { list-style: none; margin: 2px 0 4px; padding: 0 0 0 22px; }
li.job { display: flex; gap: 8px; align-items: baseline; padding: 1px 0; }
li.job a, li.job .jobname { white-space: nowrap; }
li.job.failed a { color: var(--bad); font-weight: 600; }
li.job.hold a { color: var(--hold); }
.who { color: var(--soft); font-size: 13px; }
.mark { display: inline-block; width: 12px; text-align: center; color: var(--soft); }
li.job.failed .mark { color: var(--bad); font-weight: 700; }
.pause { display: inline-block; width: 9px; height: 10px; border-left: 3px solid var(--hold);
  border-right: 3px solid var(--hold); vertical-align: -1px; }
.by { color: var(--soft); font-size: 12px; }
details.rest summary { color: var(--soft); cursor: pointer; font-size: 13px; }
.errors { color: var(--bad); margin: 6px 0 0; padding-left: 18px; }
.note { color: var(--soft); font-style: italic; margin-top: 6px; }
footer { margin-top: 24px; color: var(--soft); font-size: 12px; }
"""


def render_html(
    root: PipelineView, *, generated_at: datetime | None = None, version: str = ""
) -> str:
    """The whole page for a chain, as text (UTF-8 when written)."""
    when = (generated_at or datetime.now(tz=timezone.utc)).strftime("%Y-%m-%d %H:%M:%S UTC")
    pipelines = root.walk()
    failed = [p for p in pipelines if p.status in _BAD]
    title = f"{root.project_slug} #{root.number}: the chain"
    verdict = _verdict(pipelines)
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{escape(title)}</title>",
            f"<style>{_STYLE}</style>",
            "</head><body>",
            "<header>",
            f"<h1>Chain from {escape(root.project_slug)} #{root.number}</h1>",
            f'<p class="summary" data-pipelines="{len(pipelines)}" '
            f'data-failed="{len(failed)}">{escape(verdict)}; '
            "each pipeline lists the ones it triggered below it.</p>",
            "</header>",
            '<ul class="tree">',
            _node(root),
            "</ul>",
            f"<footer>{escape(' '.join(filter(None, ['circleback', version])))} · generated "
            f"{when} · links open CircleCI's web app</footer>",
            "</body></html>",
            "",
        ]
    )


def _verdict(pipelines: list[PipelineView]) -> str:
    """``5 pipelines: 2 succeeded, 1 failed, 2 still going``."""
    succeeded = sum(1 for p in pipelines if p.status == "success")
    failed = sum(1 for p in pipelines if p.status in _BAD)
    going = len(pipelines) - succeeded - failed
    parts = [f"{n} {word}" for n, word in ((succeeded, "succeeded"), (failed, "failed")) if n]
    if going:
        parts.append(f"{going} still going or unknown")
    noun = "pipeline" if len(pipelines) == 1 else "pipelines"
    return f"{len(pipelines)} {noun}: {', '.join(parts)}"


_BAD = frozenset({"failed", "error", "errored", "canceled", "unauthorized", "failing"})


def _node(p: PipelineView, parent: PipelineView | None = None) -> str:
    status = p.status
    parts = [
        f'<li class="pipeline" data-pipeline-id="{escape(p.pipeline_id)}" '
        f'data-project="{escape(p.project_slug)}" data-status="{escape(status)}">',
        f'<div class="card s-{_cls(status)}">',
        '<div class="head">',
        f'<span class="badge s-{_cls(status)}">{escape(status)}</span>',
        _link(p.url, f"{p.project_slug} #{p.number}", cls="slug"),
        f'<span class="id" title="pipeline id">{escape(p.pipeline_id)}</span>',
        (
            f'<span class="by">triggered by {escape(parent.project_slug)} #{parent.number}</span>'
            if parent
            else ""
        ),
        "</div>",
    ]
    if p.errors:
        parts.append(
            '<ul class="errors">' + "".join(f"<li>{escape(e)}</li>" for e in p.errors) + "</ul>"
        )
    parts.extend(_workflow(w) for w in p.workflows)
    if not p.workflows and not p.errors and not p.note:
        parts.append('<div class="note">no workflows yet</div>')
    if p.note:
        parts.append(f'<div class="note">{escape(p.note)}</div>')
    parts.append("</div>")
    if p.children:
        parts.append('<ul class="kids">')
        parts.extend(_node(child, p) for child in p.children)
        parts.append("</ul>")
    parts.append("</li>")
    return "\n".join(part for part in parts if part)


def _workflow(w: WorkflowView) -> str:
    shown = [j for j in w.jobs if j.failed or j.is_hold]
    rest = [j for j in w.jobs if not (j.failed or j.is_hold)]
    items = [_job(j) for j in shown]
    if rest:
        states = sorted({j.status for j in rest})
        label = f"{len(rest)} more job{'s' if len(rest) != 1 else ''} ({', '.join(states)})"
        items.append(
            f'<li><details class="rest"><summary>{escape(label)}</summary>'
            f'<ul class="jobs">{"".join(_job(j) for j in rest)}</ul></details></li>'
        )
    return (
        f'<div class="wf" data-workflow="{escape(w.name)}" data-status="{escape(w.status)}">'
        f'<div class="wfhead"><span class="badge s-{_cls(w.status)}">{escape(w.status)}</span>'
        f"{_link(w.url, w.name)}"
        f'<span class="dur">{escape(_duration(w.duration_seconds, w.status))}</span></div>'
        + (f'<ul class="jobs">{"".join(items)}</ul>' if items else "")
        + "</div>"
    )


def _job(j: JobView) -> str:
    classes = ["job"]
    if j.failed:
        classes.append("failed")
    if j.is_hold:
        classes.append("hold")
    mark = (
        '<span class="pause" title="hold (approval job)"></span>'
        if j.is_hold
        else f'<span class="mark" aria-hidden="true">{"✕" if j.failed else "·"}</span>'
    )
    detail = ""
    if j.is_hold and j.approved_by:
        when = j.released_at.strftime("%H:%M:%S UTC") if j.released_at else "?"
        held = f", held {_clock(j.duration_seconds)}" if j.duration_seconds is not None else ""
        detail = (
            f'<span class="who" data-approved-by="{escape(j.approved_by)}" '
            f'title="user id {escape(j.approved_by)}">released at {escape(when)} by '
            f"{escape(j.approver or 'user ' + j.approved_by[:8])}{escape(held)}</span>"
        )
    elif j.is_hold and j.status == "on_hold":
        detail = '<span class="who">waiting to be released</span>'
    dur = "" if j.is_hold else escape(_duration(j.duration_seconds, j.status))
    return (
        f'<li class="{" ".join(classes)}" data-job="{escape(j.name)}" '
        f'data-status="{escape(j.status)}">{mark}'
        f"{_link(j.url, j.name)}"
        f'<span class="badge s-{_cls(j.status)}">{escape(j.status)}</span>'
        f'{detail}<span class="dur">{dur}</span></li>'
    )


def _link(url: str, text: str, *, cls: str = "") -> str:
    """A link for http(s) URLs only; anything else (``javascript:``, ``data:``) is plain text."""
    attr = f' class="{cls}"' if cls else ""
    if urlsplit(url).scheme in {"http", "https"}:
        return f'<a{attr} href="{escape(url)}">{escape(text)}</a>'
    return f"<span{attr}>{escape(text)}</span>"


def _cls(status: str) -> str:
    """A status as a CSS class fragment (unknown statuses keep the neutral colour)."""
    return "".join(c for c in status if c.isalnum() or c == "_") or "unknown"


def _duration(seconds: float | None, status: str) -> str:
    if seconds is None:
        return ""
    going = status in {"running", "failing", "on_hold", "queued"}
    return ("for " if going else "") + _clock(seconds)


def _clock(seconds: float | None) -> str:
    """``45s``, ``2m 13s``, ``1h 02m``."""
    total = round(seconds or 0)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"
