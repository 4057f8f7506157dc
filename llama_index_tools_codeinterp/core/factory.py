"""Choosing a backend from constructor arguments and the environment."""

from __future__ import annotations

import os
from typing import Any

from .backend import Backend

__all__ = ["POOL_ENDPOINT_ENV", "make_backend"]

#: The environment variable LlamaIndex's Azure tool spec reads the pool endpoint from.
POOL_ENDPOINT_ENV = "AZURE_POOL_MANAGEMENT_ENDPOINT"


def make_backend(
    *, pool_management_endpoint: str | None = None, session_id: str | None = None, **options: Any
) -> Backend:
    """An Azure session-pool backend when an endpoint is given (or set in the environment), else a local one."""
    endpoint = pool_management_endpoint or os.environ.get(POOL_ENDPOINT_ENV)
    if endpoint:
        from .azure import AzureSessionsBackend

        return AzureSessionsBackend(pool_management_endpoint=endpoint, session_id=session_id, **options)
    from .local import LocalKernelBackend

    return LocalKernelBackend(session_id=session_id, **options)
