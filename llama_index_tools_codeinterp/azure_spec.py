"""A drop-in replacement for LlamaIndex's ``AzureCodeInterpreterToolSpec``.

Existing code changes only its import::

    # from llama_index.tools.azure_code_interpreter import AzureCodeInterpreterToolSpec
    from llama_index_tools_codeinterp import AzureCodeInterpreterToolSpec

    spec = AzureCodeInterpreterToolSpec(pool_management_endpoint="https://...", local_save_path="plots")
    agent = ReActAgent(tools=spec.to_tool_list(), llm=llm)
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from llama_index.core.tools.tool_spec.base import SPEC_FUNCTION_TYPE

from .core import ConfigurationError, RenderOptions
from .core.azure import DEFAULT_API_VERSION, AzureSessionsBackend
from .core.azure.auth import TokenCredentialLike, TokenProvider
from .core.factory import POOL_ENDPOINT_ENV
from .tool_spec import CodeInterpreterToolSpec

__all__ = ["AzureCodeInterpreterToolSpec"]


class AzureCodeInterpreterToolSpec(CodeInterpreterToolSpec):
    """Python code interpreter tools on an Azure Container Apps dynamic session pool.

    The constructor is that of LlamaIndex's class (``pool_management_endpoint``, ``session_id``,
    ``local_save_path``, ``sanitize_input``; the misspelled ``pool_managment_endpoint`` of older releases is
    accepted too), and like it the agent gets ``code_interpreter`` and ``list_files``
    (``to_tool_list(spec_functions=[...])`` also offers ``upload_file`` and ``download_file_to_local``).
    Direct calls return what the original returns: an Azure-shaped dict from ``code_interpreter``,
    ``RemoteFile`` lists (``filename``, ``size_in_bytes``, ``file_full_path``) from ``list_files`` and
    ``upload_file``, a ``BytesIO`` from ``download_file_to_local``. What differs: the model never sees base64
    (figures are saved in ``/mnt/data`` and named), ``upload_file(data=..., remote_file_path=...)`` works,
    calls have timeouts and safe retries, and :meth:`close` deletes the session.

    Args:
        pool_management_endpoint: The pool's management endpoint; default: env ``AZURE_POOL_MANAGEMENT_ENDPOINT``.
        session_id: The session identifier (a fresh uuid4 per instance by default).
        local_save_path: An existing host directory where each figure is also saved.
        sanitize_input: Strip Markdown code fences wrapped around the model's code.
        api_version: The data-plane api-version (default the current one; the wire format is handled).
        credential: An azure-identity ``TokenCredential`` (default ``DefaultAzureCredential``, created lazily).
        token_provider: A callable returning a bearer token, instead of a credential.
        image_blocks, allowed_upload_dirs, allowed_download_dirs, render: As for ``CodeInterpreterToolSpec``.
        **backend_options: More :class:`AzureSessionsBackend` options (``timeout``, ``session``, ...).
    """

    spec_functions: list[SPEC_FUNCTION_TYPE] = [
        ("code_interpreter", "acode_interpreter"),
        ("list_files", "alist_files"),
    ]

    def __init__(
        self,
        pool_management_endpoint: str | None = None,
        session_id: str | None = None,
        local_save_path: str | os.PathLike[str] | None = None,
        sanitize_input: bool = True,
        *,
        pool_managment_endpoint: str | None = None,
        api_version: str = DEFAULT_API_VERSION,
        credential: TokenCredentialLike | None = None,
        token_provider: TokenProvider | None = None,
        image_blocks: bool = False,
        allowed_upload_dirs: Sequence[str | os.PathLike[str]] = (),
        allowed_download_dirs: Sequence[str | os.PathLike[str]] = (),
        render: RenderOptions | None = None,
        **backend_options: Any,
    ) -> None:
        if pool_management_endpoint and pool_managment_endpoint and pool_management_endpoint != pool_managment_endpoint:
            raise ConfigurationError(
                "Both pool_management_endpoint and pool_managment_endpoint were given with different values; pass one."
            )
        endpoint = pool_management_endpoint or pool_managment_endpoint or os.environ.get(POOL_ENDPOINT_ENV)
        if not endpoint:
            raise ConfigurationError(
                f"No session pool endpoint: pass pool_management_endpoint= or set {POOL_ENDPOINT_ENV} "
                "(az containerapp sessionpool show --query properties.poolManagementEndpoint)."
            )
        backend = AzureSessionsBackend(
            endpoint,
            session_id=session_id,
            api_version=api_version,
            credential=credential,
            token_provider=token_provider,
            **backend_options,
        )
        try:
            super().__init__(
                backend,
                local_save_path=local_save_path,
                sanitize_input=sanitize_input,
                image_blocks=image_blocks,
                allowed_upload_dirs=allowed_upload_dirs,
                allowed_download_dirs=allowed_download_dirs,
                render=render,
            )
        except BaseException:
            backend.close()
            raise
        # The backend was made here, so close() ends its session (the base class leaves passed-in ones alone).
        self._owns_backend = True

    @property
    def pool_management_endpoint(self) -> str:
        return self.backend.endpoint  # type: ignore[attr-defined, no-any-return]
