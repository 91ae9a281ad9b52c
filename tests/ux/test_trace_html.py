"""``circleback trace --format html``: the chain as one page, checked in a real browser."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from circleback.view.chain import JobView, PipelineView, WorkflowView
from circleback.view.html import CSP, render_html
from tests.relay.world import A, B, World
from tests.ux import browser
from tests.ux.chains import C, failed_chain

REPO = Path(__file__).resolve().parents[2]

#: Measures the laid-out page and writes what it found into the DOM for --dump-dom.
PROBE = """<script>
const box = (e) => { const r = e.getBoundingClientRect();
  return {x: r.left, y: r.top, w: r.width, h: r.height}; };
const cards = [...document.querySelectorAll("li.pipeline")].map((li) => ({
  id: li.dataset.pipelineId, status: li.dataset.status,
  parent: li.parentElement.closest("li.pipeline")?.dataset.pipelineId ?? null,
  card: box(li.querySelector(":scope > .card")),
  visible: getComputedStyle(li.querySelector(":scope > .card")).visibility === "visible" }));
const failed = [...document.querySelectorAll("li.job.failed a")].map((a) => ({
  name: a.textContent, colour: getComputedStyle(a).color, box: box(a) }));
const out = {cards, failed,
  resources: performance.getEntriesByType("resource").map((r) => r.name),
  overflow: document.documentElement.scrollWidth > innerWidth,
  fonts: document.fonts.size};
const pre = document.createElement("pre"); pre.id = "probe";
pre.textContent = JSON.stringify(out); document.body.append(pre);
</script>"""


class _Elements(HTMLParser):
    """Every start tag with its attributes, and the text inside elements with an id."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.texts: dict[str, str] = {}
        self._open: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {k: v or "" for k, v in attrs}
        self.tags.append((tag, found))
        if "id" in found:
            self._open = found["id"]

    def handle_data(self, data: str) -> None:
        if self._open:
            self.texts[self._open] = self.texts.get(self._open, "") + data

    def handle_endtag(self, tag: str) -> None:
        self._open = None

    def having(self, attr: str) -> list[dict[str, str]]:
        return [a for _, a in self.tags if attr in a]


def _elements(text: str) -> _Elements:
    parser = _Elements()
    parser.feed(text)
    return parser


@pytest.fixture
def chain_page(world: World, tmp_path: Path) -> tuple[Path, object]:
    chain = failed_chain(world, tmp_path)
    result = world.cli("trace", chain.a, "--format", "html")
    assert result.code == 0, result.err
    page = tmp_path / "chain.html"
    page.write_text(result.out, encoding="utf-8")
    return page, chain


def test_the_page_draws_a_and_every_downstream_pipeline(chain_page: tuple[Path, object]) -> None:
    page, chain = chain_page
    dom = _elements(page.read_text(encoding="utf-8"))
    pipelines = dom.having("data-pipeline-id")
    assert [(p["data-project"], p["data-pipeline-id"]) for p in pipelines] == [
        (A, chain.a),  # type: ignore[attr-defined]
        (B, chain.b),  # type: ignore[attr-defined]
        (C, chain.c),  # type: ignore[attr-defined]
    ]
    assert [p["data-status"] for p in pipelines] == ["running", "failed", "on_hold"]
    workflows = [(w["data-workflow"], w["data-status"]) for w in dom.having("data-workflow")]
    assert workflows == [
        ("main", "running"),
        ("test", "failed"),
        ("lint", "success"),
        ("gated", "on_hold"),
    ]


def test_failed_jobs_come_first_and_the_hold_says_who_released_it(
    chain_page: tuple[Path, object],
) -> None:
    page, _ = chain_page
    text = page.read_text(encoding="utf-8")
    jobs = [(j["data-job"], j["data-status"]) for j in _elements(text).having("data-job")]
    # A: the hold (released) is listed before its other jobs; B's test: the failed leg first.
    assert jobs[0] == ("wait-for-triggered-pipeline", "success")
    b_test = jobs[jobs.index(("build-and-test-3.11", "failed")) :]
    assert b_test[1] == ("build-and-test-3.12", "success")
    (released,) = _elements(text).having("data-approved-by")
    assert re.fullmatch(r"[0-9a-f-]{36}", released["data-approved-by"])
    assert "released at" in text
    assert "waiting to be released" in text  # C's own gate


def test_the_page_is_self_contained(chain_page: tuple[Path, object]) -> None:
    page, _ = chain_page
    text = page.read_text(encoding="utf-8")
    assert f'content="{CSP}"' in text
    assert "<script" not in text
    assert "@import" not in text
    assert "url(" not in text
    for link in re.findall(r'(?:href|src)="([^"]*)"', text):
        assert link.startswith("http://127.0.0.1/"), link  # the emulator's web pages only


def test_only_http_links_and_escaped_text() -> None:
    hostile = PipelineView(
        project_slug="gh/acme/<b>",
        pipeline_id="x",
        number=1,
        state="created",
        url="javascript:alert(1)",
        workflows=(
            WorkflowView(
                name="<img src=x onerror=alert(1)>",
                id="w",
                status='"><script>',
                url="data:text/html,hi",
                duration_seconds=3725.0,
                jobs=(JobView("j", "build", "failed", "https://ok.example/j", 61.0),),
            ),
        ),
    )
    text = render_html(hostile)
    assert "javascript:" not in text
    assert "data:text" not in text
    assert "<img" not in text
    assert "<script>" not in text
    assert "&lt;img src=x onerror=alert(1)&gt;" in text
    assert 'href="https://ok.example/j"' in text
    assert "1h 02m" in text
    assert "1m 01s" in text


@browser.needs_chromium
def test_chromium_runs_nothing_and_loads_nothing_from_the_page(
    chain_page: tuple[Path, object], tmp_path: Path
) -> None:
    page, _ = chain_page
    probed = tmp_path / "probed.html"
    probed.write_text(page.read_text().replace("</body>", PROBE + "</body>"), encoding="utf-8")
    dom = browser.dump_dom(probed)
    assert 'id="probe"' not in dom  # the page's policy forbids every script, ours included
    assert "data-pipeline-id" in dom


@browser.needs_chromium
def test_chromium_lays_the_chain_out_as_a_tree(
    chain_page: tuple[Path, object], tmp_path: Path
) -> None:
    page, chain = chain_page
    probed = tmp_path / "probed.html"
    relaxed = page.read_text().replace(
        CSP, CSP.replace("default-src 'none'", "default-src 'none'; script-src 'unsafe-inline'")
    )
    probed.write_text(relaxed.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    found = json.loads(_elements(browser.dump_dom(probed)).texts["probe"])
    assert found["resources"] == []
    assert found["fonts"] == 0
    assert found["overflow"] is False
    cards = {c["id"]: c for c in found["cards"]}
    assert [c["parent"] for c in found["cards"]] == [None, chain.a, chain.b]  # type: ignore[attr-defined]
    for child in found["cards"][1:]:
        parent = cards[child["parent"]]
        assert child["visible"]
        assert child["card"]["w"] > 300
        assert child["card"]["h"] > 30
        assert child["card"]["x"] > parent["card"]["x"] + 20  # indented under its parent
        assert child["card"]["y"] >= parent["card"]["y"] + parent["card"]["h"]  # below it
    (failed,) = found["failed"]
    assert failed["name"] == "build-and-test-3.11"
    red, green, blue = (int(v) for v in re.findall(r"\d+", failed["colour"])[:3])
    assert red > 150
    assert green < 80
    assert blue < 80


@browser.needs_chromium
def test_screenshot_shows_the_cards(chain_page: tuple[Path, object], tmp_path: Path) -> None:
    page, _ = chain_page
    png = browser.screenshot(page, tmp_path / "chain.png", width=1000, height=700)
    width, height, rows = browser.png_pixels(png)
    assert (width, height) == (1000, 700)
    colours = {row[i : i + 3] for row in rows[::7] for i in range(0, len(row), 4 * 9)}
    assert len(colours) > 20  # text, badges and borders, not a blank page
    reds = [c for c in colours if c[0] > 180 and c[1] < 80 and c[2] < 80]
    assert reds, "no failure red on the page"


def test_the_readme_shows_a_committed_screenshot() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    (path,) = re.findall(r"!\[[^\]]*\]\((docs/img/[^)]+\.png)\)", readme)
    width, height, _ = browser.png_pixels(REPO / path)
    assert width >= 800
    assert height >= 400


def test_trace_refuses_an_unknown_format(world: World) -> None:
    result = world.cli("trace", "5034460f-c7c4-4c43-9457-de07e2029e7b", "--format", "svg")
    assert result.code == 2
    assert "text, mermaid or html" in result.err


def test_the_hold_names_the_login_of_who_released_it_asking_once() -> None:
    import respx

    from circleback.client import CircleCIClient
    from circleback.relay.trace import TraceNode
    from circleback.view.chain import build_chain

    pid, wid, user = (
        "5034460f-c7c4-4c43-9457-de07e2029e7b",
        "b3e4bb2f-4a6b-4f8e-9d5c-3f2a1c0d9e8f",
        "37e86260-2c52-5056-9f33-0e7d921ffbe8",
    )
    hold = {
        "id": "0c7d9c3e-7a4a-4e0e-8f44-5c1f2d6b1a90",
        "name": "wait-for-triggered-pipeline",
        "type": "approval",
        "status": "success",
        "started_at": "2026-11-22T10:00:00Z",
        "stopped_at": "2026-11-22T10:02:13Z",
        "dependencies": [],
        "approved_by": user,
    }
    second = {**hold, "id": "1c7d9c3e-7a4a-4e0e-8f44-5c1f2d6b1a90", "name": "second-hold"}
    workflow = {
        "id": wid,
        "name": "main",
        "status": "success",
        "created_at": "2026-11-22T10:00:00Z",
        "stopped_at": "2026-11-22T10:05:00Z",
        "pipeline_id": pid,
        "pipeline_number": 7,
        "project_slug": "gh/acme/a",
    }
    with respx.mock(base_url="https://circleci.com/api/v2") as api:
        api.get(f"/pipeline/{pid}/workflow").respond(
            200, json={"items": [workflow], "next_page_token": None}
        )
        api.get(f"/workflow/{wid}/job").respond(
            200, json={"items": [hold, second], "next_page_token": None}
        )
        who = api.get(f"/user/{user}").respond(
            200, json={"id": user, "login": "jane", "name": "Jane Doe", "avatar_url": None}
        )
        node = TraceNode("gh/acme/a", pid, 7, "created", "https://app.circleci.com/x")
        with CircleCIClient(token="CCIPAT_view-t0ken") as client:
            view = build_chain(client, node)
    assert who.call_count == 1
    held = view.workflows[0].holds
    assert [h.approver for h in held] == ["jane", "jane"]
    text = render_html(view)
    assert "released at 10:02:13 UTC by jane, held 2m 13s" in text


def test_without_a_login_the_hold_names_the_user_id(chain_page: tuple[Path, object]) -> None:
    page, _ = chain_page
    (released,) = _elements(page.read_text()).having("data-approved-by")
    assert f"by user {released['data-approved-by'][:8]}" in page.read_text()


def test_a_pipeline_the_token_cannot_read_does_not_hide_the_rest() -> None:
    import respx

    from circleback.client import CircleCIClient
    from circleback.relay.trace import TraceNode
    from circleback.view.chain import build_chain

    a, b, c = (
        "11111111-1111-4111-8111-111111111111",
        "22222222-2222-4222-8222-222222222222",
        "33333333-3333-4333-8333-333333333333",
    )
    with respx.mock(base_url="https://circleci.com/api/v2") as api:
        api.get(f"/pipeline/{a}/workflow").respond(200, json={"items": [], "next_page_token": None})
        api.get(f"/pipeline/{b}/workflow").respond(404, json={"message": "Pipeline not found"})
        api.get(f"/pipeline/{c}/workflow").respond(200, json={"items": [], "next_page_token": None})
        tree = TraceNode(
            "gh/acme/a",
            a,
            1,
            "created",
            "https://app.circleci.com/a",
            children=(
                TraceNode("gh/acme/b", b, 2, "created", "https://app.circleci.com/b"),
                TraceNode("gh/acme/c", c, 3, "created", "https://app.circleci.com/c"),
            ),
        )
        with CircleCIClient(token="CCIPAT_view-t0ken") as client:
            view = build_chain(client, tree)
    unreadable, readable = view.children
    assert unreadable.status == "unknown"
    assert "cannot read it with this token" in unreadable.errors[0]
    assert readable.errors == ()
    assert unreadable.errors[0] in render_html(view), unreadable.errors


def test_the_summary_counts_what_succeeded_failed_and_is_still_going() -> None:
    def node(status: str, *kids: PipelineView) -> PipelineView:
        wf = WorkflowView("w", "w", status, "https://x", 1.0)
        return PipelineView("gh/acme/x", status, 1, "created", "https://x", (wf,), kids)

    text = render_html(node("running", node("success"), node("failed"), node("success")))
    assert "4 pipelines: 2 succeeded, 1 failed, 1 still going or unknown" in text
    assert 'data-failed="1"' in text
    assert "1 pipeline: 1 succeeded" in render_html(node("success"))
