"""Bearer tokens for session pools: one cached Entra ID token per backend, refreshed before it expires."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from ..errors import AuthenticationError, ConfigurationError

__all__ = ["SESSIONS_SCOPE", "CredentialTokenProvider", "TokenCredentialLike", "TokenProvider"]

#: The scope (audience ``https://dynamicsessions.io``) session-pool tokens are issued for.
SESSIONS_SCOPE = "https://dynamicsessions.io/.default"

#: Anything that returns a bearer token string when called.
TokenProvider = Callable[[], str]


class TokenCredentialLike(Protocol):
    """What we need from an azure-identity ``TokenCredential``: ``get_token(scope) -> AccessToken``."""

    def get_token(self, *scopes: str, **kwargs: Any) -> Any: ...


class CredentialTokenProvider:
    """Tokens from an azure-identity credential, fetched once and refreshed ``refresh_margin`` seconds early.

    With no credential, ``DefaultAzureCredential()`` is created on the first call (not at construction, so a
    backend that is never used never touches Azure). Safe to call from several threads.
    """

    def __init__(
        self, credential: TokenCredentialLike | None = None, *, scope: str = SESSIONS_SCOPE, refresh_margin: float = 300
    ) -> None:
        self._credential = credential
        self.scope = scope
        self.refresh_margin = refresh_margin
        self._token: Any = None  # the credential's AccessToken (token, expires_on)
        self._lock = threading.Lock()

    def __call__(self) -> str:
        with self._lock:
            token = self._token
            if token is None or token.expires_on - self.refresh_margin <= time.time():
                token = self._fetch()
                self._token = token
            return str(token.token)

    def invalidate(self) -> None:
        """Forget the cached token (the service rejected it), so the next call fetches a new one."""
        with self._lock:
            self._token = None

    def _fetch(self) -> Any:
        if self._credential is None:
            self._credential = _default_credential()
        try:
            return self._credential.get_token(self.scope)
        except Exception as exc:  # azure-identity raises ClientAuthenticationError and friends
            raise AuthenticationError(
                f"Could not get a token for {self.scope} from {type(self._credential).__name__}: {exc}. "
                "Sign in (az login), set a managed identity or service principal, or pass token_provider=."
            ) from exc


def _default_credential() -> TokenCredentialLike:
    try:
        from azure.identity import DefaultAzureCredential
    except ImportError as exc:
        raise ConfigurationError(
            "Azure session pools need azure-identity for sign-in: pip install 'llama-index-tools-codeinterp[azure]'"
            " (or pass credential= or token_provider= yourself)."
        ) from exc
    return DefaultAzureCredential()
