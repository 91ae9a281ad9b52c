"""Chromium from the OS packages, driven headless: screenshots and the DOM after layout.

No driver library: ``--dump-dom`` prints the DOM once the page (and the test's own probe
script, never the page's) has run, and ``--screenshot`` writes a PNG. Each run gets a
fresh profile and no network beyond the file it opens.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import tempfile
import zlib
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)

needs_chromium = pytest.mark.skipif(
    CHROMIUM is None,
    reason="chromium is not installed (apt-get install chromium; .ci/run installs it)",
)


def _run(page: Path, *extra: str) -> str:
    assert CHROMIUM is not None
    with tempfile.TemporaryDirectory(prefix="circleback-chromium-") as profile:
        done = subprocess.run(
            [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *extra, page.resolve().as_uri()],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def dump_dom(page: Path, *, width: int = 1280, height: int = 900) -> str:
    """The serialized DOM after scripts ran, at this window size."""
    return _run(page, f"--window-size={width},{height}", "--dump-dom")


def screenshot(page: Path, png: Path, *, width: int = 1280, height: int = 900) -> Path:
    """A PNG of the page's first ``width`` x ``height`` pixels."""
    _run(page, f"--window-size={width},{height}", f"--screenshot={png.resolve()}")
    assert png.exists(), "chromium wrote no screenshot"
    return png


def png_pixels(png: Path) -> tuple[int, int, list[bytes]]:
    """Width, height and the rows of an 8-bit RGB(A) non-interlaced PNG, unfiltered."""
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, b"", b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    if depth != 8 or colour not in (2, 6) or interlace:
        raise AssertionError(f"unsupported PNG: depth {depth}, colour {colour}, {interlace=}")
    channels = 4 if colour == 6 else 3
    raw = zlib.decompress(idat)
    stride = width * channels
    rows: list[bytes] = []
    previous = bytearray(stride)
    for y in range(height):
        kind = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for x in range(stride):
            left = line[x - channels] if x >= channels else 0
            up = previous[x]
            corner = previous[x - channels] if x >= channels else 0
            if kind == 1:
                line[x] = (line[x] + left) & 0xFF
            elif kind == 2:
                line[x] = (line[x] + up) & 0xFF
            elif kind == 3:
                line[x] = (line[x] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                pred = left if pa <= pb and pa <= pc else up if pb <= pc else corner
                line[x] = (line[x] + pred) & 0xFF
        rows.append(bytes(line))
        previous = line
    return width, height, rows
