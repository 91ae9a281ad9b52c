"""``circleback emulator`` from a terminal: checked options, a usable banner, root pipelines.

The server itself is ``circleback.emulator.server``; this is what stands between it and a
person typing the command. Before anything binds: every ``--project`` names a valid slug
and a config file that exists, the port is a port, and a bind beyond loopback is refused
unless asked for with ``allow_remote`` (then it warns: the control API can finish and
approve anything). After binding: the URL on stdout's first line (for scripts), then on
stderr what to export, how the links resolve and how to move jobs along, and the root
pipelines started with ``start``.
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import os
import socket
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from circleback import errors
from circleback.emulator import Emulator
from circleback.emulator.core import DEFAULT_PAGE_SIZE
from circleback.emulator.server import EmulatorServer, make_server
from circleback.settings import is_loopback
from circleback.validation import parse_project_slug

logger = logging.getLogger("circleback.emulator")


def parse_projects(items: Iterable[str]) -> dict[str, Path]:
    """``SLUG=CONFIG_PATH`` items as a mapping; a bad slug or a missing file is an error."""
    projects: dict[str, Path] = {}
    for item in items:
        slug, sep, path = item.partition("=")
        if not sep or not slug or not path:
            raise errors.ConfigurationError(
                f"--project {item!r} is not SLUG=CONFIG_PATH.",
                hint="Write --project gh/acme/b=path/to/.circleci/config.yml.",
            )
        try:
            parsed = str(parse_project_slug(slug))
        except errors.ConfigurationError as exc:
            raise errors.ConfigurationError(
                f"--project {item!r}: {exc.message}", hint=exc.hint
            ) from None
        config = Path(path).expanduser()
        if not config.is_file():
            what = "is a directory" if config.is_dir() else "does not exist"
            raise errors.ConfigurationError(
                f"--project {item!r}: the config file {str(config)!r} {what}.",
                hint="Point it at the project's .circleci/config.yml.",
            )
        if not os.access(config, os.R_OK):
            raise errors.ConfigurationError(
                f"--project {item!r}: the config file {str(config)!r} cannot be read.",
                hint="Check the file's permissions.",
            )
        if parsed in projects:
            raise errors.ConfigurationError(
                f"--project {parsed} is given twice.", hint="Give each project once."
            )
        projects[parsed] = config
    return projects


def check_bind(host: str, port: int, *, allow_remote: bool) -> None:
    """Refuse a port out of range, and a non-loopback address without ``allow_remote``."""
    if not 0 <= port <= 65535:
        raise errors.ConfigurationError(
            f"--port {port} is not a TCP port.", hint="Pass 1 to 65535, or 0 for a free port."
        )
    if is_loopback(host.strip("[]")):
        return
    if not allow_remote:
        raise errors.ConfigurationError(
            f"--host {host} is not a loopback address: anyone who can reach this machine "
            "could use the emulator, whose control API finishes and approves any job.",
            hint="Keep the default 127.0.0.1, or pass --allow-remote if that is what you want.",
        )
    logger.warning(
        f"serving on {host}, beyond this machine: anyone who can reach it can finish and "
        "approve jobs through the control API"
    )


def bind(emulator: Emulator, host: str, port: int, *, allow_remote: bool = False) -> EmulatorServer:
    """Bind the server, turning the socket's refusals into configuration errors."""
    try:
        return make_server(emulator, host, port, allow_remote=allow_remote)
    except OverflowError:
        raise errors.ConfigurationError(
            f"--port {port} is not a TCP port.", hint="Pass 1 to 65535, or 0 for a free port."
        ) from None
    except socket.gaierror:
        raise errors.ConfigurationError(
            f"--host {host!r} is not an address of this machine.",
            hint="Use 127.0.0.1 (the default).",
        ) from None
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            message = f"Port {port} on {host} is already in use."
            hint = "Stop what uses it, pick another --port, or pass --port 0 for a free one."
        elif exc.errno == errno.EACCES:
            message = f"Not allowed to listen on port {port} (ports below 1024 need privileges)."
            hint = "Pick a --port above 1023, or --port 0 for a free one."
        elif exc.errno == errno.EADDRNOTAVAIL:
            message = f"--host {host} is not an address of this machine."
            hint = "Use 127.0.0.1 (the default)."
        else:
            message = f"Cannot listen on {host}:{port}: {exc.strerror or exc}."
            hint = "Pick another --host or --port."
        raise errors.ConfigurationError(message, hint=hint) from None


def local_url(server: EmulatorServer, host: str) -> str:
    """The URL this machine's circleback can use: a wildcard bind is reached on loopback."""
    try:
        wildcard = ipaddress.ip_address(host.strip("[]")).is_unspecified
    except ValueError:
        wildcard = False
    if not wildcard:
        return server.url
    port = server.url.rsplit(":", 1)[1]
    return f"http://[::1]:{port}" if ":" in host else f"http://127.0.0.1:{port}"


def banner(url: str, *, projects: Sequence[str], tokens: Sequence[str]) -> list[str]:
    """What a person needs next, as lines for stderr (never a token's value)."""
    token = (
        "export CIRCLEBACK_TOKEN=<one of the --token values>"
        if tokens
        else "export CIRCLEBACK_TOKEN=circleback-emulator-token   # no --token: any is accepted"
    )
    example = projects[0] if projects else "gh/acme/a"
    return [
        f"projects: {', '.join(projects) or 'none (add one with POST /_emulator/projects)'}",
        f"export CIRCLEBACK_HOST={url}",
        token,
        f"pipelines, workflows and jobs: {url}/ (the links circleback prints open there)",
        f"jobs stay running until finished: curl -X POST {url}/_emulator/jobs/finish "
        '-H "Content-Type: application/json" -H "Circle-Token: $CIRCLEBACK_TOKEN" '
        f"""-d '{{"project_slug": "{example}", "job_name": "build", "status": "success"}}'""",
        "Ctrl-C stops it.",
    ]


def start_pipelines(
    emulator: Emulator, url: str, slugs: Iterable[str], projects: Mapping[str, Path]
) -> list[str]:
    """Trigger one pipeline of each project in ``slugs``; returns a line about each."""
    import httpx

    lines: list[str] = []
    token = next(iter(emulator.tokens), "circleback-emulator")
    with httpx.Client(
        transport=emulator.transport(), base_url=f"{url}/api/v2", headers={"Circle-Token": token}
    ) as client:
        for slug in slugs:
            response = client.post(f"/project/{slug}/pipeline", json={})
            if response.status_code != 201:
                raise errors.ConfigurationError(
                    f"--start {slug}: the emulator answered {response.status_code} "
                    f"{response.text[:200]}",
                    hint="Check the project's config.",
                )
            created = response.json()
            lines.append(
                f"started {slug} #{created['number']} (pipeline {created['id']}): "
                f"{url}/pipelines/{slug}/{created['number']}"
            )
    return lines


def check_start(slugs: Iterable[str], projects: Mapping[str, Path]) -> list[str]:
    """The ``--start`` slugs, each one of the ``--project`` slugs."""
    checked: list[str] = []
    for slug in slugs:
        parsed = str(parse_project_slug(slug))
        if parsed not in projects:
            raise errors.ConfigurationError(
                f"--start {slug}: not one of the projects given with --project.",
                hint=f"Add --project {parsed}=path/to/config.yml, or start one of: "
                f"{', '.join(projects) or 'none given'}.",
            )
        checked.append(parsed)
    return checked


def check_tokens(tokens: Iterable[str]) -> None:
    """Refuse ``--token`` values the CLI itself would refuse as ``CIRCLEBACK_TOKEN``.

    The banner tells people to export one of them; a value under ``MIN_TOKEN_LENGTH`` (or
    holding whitespace) would then make every circleback command exit 2. The value is
    never quoted.
    """
    from circleback._redact import MIN_TOKEN_LENGTH

    for position, token in enumerate(tokens, start=1):
        if len(token) < MIN_TOKEN_LENGTH or token != token.strip() or " " in token:
            raise errors.ConfigurationError(
                f"--token number {position} is not a value circleback accepts as a token "
                f"({len(token)} characters; it needs {MIN_TOKEN_LENGTH} or more, no spaces).",
                hint="Pass a longer value, e.g. --token local-emulator-token.",
            )


def run(
    *,
    host: str,
    port: int,
    project_items: Iterable[str],
    tokens: Sequence[str],
    page_size: int = DEFAULT_PAGE_SIZE,
    start: Sequence[str] = (),
    allow_remote: bool = False,
    switches: Mapping[str, Any] | None = None,
    out: Callable[[str], None] | None = None,
) -> None:
    """Check everything, bind, announce, start root pipelines, serve until Ctrl-C.

    ``switches`` pick the emulator's behaviour variants (``circleback.emulator.switches``);
    ``POST /_emulator/projects`` may then only point at configs beside those given here.
    """
    projects = parse_projects(project_items)
    roots = check_start(start, projects)
    check_tokens(tokens)
    if page_size < 1:
        raise errors.ConfigurationError(
            "--page-size must be at least 1.", hint="Pass --page-size 20 (CircleCI's)."
        )
    check_bind(host, port, allow_remote=allow_remote)
    emulator = Emulator(projects=projects, tokens=tokens, page_size=page_size, switches=switches)
    emulator.config_roots = tuple({path.resolve().parent for path in projects.values()})
    server = bind(emulator, host, port, allow_remote=allow_remote)
    try:
        url = local_url(server, host)
        (out or _print_url)(url)
        for line in banner(url, projects=list(projects), tokens=tokens):
            logger.info(line)
        for line in start_pipelines(emulator, url, roots, projects):
            logger.info(line)
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()


def _print_url(url: str) -> None:
    """The URL alone on stdout's first line, flushed: scripts read it before anything else."""
    print(url, flush=True)
