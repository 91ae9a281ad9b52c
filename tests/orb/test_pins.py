"""orbs/circleback/pin.py: the release writes the hashes the orb pins, and CI checks them."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from collections.abc import Callable
from types import ModuleType

import pytest
from orb_helpers import PINS, REPO

from circleback import __version__

PIN_SCRIPT = REPO / "orbs" / "circleback" / "pin.py"

COMPILED = f"""\
anyio==4.16.0 \\
    --hash=sha256:59bb03251907983d1603d27c3087ddb1e93299ea2163adcdba37899a4fb12ffb
circleback=={__version__} \\
    --hash=sha256:{"a" * 64} \\
    --hash=sha256:{"b" * 64}
exceptiongroup==1.3.0 ; python_full_version < '3.11' \\
    --hash=sha256:{"c" * 64}
"""


def load_pin() -> ModuleType:
    spec = importlib.util.spec_from_file_location("orb_pin", PIN_SCRIPT)
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def bootstrap_line() -> str:
    return next(line for line in PINS.read_text().splitlines() if "bootstrap-pip" in line)


def test_check_passes_on_the_orbs_pins() -> None:
    result = subprocess.run(
        [sys.executable, str(PIN_SCRIPT), "--check"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


def test_a_release_renders_hash_pinned_requirements_that_check() -> None:
    pin = load_pin()

    text = pin.render(COMPILED, bootstrap_line())

    assert "# status: released" in text
    assert f"circleback=={__version__} \\\n    --hash=sha256:{'a' * 64}" in text
    assert bootstrap_line() in text
    assert pin.check(text, __version__) == []


def test_check_refuses_a_released_pin_without_hashes() -> None:
    pin = load_pin()
    text = pin.render(COMPILED + "httpx==0.28.1\n", bootstrap_line())

    assert pin.check(text, __version__) == ["released pins without hashes: httpx==0.28.1"]


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda t: t.replace(f"circleback=={__version__}", "circleback==9.9.9"), "9.9.9"),
        (lambda t: t.replace("# bootstrap-pip", "# pip"), "bootstrap-pip"),
    ],
)
def test_check_finds_a_wrong_version_or_a_missing_bootstrap(
    change: Callable[[str], str], problem: str
) -> None:
    pin = load_pin()
    text = change(pin.render(COMPILED, bootstrap_line()))

    assert any(problem in p for p in pin.check(text, __version__))


def test_unreleased_pins_must_not_carry_hashes() -> None:
    pin = load_pin()
    text = PINS.read_text()
    if "# status: unreleased" not in text:
        pytest.skip("the orb's pins are released")

    assert pin.check(text + "--hash=sha256:00\n", __version__) == ["unreleased pins carry hashes"]


def test_the_unreleased_template_is_what_the_orb_carries_before_a_release() -> None:
    pin = load_pin()
    text = pin.render_unreleased(__version__, bootstrap_line())

    assert pin.check(text, __version__) == []
    if "# status: unreleased" in PINS.read_text():
        assert text == PINS.read_text()
