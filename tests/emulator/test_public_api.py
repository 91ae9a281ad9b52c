"""The package's public surface is what __all__ says, sorted, and nothing is missing."""

from __future__ import annotations

import circleback.emulator as emulator


def test_all_is_sorted_and_every_name_exists() -> None:
    assert emulator.__all__ == sorted(emulator.__all__)
    for name in emulator.__all__:
        assert hasattr(emulator, name), name


def test_public_classes_say_why_they_exist() -> None:
    for name in emulator.__all__:
        obj = getattr(emulator, name)
        if isinstance(obj, type):
            assert obj.__doc__, name
