"""The checks doctor runs, each appending findings; all requests are GETs."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from circleback import errors
from circleback.client import CircleCIClient
from circleback.doctor import configs
from circleback.doctor.findings import Finding, Level, unknown
from circleback.models import Pipeline
from circleback.relay.approve import parse_allow_patterns, project_allowed
from circleback.settings import (
    DEFAULT_HOST,
    HOST_VARIABLE,
    TOKEN_VARIABLES,
    Settings,
    api_base_url,
    is_loopback,
)
from circleback.validation import ProjectSlug, parse_project_slug, segment

TOKENS_PAGE = "https://app.circleci.com/settings/user/tokens"
#: Ways a config calls back: the orb's job or command, or the CLI itself.
CALLBACK_MARKERS = ("circleback/approve", "approve_upstream", "circleback approve")
TRIGGER_MARKERS = ("circleback/trigger", "trigger_pipeline", "circleback trigger")


# -- host and token ----------------------------------------------------------------------


def check_host(settings: Settings, findings: list[Finding]) -> bool:
    try:
        base = api_base_url(settings.host)
    except errors.ConfigurationError as exc:
        findings.append(Finding("host", HOST_VARIABLE, Level.FAIL, exc.message, exc.hint))
        return False
    host = base.removesuffix("/api/v2")
    if host == DEFAULT_HOST:
        what = "CircleCI cloud"
    elif is_loopback(host.split("//", 1)[1].split(":")[0].strip("[]")):
        what = "a local emulator (plain http is allowed on loopback only)"
    else:
        what = "a CircleCI Server installation"
    findings.append(Finding("host", HOST_VARIABLE, Level.OK, f"API at {base}: {what}."))
    return True


def check_token_present(settings: Settings, findings: list[Finding]) -> bool:
    try:
        settings.require_token()
    except errors.ConfigurationError as exc:
        findings.append(Finding("token", TOKEN_VARIABLES[0], Level.FAIL, exc.message, exc.hint))
        return False
    return True


def check_me(api: CircleCIClient, findings: list[Finding]) -> bool:
    """GET /me: the token is valid, and whose it is; False ends the checks.

    Only 401 ("You must log in first.", as observed) proves the token wrong. What a
    project token or another host gets from /me is not documented, so any other refusal
    is "cannot tell", and the project checks still run: they show what the token can do.
    """
    fix = (
        f"Create a personal API token at {TOKENS_PAGE} and set {TOKEN_VARIABLES[0]} to it; "
        "project API tokens do not work with API v2."
    )
    try:
        _status, me = api._request("GET", "/me")
    except errors.AuthenticationError as exc:
        findings.append(
            Finding("token", "token", Level.FAIL, f"The token was refused: {exc.message}", fix)
        )
        return False
    except (errors.NotFound, errors.PermissionDenied) as exc:
        findings.append(
            Finding(
                "token",
                "token",
                Level.UNKNOWN,
                f"Cannot tell whose token this is: GET /me answered {exc.message!r}. A "
                "project API token, or a host that is not CircleCI's API, answers so.",
                fix,
            )
        )
        return True
    except errors.CirclebackError as exc:
        findings.append(unknown("token", "token", exc))
        return False
    who = me if isinstance(me, dict) else {}
    login, name = who.get("login") or "?", who.get("name") or ""
    owner = f"{login} ({name})" if name and name != login else str(login)
    findings.append(
        Finding(
            "token",
            "token",
            Level.OK,
            f"The token is valid and acts as {owner}: everything circleback does with it "
            "is done, and shown, as that user.",
        )
    )
    return True


# -- projects --------------------------------------------------------------------------


def check_slugs(names: Iterable[str], findings: list[Finding]) -> dict[str, ProjectSlug]:
    parsed: dict[str, ProjectSlug] = {}
    for name in names:
        try:
            parsed[name] = parse_project_slug(name)
        except errors.ConfigurationError as exc:
            findings.append(Finding("access", name, Level.FAIL, exc.message, exc.hint))
    return parsed


class Project:
    """What the access check learned of a project: that it is readable, its newest pipeline."""

    def __init__(self, slug: ProjectSlug, newest: Pipeline | None) -> None:
        self.slug = slug
        self.newest = newest


def check_access(api: CircleCIClient, slug: ProjectSlug, findings: list[Finding]) -> Project | None:
    """GET /project/{slug}/pipeline (first page): readable, and its newest pipeline.

    CircleCI answers 404 "Project not found" both for a wrong slug and for a token that
    cannot see the project (project API tokens included).
    """
    try:
        newest = next(iter(api.list_project_pipelines(str(slug))), None)
    except (errors.NotFound, errors.PermissionDenied) as exc:
        findings.append(
            Finding(
                "access",
                str(slug),
                Level.FAIL,
                f"{slug}: {exc.message} The slug is wrong, or the token's user cannot see it.",
                "Check the slug in the project's settings on CircleCI, and that the token's "
                "user has access to the repository (and has followed the project).",
            )
        )
        return None
    except errors.CirclebackError as exc:
        findings.append(unknown("access", str(slug), exc))
        return None
    findings.append(Finding("access", str(slug), Level.OK, f"{slug}: the token can read it."))
    return Project(slug, newest)


def _latest_config(
    api: CircleCIClient, project: Project, check: str, findings: list[Finding]
) -> tuple[str, str] | None:
    """The source and compiled config of the project's newest pipeline, or a finding."""
    slug, newest = project.slug, project.newest
    if newest is None:
        findings.append(
            Finding(
                check,
                str(slug),
                Level.WARN,
                f"{slug} has no pipeline yet, so its config cannot be read.",
                "Run a pipeline of it once (push a commit), then run doctor again.",
            )
        )
        return None
    try:
        _status, config = api._request("GET", f"/pipeline/{segment(newest.id)}/config")
    except errors.CirclebackError as exc:
        findings.append(unknown(check, str(slug), exc, what="its newest pipeline's config"))
        return None
    data = config if isinstance(config, dict) else {}
    return str(data.get("source") or ""), str(data.get("compiled") or "")


def check_upstream(
    api: CircleCIClient, project: Project, job_name: str, findings: list[Finding]
) -> None:
    slug = project.slug
    config = _latest_config(api, project, "hold", findings)
    if config is None:
        return
    source, compiled = config
    holds = configs.approval_jobs(source) | configs.approval_jobs(compiled)
    if job_name in holds:
        findings.append(
            Finding("hold", str(slug), Level.OK, f"{slug} has the approval job {job_name!r}.")
        )
    else:
        found = ", ".join(sorted(holds)) or "none"
        findings.append(
            Finding(
                "hold",
                str(slug),
                Level.FAIL,
                f"{slug}'s newest config has no approval job named {job_name!r} "
                f"(approval jobs: {found}); B would find nothing to release.",
                f"Add '- {job_name}: {{type: approval, requires: [trigger-…]}}' to A's "
                "workflow, or pass the name B's approve uses as --job-name.",
            )
        )
    if not any(m in source or m in compiled for m in TRIGGER_MARKERS):
        findings.append(
            Finding(
                "trigger",
                str(slug),
                Level.WARN,
                f"{slug}'s newest config never runs circleback/trigger or 'circleback trigger'.",
                "Add the orb's circleback/trigger job before the hold (see the README).",
            )
        )


def check_downstream(
    api: CircleCIClient,
    project: Project,
    upstream: ProjectSlug | None,
    callback_parameter: str,
    allow_projects: Sequence[str],
    findings: list[Finding],
) -> None:
    slug = project.slug
    if slug.is_opaque:
        _check_definitions(api, slug, findings)
    config = _latest_config(api, project, "callback-parameter", findings)
    if config is None:
        if upstream is not None and allow_projects:
            _check_allowed(slug, upstream, list(allow_projects), "--allow-project", findings)
        return
    source, compiled = config
    _check_parameter(slug, source, callback_parameter, findings)
    calls_back = any(m in source or m in compiled for m in CALLBACK_MARKERS)
    if not calls_back:
        findings.append(
            Finding(
                "callback",
                str(slug),
                Level.FAIL,
                f"{slug}'s newest config never calls back (no circleback/approve job, "
                "approve_upstream command or 'circleback approve'): A would wait on its hold "
                "until it times out.",
                "Add the orb's circleback/approve job with upstream_pipeline_id: "
                f"<< pipeline.parameters.{callback_parameter} >>, requiring B's other jobs "
                "as terminal (see the README).",
            )
        )
    elif f"pipeline.parameters.{callback_parameter}" not in source:
        findings.append(
            Finding(
                "callback",
                str(slug),
                Level.FAIL,
                f"{slug} calls back but never passes << pipeline.parameters."
                f"{callback_parameter} >>: it cannot know which pipeline of A to release.",
                f"Pass upstream_pipeline_id: << pipeline.parameters.{callback_parameter} >> "
                "to circleback/approve.",
            )
        )
    else:
        findings.append(
            Finding(
                "callback",
                str(slug),
                Level.OK,
                f"{slug} calls back with << pipeline.parameters.{callback_parameter} >>.",
            )
        )
        _check_callback_runs(slug, source, findings)
    if upstream is not None:
        patterns = [*allow_projects, *configs.allow_patterns(source)]
        where = "--allow-project and B's config" if allow_projects else "B's config"
        if patterns:
            _check_allowed(slug, upstream, patterns, where, findings)
        elif calls_back:
            findings.append(
                Finding(
                    "allow-list",
                    str(slug),
                    Level.WARN,
                    f"Cannot tell whether {slug} would release {upstream}: its config names "
                    "no allow_project (it may come from CIRCLEBACK_ALLOW_PROJECTS in a "
                    "context, which doctor cannot read).",
                    "Pass the patterns B uses as --allow-project to check them.",
                )
            )


def _check_callback_runs(slug: ProjectSlug, source: str, findings: list[Finding]) -> None:
    """The orb's approve job must run whatever B's other jobs end as: ``requires: terminal``."""
    for workflow, requires in configs.callback_requires(source):
        plain = [r for r in requires if isinstance(r, str)]
        if not requires:
            findings.append(
                Finding(
                    "callback-runs",
                    str(slug),
                    Level.WARN,
                    f"{slug}'s circleback/approve in workflow {workflow!r} requires nothing: it "
                    "releases A as soon as B starts, so A's check polls, billed, while B runs.",
                    "Make it require B's other jobs as terminal: requires: [{build-and-test: "
                    "terminal}].",
                )
            )
        elif plain:
            findings.append(
                Finding(
                    "callback-runs",
                    str(slug),
                    Level.FAIL,
                    f"{slug}'s circleback/approve in workflow {workflow!r} runs only if "
                    f"{', '.join(map(str, plain))} succeed: when one fails, A waits on its hold "
                    "until it times out.",
                    "Require them as terminal instead: requires: [{"
                    + ", ".join(f"{r}: terminal" for r in plain)
                    + "}].",
                )
            )
        else:
            findings.append(
                Finding(
                    "callback-runs",
                    str(slug),
                    Level.OK,
                    f"{slug}'s circleback/approve in workflow {workflow!r} runs however B's "
                    "other jobs end.",
                )
            )


def _check_parameter(slug: ProjectSlug, source: str, name: str, findings: list[Finding]) -> None:
    declared = configs.declared_parameters(source)
    snippet = f'parameters: {{{name}: {{type: string, default: ""}}}}'
    if declared is None:
        findings.append(
            Finding(
                "callback-parameter",
                str(slug),
                Level.UNKNOWN,
                f"{slug}'s newest config source could not be read as YAML.",
                "Check it with 'circleci config validate'.",
            )
        )
    elif name not in declared:
        findings.append(
            Finding(
                "callback-parameter",
                str(slug),
                Level.FAIL,
                f"{slug} does not declare the pipeline parameter {name!r}: the trigger "
                "would create a pipeline that errors.",
                f"Declare it at the top of B's config: {snippet}",
            )
        )
    elif (declared[name] or {}).get("type") != "string":
        found = (declared[name] or {}).get("type")
        findings.append(
            Finding(
                "callback-parameter",
                str(slug),
                Level.FAIL,
                f"{slug} declares {name!r} as {found!r}, not string: A's pipeline id would "
                "be refused.",
                f"Declare it as a string: {snippet}",
            )
        )
    else:
        findings.append(
            Finding(
                "callback-parameter",
                str(slug),
                Level.OK,
                f"{slug} declares {name!r} (string).",
            )
        )


def _check_allowed(
    slug: ProjectSlug,
    upstream: ProjectSlug,
    patterns: list[str],
    where: str,
    findings: list[Finding],
) -> None:
    try:
        parsed = parse_allow_patterns(patterns)
    except errors.ConfigurationError as exc:
        findings.append(Finding("allow-list", str(slug), Level.FAIL, exc.message, exc.hint))
        return
    shown = ", ".join(parsed)
    if project_allowed(str(upstream), parsed):
        findings.append(
            Finding(
                "allow-list",
                str(slug),
                Level.OK,
                f"{slug} would release holds of {upstream} (allowed by {shown}).",
            )
        )
    else:
        findings.append(
            Finding(
                "allow-list",
                str(slug),
                Level.FAIL,
                f"{slug} would refuse {upstream}: {where} allow only {shown}.",
                f"Add {upstream} (or a pattern such as {upstream.provider}/"
                f"{upstream.organization}/*) to B's allow_project.",
            )
        )


def _check_definitions(api: CircleCIClient, slug: ProjectSlug, findings: list[Finding]) -> None:
    """GitHub App projects need a definition id to be triggered: list them."""
    fix = (
        "Find the pipeline definition's id in the project's settings (Project Setup) and "
        "pass it to trigger as --definition-id (orb: definition_id)."
    )
    project_id = slug.project  # circleci/<org-id>/<project-id>
    try:
        _status, data = api._request("GET", f"/projects/{segment(project_id)}/pipeline-definitions")
    except errors.CirclebackError as exc:
        findings.append(
            Finding(
                "definition-id",
                str(slug),
                Level.UNKNOWN,
                f"{slug} is a GitHub App project, so triggering it needs --definition-id; "
                f"its definitions could not be listed: {exc.message}",
                fix,
            )
        )
        return
    items = data.get("items") if isinstance(data, dict) else None
    listed = [
        f"{item.get('id')} ({item.get('name') or 'unnamed'})"
        for item in items or []
        if isinstance(item, dict)
    ]
    findings.append(
        Finding(
            "definition-id",
            str(slug),
            Level.WARN if listed else Level.FAIL,
            f"{slug} is a GitHub App project: triggering it needs --definition-id. "
            + (f"Its definitions: {'; '.join(listed)}." if listed else "It has none."),
            "Pass the one A should run as --definition-id (orb: definition_id)." if listed else fix,
        )
    )
