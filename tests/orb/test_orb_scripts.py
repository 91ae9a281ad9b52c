"""The orb's shell scripts, run for real in bash against fake circleback and installers.

Each test states one behaviour of the contract between the orb and the CLI: which
parameters become which flags, how the token is handed over, and what happens (and what
must not happen) when the upstream pipeline id is empty.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from orb_helpers import FAKE_CIRCLEBACK, FAKE_PYTHON3, Sandbox

UPSTREAM = "8b7ad2a4-5a35-4d60-b5a5-8f22d0e6c0aa"

# -- approve.sh ---------------------------------------------------------------------------


@pytest.mark.parametrize("upstream", ["", "   ", "\n"])
def test_approve_without_upstream_id_exits_0_with_one_line_and_runs_nothing(
    sandbox: Sandbox, upstream: str
) -> None:
    result = sandbox.run(
        "approve.sh",
        {"PARAM_UPSTREAM_PIPELINE_ID": upstream, "PARAM_ALLOW_PROJECT": "gh/acme/*"},
    )

    assert result.returncode == 0
    assert len(result.output_lines) == 1
    assert "nothing to approve" in result.output_lines[0]
    assert result.calls == []


def test_approve_without_upstream_id_needs_no_token_nor_allow_list(sandbox: Sandbox) -> None:
    result = sandbox.run("approve.sh", {"PARAM_UPSTREAM_PIPELINE_ID": ""})

    assert result.returncode == 0
    assert result.calls == []


def test_approve_passes_id_patterns_job_and_workflow(sandbox: Sandbox) -> None:
    # A directory the pattern would match if the shell expanded it: it must not.
    (sandbox.cwd / "gh" / "acme" / "project-a").mkdir(parents=True)

    result = sandbox.run(
        "approve.sh",
        {
            "PARAM_UPSTREAM_PIPELINE_ID": f" {UPSTREAM} ",
            "PARAM_ALLOW_PROJECT": "gh/acme/*, gh/other/one\ngh/third/*",
            "PARAM_JOB_NAME": "wait-for-project-c",
            "PARAM_WORKFLOW_NAME": "build-and-deploy",
            "PARAM_TOKEN_VAR": "CIRCLE_TOKEN",
            "CIRCLE_TOKEN": "secret-b",
        },
    )

    assert result.returncode == 0, result.stderr
    assert result.calls_to("circleback") == [
        [
            "approve",
            "--pipeline-id",
            UPSTREAM,
            "--allow-project",
            "gh/acme/*",
            "--allow-project",
            "gh/other/one",
            "--allow-project",
            "gh/third/*",
            "--job-name",
            "wait-for-project-c",
            "--workflow-name",
            "build-and-deploy",
        ]
    ]
    assert result.tokens_seen_by("circleback") == ["secret-b"]


def test_approve_leaves_out_empty_optional_flags(sandbox: Sandbox) -> None:
    result = sandbox.run(
        "approve.sh",
        {
            "PARAM_UPSTREAM_PIPELINE_ID": UPSTREAM,
            "PARAM_ALLOW_PROJECT": "gh/acme/project-a",
            "PARAM_JOB_NAME": "",
            "PARAM_WORKFLOW_NAME": "",
            "CIRCLE_TOKEN": "t",
        },
    )

    assert result.returncode == 0, result.stderr
    assert result.calls_to("circleback") == [
        ["approve", "--pipeline-id", UPSTREAM, "--allow-project", "gh/acme/project-a"]
    ]


def test_approve_refuses_an_empty_allow_list(sandbox: Sandbox) -> None:
    result = sandbox.run(
        "approve.sh",
        {"PARAM_UPSTREAM_PIPELINE_ID": UPSTREAM, "PARAM_ALLOW_PROJECT": " , ", "CIRCLE_TOKEN": "t"},
    )

    assert result.returncode == 2
    assert "allow_project" in result.stderr
    assert result.calls == []


def test_approve_reports_a_missing_token_by_its_variable_name(sandbox: Sandbox) -> None:
    result = sandbox.run(
        "approve.sh",
        {
            "PARAM_UPSTREAM_PIPELINE_ID": UPSTREAM,
            "PARAM_ALLOW_PROJECT": "gh/acme/*",
            "PARAM_TOKEN_VAR": "PROJECT_B_TOKEN",
        },
    )

    assert result.returncode == 2
    assert "PROJECT_B_TOKEN" in result.stderr
    assert "empty or unset" in result.stderr
    assert result.calls == []


def test_approve_with_fan_in_passes_the_flag(sandbox: Sandbox) -> None:
    result = sandbox.run(
        "approve.sh",
        {
            "PARAM_UPSTREAM_PIPELINE_ID": UPSTREAM,
            "PARAM_ALLOW_PROJECT": "gh/acme/project-a",
            "PARAM_JOB_NAME": "wait-for-triggered-pipelines",
            "PARAM_FAN_IN": "true",
            "CIRCLE_TOKEN": "t",
        },
    )

    assert result.returncode == 0, result.stderr
    assert result.calls_to("circleback") == [
        [
            "approve",
            "--pipeline-id",
            UPSTREAM,
            "--allow-project",
            "gh/acme/project-a",
            "--job-name",
            "wait-for-triggered-pipelines",
            "--fan-in",
        ]
    ]


def test_approve_without_fan_in_does_not_pass_the_flag(sandbox: Sandbox) -> None:
    result = sandbox.run(
        "approve.sh",
        {
            "PARAM_UPSTREAM_PIPELINE_ID": UPSTREAM,
            "PARAM_ALLOW_PROJECT": "gh/acme/project-a",
            "PARAM_FAN_IN": "false",
            "CIRCLE_TOKEN": "t",
        },
    )

    assert result.returncode == 0, result.stderr
    assert "--fan-in" not in result.calls_to("circleback")[0]


def test_approve_with_fan_in_but_no_upstream_still_does_nothing(sandbox: Sandbox) -> None:
    result = sandbox.run("approve.sh", {"PARAM_UPSTREAM_PIPELINE_ID": "", "PARAM_FAN_IN": "true"})

    assert result.returncode == 0
    assert len(result.output_lines) == 1
    assert result.calls == []


# -- trigger.sh ---------------------------------------------------------------------------


def trigger_env(**overrides: str) -> dict[str, str]:
    env = {
        "PARAM_PROJECT_SLUG": "gh/acme/project-b",
        "PARAM_BRANCH": "",
        "PARAM_TAG": "",
        "PARAM_PARAMETERS": "",
        "PARAM_DEFINITION_ID": "",
        "PARAM_CALLBACK_PARAMETER": "triggering-pipeline-id",
        "PARAM_UPSTREAM_PIPELINE_ID": UPSTREAM,
        "PARAM_TOKEN_VAR": "CIRCLE_TOKEN",
        "PARAM_WORKSPACE_DIR": "~/workspace",
        "CIRCLE_TOKEN": "secret-a",
    }
    env.update(overrides)
    return env


def test_trigger_maps_every_parameter_to_its_flag(sandbox: Sandbox) -> None:
    result = sandbox.run(
        "trigger.sh",
        trigger_env(
            PARAM_BRANCH="main",
            PARAM_PARAMETERS="requested-by=gh/acme/project-a\n\n# a comment\n  answer = 42 \n",
            PARAM_DEFINITION_ID="3cbbcd4a-0a55-4c1a-a4b4-5f4b6a2f2c11",
            PARAM_CALLBACK_PARAMETER="upstream-id",
        ),
    )

    assert result.returncode == 0, result.stderr
    state_file = sandbox.home / "workspace" / "circleback" / "downstream.json"
    assert result.calls_to("circleback") == [
        [
            "trigger",
            "gh/acme/project-b",
            "--branch",
            "main",
            "--parameter",
            "requested-by=gh/acme/project-a",
            "--parameter",
            "answer = 42",
            "--definition-id",
            "3cbbcd4a-0a55-4c1a-a4b4-5f4b6a2f2c11",
            "--upstream-pipeline-id",
            UPSTREAM,
            "--callback-parameter",
            "upstream-id",
            "--state-file",
            str(state_file),
        ]
    ]
    assert state_file.parent.is_dir()
    assert "5034460f-c7c4-4c43-9457-de07e2029e7b" in result.stdout


def test_trigger_with_a_tag_and_defaults_sends_only_what_is_set(sandbox: Sandbox) -> None:
    result = sandbox.run(
        "trigger.sh",
        trigger_env(
            PARAM_TAG="v1.2.3",
            PARAM_UPSTREAM_PIPELINE_ID="",
            PARAM_CALLBACK_PARAMETER="",
            PARAM_WORKSPACE_DIR="/tmp/ignored-by-fake",
        ),
    )

    assert result.returncode == 0, result.stderr
    assert result.calls_to("circleback") == [
        [
            "trigger",
            "gh/acme/project-b",
            "--tag",
            "v1.2.3",
            "--state-file",
            "/tmp/ignored-by-fake/circleback/downstream.json",
        ]
    ]


@pytest.mark.parametrize("depth", ["4", "0", " 3 "])
def test_trigger_passes_max_depth_through(sandbox: Sandbox, depth: str) -> None:
    result = sandbox.run("trigger.sh", trigger_env(PARAM_MAX_DEPTH=depth))

    assert result.returncode == 0, result.stderr
    (call,) = result.calls_to("circleback")
    assert call[call.index("--max-depth") + 1] == depth.strip()
    assert call[-2:] == ["--state-file", str(sandbox.home / "workspace/circleback/downstream.json")]


@pytest.mark.parametrize("depth", ["-1", "four", "1.5"])
def test_trigger_refuses_a_max_depth_that_is_not_a_whole_number(
    sandbox: Sandbox, depth: str
) -> None:
    result = sandbox.run("trigger.sh", trigger_env(PARAM_MAX_DEPTH=depth))

    assert result.returncode == 2
    assert "max_depth" in result.stderr
    assert result.calls == []


def test_trigger_exports_the_token_from_the_named_variable(sandbox: Sandbox) -> None:
    result = sandbox.run(
        "trigger.sh",
        trigger_env(PARAM_TOKEN_VAR="PROJECT_B_TOKEN", PROJECT_B_TOKEN="from-named-var"),
    )

    assert result.returncode == 0, result.stderr
    assert result.tokens_seen_by("circleback") == ["from-named-var"]
    assert "from-named-var" not in result.stdout + result.stderr


def test_trigger_without_a_token_fails_clearly_before_calling_the_cli(sandbox: Sandbox) -> None:
    env = trigger_env()
    del env["CIRCLE_TOKEN"]

    result = sandbox.run("trigger.sh", env)

    assert result.returncode == 2
    assert "CIRCLE_TOKEN" in result.stderr
    assert "personal API token" in result.stderr
    assert result.calls == []


def test_trigger_refuses_a_token_parameter_that_is_not_a_variable_name(
    sandbox: Sandbox,
) -> None:
    result = sandbox.run("trigger.sh", trigger_env(PARAM_TOKEN_VAR="$(touch pwned)"))

    assert result.returncode == 2
    assert "not an environment variable name" in result.stderr
    assert not (sandbox.cwd / "pwned").exists()
    assert result.calls == []


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"PARAM_PROJECT_SLUG": " "}, "project_slug"),
        ({"PARAM_BRANCH": "main", "PARAM_TAG": "v1"}, "not both"),
        ({"PARAM_PARAMETERS": "flag"}, "not KEY=VALUE"),
        ({"PARAM_PARAMETERS": "=value"}, "no name"),
    ],
)
def test_trigger_rejects_bad_input_with_exit_2(
    sandbox: Sandbox, overrides: dict[str, str], message: str
) -> None:
    result = sandbox.run("trigger.sh", trigger_env(**overrides))

    assert result.returncode == 2
    assert message in result.stderr
    assert result.calls == []


def test_trigger_passes_the_cli_exit_status_through(sandbox: Sandbox) -> None:
    result = sandbox.run("trigger.sh", trigger_env(FAKE_EXIT="3"))

    assert result.returncode == 3


def test_trigger_says_to_install_when_circleback_is_missing(sandbox: Sandbox) -> None:
    sandbox.remove_fake("circleback")

    result = sandbox.run("trigger.sh", trigger_env())

    assert result.returncode == 2
    assert "circleback/install" in result.stderr


# -- check.sh -----------------------------------------------------------------------------


def write_state_file(home: Path) -> Path:
    state_file = home / "workspace" / "circleback" / "downstream.json"
    state_file.parent.mkdir(parents=True)
    state_file.write_text('{"version": 1, "downstream": []}')
    return state_file


def test_check_waits_on_the_state_file_and_writes_junit(sandbox: Sandbox) -> None:
    state_file = write_state_file(sandbox.home)

    result = sandbox.run(
        "check.sh",
        {
            "PARAM_WORKSPACE_DIR": "~/workspace",
            "PARAM_TIMEOUT": "20m",
            "PARAM_TEST_RESULTS_DIR": "~/test-results",
            "PARAM_TOKEN_VAR": "CIRCLE_TOKEN",
            "CIRCLE_TOKEN": "secret-a",
        },
    )

    assert result.returncode == 0, result.stderr
    junit = sandbox.home / "test-results" / "circleback" / "junit.xml"
    assert result.calls_to("circleback") == [
        ["status", "--state-file", str(state_file), "--junit", str(junit), "--timeout", "20m"]
    ]
    assert junit.parent.is_dir()
    assert result.tokens_seen_by("circleback") == ["secret-a"]


@pytest.mark.parametrize(("value", "passed"), [("true", True), ("false", False), ("", False)])
def test_check_cancels_downstream_on_timeout_only_when_asked(
    sandbox: Sandbox, value: str, passed: bool
) -> None:
    write_state_file(sandbox.home)

    result = sandbox.run(
        "check.sh", {"CIRCLE_TOKEN": "t", "PARAM_CANCEL_DOWNSTREAM_ON_TIMEOUT": value}
    )

    assert result.returncode == 0, result.stderr
    (call,) = result.calls_to("circleback")
    assert ("--cancel-downstream-on-timeout" in call) is passed


@pytest.mark.parametrize("status", [1, 4])
def test_check_fails_with_the_cli_exit_status(sandbox: Sandbox, status: int) -> None:
    write_state_file(sandbox.home)

    result = sandbox.run("check.sh", {"CIRCLE_TOKEN": "t", "FAKE_EXIT": str(status)})

    assert result.returncode == status


def test_check_without_a_state_file_explains_what_to_do(sandbox: Sandbox) -> None:
    result = sandbox.run("check.sh", {"CIRCLE_TOKEN": "t"})

    assert result.returncode == 2
    assert "no state file" in result.stderr
    assert "circleback/trigger" in result.stderr
    assert result.calls == []


# -- sweep.sh -----------------------------------------------------------------------------


def sweep_env(**overrides: str) -> dict[str, str]:
    env = {
        "PARAM_PROJECT_SLUG": "gh/acme/project-a",
        "PARAM_GRACE": "1h",
        "PARAM_JOB_NAME": "wait-for-triggered-pipeline",
        "PARAM_CANCEL": "false",
        "PARAM_MAX_PIPELINES": "50",
        "PARAM_TOKEN_VAR": "CIRCLE_TOKEN",
        "CIRCLE_TOKEN": "secret-a",
    }
    env.update(overrides)
    return env


def test_sweep_maps_every_parameter_to_its_flag(sandbox: Sandbox) -> None:
    result = sandbox.run(
        "sweep.sh",
        sweep_env(PARAM_GRACE="0s", PARAM_JOB_NAME="wait-for-c, wait-for-d", PARAM_CANCEL="true"),
    )

    assert result.returncode == 0, result.stderr
    assert result.calls_to("circleback") == [
        [
            "sweep",
            "gh/acme/project-a",
            "--grace",
            "0s",
            "--max-pipelines",
            "50",
            "--job-name",
            "wait-for-c",
            "--job-name",
            "wait-for-d",
            "--cancel",
        ]
    ]
    assert result.tokens_seen_by("circleback") == ["secret-a"]


def test_sweep_without_a_project_fails_before_calling_the_cli(sandbox: Sandbox) -> None:
    result = sandbox.run("sweep.sh", sweep_env(PARAM_PROJECT_SLUG=" "))

    assert result.returncode == 2
    assert "project_slug" in result.stderr
    assert result.calls == []


def test_sweep_without_a_token_fails_clearly(sandbox: Sandbox) -> None:
    env = sweep_env()
    del env["CIRCLE_TOKEN"]

    result = sandbox.run("sweep.sh", env)

    assert result.returncode == 2
    assert "CIRCLE_TOKEN" in result.stderr
    assert result.calls == []


# -- install.sh ---------------------------------------------------------------------------


def install_env(**overrides: str) -> dict[str, str]:
    env = {"PARAM_VERSION": "0.1.0", "PARAM_INSTALL_DIR": "~/.cache/circleback"}
    env.update(overrides)
    return env


def test_install_for_approve_without_upstream_id_does_nothing(sandbox: Sandbox) -> None:
    result = sandbox.run(
        "install.sh",
        install_env(PARAM_SKIP_WITHOUT_UPSTREAM="true", PARAM_UPSTREAM_PIPELINE_ID=" "),
    )

    assert result.returncode == 0
    assert len(result.output_lines) == 1
    assert "skipping the install" in result.output_lines[0]
    assert result.calls == []
    assert not (sandbox.home / ".cache").exists()


def test_install_skips_when_circleback_on_path_reports_the_version(sandbox: Sandbox) -> None:
    bash_env = sandbox.root / "bash_env"

    result = sandbox.run("install.sh", install_env(BASH_ENV=str(bash_env)))

    assert result.returncode == 0, result.stderr
    assert "already on PATH" in result.stdout
    assert result.calls_to("circleback") == [["--version"]]
    assert [call[0] for call in result.calls] == ["circleback"]
    assert not bash_env.exists()


def test_install_honours_circleback_skip_install(sandbox: Sandbox) -> None:
    result = sandbox.run(
        "install.sh", install_env(CIRCLEBACK_SKIP_INSTALL="1", FAKE_CIRCLEBACK_VERSION="9.9.9")
    )

    assert result.returncode == 0, result.stderr
    assert "CIRCLEBACK_SKIP_INSTALL=1" in result.stdout
    assert result.calls == []


def test_install_makes_a_venv_and_puts_only_circleback_on_path(sandbox: Sandbox) -> None:
    sandbox.add_fake("circleback", FAKE_CIRCLEBACK)  # on PATH, but the wrong version
    sandbox.add_fake("python3", FAKE_PYTHON3)
    bash_env = sandbox.root / "bash_env"

    result = sandbox.run(
        "install.sh", install_env(BASH_ENV=str(bash_env), FAKE_CIRCLEBACK_VERSION="0.0.9")
    )

    assert result.returncode == 0, result.stderr
    prefix = sandbox.home / ".cache" / "circleback" / "0.1.0"
    assert ["-m", "venv", str(prefix / "venv")] in result.calls_to("python3")
    assert result.calls_to("python") == [
        [
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-input",
            "circleback==0.1.0",
        ]
    ]
    assert (prefix / "bin" / "circleback").is_symlink()
    assert sorted(p.name for p in (prefix / "bin").iterdir()) == ["circleback"]
    assert bash_env.read_text() == f'export PATH={prefix / "bin"}:"$PATH"\n'
    assert "installed circleback 0.1.0" in result.stdout


def test_install_takes_the_package_from_where_it_is_told(sandbox: Sandbox) -> None:
    sandbox.add_fake("circleback", FAKE_CIRCLEBACK)  # on PATH, but the wrong version
    sandbox.add_fake("python3", FAKE_PYTHON3)
    source = "git+https://github.com/acme/circleback@v0.1.0"
    result = sandbox.run(
        "install.sh",
        install_env(
            BASH_ENV=str(sandbox.root / "bash_env"),
            FAKE_CIRCLEBACK_VERSION="0.0.9",
            PARAM_PACKAGE=f"  {source} ",
        ),
    )
    assert result.returncode == 0, result.stderr
    assert result.calls_to("python")[-1][-1] == source
    assert "installed circleback 0.1.0" in result.stdout


def test_install_rejects_a_package_that_is_not_the_pinned_version(sandbox: Sandbox) -> None:
    sandbox.remove_fake("circleback")
    sandbox.add_fake("python3", FAKE_PYTHON3)
    result = sandbox.run(
        "install.sh",
        install_env(
            BASH_ENV=str(sandbox.root / "bash_env"),
            PARAM_PACKAGE="git+https://github.com/acme/circleback@v0.0.1",
        ),
    )
    assert result.returncode == 2
    assert "does not report 0.1.0" in result.stderr


def test_install_reuses_a_restored_cache(sandbox: Sandbox) -> None:
    sandbox.remove_fake("circleback")
    bin_dir = sandbox.home / ".cache" / "circleback" / "0.1.0" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "circleback").write_text(FAKE_CIRCLEBACK)
    (bin_dir / "circleback").chmod(0o755)

    result = sandbox.run("install.sh", install_env(BASH_ENV=str(sandbox.root / "bash_env")))

    assert result.returncode == 0, result.stderr
    assert "cached" in result.stdout
    assert [call[0] for call in result.calls] == ["circleback"]  # only its --version
    assert str(bin_dir) in (sandbox.root / "bash_env").read_text()


def test_install_without_any_way_to_install_fails_clearly(sandbox: Sandbox) -> None:
    for name in ("circleback", "python", "python3", "pip", "pip3", "uv", "pipx", "apt-get"):
        sandbox.remove_fake(name)

    result = sandbox.run("install.sh", install_env())

    assert result.returncode == 2
    assert "could not install circleback 0.1.0" in result.stderr
    assert "CIRCLEBACK_SKIP_INSTALL" in result.stderr


def test_install_refuses_an_empty_version(sandbox: Sandbox) -> None:
    result = sandbox.run("install.sh", install_env(PARAM_VERSION=" "))

    assert result.returncode == 2
    assert "version" in result.stderr
    assert result.calls == []
