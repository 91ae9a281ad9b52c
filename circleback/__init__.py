"""circleback: a CircleCI pipeline triggers another, waits for it for free, acts on its result."""

import logging

from circleback._version import __version__

# Silent unless the application configures logging (the CLI does).
logging.getLogger("circleback").addHandler(logging.NullHandler())

__all__ = ["__version__"]
