"""HTTP to a session pool: bearer auth, a timeout on every call, safe retries, errors that name the fix."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import IO, Any

import requests
from urllib3.exceptions import NewConnectionError
from urllib3.util.retry import Retry

from ..errors import (
    AuthenticationError,
    FileTooLargeError,
    PermissionDeniedError,
    RateLimitError,
    ServiceError,
    ServiceUnavailableError,
    SessionNotFoundError,
)

__all__ = ["Body", "RetryPolicy", "SessionsTransport"]

log = logging.getLogger(__name__)

#: A request body: a fresh readable stream and its headers. Called again for every attempt.
Body = Callable[[], tuple[IO[bytes] | bytes, Mapping[str, str]]]


@dataclass(frozen=True)
class RetryPolicy:
    """When and how often to try a call again.

    Only calls that cannot run code twice are retried: reads, deletes and uploads (an upload overwrites the
    same file). An execute is re-sent only when the service provably did not take it: the connection could
    not be opened, or the service answered 429 (throttled before running anything).
    """

    attempts: int = 4
    backoff: float = 0.5
    max_backoff: float = 10.0
    #: A ``Retry-After`` longer than this is not waited for; the error is raised at once.
    max_retry_after: float = 60.0
    statuses: frozenset[int] = frozenset({429, 502, 503, 504})

    def delay(self, attempt: int, response: requests.Response | None) -> float | None:
        """Seconds to wait before attempt ``attempt + 1``, or ``None`` to give up."""
        if attempt >= self.attempts:
            return None
        header = response.headers.get("Retry-After") if response is not None else None
        if header:
            try:
                wait = Retry().parse_retry_after(header)
            except Exception:  # noqa: BLE001 - a malformed header falls back to backoff
                wait = None
            if wait is not None:
                return None if wait > self.max_retry_after else wait
        base = min(self.max_backoff, self.backoff * 2 ** (attempt - 1))
        return base * (0.5 + random.random() / 2)  # jitter: many agents must not retry in lockstep


class SessionsTransport:
    """One pool endpoint over a ``requests.Session``."""

    def __init__(
        self,
        endpoint: str,
        token_provider: Callable[[], str],
        *,
        session: requests.Session | None = None,
        connect_timeout: float = 10.0,
        read_timeout: float = 60.0,
        retry: RetryPolicy | None = None,
        user_agent: str = "",
    ) -> None:
        self.endpoint = endpoint
        self.token_provider = token_provider
        self._owns_session = session is None
        self.http = session or requests.Session()
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.retry = retry or RetryPolicy()
        self.user_agent = user_agent

    def close(self) -> None:
        if self._owns_session:
            self.http.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str],
        what: str,
        json: Any = None,
        body: Body | None = None,
        stream: bool = False,
        read_timeout: float | None = None,
        runs_code: bool = False,
        replayable: bool = True,
        not_found: Callable[[str], Exception] | None = None,
    ) -> requests.Response:
        """Send one call (with retries where safe) and return a 2xx response, or raise a mapped error.

        ``what`` names the operation in error messages ("running code", "uploading data.csv").
        ``runs_code`` marks an execute: it is never re-sent once the service may have received it.
        ``replayable`` is False for a body that cannot be read twice (a non-seekable stream).
        """
        url = f"{self.endpoint}/{path}"
        timeout = (self.connect_timeout, read_timeout or self.read_timeout)
        attempt = 0
        # A cached credential token the service rejects (revoked, clock skew) is dropped and fetched again,
        # once: a 401 never ran anything, so even an execute may be re-sent.
        refresh = getattr(self.token_provider, "invalidate", None)
        while True:
            attempt += 1
            headers = {"Authorization": f"Bearer {self.token_provider()}"}
            if self.user_agent:
                headers["User-Agent"] = self.user_agent
            data: Any = None
            if body is not None:
                data, extra = body()
                headers.update(extra)
            try:
                response = self.http.request(
                    method, url, params=params, json=json, data=data, headers=headers, timeout=timeout, stream=stream
                )
            except requests.RequestException as exc:
                never_sent = _connection_never_opened(exc)
                wait = self.retry.delay(attempt, None) if (never_sent or (replayable and not runs_code)) else None
                if wait is None:
                    raise _transport_error(exc, what, url, runs_code=runs_code and not never_sent) from exc
                log.info("%s failed (%s); retrying in %.1f s", what, type(exc).__name__, wait)
                time.sleep(wait)
                continue
            if response.status_code < 400:
                return response
            if response.status_code == 401 and callable(refresh) and replayable:
                refresh()
                refresh = None
                response.close()
                continue
            retryable = (
                replayable
                and response.status_code in self.retry.statuses
                and (not runs_code or response.status_code == 429)
            )
            wait = self.retry.delay(attempt, response) if retryable else None
            if wait is None:
                try:
                    raise _status_error(response, what, not_found)
                finally:
                    response.close()
            log.info("%s got HTTP %s; retrying in %.1f s", what, response.status_code, wait)
            response.close()
            time.sleep(wait)


def _connection_never_opened(exc: BaseException) -> bool:
    """True when no byte of the request can have reached the service (so even an execute may be re-sent)."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, NewConnectionError):
            return True
        reason = getattr(current, "reason", None)
        nested = current.args[0] if current.args and isinstance(current.args[0], BaseException) else None
        current = reason if isinstance(reason, BaseException) else nested or current.__cause__ or current.__context__
    return False


def _transport_error(exc: requests.RequestException, what: str, url: str, *, runs_code: bool) -> ServiceError:
    host = url.split("?", 1)[0]
    if isinstance(exc, requests.ConnectTimeout) or _connection_never_opened(exc):
        return ServiceUnavailableError(
            f"Could not connect to the session pool at {host} while {what}: {exc}. Check the pool management "
            "endpoint, your network (proxy, firewall), and that the pool exists."
        )
    if isinstance(exc, requests.ReadTimeout):
        if runs_code:
            return ServiceUnavailableError(
                f"The session pool did not answer while {what} within the client's read timeout. The code may "
                "still be running or may have run: check the session's state before running it again, or raise "
                "timeout= for long computations."
            )
        return ServiceUnavailableError(f"The session pool did not answer in time while {what}; try again later.")
    if runs_code:
        return ServiceUnavailableError(
            f"The connection to the session pool broke while {what} ({type(exc).__name__}: {exc}). The code may or "
            "may not have run; it was not re-sent. Check the session's state before running it again."
        )
    return ServiceUnavailableError(f"The connection to the session pool failed while {what}: {exc}. Try again later.")


def _service_detail(response: requests.Response) -> tuple[str | None, str]:
    """The service's error code and message (``x-ms-error-code`` / ``{"error": {"code", "message"}}``)."""
    code = response.headers.get("x-ms-error-code")
    message = ""
    try:
        payload = response.json()
    except ValueError:
        payload = None
    if isinstance(payload, dict):
        error = payload.get("error")
        if isinstance(error, dict):
            code = code or (str(error["code"]) if error.get("code") else None)
            message = str(error.get("message") or "")
        elif isinstance(payload.get("message"), str):
            message = payload["message"]
    elif not payload:
        message = (response.text or "").strip()
    # The message ends up in an exception the model may read: keep it short whatever the service sent.
    return (code[:100] if code else None), _shorten(message, 500)


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _status_error(response: requests.Response, what: str, not_found: Callable[[str], Exception] | None) -> Exception:
    status = response.status_code
    code, message = _service_detail(response)
    said = f" The service said: {code + ': ' if code else ''}{message}".rstrip() if (code or message) else ""
    said = said if said.endswith((".", "!", "?")) or not said else said + "."
    head = f"HTTP {status} while {what}."
    if status == 401:
        return AuthenticationError(
            f"{head} The session pool rejected the bearer token: it is missing, expired, or for the wrong audience "
            "(it must be issued for https://dynamicsessions.io, scope https://dynamicsessions.io/.default). Check "
            f"the credential or token_provider you passed.{said}",
            status_code=status,
            code=code,
        )
    if status == 403:
        return PermissionDeniedError(
            f"{head} The identity is signed in but may not use this pool: assign it the 'Azure ContainerApps "
            f"Session Executor' role on the session pool.{said}",
            status_code=status,
            code=code,
        )
    if status == 404:
        if not_found is not None:
            return not_found(said)
        return SessionNotFoundError(
            f"{head} The session or pool was not found: the session may have expired after its idle cooldown "
            f"(its state and files are gone), the pool may be full, or the endpoint may be wrong.{said}",
            status_code=status,
            code=code,
        )
    if status == 413:
        return FileTooLargeError(
            f"{head} The file is over the session pool's upload limit (128 MB). Split or compress it.{said}"
        )
    if status == 429:
        return RateLimitError(
            f"{head} The session pool is throttling requests or has no free sessions. Wait and retry, and delete "
            f"sessions you no longer use (close() the backend).{said}",
            status_code=status,
            code=code,
        )
    if status >= 500:
        return ServiceUnavailableError(
            f"{head} The session pool had a server error; try again later.{said}", status_code=status, code=code
        )
    return ServiceError(f"{head} The session pool refused the request.{said}", status_code=status, code=code)
