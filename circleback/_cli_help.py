"""What a newcomer meets first: ``--help``, usage errors, and where global options go.

Kept apart from the commands in ``_cli`` so the commands stay about what they do. The
help of every command names the variables it reads and its exit codes, and shows values
as words (``PATTERN``, ``DURATION``), never as Python types (``<list[str]>``). Usage
errors become circleback's own error line (a JSON line under CI), and the global options
(``-v``, ``--log-format``) work after the command too, as people type them.
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Sequence
from typing import Any

#: CI values that mean "not CI" (CI=false is what some tools export outside CI).
_NOT_CI = frozenset({"", "0", "false", "no", "off"})

#: What each option's value is, as a word for the help text.
METAVARS = {
    "--allow-project": "PATTERN",
    "--branch": "BRANCH",
    "--budget": "SECONDS",
    "--callback-parameter": "NAME",
    "--definition-id": "UUID",
    "--downstream": "SLUG",
    "--format": "FORMAT",
    "--from": "SLUG",
    "--grace": "DURATION",
    "--host": "ADDRESS",
    "--job-name": "NAME",
    "--junit": "PATH",
    "--log-format": "console|json",
    "--max-depth": "N",
    "--max-pipelines": "N",
    "--output": "FILE",
    "--page-size": "N",
    "--parameter": "KEY=VALUE",
    "--pipeline-id": "ID",
    "--downstream-pipeline-id": "ID",
    "--port": "PORT",
    "--project": "SLUG=CONFIG",
    "--start": "SLUG",
    "--state-file": "PATH",
    "--tag": "TAG",
    "--timeout": "DURATION",
    "--token": "TOKEN",
    "--upstream": "SLUG",
    "--upstream-pipeline-id": "ID",
    "--workflow-name": "NAME",
}

_CREDENTIALS = (
    "CIRCLEBACK_TOKEN, else CIRCLE_TOKEN, else CIRCLECI_API_KEY: a CircleCI personal API token"
)
_HOST = "CIRCLEBACK_HOST: CircleCI's address (default https://circleci.com)"
_LOG = "CI: set (and not false/0) means JSON log lines; CIRCLEBACK_LOG_FORMAT overrides it"
_ALLOW = (
    "CIRCLEBACK_ALLOW_PROJECTS: allow-list patterns when --allow-project is not given, "
    "separated by commas or spaces (gh/acme/a,gh/acme/b)"
)
_API_CODES = ("2 bad input or configuration (nothing was sent)", "3 API or network error")

#: Per command: the variables it reads, and what its exit codes mean.
COMMANDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "trigger": (
        (_CREDENTIALS, _HOST, "CIRCLE_PIPELINE_ID: the default --upstream-pipeline-id", _LOG),
        (
            "0 created (the new pipeline's id is on stdout)",
            "1 the downstream pipeline errored at creation or ran no workflow",
            "2 bad input, or a refused cycle or depth (nothing was created); or the "
            "downstream config never uses the callback parameter (created, but it will "
            "never release this pipeline)",
            "3 API or network error after retries, or the outcome is unknown (look for the "
            "pipeline before running again)",
        ),
    ),
    "approve": (
        (
            _CREDENTIALS,
            _HOST,
            _ALLOW,
            "CIRCLE_PIPELINE_ID: this pipeline's id (--downstream-pipeline-id); "
            "CIRCLE_JOB: with --fan-in",
            _LOG,
        ),
        (
            "0 approved, already approved, or nothing to do",
            "2 bad input, the upstream project is not allowed, or the evidence says A did not "
            "trigger this pipeline (nothing was approved)",
            "3 API or network error, the hold was not found, or the link to A cannot be proven",
        ),
    ),
    "status": (
        (_CREDENTIALS, _HOST, _LOG),
        (
            "0 every downstream workflow succeeded",
            "1 a downstream pipeline failed",
            *_API_CODES,
            "4 --timeout passed",
        ),
    ),
    "sweep": (
        (_CREDENTIALS, _HOST, _LOG),
        (
            "0 done (or nothing to do)",
            _API_CODES[0],
            "3 API or network error, or a hold could not be judged (see --json)",
        ),
    ),
    "trace": ((_CREDENTIALS, _HOST, _LOG), ("0 printed", *_API_CODES)),
    "doctor": (
        (_CREDENTIALS, _HOST, _ALLOW, _LOG),
        (
            "0 nothing is wrong (warnings may remain)",
            "2 something must be fixed",
            "3 something could not be checked (API or network)",
        ),
    ),
    "serve": (
        (
            _CREDENTIALS,
            _HOST,
            "CIRCLEBACK_WEBHOOK_SECRETS: the webhooks' signing secrets, comma-separated",
            _ALLOW,
            "PORT: the default --port",
            _LOG,
        ),
        ("0 stopped", "2 bad option or configuration (no signing secret, say)"),
    ),
    "emulator": (
        (_LOG,),
        (
            "0 stopped (Ctrl-C)",
            "2 bad option: a missing config, a bad slug, a port in use or out of range",
        ),
    ),
    "demo": ((_LOG,), ("0 the demo showed what it promises", "1 it did not", "3 or 4 it stalled")),
    "pack": ((_LOG,), ("0 packed", "2 the orb's source is broken")),
    # circleback webhook install|list|remove
    "install": (
        (_CREDENTIALS, _HOST, "CIRCLEBACK_WEBHOOK_SECRETS: the signing secret (the first)", _LOG),
        ("0 installed, or already installed (its secret set)", *_API_CODES),
    ),
    "list": ((_CREDENTIALS, _HOST, _LOG), ("0 listed", *_API_CODES)),
    "remove": ((_CREDENTIALS, _HOST, _LOG), ("0 removed, or none to remove", *_API_CODES)),
}


def _item(text: str) -> str:
    """One epilog entry, wrapped to 76 columns, continuation lines indented."""
    return textwrap.fill(text, 76, initial_indent="  ", subsequent_indent="      ")


MAIN_EPILOG = "\n".join(
    [
        "\b",
        "Environment:",
        _item(_CREDENTIALS),
        _item(f"{_HOST}; plain http:// only for loopback"),
        _item(_LOG),
        "\b",
        "Exit codes (every command):",
        "  0 success, or nothing to do",
        "  1 the downstream pipeline finished unsuccessfully",
        "  2 bad input or configuration",
        "  3 CircleCI API or network error after retries, or cannot tell",
        "  4 timed out",
        "\b",
        "stdout carries data (ids, --json documents); messages go to stderr.",
        "Run 'circleback COMMAND --help' for a command's options.",
    ]
)

GLOBAL_FLAGS = frozenset({"-v", "--verbose"})
GLOBAL_VALUED = frozenset({"--log-format"})


def is_ci() -> bool:
    """True when ``CI`` is set to something other than an explicit no (``false``, ``0``)."""
    return os.environ.get("CI", "").strip().lower() not in _NOT_CI


#: For a command not in ``COMMANDS`` (yet): what every API command reads, every exit code.
_DEFAULT = (
    (_CREDENTIALS, _HOST, _LOG),
    (
        "0 success, or nothing to do",
        "1 the downstream pipeline finished unsuccessfully",
        *_API_CODES,
        "4 timed out",
    ),
)


def epilog(name: str) -> str:
    """The help epilog of a command: the variables it reads and its exit codes."""
    variables, codes = COMMANDS.get(name, _DEFAULT)
    return "\n".join(
        ["\b", "Environment:", *(_item(v) for v in variables), "\b", "Exit codes:"]
        + [_item(c) for c in codes]
    )


def polish(command: Any) -> Any:
    """Give every command its epilog and every option a word for its value, in place.

    ``command`` is the click group typer built; flags lose their ``--no-…`` twin (none
    is needed: every flag defaults to off) and their "[default: no-…]".
    """
    stack = [command]
    while stack:
        cmd = stack.pop()
        stack.extend(getattr(cmd, "commands", {}).values())
        if cmd is command:
            cmd.epilog = MAIN_EPILOG
        elif not hasattr(cmd, "commands"):  # a command, not a group of them
            cmd.epilog = epilog(cmd.name)
        for param in cmd.params:
            _polish_param(param)
    return command


def _polish_param(param: Any) -> None:
    if param.param_type_name == "argument":
        param.metavar = (param.name or "").upper()
        param.display_type_rich = _no_type
        return
    if getattr(param, "is_flag", False) or getattr(param, "count", False):
        param.secondary_opts = []
        param.show_default = False
        return
    long = next((o for o in param.opts if o.startswith("--")), "")
    if param.metavar is None:
        param.metavar = METAVARS.get(long, "VALUE")


def _no_type(ctx: Any) -> None:
    """An argument's help shows its name (PROJECT_SLUG), never a Python type."""
    return None


def hoist_global_options(command: Any, args: Sequence[str]) -> list[str]:
    """Move ``-v``/``--log-format X`` typed after the command to before it.

    ``circleback approve -v …`` then means what ``circleback -v approve …`` does. A value
    of one of the command's own options is never taken for a global option.
    """
    items = list(args)
    i = 0
    while i < len(items) and items[i].startswith("-"):
        i += 2 if items[i] in GLOBAL_VALUED else 1
    lead, path, cmd = items[:i], [], command
    while i < len(items) and hasattr(cmd, "commands") and items[i] in cmd.commands:
        cmd = cmd.commands[items[i]]
        path.append(items[i])
        i += 1
    if not path:
        return items
    valued = {
        opt
        for p in getattr(cmd, "params", [])
        if p.param_type_name == "option" and not p.is_flag and not p.count
        for opt in p.opts
    }
    moved: list[str] = []
    kept: list[str] = []
    rest = items[i:]
    j = 0
    while j < len(rest):
        word = rest[j]
        if word == "--":
            kept.extend(rest[j:])
            break
        if word in GLOBAL_FLAGS:
            moved.append(word)
        elif word in GLOBAL_VALUED and j + 1 < len(rest):
            moved.extend(rest[j : j + 2])
            j += 1
        elif word.startswith("--log-format="):
            moved.append(word)
        elif word in valued and j + 1 < len(rest):
            kept.extend(rest[j : j + 2])
            j += 1
        else:
            kept.append(word)
        j += 1
    return [*lead, *moved, *path, *kept]
