"""``trace``: the tree of pipelines triggered from a pipeline, with statuses and links.

It follows the same records the check job reads (the ``circleback/downstream.json``
artifacts the trigger jobs store), so what it shows is what A acted on, and says whether
each pipeline is done by the same completion rule ``status`` uses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from urllib.parse import quote

from circleback._text import printable
from circleback.client import CircleCIClient
from circleback.relay import completion
from circleback.relay.discovery import downstream_of
from circleback.relay.records import app_url, pipeline_url, workflow_url

DEFAULT_MAX_DEPTH = 8


@dataclass(frozen=True)
class WorkflowLine:
    """One workflow of a traced pipeline."""

    name: str
    status: str
    url: str


@dataclass(frozen=True)
class TraceNode:
    """A pipeline in the tree and the pipelines it triggered."""

    project_slug: str
    pipeline_id: str
    number: int
    state: str
    url: str
    workflows: tuple[WorkflowLine, ...] = ()
    children: tuple[TraceNode, ...] = field(default=())
    note: str = ""
    """Why the tree stops here early (depth limit, already shown), if it does."""
    waiting: str = ""
    """Not done under the completion rule: what it still waits for."""


def trace(
    client: CircleCIClient, pipeline_id: str, *, max_depth: int = DEFAULT_MAX_DEPTH
) -> TraceNode:
    """Build the tree below ``pipeline_id``; a pipeline met twice is shown once."""
    return _node(client, pipeline_id, max_depth, set())


def _node(client: CircleCIClient, pipeline_id: str, depth: int, seen: set[str]) -> TraceNode:
    seen.add(pipeline_id)
    pipeline = client.get_pipeline(pipeline_id)
    app = app_url(client.base_url)
    listed = list(client.list_pipeline_workflows(pipeline.id))
    age = (datetime.now(timezone.utc) - pipeline.created_at).total_seconds()
    verdict = completion.judge(pipeline.state, listed, empty_for=age)
    workflows = tuple(
        WorkflowLine(
            w.name,
            completion.status_text(w.status),
            workflow_url(app, pipeline.project_slug, pipeline.number, w.id),
        )
        for w in verdict.workflows
    )
    base = TraceNode(
        project_slug=pipeline.project_slug,
        pipeline_id=pipeline.id,
        number=pipeline.number,
        state=str(pipeline.state),
        url=pipeline_url(app, pipeline.project_slug, pipeline.number),
        workflows=workflows,
        waiting="" if verdict.done else verdict.reason,
    )
    records = downstream_of(client, pipeline.id)
    if records and depth <= 0:
        return replace(base, note="deeper pipelines not shown (--max-depth)")
    children: list[TraceNode] = []
    for record in records:
        if record.pipeline_id in seen:
            children.append(
                TraceNode(
                    record.project_slug,
                    record.pipeline_id,
                    record.number,
                    record.state,
                    record.url,
                    note="already shown above (a cycle)",
                )
            )
            continue
        children.append(_node(client, record.pipeline_id, depth - 1, seen))
    return replace(base, children=tuple(children))


def render_text(root: TraceNode) -> str:
    """An indented tree: pipeline, then its workflows, then the pipelines it triggered."""
    lines: list[str] = []

    def walk(node: TraceNode, prefix: str, last: bool, top: bool) -> None:
        # API text is escaped: a name can never draw a line of the tree of its own.
        branch = "" if top else ("└── " if last else "├── ")
        state = f"{node.state}, still running: {node.waiting}" if node.waiting else node.state
        summary = printable(f"{node.project_slug} #{node.number} ({state})  {node.url}")
        lines.append(f"{prefix}{branch}{summary}" + (f"  [{node.note}]" if node.note else ""))
        inner = prefix if top else prefix + ("    " if last else "│   ")
        for wf in node.workflows:
            lines.append(f"{inner}  · {printable(wf.name)}: {printable(wf.status)}")
        for index, child in enumerate(node.children):
            walk(child, inner, index == len(node.children) - 1, False)

    walk(root, "", True, True)
    return "\n".join(lines)


#: What a Mermaid label may carry as is; anything else from the API becomes an entity code.
_MERMAID_PLAIN = re.compile(r"[\w \-.:/,@+=~]")


def _mermaid_text(text: str) -> str:
    """API text for a quoted Mermaid label: every other character as Mermaid's ``#NNN;``.

    Mermaid renders labels as HTML in many renderers and reads ``"`` (end of label),
    ``#…;`` (its entity codes), backticks (markdown strings) and ``<``/``&`` (markup); none
    of them may come from a workflow or job name. Entity codes are Mermaid's documented way
    to write such characters (mermaid.js.org, flowchart syntax, "Entity codes to escape
    characters"): each is shown as the character itself, never read as syntax or markup.
    """
    return "".join(ch if _MERMAID_PLAIN.fullmatch(ch) else f"#{ord(ch)};" for ch in printable(text))


def render_mermaid(root: TraceNode) -> str:
    """A Mermaid flowchart of the tree, one node per pipeline, labelled with its status.

    Node ids are hex digits of the pipeline id; labels and links are escaped (API text).
    """
    lines = ["flowchart TD"]

    def node_id(node: TraceNode) -> str:
        return "p" + re.sub(r"[^0-9a-f]", "", node.pipeline_id)[:12]

    def label(node: TraceNode) -> str:
        statuses = ", ".join(f"{w.name}: {w.status}" for w in node.workflows) or node.state
        return (
            f"{_mermaid_text(f'{node.project_slug} #{node.number}')}<br/>{_mermaid_text(statuses)}"
        )

    def link(node: TraceNode) -> str:
        # The URL holds the project slug: percent-encoded, it cannot end the quoted string.
        return quote(printable(node.url), safe=":/@+,~")

    def walk(node: TraceNode) -> None:
        lines.append(f'    {node_id(node)}["{label(node)}"]')
        lines.append(f'    click {node_id(node)} "{link(node)}"')
        for child in node.children:
            if not child.note.startswith("already"):
                walk(child)
            lines.append(f"    {node_id(node)} -->|triggered| {node_id(child)}")

    walk(root)
    return "\n".join(lines)
