"""Attacks on the orb's scripts from outside, found by trying the orb as a new user would.

Each test is one attack or one misuse that used to succeed; the scripts run for real in
every shell CircleCI may use (the ``sandbox`` fixture), against fake programs.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest
import yaml
from orb_helpers import FAKE_CIRCLEBACK, FAKE_CIRCLECI, FAKE_PYTHON3, REPO, SHELLS, Sandbox

UPSTREAM = "8b7ad2a4-5a35-4d60-b5a5-8f22d0e6c0aa"
TOKEN = "tok-5e8f7a9c1b2d"

# -- a $VARIABLE naming the token, arriving inside a parameter's value ----------------------

#: Minimal environments under which each script would call circleback.
_BASE = {
    "approve.sh": {"PARAM_UPSTREAM_PIPELINE_ID": UPSTREAM, "PARAM_ALLOW_PROJECT": "gh/acme/*"},
    "trigger.sh": {"PARAM_PROJECT_SLUG": "gh/acme/project-b"},
    "check.sh": {},
    "sweep.sh": {"PARAM_PROJECT_SLUG": "gh/acme/project-a"},
    "install.sh": {"PARAM_VERSION": "0.1.0"},
}

#: Every parameter that goes through `circleci env subst`, by script. `branch: << pipeline.git.
#: branch >>` is the usual way to trigger B on A's branch, and git accepts a branch named
#: `$CIRCLE_TOKEN`: whoever can push a branch chooses that text.
_SUBSTITUTED = [
    ("trigger.sh", "PARAM_BRANCH"),
    ("trigger.sh", "PARAM_TAG"),
    ("trigger.sh", "PARAM_PROJECT_SLUG"),
    ("trigger.sh", "PARAM_DEFINITION_ID"),
    ("trigger.sh", "PARAM_CALLBACK_PARAMETER"),
    ("trigger.sh", "PARAM_WORKSPACE_DIR"),
    ("approve.sh", "PARAM_ALLOW_PROJECT"),
    ("approve.sh", "PARAM_JOB_NAME"),
    ("approve.sh", "PARAM_WORKFLOW_NAME"),
    ("check.sh", "PARAM_WORKSPACE_DIR"),
    ("check.sh", "PARAM_TEST_RESULTS_DIR"),
    ("check.sh", "PARAM_TIMEOUT"),
    ("check.sh", "PARAM_REQUIRE_JOB"),
    ("sweep.sh", "PARAM_PROJECT_SLUG"),
    ("sweep.sh", "PARAM_GRACE"),
    ("sweep.sh", "PARAM_JOB_NAME"),
    ("install.sh", "PARAM_PACKAGE"),
]


@pytest.mark.parametrize(
    ("script", "param"), _SUBSTITUTED, ids=[f"{s}:{p}" for s, p in _SUBSTITUTED]
)
@pytest.mark.parametrize("reference", ["feature/$MY_TOKEN", "${CIRCLE_TOKEN}", "$CIRCLECI_API_KEY"])
def test_a_parameter_naming_the_token_variable_is_refused_unprinted(
    sandbox: Sandbox, script: str, param: str, reference: str
) -> None:
    state = sandbox.home / "workspace" / "circleback" / "downstream.json"
    state.parent.mkdir(parents=True)
    state.write_text('{"version": 1, "downstream": []}')
    env = {
        **_BASE[script],
        "PARAM_TOKEN_VAR": "MY_TOKEN",
        # The token itself, and the other names circleback reads a token from.
        "MY_TOKEN": TOKEN,
        "CIRCLE_TOKEN": TOKEN,
        "CIRCLECI_API_KEY": TOKEN,
        param: reference,
    }

    result = sandbox.run(script, env)

    assert result.returncode == 2, result.stdout + result.stderr
    assert TOKEN not in result.stdout + result.stderr
    assert result.calls_to("circleback") == []
    assert param.removeprefix("PARAM_").lower() in result.stderr


def test_the_token_check_also_holds_with_the_circleci_cli(sandbox: Sandbox) -> None:
    """`circleci env subst` (the real one, on CircleCI) substitutes like the fallback."""
    circleci = FAKE_CIRCLECI.replace(
        "printf 'subst-by-circleci:%s' \"$(cat)\"",
        'printf \'%s\' "$(cat)" | sed "s/[$]MY_TOKEN/$MY_TOKEN/"',
    )
    sandbox.add_fake("circleci", circleci)

    result = sandbox.run(
        "trigger.sh",
        {
            **_BASE["trigger.sh"],
            "PARAM_TOKEN_VAR": "MY_TOKEN",
            "MY_TOKEN": TOKEN,
            "PARAM_BRANCH": "$MY_TOKEN",
        },
    )

    assert ["env", "subst"] in result.calls_to("circleci")
    assert result.returncode == 2
    assert TOKEN not in result.stdout + result.stderr
    assert result.calls_to("circleback") == []


def test_a_substituted_value_that_merely_resembles_nothing_secret_still_passes(
    sandbox: Sandbox,
) -> None:
    """The check refuses only what substitution brought in: a token written in the
    parameter itself (or too short to be one) changes nothing."""
    result = sandbox.run(
        "trigger.sh",
        {
            **_BASE["trigger.sh"],
            "PARAM_TOKEN_VAR": "MY_TOKEN",
            "MY_TOKEN": "ab",
            "PARAM_BRANCH": "$BRANCH",
            "BRANCH": "feature/abc",
        },
    )

    assert result.returncode == 0, result.stderr
    (call,) = result.calls_to("circleback")
    assert call[call.index("--branch") + 1] == "feature/abc"


# -- a step of one's own after circleback/install, where the shell never reads BASH_ENV -----


def _alpine_job_commands() -> list[tuple[str, str]]:
    """(job, command) of each `run` step calling circleback in the test-deploy jobs that
    run on the Alpine executor."""
    deploy = yaml.safe_load((REPO / ".circleci" / "test-deploy.yml").read_text())
    on_alpine = set()
    for entry in deploy["workflows"]["test-deploy"]["jobs"]:
        if not isinstance(entry, dict):
            continue
        ((job, args),) = entry.items()
        executors = (args.get("matrix") or {}).get("parameters", {}).get("executor", [])
        if args.get("executor") == "alpine" or "alpine" in executors:
            on_alpine.add(job)
    found = []
    for job in sorted(on_alpine):
        for step in deploy["jobs"][job]["steps"]:
            run = step.get("run") if isinstance(step, dict) else None
            if isinstance(run, dict) and "circleback" in run["command"]:
                found.append((job, str(run["command"])))
    return found


ALPINE_COMMANDS = _alpine_job_commands()


def test_the_alpine_jobs_are_found() -> None:
    assert {job for job, _ in ALPINE_COMMANDS} == {"orb-commands-test", "released-install-test"}


@pytest.mark.parametrize(("job", "command"), ALPINE_COMMANDS, ids=[j for j, _ in ALPINE_COMMANDS])
def test_test_deploy_finds_the_install_in_a_shell_that_never_reads_bash_env(
    sandbox: Sandbox, job: str, command: str
) -> None:
    """These jobs run on Alpine, where CircleCI starts steps with busybox sh, which does not
    source $BASH_ENV: a step after circleback/install must still find circleback."""
    sandbox.remove_fake("circleback")
    sandbox.add_fake("python3", FAKE_PYTHON3)
    bash_env = sandbox.root / "bash_env"
    install = sandbox.run("install.sh", {"PARAM_VERSION": "0.1.0", "BASH_ENV": str(bash_env)})
    assert install.returncode == 0, install.stderr

    # The next step: a new shell, PATH as the image has it, $BASH_ENV set but not sourced.
    shell = SHELLS[sandbox.shell]
    proc = subprocess.run(
        [shutil.which(shell[0]) or shell[0], *shell[1:], "-c", command],
        cwd=sandbox.cwd,
        env={
            "PATH": f"{sandbox.fake_bin}:{sandbox.system_bin}",
            "HOME": str(sandbox.home),
            "BASH_ENV": str(bash_env) if sandbox.shell.startswith("bash") else "",
            "FAKE_CALLS": str(sandbox.calls_file),
        },
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )

    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("circleback 0.1.0")


# -- install_dir given relative to the working directory ------------------------------------


def test_install_into_a_relative_install_dir_links_what_it_installed(sandbox: Sandbox) -> None:
    """save_cache reads a relative path from the working directory: so must the install,
    and links made from a relative path point nowhere."""
    sandbox.remove_fake("circleback")
    sandbox.add_fake("python3", FAKE_PYTHON3)

    result = sandbox.run(
        "install.sh", {"PARAM_VERSION": "0.1.0", "PARAM_INSTALL_DIR": ".cache/circleback"}
    )

    assert result.returncode == 0, result.stderr
    prefix = sandbox.cwd / ".cache" / "circleback" / "0.1.0"
    assert (prefix / "bin" / "circleback").resolve() == (prefix / "venv" / "bin" / "circleback")
    link = sandbox.home / ".circleback" / "bin" / "circleback"
    assert link.resolve() == prefix / "venv" / "bin" / "circleback"
    assert str(prefix) in result.stdout


# -- path parameters that CircleCI's own steps read as written ------------------------------

#: (script, parameter, the step that reads the same parameter without substituting it).
_RAW_PATHS = [
    ("trigger.sh", "PARAM_WORKSPACE_DIR"),  # persist_to_workspace.root, store_artifacts.path
    ("check.sh", "PARAM_WORKSPACE_DIR"),  # attach_workspace.at
    ("check.sh", "PARAM_TEST_RESULTS_DIR"),  # store_test_results.path
    ("install.sh", "PARAM_INSTALL_DIR"),  # save_cache.paths
]


@pytest.mark.parametrize(("script", "param"), _RAW_PATHS, ids=[f"{s}:{p}" for s, p in _RAW_PATHS])
def test_a_path_parameter_with_a_variable_is_refused(
    sandbox: Sandbox, script: str, param: str
) -> None:
    """CircleCI never substitutes variables in a step's paths ("$WS/x" is a directory named
    "$WS"): a script that substituted them wrote where the workspace, cache or test-result
    step never looks, and the job failed later for no visible reason."""
    sandbox.remove_fake("circleback")
    sandbox.add_fake("circleback", FAKE_CIRCLEBACK)
    (sandbox.home / "ws" / "circleback").mkdir(parents=True)
    (sandbox.home / "ws" / "circleback" / "downstream.json").write_text("{}")
    env = {**_BASE[script], "CIRCLE_TOKEN": TOKEN, "WS": str(sandbox.home / "ws"), param: "$WS"}

    result = sandbox.run(script, env)

    assert result.returncode == 2, result.stdout + result.stderr
    assert param.removeprefix("PARAM_").lower() in result.stderr
    assert result.calls_to("circleback") == []


# -- the cache key covers what the install will really install ------------------------------


def test_the_cache_key_follows_the_package_a_variable_names(sandbox: Sandbox) -> None:
    """`package: $WHEEL_URL` installs what the variable holds: a new wheel under the same
    text must not restore the old install (it reports the same version, so the install
    would keep it)."""
    keys = []
    for url in (
        "https://files.example/circleback-0.1.0-1.whl",
        "https://files.example/circleback-0.1.0-2.whl",
    ):
        key_file = sandbox.root / "key"
        result = sandbox.run(
            "cache_key.sh",
            {"PARAM_KEY_FILE": str(key_file), "PARAM_PACKAGE": "$WHEEL_URL", "WHEEL_URL": url},
        )
        assert result.returncode == 0, result.stderr
        keys.append(key_file.read_text())
        assert url not in result.stdout  # what a variable holds is not printed

    assert keys[0] != keys[1]


# -- control characters from outside in the job's log ---------------------------------------

FORGED = "x\r\x1b[2Kcircleback: released the hold.\nforged: all downstream pipelines succeeded"


def test_a_hostile_upstream_id_cannot_forge_lines_in_the_log(sandbox: Sandbox) -> None:
    """Whoever triggers B chooses triggering-pipeline-id: printed as it is, its CR, ESC and
    newline would overwrite or add lines of B's log. The CLI still receives it unchanged."""
    result = sandbox.run(
        "approve.sh",
        {
            "PARAM_UPSTREAM_PIPELINE_ID": FORGED,
            "PARAM_ALLOW_PROJECT": "gh/acme/*",
            "CIRCLE_TOKEN": TOKEN,
        },
    )

    log = result.stdout + result.stderr
    assert "\r" not in log
    assert "\x1b" not in log
    assert not [
        line for line in log.splitlines() if line.startswith(("forged", "circleback: released"))
    ]
    (call,) = result.calls_to("circleback")
    # (The fakes' record is read back as text, which turns CR into a newline.)
    assert call[call.index("--pipeline-id") + 1] == FORGED.strip().replace("\r", "\n")


def test_a_hostile_branch_cannot_forge_lines_in_the_log(sandbox: Sandbox) -> None:
    result = sandbox.run(
        "trigger.sh",
        {**_BASE["trigger.sh"], "CIRCLE_TOKEN": TOKEN, "PARAM_BRANCH": FORGED, "PARAM_TAG": "v1"},
    )

    assert result.returncode == 2  # branch and tag both set
    log = result.stdout + result.stderr
    assert "\r" not in log
    assert "\x1b" not in log


# -- the install's message when the network, not the image, is at fault --------------------


def test_a_failed_download_of_the_pinned_pip_is_a_network_error_not_the_images_fault(
    sandbox: Sandbox,
) -> None:
    """cimg/base (python3 without ensurepip) with the network down: the pinned pip wheel
    cannot be fetched. That is exit status 3 with "retry", not exit 2 telling the user to
    change an image that would work."""
    sandbox.remove_fake("circleback")
    sandbox.add_fake("python3", FAKE_PYTHON3)
    for name in ("apt-get", "apk", "sudo", "uv"):
        sandbox.remove_fake(name)

    result = sandbox.run(
        "install.sh",
        {
            "PARAM_VERSION": "0.1.0",
            "FAKE_NO_ENSUREPIP": "1",
            "FAKE_NO_PIP": "1",
            "FAKE_DOWNLOAD_FAILS": "1",
        },
    )

    assert result.returncode == 3, result.stderr
    assert "could not download the pinned pip wheel" in result.stderr
    assert "retry" in result.stderr
    assert "Use an image with Python" not in result.stderr
    assert result.calls_to("apt-get") == []


def test_the_install_prints_the_package_as_written_not_what_a_variable_holds(
    sandbox: Sandbox,
) -> None:
    """A private index's password in `package: https://ci:$INDEX_PASSWORD@.../x.whl` reaches
    pip, not the log."""
    sandbox.remove_fake("circleback")
    sandbox.add_fake("python3", FAKE_PYTHON3)

    result = sandbox.run(
        "install.sh",
        {
            "PARAM_VERSION": "0.1.0",
            "PARAM_PACKAGE": "https://ci:$INDEX_PASSWORD@pypi.example/circleback-0.1.0-py3-none-any.whl",
            "INDEX_PASSWORD": "hunter2-index",
        },
    )

    assert "hunter2-index" not in result.stdout + result.stderr
    assert "$INDEX_PASSWORD" in result.stdout
