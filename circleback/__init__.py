"""circleback: one CircleCI pipeline triggers another, waits for it at no cost, acts on its result."""

from circleback._version import __version__

__all__ = ["__version__"]
