"""Small file helpers shared by the relay and the CLI."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from circleback._redact import redact


def write_text_atomically(path: Path, text: str) -> None:
    """Write via a temporary file and rename, so a reader or a crash never sees half a file.

    The text is redacted first: a JUnit report or a state file is shown in CircleCI's UI,
    and API data in it could echo the token.
    """
    text = redact(text)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".circleback-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
