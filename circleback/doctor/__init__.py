"""``circleback doctor``: check a setup before it fails, without creating anything.

Today a wrong token, a project the token cannot read, a B that does not declare the
callback parameter or never calls back, a GitHub App project without a definition id, or
an allow-list that refuses A is found only when a pipeline fails or hangs. Each check
here reads the API (GET only: ``/me``, ``/project/{slug}/pipeline``,
``/pipeline/{id}/config``, ``/projects/{id}/pipeline-definitions``) and says what it found
and, when something is wrong, how to fix it.

What it cannot see: environment variables and contexts of A's and B's jobs (the token
*they* use, a ``CIRCLEBACK_ALLOW_PROJECTS`` set there), configs on other branches than
the newest pipeline's, and whether B's callback job will actually run beyond what its
``requires`` say (filters, a whole workflow canceled). Those are reported as "cannot
tell" where they matter, never as fine.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from circleback.client import CircleCIClient
from circleback.doctor import checks
from circleback.doctor.findings import Finding, Level, exit_code, render
from circleback.relay.records import DEFAULT_CALLBACK_PARAMETER
from circleback.settings import Settings

__all__ = ["DEFAULT_JOB_NAME", "Finding", "Level", "diagnose", "exit_code", "render"]

DEFAULT_JOB_NAME = "wait-for-triggered-pipeline"


def diagnose(
    settings: Settings,
    *,
    client: Callable[[], CircleCIClient],
    upstream: str | None = None,
    downstream: Sequence[str] = (),
    callback_parameter: str = DEFAULT_CALLBACK_PARAMETER,
    job_name: str = DEFAULT_JOB_NAME,
    allow_projects: Sequence[str] = (),
) -> list[Finding]:
    """Run every check that applies; ``client`` is called once, after the host and token pass.

    Slugs that are not slugs are findings too, not exceptions. Nothing is created.
    """
    findings: list[Finding] = []
    host_ok = checks.check_host(settings, findings)
    token_ok = checks.check_token_present(settings, findings)
    slugs = checks.check_slugs([s for s in [upstream, *downstream] if s], findings)
    if not (host_ok and token_ok):
        return findings
    up = slugs.get(upstream) if upstream else None
    with client() as api:
        if not checks.check_me(api, findings):
            return findings
        projects = {str(s): checks.check_access(api, s, findings) for s in slugs.values()}
        readable_up = projects.get(str(up)) if up is not None else None
        if readable_up is not None:
            checks.check_upstream(api, readable_up, job_name, findings)
        for name in downstream:
            slug = slugs.get(name)
            readable = projects.get(str(slug)) if slug is not None else None
            if readable is None:
                continue
            checks.check_downstream(
                api,
                readable,
                up,
                callback_parameter,
                allow_projects,
                findings,
            )
    if not downstream:
        findings.append(
            Finding(
                "callback",
                "downstream",
                Level.WARN,
                "No downstream project given: B's parameter and callback were not checked.",
                "Pass --downstream gh/org/b (repeatable) to check each project A triggers.",
            )
        )
    return findings
