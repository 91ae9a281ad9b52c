"""The orb's shell scripts, run for real against fake circleback and installers, in every
shell CircleCI may run a step in: bash, bash --posix, dash and busybox sh (the ``shell``
fixture runs each test once per shell).

Each test states one behaviour of the contract between the orb and the CLI: which
parameters become which flags, how the token is handed over, and what happens (and what
must not happen) when the upstream pipeline id is empty.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from orb_helpers import (
    FAKE_CIRCLEBACK,
    FAKE_CIRCLECI,
    FAKE_PYTHON3,
    FAKE_UV,
    SCRIPTS,
    Sandbox,
    make_sandbox,
)

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


def test_install_fills_a_venv_with_the_images_pip_and_puts_only_circleback_on_path(
    sandbox: Sandbox,
) -> None:
    """cimg/python: pip is there, so the venv is made without ensurepip (seconds saved)."""
    sandbox.add_fake("circleback", FAKE_CIRCLEBACK)  # on PATH, but the wrong version
    sandbox.add_fake("python3", FAKE_PYTHON3)
    bash_env = sandbox.root / "bash_env"

    result = sandbox.run(
        "install.sh", install_env(BASH_ENV=str(bash_env), FAKE_CIRCLEBACK_VERSION="0.0.9")
    )

    assert result.returncode == 0, result.stderr
    prefix = sandbox.home / ".cache" / "circleback" / "0.1.0"
    python3 = result.calls_to("python3")
    assert ["-m", "venv", "--without-pip", str(prefix / "venv")] in python3
    assert [
        "-m",
        "pip",
        "--python",
        str(prefix / "venv" / "bin" / "python"),
        "install",
        "--quiet",
        "--compile",
        "--disable-pip-version-check",
        "--no-input",
        "--require-hashes",
        "-r",
        str(prefix / "requirements.txt"),
    ] in python3
    assert "--hash=sha256:1111" in (prefix / "requirements.txt").read_text()
    assert (prefix / "bin" / "circleback").is_symlink()
    assert sorted(p.name for p in (prefix / "bin").iterdir()) == ["circleback"]
    assert bash_env.read_text() == f'export PATH={prefix / "bin"}:"$PATH"\n'
    # The orb's later steps find it without BASH_ENV (which sh never reads).
    link = sandbox.home / ".circleback" / "bin" / "circleback"
    assert link.resolve() == (prefix / "venv" / "bin" / "circleback").resolve()
    assert "installed circleback 0.1.0" in result.stdout
    assert "checked against the orb's pinned hashes" in result.stdout


def test_install_without_the_images_pip_makes_a_venv_with_ensurepip(sandbox: Sandbox) -> None:
    sandbox.remove_fake("circleback")
    sandbox.add_fake("python3", FAKE_PYTHON3)

    result = sandbox.run("install.sh", install_env(FAKE_NO_PIP="1"))

    assert result.returncode == 0, result.stderr
    prefix = sandbox.home / ".cache" / "circleback" / "0.1.0"
    assert ["-m", "venv", str(prefix / "venv")] in result.calls_to("python3")
    (pip,) = result.calls_to("python")
    assert pip[:4] == ["-m", "pip", "install", "--quiet"]
    assert pip[-3:] == ["--require-hashes", "-r", str(prefix / "requirements.txt")]


def test_install_compiles_bytecode_even_when_the_image_forbids_writing_it(
    sandbox: Sandbox,
) -> None:
    sandbox.remove_fake("circleback")
    sandbox.add_fake("python3", FAKE_PYTHON3)

    result = sandbox.run("install.sh", install_env(PYTHONDONTWRITEBYTECODE="1", FAKE_NO_PIP="1"))

    assert result.returncode == 0, result.stderr
    (pip,) = result.calls_to("python")
    assert "--compile" in pip
    assert result.pydontwrite_seen_by("python") == ["(unset)"]
    system_pip = sandbox.run("install.sh", install_env(PYTHONDONTWRITEBYTECODE="1"))
    assert system_pip.returncode == 0, system_pip.stderr


def test_install_prefers_uv_and_asks_it_to_compile_bytecode(sandbox: Sandbox) -> None:
    sandbox.remove_fake("circleback")
    sandbox.add_fake("python3", FAKE_PYTHON3)
    sandbox.add_fake("uv", FAKE_UV)

    result = sandbox.run("install.sh", install_env(PYTHONDONTWRITEBYTECODE="1"))

    assert result.returncode == 0, result.stderr
    prefix = sandbox.home / ".cache" / "circleback" / "0.1.0"
    uv_calls = result.calls_to("uv")
    assert uv_calls[0] == ["--version"]
    assert uv_calls[2] == [
        "pip",
        "install",
        "--quiet",
        "--compile-bytecode",
        "--python",
        str(prefix / "venv" / "bin" / "python"),
        "--require-hashes",
        "-r",
        str(prefix / "requirements.txt"),
    ]
    assert result.pydontwrite_seen_by("uv")[2] == "(unset)"
    assert ["-m", "venv", str(prefix / "venv")] not in result.calls_to("python3")


def test_install_without_ensurepip_uses_the_pinned_pip_wheel_not_apt(sandbox: Sandbox) -> None:
    """cimg/base: python3 has venv but not ensurepip; no sudo apt-get on every cache miss."""
    sandbox.remove_fake("circleback")
    sandbox.add_fake("python3", FAKE_PYTHON3)

    result = sandbox.run("install.sh", install_env(FAKE_NO_ENSUREPIP="1", FAKE_NO_PIP="1"))

    assert result.returncode == 0, result.stderr
    prefix = sandbox.home / ".cache" / "circleback" / "0.1.0"
    python3 = result.calls_to("python3")
    download = next(c for c in python3 if c[0] == "-c" and "urllib" in c[1])
    assert download[2:] == [
        "https://files.example/pip-25.0.1-py3-none-any.whl",
        "c46efd13b6aa",
        str(prefix / "pip-25.0.1-py3-none-any.whl"),
    ]
    assert ["-m", "venv", "--without-pip", str(prefix / "venv")] in python3
    (pip,) = result.calls_to("python")
    assert pip[0] == str(prefix / "pip-25.0.1-py3-none-any.whl" / "pip")
    assert result.calls_to("apt-get") == result.calls_to("sudo") == []
    assert "installed circleback 0.1.0" in result.stdout


def test_install_without_a_venv_module_installs_with_pip_target(sandbox: Sandbox) -> None:
    sandbox.remove_fake("circleback")
    sandbox.add_fake("python3", FAKE_PYTHON3)

    result = sandbox.run("install.sh", install_env(FAKE_NO_VENV="1", FAKE_NO_PIP="1"))

    assert result.returncode == 0, result.stderr
    prefix = sandbox.home / ".cache" / "circleback" / "0.1.0"
    pip = next(c for c in result.calls_to("python3") if c[0].endswith("/pip"))
    assert pip[pip.index("--target") + 1] == str(prefix / "lib")
    wrapper = (prefix / "bin" / "circleback").read_text()
    assert wrapper.startswith("#!/bin/sh\n")
    assert "-m circleback" in wrapper
    assert "installed circleback 0.1.0" in result.stdout


def test_install_without_any_way_to_install_names_each_missing_piece(sandbox: Sandbox) -> None:
    sandbox.remove_fake("circleback")
    sandbox.add_fake("python3", FAKE_PYTHON3)
    for name in ("apt-get", "apk", "sudo", "uv"):
        sandbox.remove_fake(name)

    result = sandbox.run(
        "install.sh", install_env(FAKE_OLD_PYTHON="1", FAKE_PYTHON_VERSION="3.8.10")
    )

    assert result.returncode == 2
    assert "could not install circleback 0.1.0" in result.stderr
    assert "uv: not on PATH" in result.stderr
    assert "Python 3.8.10 is older than 3.10" in result.stderr
    assert "not root and no sudo" in result.stderr or "neither found" in result.stderr
    assert "CIRCLEBACK_SKIP_INSTALL" in result.stderr
    assert not (sandbox.home / ".cache" / "circleback" / "0.1.0").exists()


def test_install_with_nothing_at_all_says_python_is_missing(sandbox: Sandbox) -> None:
    for name in ("circleback", "python", "python3", "pip", "pip3", "uv", "pipx", "apt-get", "apk"):
        sandbox.remove_fake(name)

    result = sandbox.run("install.sh", install_env())

    assert result.returncode == 2
    assert "python3: not found" in result.stderr
    assert "Python 3.10 or newer" in result.stderr


def test_install_takes_the_package_from_where_it_is_told(sandbox: Sandbox) -> None:
    sandbox.add_fake("circleback", FAKE_CIRCLEBACK)  # on PATH, but the wrong version
    sandbox.add_fake("python3", FAKE_PYTHON3)
    source = "git+https://github.com/acme/circleback@v0.1.0"
    result = sandbox.run(
        "install.sh",
        install_env(
            FAKE_CIRCLEBACK_VERSION="0.0.9",
            PARAM_PACKAGE="  git+https://github.com/$GIT_ORG/circleback@v0.1.0 ",
            GIT_ORG="acme",
        ),
    )
    assert result.returncode == 0, result.stderr
    assert result.calls_to("python3")[-1][-1] == source
    assert "not hash-checked" in result.stdout
    assert "installed circleback 0.1.0" in result.stdout


def test_install_rejects_a_package_that_is_not_the_pinned_version(sandbox: Sandbox) -> None:
    sandbox.remove_fake("circleback")
    sandbox.add_fake("python3", FAKE_PYTHON3)
    result = sandbox.run(
        "install.sh",
        install_env(PARAM_PACKAGE="git+https://github.com/acme/circleback@v0.0.1"),
    )
    assert result.returncode == 2
    assert "does not report 0.1.0" in result.stderr


def test_install_of_an_unreleased_pin_refuses_pypi_by_name(sandbox: Sandbox) -> None:
    """Until the release writes hashes, "circleback" from PyPI would be whoever claimed it."""
    sandbox.remove_fake("circleback")
    sandbox.add_fake("python3", FAKE_PYTHON3)
    pins = (SCRIPTS / "pins.txt").read_text()

    result = sandbox.run("install.sh", install_env(PARAM_PINS=pins))

    if "--hash=sha256:" in pins:
        pytest.skip("the orb's pins are released (hash-checked)")
    assert result.returncode == 2
    assert "not released on PyPI yet" in result.stderr
    assert "package parameter" in result.stderr
    assert result.calls_to("python") == []


def test_install_of_another_version_than_the_pinned_one_needs_a_package(
    sandbox: Sandbox,
) -> None:
    sandbox.remove_fake("circleback")
    sandbox.add_fake("python3", FAKE_PYTHON3)

    result = sandbox.run("install.sh", install_env(PARAM_VERSION="0.2.0"))

    assert result.returncode == 2
    assert "pins circleback 0.1.0" in result.stderr
    assert "package parameter" in result.stderr
    assert result.calls_to("python") == []


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


def test_install_rebuilds_a_broken_cached_install_it_made(sandbox: Sandbox) -> None:
    sandbox.remove_fake("circleback")
    sandbox.add_fake("python3", FAKE_PYTHON3)
    prefix = sandbox.home / ".cache" / "circleback" / "0.1.0"
    (prefix / "bin").mkdir(parents=True)
    (prefix / ".circleback-install").write_text("")
    (prefix / "bin" / "circleback").symlink_to("/nonexistent/python-from-another-image")

    result = sandbox.run("install.sh", install_env())

    assert result.returncode == 0, result.stderr
    assert "installed circleback 0.1.0" in result.stdout


def test_install_never_deletes_a_directory_it_did_not_make(sandbox: Sandbox) -> None:
    sandbox.remove_fake("circleback")
    sandbox.add_fake("python3", FAKE_PYTHON3)
    keep = sandbox.home / "data" / "0.1.0"
    keep.mkdir(parents=True)
    (keep / "precious").write_text("mine")

    result = sandbox.run("install.sh", install_env(PARAM_INSTALL_DIR="~/data"))

    assert result.returncode == 2
    assert "not a circleback install" in result.stderr
    assert (keep / "precious").read_text() == "mine"


@pytest.mark.parametrize("version", ["../keep", "/etc", "0.1.0/../../keep", "..", " ../x "])
def test_install_refuses_a_version_that_would_climb_out_of_install_dir(
    sandbox: Sandbox, version: str
) -> None:
    sandbox.add_fake("python3", FAKE_PYTHON3)
    keep = sandbox.home / ".cache" / "keep"
    keep.mkdir(parents=True)
    (keep / "precious").write_text("mine")

    result = sandbox.run("install.sh", install_env(PARAM_VERSION=version))

    assert result.returncode == 2
    assert "is not a version number" in result.stderr
    assert (keep / "precious").read_text() == "mine"
    assert result.calls == []


def test_install_refuses_install_dir_root(sandbox: Sandbox) -> None:
    result = sandbox.run("install.sh", install_env(PARAM_INSTALL_DIR="/"))

    assert result.returncode == 2
    assert "install_dir" in result.stderr


def test_install_empty_version_means_the_pinned_one(sandbox: Sandbox) -> None:
    result = sandbox.run("install.sh", install_env(PARAM_VERSION=" "))

    assert result.returncode == 0, result.stderr
    assert "circleback 0.1.0 is already on PATH" in result.stdout


# -- cache_key.sh -------------------------------------------------------------------------


def cache_key(sandbox: Sandbox, **env: str) -> str:
    key_file = sandbox.root / "key"
    result = sandbox.run("cache_key.sh", {"PARAM_KEY_FILE": str(key_file), **env})
    assert result.returncode == 0, result.stderr
    return key_file.read_text()


def test_cache_key_covers_os_arch_python_version_and_pins(sandbox: Sandbox) -> None:
    import platform

    sandbox.add_fake("python3", FAKE_PYTHON3)
    key = cache_key(sandbox, PARAM_PINS="circleback==0.1.0 --hash=sha256:abc", PARAM_VERSION="")

    assert f"arch: {platform.machine()}" in key
    assert f"os: {platform.system()}" in key
    assert "python: 3.12.1 /usr" in key
    assert "circleback==0.1.0 --hash=sha256:abc" in key


@pytest.mark.parametrize(
    "change",
    [
        {"FAKE_PYTHON_VERSION": "3.11.9"},
        {"PARAM_PINS": "circleback==0.2.0"},
        {"PARAM_PACKAGE": "git+https://example/x@v0.1.0"},
    ],
)
def test_cache_key_changes_with_what_the_install_depends_on(
    sandbox: Sandbox, change: dict[str, str]
) -> None:
    sandbox.add_fake("python3", FAKE_PYTHON3)
    base = {"PARAM_PINS": "circleback==0.1.0"}

    assert cache_key(sandbox, **base) != cache_key(sandbox, **{**base, **change})


def test_cache_key_without_python_still_writes_a_key(sandbox: Sandbox) -> None:
    sandbox.remove_fake("python3")
    sandbox.remove_fake("python")

    assert "python: none" in cache_key(sandbox)


# -- every script: the token is never traced ------------------------------------------------

TOKEN = "tok-5e8f7a9c1b2d"
TOKEN_RUNS = {
    "approve.sh": {"PARAM_UPSTREAM_PIPELINE_ID": UPSTREAM, "PARAM_ALLOW_PROJECT": "gh/acme/*"},
    "trigger.sh": {"PARAM_PROJECT_SLUG": "gh/acme/project-b"},
    "check.sh": {},
    "sweep.sh": {"PARAM_PROJECT_SLUG": "gh/acme/project-a"},
}


@pytest.mark.parametrize("script", sorted(TOKEN_RUNS))
def test_an_inherited_set_x_never_prints_the_token(sandbox: Sandbox, script: str) -> None:
    write_state_file(sandbox.home)
    env = {**TOKEN_RUNS[script], "PARAM_TOKEN_VAR": "MY_TOKEN", "MY_TOKEN": TOKEN}

    result = sandbox.run(script, env, xtrace=True)  # sh -x, and SHELLOPTS=xtrace for bash

    assert result.returncode == 0, result.stderr
    assert result.tokens_seen_by("circleback") == [TOKEN]
    assert TOKEN not in result.stdout + result.stderr


@pytest.mark.parametrize("script", sorted(TOKEN_RUNS))
def test_a_bash_env_with_set_x_never_prints_the_token(tmp_path: Path, script: str) -> None:
    """Only bash reads BASH_ENV (not in POSIX mode, nor dash or busybox): bash runs this."""
    sandbox = make_sandbox(tmp_path, "bash")
    write_state_file(sandbox.home)
    bash_env = sandbox.root / "bash_env"
    bash_env.write_text("set -x\n")
    env = {**TOKEN_RUNS[script], "PARAM_TOKEN_VAR": "MY_TOKEN", "MY_TOKEN": TOKEN}

    result = sandbox.run(script, {**env, "BASH_ENV": str(bash_env)})

    assert result.returncode == 0, result.stderr
    assert result.tokens_seen_by("circleback") == [TOKEN]
    assert "+ " in result.stderr  # the trace was on: the check above is not vacuous
    assert TOKEN not in result.stdout + result.stderr


# -- $VARIABLES in string parameters ------------------------------------------------------


def test_string_parameters_get_env_subst_without_the_circleci_cli(sandbox: Sandbox) -> None:
    result = sandbox.run(
        "trigger.sh",
        trigger_env(
            PARAM_PROJECT_SLUG="gh/$ORG/${REPO}",
            PARAM_BRANCH="$RELEASE_BRANCH",
            ORG="acme",
            REPO="project-b",
            RELEASE_BRANCH="release/1.2",
        ),
    )

    assert result.returncode == 0, result.stderr
    (call,) = result.calls_to("circleback")
    assert call[:4] == ["trigger", "gh/acme/project-b", "--branch", "release/1.2"]


def test_string_parameters_use_circleci_env_subst_when_the_cli_is_there(
    sandbox: Sandbox,
) -> None:
    sandbox.add_fake("circleci", FAKE_CIRCLECI)

    result = sandbox.run("sweep.sh", sweep_env(PARAM_PROJECT_SLUG="gh/acme/$REPO"))

    assert result.returncode == 0, result.stderr
    assert ["env", "subst"] in result.calls_to("circleci")
    (call,) = result.calls_to("circleback")
    assert call[1] == "subst-by-circleci:gh/acme/$REPO"


def test_pipeline_parameters_are_never_env_substituted(sandbox: Sandbox) -> None:
    """The upstream id and the trigger's parameters carry pipeline parameters: whoever can
    trigger the pipeline must not be able to read the job's variables through them."""
    approve = sandbox.run(
        "approve.sh",
        {
            "PARAM_UPSTREAM_PIPELINE_ID": "$CIRCLE_TOKEN",
            "PARAM_ALLOW_PROJECT": "gh/acme/*",
            "CIRCLE_TOKEN": TOKEN,
        },
    )
    trigger = sandbox.run("trigger.sh", trigger_env(PARAM_PARAMETERS="who=${CIRCLE_TOKEN}"))

    assert approve.calls_to("circleback")[0][:3] == ["approve", "--pipeline-id", "$CIRCLE_TOKEN"]
    (call,) = [c for c in trigger.calls_to("circleback") if c[0] == "trigger"]
    assert call[call.index("--parameter") + 1] == "who=${CIRCLE_TOKEN}"
    assert TOKEN not in approve.stdout + trigger.stdout


@pytest.mark.parametrize(
    "value", ["$(touch pwned)", "`touch pwned`", "'; touch pwned; '", "x\ntouch pwned"]
)
def test_hostile_parameter_values_are_data_not_code(sandbox: Sandbox, value: str) -> None:
    for script, env in (
        ("approve.sh", {"PARAM_UPSTREAM_PIPELINE_ID": value, "PARAM_ALLOW_PROJECT": value}),
        ("trigger.sh", trigger_env(PARAM_BRANCH=value, PARAM_PARAMETERS=f"x={value}")),
        ("sweep.sh", sweep_env(PARAM_JOB_NAME=value)),
    ):
        sandbox.run(script, {"CIRCLE_TOKEN": "t", **env})
    assert not (sandbox.cwd / "pwned").exists()


# -- check.sh: required jobs --------------------------------------------------------------


def test_check_passes_each_required_job(sandbox: Sandbox) -> None:
    write_state_file(sandbox.home)

    result = sandbox.run(
        "check.sh", {"CIRCLE_TOKEN": "t", "PARAM_REQUIRE_JOB": "deploy, smoke-test\nlint"}
    )

    assert result.returncode == 0, result.stderr
    (call,) = result.calls_to("circleback")
    flags = [call[i + 1] for i, arg in enumerate(call) if arg == "--require-job"]
    assert flags == ["deploy", "smoke-test", "lint"]


def test_check_without_required_jobs_passes_no_flag(sandbox: Sandbox) -> None:
    write_state_file(sandbox.home)

    result = sandbox.run("check.sh", {"CIRCLE_TOKEN": "t", "PARAM_REQUIRE_JOB": " "})

    assert "--require-job" not in result.calls_to("circleback")[0]


# -- the command line printed before running ----------------------------------------------


def test_the_printed_command_line_is_quoted_as_a_shell_reads_it(sandbox: Sandbox) -> None:
    result = sandbox.run("sweep.sh", sweep_env(PARAM_JOB_NAME="it's"))

    assert result.returncode == 0, result.stderr
    assert "--job-name 'it'\\''s'" in result.stdout


def test_scripts_find_the_installed_cli_without_bash_env(sandbox: Sandbox) -> None:
    """sh (Alpine) never reads BASH_ENV: the link circleback/install leaves is used."""
    sandbox.remove_fake("circleback")
    link_dir = sandbox.home / ".circleback" / "bin"
    link_dir.mkdir(parents=True)
    (sandbox.root / "cli").write_text(FAKE_CIRCLEBACK)
    (sandbox.root / "cli").chmod(0o755)
    (link_dir / "circleback").symlink_to(sandbox.root / "cli")

    result = sandbox.run("sweep.sh", sweep_env())

    assert result.returncode == 0, result.stderr
    assert result.calls_to("circleback")[0][0] == "sweep"


def test_install_stops_when_an_installer_ran_and_failed(sandbox: Sandbox) -> None:
    """A hash mismatch or a network error is not fixed by another installer: say so."""
    sandbox.remove_fake("circleback")
    sandbox.add_fake("python3", FAKE_PYTHON3)

    result = sandbox.run("install.sh", install_env(FAKE_PIP_FAILS="1", FAKE_NO_PIP="1"))

    assert result.returncode == 3
    assert "pip install failed" in result.stderr
    assert "DO NOT MATCH THE HASHES" in result.stderr
    assert not any("urllib" in " ".join(c) for c in result.calls_to("python3"))
    assert not (sandbox.home / ".cache" / "circleback" / "0.1.0").exists()


def test_install_without_pins_needs_a_package(sandbox: Sandbox) -> None:
    sandbox.remove_fake("circleback")

    result = sandbox.run("install.sh", install_env(PARAM_PINS="", PARAM_VERSION="0.1.0"))

    assert result.returncode == 2
    assert "name no circleback release" in result.stderr
    assert result.calls == []
