"""What the README says about running things matches what running them does."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text(encoding="utf-8")


def _paragraph_before(command: str) -> str:
    before = README[: README.index(command)]
    return before.rsplit("\n\n", 2)[-2]


def test_pytest_is_not_said_to_run_the_linters_unless_it_does() -> None:
    pyproject = (REPO / "pyproject.toml").read_text()
    addopts = " ".join(re.findall(r"^addopts\s*=\s*(.*)$", pyproject, re.MULTILINE))
    runs_linters = "--ruff" in addopts or "--mypy" in addopts
    said = _paragraph_before("pip install -q -e '.[test]' && pytest")
    claims = re.search(r"with `ruff` and `mypy", said) is not None
    assert claims is runs_linters, said
    ci = (REPO / ".ci" / "run").read_text()
    assert "ruff check ." in ci
    assert "mypy --strict circleback" in ci


def test_timings_are_measured_figures_not_round_hopes() -> None:
    demo = _paragraph_before("pip install -q -e . && circleback demo")
    suite = _paragraph_before("pip install -q -e '.[test]' && pytest")
    for text in (demo, suite):
        assert "about a second" not in text
        assert "about a minute" not in text
        assert "measured" in text
    assert "time circleback demo" in demo
    assert "time pytest" in suite


def test_ci_installs_the_browser_the_html_tests_need() -> None:
    ci = (REPO / ".ci" / "run").read_text()
    (line,) = [x for x in ci.splitlines() if "apt-get install" in x]
    assert "chromium" in line.split()
