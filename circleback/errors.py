"""Every error circleback raises, as one tree.

Each error carries a ``hint``: one line telling a human what to do next. The CLI is the
only place that turns an error into a message and an exit code (``exit_code`` below).

::

    CirclebackError                    base; never raised itself
    ├── ConfigurationError             bad input or settings, found before any request (exit 2)
    ├── TransportError                 no usable HTTP response after retries (exit 3)
    │   └── RequestTimeout             the server did not answer in time
    │       └── DeadlinePassed         the caller's deadline passed mid-request (exit 3)
    ├── APIError                       CircleCI answered with an error status (exit 3)
    │   ├── AuthenticationError        401: token missing, wrong or of the wrong kind
    │   ├── PermissionDenied           403: the token cannot reach that resource
    │   ├── NotFound                   404: no such project, pipeline, workflow or job
    │   ├── RateLimited                429 after every retry was spent
    │   └── ServerError                5xx after every retry was spent
    ├── UnexpectedResponse             a 2xx whose body is not what the API documents (exit 3)
    │   ├── NotCreated                 ``pipeline/run`` answered 200: no pipeline was created
    │   └── ResponseTooLarge           the answer is over circleback's size cap (exit 3)
    ├── PaginationLoop                 a list endpoint repeated a page token (exit 3)
    │   └── ListTooLong                a list went past circleback's page or item cap
    ├── DownstreamFailed               the downstream pipeline ended unsuccessfully (exit 1)
    └── WaitTimeout                    gave up waiting for the downstream pipeline (exit 4)
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_DOWNSTREAM_FAILED = 1
EXIT_USAGE = 2
EXIT_API = 3
EXIT_TIMEOUT = 4


class CirclebackError(Exception):
    """Base of every circleback error: a message and a one-line hint for humans."""

    exit_code: int = EXIT_API
    default_hint: str = ""
    outcome_unknown: bool = False
    """True when the failed request may have been carried out anyway (sent, then no answer,
    a 5xx, or an unreadable 2xx): a caller must look before repeating a create."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint if hint is not None else self.default_hint

    def __str__(self) -> str:
        return self.message


class ConfigurationError(CirclebackError):
    """Raised for bad input or settings, always before any request is sent."""

    exit_code = EXIT_USAGE
    default_hint = "Check the command's arguments and environment (circleback COMMAND --help)."


class TransportError(CirclebackError):
    """Raised when no HTTP response could be had, after every permitted retry."""

    default_hint = "Check the network and CIRCLEBACK_HOST, then run the command again."


class RequestTimeout(TransportError):
    """Raised when the server did not answer within the request timeout, after retries."""

    default_hint = "CircleCI is slow or unreachable; run the command again later."


class DeadlinePassed(RequestTimeout):
    """Raised when the deadline of the work under way (``CircleCIClient.deadline``) passes.

    The request in flight is abandoned and nothing is retried; ``status`` reports it as a
    timeout (exit 4), other commands as an API error (exit 3).
    """

    default_hint = (
        "CircleCI, or whatever CIRCLEBACK_HOST points at, answered too slowly; run the "
        "command again later."
    )


class APIError(CirclebackError):
    """Raised when CircleCI answers with an error status; ``status_code`` says which."""

    default_hint = "See the message from CircleCI above."

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        method: str = "",
        path: str = "",
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.status_code = status_code
        self.method = method
        self.path = path


class AuthenticationError(APIError):
    """Raised on 401: the token is missing, wrong, revoked, or a project token."""

    default_hint = "Set CIRCLEBACK_TOKEN (or CIRCLE_TOKEN) to a valid CircleCI personal API token."


class PermissionDenied(APIError):
    """Raised on 403: the token's user may not do this to this project."""

    default_hint = "Use a token of a user with write access to the project."


class NotFound(APIError):
    """Raised on 404: the project, pipeline, workflow or job does not exist or is hidden."""

    default_hint = (
        "Check the slug or id; CircleCI also answers 404 when the token cannot see the project."
    )


class RateLimited(APIError):
    """Raised on 429 once the retry budget is spent."""

    default_hint = "CircleCI is rate limiting this token; wait a few minutes and run again."


class ServerError(APIError):
    """Raised on 5xx once the retry budget is spent."""

    default_hint = "CircleCI is having trouble; check status.circleci.com and run again."


class UnexpectedResponse(CirclebackError):
    """Raised when a success status carries a body the API does not document."""

    default_hint = (
        "A proxy may be in the way, or CIRCLEBACK_HOST points at something that is not CircleCI."
    )


class NotCreated(UnexpectedResponse):
    """Raised when ``pipeline/run`` answers 200: CircleCI chose not to create a pipeline."""

    default_hint = (
        "CircleCI did not create the pipeline (for example [ci skip] in the commit message)."
    )


class ResponseTooLarge(UnexpectedResponse):
    """Raised when an answer's decoded body is over its cap (``Limits``), after retries."""

    default_hint = (
        "CircleCI sends nothing this large: a proxy or a server that is not CircleCI is "
        "answering. Check CIRCLEBACK_HOST."
    )


class PaginationLoop(CirclebackError):
    """Raised when a list endpoint hands back a page token it already gave."""

    default_hint = "The API repeated a page; run the command again, and report it if it persists."


class ListTooLong(PaginationLoop):
    """Raised when a list goes past the pages or items circleback reads of it (``Limits``)."""

    default_hint = (
        "CircleCI's lists are far shorter: a server handing out page tokens forever is "
        "answering. Check CIRCLEBACK_HOST, and report it if it is CircleCI."
    )


class DownstreamFailed(CirclebackError):
    """Raised when a downstream pipeline finished, but not successfully."""

    exit_code = EXIT_DOWNSTREAM_FAILED
    default_hint = "Open the downstream pipeline's failed jobs (links above) to see why."


class WaitTimeout(CirclebackError):
    """Raised when a wait passes its deadline before the downstream pipeline finished."""

    exit_code = EXIT_TIMEOUT
    default_hint = "Raise --timeout, or look at why the downstream pipeline is still running."
