"""The hostile-server matrix, command by attack, through the CLI against the emulator.

A transport in front of the emulator replaces the answer to one request of each command
(``hostile.TARGETS``) with a hostile body, generated lazily and metered, so every cell can
check not only the exit code but that the work stayed bounded: bytes read per attempt
under the cap, pages under the list cap, no answer called a circleback bug, no traceback,
no second pipeline, no hold released on a list circleback could not read.
"""

from __future__ import annotations

import json
import re
import uuid
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import httpx
import pytest

from circleback import _cli
from circleback._read import DEFAULT_LIMITS
from tests.relay.world import TOKEN, B, Result, World
from tests.reliability import hostile
from tests.reliability.hostile import CELLS, Attack, Expect

HOLD = "wait-for-triggered-pipeline"
CALLBACK = "triggering-pipeline-id"
FORGED = "all downstream pipelines succeeded"
CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f]")
#: Bytes one attempt may read past the cap: the chunk that crossed it.
SLACK = 1 << 20


class Metered(httpx.SyncByteStream):
    """A body produced chunk by chunk, counting what the client actually pulled."""

    def __init__(self, chunks: Iterator[bytes], meter: Hostile) -> None:
        self._chunks = chunks
        self._meter = meter

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._chunks:
            if chunk:
                self._meter.served += len(chunk)
                yield chunk

    def close(self) -> None:
        close = getattr(self._chunks, "close", None)
        if close is not None:
            close()


def gzip_bomb(size: int) -> Iterator[bytes]:
    """A valid list page padded with ``size`` spaces, gzipped as it is read."""
    z = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    yield z.compress(b'{"items": [], "next_page_token": null, "pad": "')
    block = b" " * (1 << 20)
    for _ in range(size >> 20):
        yield z.compress(block)
    yield z.compress(b'"}') + z.flush()


def huge(size: int) -> Iterator[bytes]:
    """The same page padded with ``size`` spaces, plain."""
    yield b'{"items": [], "next_page_token": null, "pad": "'
    block = b" " * (64 << 10)
    for _ in range(size // len(block)):
        yield block
    yield b'"}'


class Hostile(httpx.BaseTransport):
    """The emulator, except that one request's answers are replaced by an attack."""

    def __init__(self, inner: httpx.BaseTransport, world: World, attack: Attack, command: str):
        self.inner = inner
        self.world = world
        self.attack = attack
        targets = hostile.LIST_TARGETS if attack.kind in hostile.PAGE_ATTACKS else hostile.TARGETS
        self.method, self.pattern = targets[command]
        self.hits = 0
        self.served = 0
        self.first_items: list[Any] | None = None

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if request.method != self.method or not re.search(self.pattern, path):
            return self.inner.handle_request(request)
        self.hits += 1
        if self.attack.kind in hostile.PAGE_ATTACKS:
            return self._page(request)
        real = self.inner.handle_request(request)
        body = real.read()
        if not 200 <= real.status_code < 300:
            return real
        return self._attack(real.status_code, body)

    def _page(self, request: httpx.Request) -> httpx.Response:
        if self.first_items is None:
            first = self.inner.handle_request(request)
            self.first_items = list(json.loads(first.read())["items"])
        items = [] if self.attack.kind == "empty_pages" else self.first_items
        page = {"items": items, "next_page_token": uuid.uuid4().hex}
        return self._respond(200, iter([json.dumps(page).encode()]))

    def _attack(self, status: int, body: bytes) -> httpx.Response:
        kind = self.attack.kind
        if kind == "bomb":
            return self._respond(status, gzip_bomb(hostile.BOMB_DECODED), encoding="gzip")
        if kind == "huge":
            return self._respond(status, huge(hostile.HUGE_BODY))
        if kind == "drip":
            return self._respond(status, self._drip(body))
        if kind == "deep":
            return self._respond(status, iter([b"[" * hostile.DEEP + b"]" * hostile.DEEP]))
        if kind == "broken_gzip":
            broken = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03" + b"\xff" * 64
            return self._respond(status, iter([broken]), encoding="gzip")
        if kind == "not_utf8":
            return self._respond(status, iter([body[:-1] + b', "x": "\xff\xfe\xfa"}']))
        if kind == "brotli":
            return self._respond(status, iter([b"\x8b\x02\x80" + body]), encoding="br")
        if kind == "controls":
            return self._respond(status, iter([_forge(body)]))
        raise AssertionError(kind)

    def _drip(self, body: bytes) -> Iterator[bytes]:
        for i in range(len(body)):
            self.world.time.now += hostile.DRIP_SECONDS
            yield body[i : i + 1]

    def _respond(
        self, status: int, chunks: Iterator[bytes], *, encoding: str | None = None
    ) -> httpx.Response:
        headers = {"Content-Type": "application/json"}
        if encoding:
            headers["Content-Encoding"] = encoding
        return httpx.Response(status, headers=headers, stream=Metered(chunks, self))


def _forge(body: bytes) -> bytes:
    """Every workflow renamed to forge a success line, with the controls of the attack."""
    page = json.loads(body)
    for i, wf in enumerate(page["items"]):
        wf["name"] = f"w{i}\x00\x1b[2K\r{FORGED}\n{FORGED}\x07"
    return json.dumps(page).encode()


@pytest.fixture
def attacked(
    world: World, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> tuple[World, Hostile, Attack, str]:
    attack, command = request.param
    transport = Hostile(world.emu.transport(), world, attack, command)
    runtime = _cli.Runtime(transport=transport, sleep=world.time.sleep, clock=world.time.clock)
    monkeypatch.setattr(_cli, "RUNTIME", runtime)
    return world, transport, attack, command


def assert_bounded(world: World, result: Result, transport: Hostile, expect: Expect) -> None:
    assert result.code == expect.code, result.err
    assert "Traceback" not in result.err
    assert "circleback bug" not in result.err
    assert TOKEN not in result.out + result.err
    assert transport.hits, "the attack never fired"
    if expect.code not in (0, 1):
        assert "circleback: error: " in result.err
        assert "hint: " in result.err
    per_try = DEFAULT_LIMITS.json_bytes + SLACK
    assert transport.served <= transport.hits * per_try, (transport.served, transport.hits)
    if transport.attack.kind in hostile.PAGE_ATTACKS:
        assert transport.hits <= DEFAULT_LIMITS.jobs.pages + 1
    if transport.attack.kind == "drip":  # each try cut off at its deadline, in fake seconds
        per_drip = DEFAULT_LIMITS.request_seconds / hostile.DRIP_SECONDS + 1
        assert transport.served <= transport.hits * per_drip, (transport.served, transport.hits)


def pipelines_carrying(world: World, upstream: str) -> list[dict[str, Any]]:
    return [
        p
        for p in world.emu.state_dump()["pipelines"]
        if p["project_slug"] == B and p["sent_parameters"].get(CALLBACK) == upstream
    ]


def check_trigger(world: World, transport: Hostile, expect: Expect, tmp_path: Path) -> None:
    a = world.upstream_on_hold()
    if transport.attack.kind in hostile.PAGE_ATTACKS:  # the list is read only to reconcile
        world.emu.add_fault("lost_response", method="POST", path=hostile.TARGETS["trigger"][1])
    state = tmp_path / "downstream.json"
    world.emu.clear_request_log()
    result = world.cli("trigger", B, "--upstream-pipeline-id", a, "--state-file", str(state))
    assert_bounded(world, result, transport, expect)
    ours = pipelines_carrying(world, a)
    assert len(ours) <= 1, "a second downstream pipeline was created"
    posts = [r for r in world.requests() if r["method"] == "POST"]
    assert expect.posts is None or len(posts) == expect.posts, posts
    if expect.code == 0:
        assert result.out.strip() == ours[0]["id"]
        recorded = json.loads(state.read_text())["downstream"]
        assert [d["pipeline_id"] for d in recorded] == [ours[0]["id"]]
    else:
        assert not state.exists()


def check_approve(world: World, transport: Hostile, expect: Expect, tmp_path: Path) -> None:
    a = world.upstream_on_hold()
    b = world.downstream(a)
    result = world.cli(
        "approve", "--pipeline-id", a, "--json", "--allow-project", "gh/acme/*",
        "--downstream-pipeline-id", b,
    )  # fmt: skip
    assert_bounded(world, result, transport, expect)
    hold = world.job_status(a, HOLD)
    assert hold == ("success" if expect.code == 0 else "on_hold")
    if expect.code != 0:
        # --json: one document all the same, saying why nothing was released
        document = result.json()
        assert document["outcome"] == "error"
        assert document["error"]


def check_status(world: World, transport: Hostile, expect: Expect, tmp_path: Path) -> None:
    a = world.upstream_on_hold()
    bad = world.trigger(B, **{CALLBACK: a})
    world.finish(B, "build-and-test-3.12", "failed", pipeline_id=bad)
    world.finish_all(bad, "success")
    junit = tmp_path / "junit.xml"
    timeout = transport.attack.status_timeout
    started = world.time.now
    result = world.cli("status", "--pipeline-id", bad, "--timeout", timeout, "--junit", str(junit))
    assert_bounded(world, result, transport, expect)
    assert result.code != 0, "status passed a failed downstream pipeline"
    if expect.code == 4:  # the timeout held inside the request (fake seconds, no waiting)
        assert world.time.now - started <= _cli.parse_duration(timeout) + hostile.DRIP_SECONDS
    for line in (result.out + result.err).splitlines():
        assert line.strip() != FORGED, "a workflow name forged a line"
    assert not CONTROL.search(result.out + result.err)
    if junit.exists():
        text = junit.read_text(encoding="utf-8")
        assert not CONTROL.search(text)
        root = ET.fromstring(text.encode())
        assert root.find(".//failure") is not None


CHECKS = {"trigger": check_trigger, "approve": check_approve, "status": check_status}


@pytest.mark.parametrize("attacked", CELLS, ids=[f"{c}-{a.id}" for a, c in CELLS], indirect=True)
def test_hostile_matrix(attacked: tuple[World, Hostile, Attack, str], tmp_path: Path) -> None:
    world, transport, attack, command = attacked
    CHECKS[command](world, transport, attack.expect[command], tmp_path)


def test_the_documented_table_is_generated_from_these_attacks() -> None:
    document = hostile.DOC.read_text(encoding="utf-8")
    assert hostile.replace_table(document) == document, (
        "docs/reliability.md is stale: run .venv/bin/python -m tests.reliability.hostile"
    )


def test_every_attack_of_the_issue_is_a_row() -> None:
    kinds = {a.kind for a in hostile.ATTACKS}
    assert {"bomb", "huge", "pages", "empty_pages", "drip", "deep", "broken_gzip"} <= kinds
    assert {"not_utf8", "controls"} <= kinds


def test_every_cap_is_explained_in_the_doc() -> None:
    from dataclasses import fields

    assert {f.name for f in fields(DEFAULT_LIMITS)} == set(hostile.WHY)


def test_the_figures_at_the_top_of_the_doc_count_these_cells() -> None:
    document = hostile.DOC.read_text(encoding="utf-8")
    counted = f"{len(hostile.ATTACKS)} x {len(hostile.COMMANDS)} = **{len(CELLS)} cells**"
    assert f"| Hostile-server attacks x commands | {counted}" in document
