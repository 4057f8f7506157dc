"""Azure Container Apps dynamic session pools (and ``codeinterp serve``) as a backend."""

from .auth import SESSIONS_SCOPE, CredentialTokenProvider, TokenProvider
from .backend import MAX_UPLOAD_BYTES, AzureSessionsBackend
from .dialects import CURRENT_API_VERSIONS, DEFAULT_API_VERSION, LEGACY_API_VERSIONS
from .transport import RetryPolicy

__all__ = [
    "CURRENT_API_VERSIONS",
    "DEFAULT_API_VERSION",
    "LEGACY_API_VERSIONS",
    "MAX_UPLOAD_BYTES",
    "SESSIONS_SCOPE",
    "AzureSessionsBackend",
    "CredentialTokenProvider",
    "RetryPolicy",
    "TokenProvider",
]
