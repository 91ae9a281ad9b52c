"""circleback: a CircleCI pipeline triggers another, waits for it for free, acts on its result."""

from circleback._version import __version__

__all__ = ["__version__"]
