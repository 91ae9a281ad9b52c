"""``python -m circleback``: the same as the ``circleback`` command."""

from circleback._cli import main

main()
