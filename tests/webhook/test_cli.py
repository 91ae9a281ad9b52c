"""``circleback webhook install|list|remove`` and ``circleback serve``'s input checks."""

from __future__ import annotations

import pytest

from circleback import _cli
from circleback.emulator import Emulator
from tests.relay.world import FakeTime, Result
from tests.webhook.world import HOST, PROJECTS, SECRET, TOKEN, B

URL = "https://hooks.example.com/webhook"


class Cli:
    def __init__(self, emu: Emulator, capsys: pytest.CaptureFixture[str]) -> None:
        self.emu = emu
        self.capsys = capsys

    def __call__(self, *args: str) -> Result:
        self.capsys.readouterr()
        code = _cli.run(["--log-format", "console", *args])
        captured = self.capsys.readouterr()
        return Result(code, captured.out, captured.err)

    def hooks(self, slug: str = B) -> list[dict[str, object]]:
        from circleback.emulator.webhooks import project_id

        return [h.to_json() for h in self.emu.webhooks.in_scope(project_id(slug))]


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Cli:
    for name in ("CIRCLE_TOKEN", "CIRCLECI_API_KEY", "CI", "CIRCLEBACK_ALLOW_PROJECTS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CIRCLEBACK_TOKEN", TOKEN)
    monkeypatch.setenv("CIRCLEBACK_HOST", HOST)
    monkeypatch.setenv("CIRCLEBACK_WEBHOOK_SECRETS", f"{SECRET},whsec-old-one-0123456789")
    fake = FakeTime()
    emu = Emulator(projects=PROJECTS, tokens=(TOKEN,))
    monkeypatch.setattr(
        _cli, "RUNTIME", _cli.Runtime(transport=emu.transport(), sleep=fake.sleep, clock=fake.clock)
    )
    return Cli(emu, capsys)


def test_install_is_idempotent(cli: Cli) -> None:
    first = cli("webhook", "install", B, "--url", URL, "--json")
    second = cli("webhook", "install", B, "--url", URL + "/", "--json")

    assert (first.code, second.code) == (0, 0)
    assert first.json()["outcome"] == "created"
    assert second.json()["outcome"] == "already_installed"
    assert first.json()["webhook"]["id"] == second.json()["webhook"]["id"]
    hooks = cli.hooks()
    assert len(hooks) == 1
    assert hooks[0]["events"] == ["workflow-completed"]
    assert hooks[0]["url"] == URL


def test_install_signs_with_the_first_secret_and_never_prints_it(cli: Cli) -> None:
    result = cli("-v", "webhook", "install", B, "--url", URL)

    assert result.code == 0
    from circleback.emulator.webhooks import project_id

    (hook,) = cli.emu.webhooks.in_scope(project_id(B))
    assert hook.signing_secret == SECRET
    assert SECRET not in result.out + result.err
    assert TOKEN not in result.out + result.err


def test_install_whose_answer_was_lost_registers_once(cli: Cli) -> None:
    cli.emu.add_fault("lost_response", method="POST", path="/api/v2/webhook")

    result = cli("webhook", "install", B, "--url", URL, "--json")

    assert result.code == 0, result.err
    assert len(cli.hooks()) == 1


def test_install_refuses_plain_http_and_a_missing_secret(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain = cli("webhook", "install", B, "--url", "http://hooks.example.com/webhook")
    assert plain.code == 2
    assert "https" in plain.err

    monkeypatch.delenv("CIRCLEBACK_WEBHOOK_SECRETS")
    missing = cli("webhook", "install", B, "--url", URL)
    assert missing.code == 2
    assert "CIRCLEBACK_WEBHOOK_SECRETS" in missing.err
    assert cli.hooks() == []


def test_install_says_when_the_project_is_full(cli: Cli) -> None:
    for n in range(5):
        assert cli("webhook", "install", B, "--url", f"{URL}{n}").code == 0

    result = cli("webhook", "install", B, "--url", URL)

    assert result.code == 2
    assert "5 webhooks" in result.err


def test_install_on_an_unknown_project_is_not_found(cli: Cli) -> None:
    result = cli("webhook", "install", "gh/acme/nope", "--url", URL)
    assert result.code == 3
    assert "Traceback" not in result.err


def test_list_and_remove(cli: Cli) -> None:
    cli("webhook", "install", B, "--url", URL)
    cli("webhook", "install", B, "--url", URL + "2", "--name", "other")

    listed = cli("webhook", "list", B, "--json").json()["webhooks"]
    assert sorted(h["name"] for h in listed) == ["circleback", "other"]

    assert cli("webhook", "remove", B).code == 0
    assert [h["name"] for h in cli.hooks()] == ["other"]
    again = cli("webhook", "remove", B)
    assert again.code == 0
    assert "nothing to remove" in again.err
    assert cli("webhook", "remove", B, "--url", URL + "2").code == 0
    assert cli.hooks() == []


def test_serve_refuses_to_start_without_secrets_or_allow_list(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    no_allow = cli("serve")
    assert no_allow.code == 2
    assert "--allow-project" in no_allow.err

    monkeypatch.setenv("CIRCLEBACK_WEBHOOK_SECRETS", " , ")
    no_secret = cli("serve", "--allow-project", "gh/acme/*")
    assert no_secret.code == 2
    assert "signing secret" in no_secret.err

    # With a secret, so that only the budget can be what is refused.
    monkeypatch.setenv("CIRCLEBACK_WEBHOOK_SECRETS", SECRET)
    for budget in ("12", "10", "0", "-1"):
        bad_budget = cli("serve", "--allow-project", "gh/acme/*", "--budget", budget)
        assert bad_budget.code == 2
        assert "--budget" in bad_budget.err


@pytest.mark.parametrize(
    "command",
    [
        ("serve", "--allow-project", "gh/acme/*"),
        ("webhook", "install", "gh/acme/b", "--url", "https://hooks.example.com/webhook"),
    ],
)
def test_a_signing_secret_too_short_to_redact_is_refused_unquoted(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, command: tuple[str, ...]
) -> None:
    # Why: a secret under the redaction floor (16 characters) was accepted, yet redaction
    # skips values that short, so a log line holding it would show it.
    monkeypatch.setenv("CIRCLEBACK_WEBHOOK_SECRETS", f"{SECRET},hunter2")
    result = cli(*command)
    assert result.code == 2
    assert "Secret 2 in CIRCLEBACK_WEBHOOK_SECRETS" in result.err
    assert "hunter2" not in result.err + result.out
    assert "Traceback" not in result.err
    assert cli.hooks() == []


def test_serve_without_the_extra_says_how_to_install_it(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "uvicorn", None)
    result = cli("serve", "--allow-project", "gh/acme/*")

    assert result.code == 2
    assert "circleback[serve]" in result.err
    assert "Traceback" not in result.err


def test_demo_webhook_without_the_extra_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import io
    import sys

    from circleback.demo import run_demo

    monkeypatch.setitem(sys.modules, "starlette", None)
    out = io.StringIO()
    assert run_demo(webhook=True, out=out) == 2
    assert "circleback[serve]" in out.getvalue()


def test_install_again_with_a_new_first_secret_rotates_the_webhooks_secret(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    # docs/webhooks.md's rotation: put the new secret first, install again, drop the old.
    from circleback.emulator.webhooks import project_id

    assert cli("webhook", "install", B, "--url", URL).code == 0
    monkeypatch.setenv("CIRCLEBACK_WEBHOOK_SECRETS", f"whsec-brand-new-0123456789,{SECRET}")

    again = cli("webhook", "install", B, "--url", URL, "--json")

    assert again.code == 0, again.err
    (hook,) = cli.emu.webhooks.in_scope(project_id(B))
    assert hook.signing_secret == "whsec-brand-new-0123456789"
    assert "whsec-brand-new" not in again.out + again.err


def test_install_over_a_webhook_without_workflow_completed_subscribes_it(cli: Cli) -> None:
    # A webhook someone made for job-completed only would never tell the receiver anything.
    from pydantic import SecretStr

    from circleback.client import CircleCIClient
    from circleback.webhook import install

    with CircleCIClient(token=TOKEN, host=HOST, transport=cli.emu.transport()) as client:
        pid = client.get_project_id(B)
        client.create_webhook(
            pid, name="jobs", url=URL, events=["job-completed"], signing_secret=SecretStr("s")
        )
        result = install(client, B, url=URL, secret=SECRET)

    assert result.outcome.value == "already_installed"
    (hook,) = cli.hooks()
    assert set(hook["events"]) == {"job-completed", "workflow-completed"}  # type: ignore[arg-type]


def test_serve_on_a_port_it_cannot_use_is_a_configuration_error(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    monkeypatch.setenv("CIRCLEBACK_WEBHOOK_SECRETS", SECRET)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])

        busy = cli("serve", "--allow-project", "gh/acme/*", "--port", port)

    assert busy.code == 2
    assert f"127.0.0.1:{port}" in busy.err
    assert "--port" in busy.err
    for bad in ("99999", "-1"):
        result = cli("serve", "--allow-project", "gh/acme/*", "--port", bad)
        assert result.code == 2, result.err
        assert "--port" in result.err
        assert "Traceback" not in result.err
        assert "bug" not in result.err
