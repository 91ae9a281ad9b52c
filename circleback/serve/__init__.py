"""``circleback serve``: release A from B's own CircleCI webhook, with no callback job in B.

- :mod:`circleback.serve.signature`: ``circleci-signature`` verification (HMAC-SHA256).
- :mod:`circleback.serve.receiver`: what one delivery makes the receiver do (no state).
- :mod:`circleback.serve.evidence`: what the API says about B and A (completion, link).
- :mod:`circleback.serve.app`: the Starlette ASGI app, served by uvicorn.

Starlette and uvicorn are needed only here: install ``circleback[serve]``.
"""

from circleback import errors


def require_extra() -> None:
    """Fail with a clear message when Starlette or uvicorn is missing (exit 2, no traceback)."""
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise errors.ConfigurationError(
            f"The webhook receiver needs the 'serve' extra ({exc.name} is not installed).",
            hint="pip install 'circleback[serve]'",
        ) from None
