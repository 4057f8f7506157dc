"""The exception tree. Every message says what went wrong *and* what to do about it.

A Python exception raised by the user's code is **not** an exception here: it is data
(:class:`~llama_index_tools_codeinterp.core.models.ExecutionError` on the result). These classes are for
problems with the interpreter itself, its inputs, or the service behind it::

    CodeInterpreterError
    ├── ConfigurationError (ValueError) bad constructor arguments, missing endpoint, sandbox unavailable
    ├── InvalidPathError (ValueError) a path that leaves /mnt/data or is not a valid file name
    ├── RemoteFileNotFoundError (FileNotFoundError)
    ├── HostPathNotAllowedError (PermissionError)  an LLM-invoked tool touched a host path not allowed
    ├── FileTooLargeError             an upload over the backend's size limit
    ├── SessionClosedError            the backend was closed
    ├── SessionLimitError             no room for another session (pool or server full)
    ├── KernelError                   the local kernel could not be started or reached
    └── ServiceError                  an HTTP-level failure of a session-pool service
        ├── AuthenticationError       401
        ├── PermissionDeniedError     403
        ├── SessionNotFoundError      404
        ├── RateLimitError            429
        └── ServiceUnavailableError   5xx, connection failures, timeouts
"""

from __future__ import annotations

__all__ = [
    "AuthenticationError",
    "CodeInterpreterError",
    "ConfigurationError",
    "FileTooLargeError",
    "HostPathNotAllowedError",
    "InvalidPathError",
    "KernelError",
    "PermissionDeniedError",
    "RateLimitError",
    "RemoteFileNotFoundError",
    "ServiceError",
    "ServiceUnavailableError",
    "SessionClosedError",
    "SessionLimitError",
    "SessionNotFoundError",
]


class CodeInterpreterError(Exception):
    """Base class of every error this package raises."""


class ConfigurationError(CodeInterpreterError, ValueError):
    """The interpreter was configured in a way that cannot work."""


class InvalidPathError(CodeInterpreterError, ValueError):
    """A session path is empty, malformed, or resolves outside ``/mnt/data``."""


class RemoteFileNotFoundError(CodeInterpreterError, FileNotFoundError):
    """No such file in the session's ``/mnt/data``."""


class HostPathNotAllowedError(CodeInterpreterError, PermissionError):
    """A tool call from the LLM named a host path outside the directories the developer allowed."""


class FileTooLargeError(CodeInterpreterError):
    """An upload is larger than the backend accepts."""


class SessionClosedError(CodeInterpreterError):
    """The session was closed; create a new backend (or tool spec) to continue."""


class SessionLimitError(CodeInterpreterError):
    """No more sessions can be started right now."""


class KernelError(CodeInterpreterError):
    """The local Jupyter kernel could not be started or stopped responding outside of a run."""


class ServiceError(CodeInterpreterError):
    """An HTTP-level failure talking to a session-pool service.

    ``status_code`` is the HTTP status (``None`` for connection failures), ``code`` the service's
    ``x-ms-error-code`` / ``error.code`` when it sent one.
    """

    def __init__(self, message: str, *, status_code: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code


class AuthenticationError(ServiceError):
    """401: the bearer token was missing, expired, or for the wrong audience."""


class PermissionDeniedError(ServiceError):
    """403: the identity lacks the *Azure ContainerApps Session Executor* role on the pool."""


class SessionNotFoundError(ServiceError):
    """404: the session expired after its cooldown, the pool is full, or the endpoint is wrong."""


class RateLimitError(ServiceError):
    """429: too many requests or sessions; back off or delete sessions you no longer use."""


class ServiceUnavailableError(ServiceError):
    """5xx, a dropped connection or a timeout: the service could not answer."""
