"""The downstream record: what A remembers about each pipeline it triggered.

A records each downstream pipeline in a small JSON state file that its trigger job
persists to the workspace and its check job reads back. Several triggers into one file
accumulate, one entry per downstream *pipeline* (two triggers into the same project are
two entries): that is how fan-out is recorded. Writers take an exclusive lock on the
file's directory around read-modify-write, so concurrent triggers never lose a record.

Format (version 1)::

    {"version": 1, "downstream": [{"project_slug": "gh/acme/b", "pipeline_id": "…",
      "number": 12, "state": "created", "url": "https://app.circleci.com/pipelines/gh/acme/b/12"}]}
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from circleback._files import write_text_atomically
from circleback._hosts import DEFAULT_HOST
from circleback.errors import ConfigurationError
from circleback.validation import parse_project_slug, parse_uuid

STATE_VERSION = 1
#: The pipeline parameter B declares to receive A's id (the tutorial's name).
DEFAULT_CALLBACK_PARAMETER = "triggering-pipeline-id"
CLOUD_APP = "https://app.circleci.com"


@dataclass(frozen=True)
class Downstream:
    """One pipeline that A triggered."""

    project_slug: str
    """The downstream project, e.g. ``gh/acme/b``."""
    pipeline_id: str
    """The downstream pipeline's UUID."""
    number: int
    """Its number within its project."""
    state: str
    """Its pipeline state when last seen (``created``, ``errored``, …)."""
    url: str
    """Where a person can look at it."""

    def to_json(self) -> dict[str, Any]:
        """The record as a JSON object (the state file's entry and ``--json`` output)."""
        return asdict(self)


def app_url(host: str) -> str:
    """The web app's address for a host: CircleCI cloud's app, or the Server host itself."""
    text = host.strip().rstrip("/")
    if text.endswith("/api/v2"):
        text = text[: -len("/api/v2")]
    if urlsplit(text).hostname in {urlsplit(DEFAULT_HOST).hostname, "app.circleci.com"}:
        return CLOUD_APP
    return text


def pipeline_url(app: str, project_slug: str, number: int) -> str:
    """The web URL of a pipeline."""
    return f"{app}/pipelines/{project_slug}/{number}"


def workflow_url(app: str, project_slug: str, number: int, workflow_id: str) -> str:
    """The web URL of a workflow."""
    return f"{pipeline_url(app, project_slug, number)}/workflows/{workflow_id}"


def job_url(
    app: str, project_slug: str, number: int, workflow_id: str, job_number: int | None
) -> str:
    """The web URL of a job; the workflow's when the job has no number yet."""
    base = workflow_url(app, project_slug, number, workflow_id)
    return f"{base}/jobs/{job_number}" if job_number is not None else base


def read_state(path: Path) -> list[Downstream]:
    """Read the downstream records from a state file, explaining what is wrong if anything."""
    hint = "Point --state-file at the file 'circleback trigger --state-file' wrote."
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigurationError(f"State file {str(path)!r} does not exist.", hint=hint) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(
            f"State file {str(path)!r} cannot be read ({type(exc).__name__}).", hint=hint
        ) from None
    return parse_state(text, source=repr(str(path)), hint=hint)


def parse_state(text: str, *, source: str, hint: str) -> list[Downstream]:
    """Parse a state file's text; ``source`` names it in messages (a path, an artifact)."""
    try:
        data = json.loads(text)
    except ValueError:
        raise ConfigurationError(f"State file {source} is not JSON.", hint=hint) from None
    if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
        raise ConfigurationError(
            f"State file {source} is not a version {STATE_VERSION} circleback state file.",
            hint=hint,
        )
    entries = data.get("downstream")
    if not isinstance(entries, list):
        raise ConfigurationError(f"State file {source} has no downstream list.", hint=hint)
    return [_entry(item, source, hint) for item in entries]


def _entry(item: Any, source: str, hint: str) -> Downstream:
    try:
        if not isinstance(item, dict):
            raise TypeError
        number = item["number"]
        if not isinstance(number, int) or isinstance(number, bool):
            raise TypeError
        return Downstream(
            project_slug=str(parse_project_slug(str(item["project_slug"]))),
            pipeline_id=parse_uuid(str(item["pipeline_id"]), what="pipeline id"),
            number=number,
            state=str(item.get("state", "")),
            url=str(item.get("url", "")),
        )
    except (KeyError, TypeError):
        raise ConfigurationError(
            f"State file {source} has a malformed downstream entry.", hint=hint
        ) from None
    except ConfigurationError as exc:
        raise ConfigurationError(
            f"State file {source} has a bad downstream entry: {exc.message}", hint=hint
        ) from None


def record_downstream(path: Path, record: Downstream) -> None:
    """Add ``record`` to the state file, replacing an earlier entry for the same pipeline.

    Read, changed and written under an exclusive lock on the file's directory, and
    written atomically, so neither a concurrent writer nor a crash loses a record.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with _locked(path.parent):
        existing = read_state(path) if path.exists() else []
        kept = [d for d in existing if d.pipeline_id.lower() != record.pipeline_id.lower()]
        document = {
            "version": STATE_VERSION,
            "downstream": [d.to_json() for d in [*kept, record]],
        }
        write_text_atomically(path, json.dumps(document, indent=2) + "\n")


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """An exclusive advisory lock on a directory (``flock``), for the read-modify-write."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no flock; atomic writes still hold
        yield
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def check_writable(path: Path, *, what: str) -> None:
    """Raise ``ConfigurationError`` (exit 2) unless a file can be written at ``path``.

    Checked by creating (and removing) a file beside it, since permission bits say
    nothing for root and nothing about a read-only file system. Missing directories are
    created, as writing the file would.
    """
    hint = f"Point {what} at a file in a writable directory."
    if path.is_dir():
        raise ConfigurationError(f"{what} {str(path)!r} is a directory.", hint=hint)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".circleback-probe-", dir=path.parent)
        os.close(fd)
        os.unlink(probe)
        if path.exists():
            with path.open("a", encoding="utf-8"):
                pass
    except OSError as exc:
        raise ConfigurationError(
            f"{what} {str(path)!r} cannot be written ({exc.strerror or type(exc).__name__}). "
            "Nothing was done.",
            hint=hint,
        ) from None
