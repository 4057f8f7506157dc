"""Building the one session (toolset + backend) that a tool or a toolkit works with.

A local kernel is a child process, so a backend created here for the local default is started only when a tool
first needs it: LangChain code constructs tools freely (module level, ``test_init``, copies, schema
inspection), and a tool that spawned a kernel on construction would leave processes behind that nobody closes.
An Azure backend is only an HTTP client, so it is created at once and bad configuration fails early.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from llama_index_tools_codeinterp.core.backend import DEFAULT_TIMEOUT, Backend, DownloadTarget, UploadSource
from llama_index_tools_codeinterp.core.errors import ConfigurationError, SessionClosedError
from llama_index_tools_codeinterp.core.factory import POOL_ENDPOINT_ENV, make_backend
from llama_index_tools_codeinterp.core.models import ExecutionResult, RemoteFile
from llama_index_tools_codeinterp.core.render import RenderOptions
from llama_index_tools_codeinterp.core.toolset import CodeInterpreterToolset

__all__ = ["DeferredBackend", "SessionOptions"]


class DeferredBackend(Backend):
    """A backend that creates the real one on first use (thread-safe) and forwards every call to it.

    Async calls forward to the real backend's async methods, so native async stays native.
    """

    kind = "deferred"

    def __init__(self, factory: Callable[[str], Backend], *, session_id: str | None = None, timeout: float) -> None:
        self.session_id = session_id or str(uuid.uuid4())
        self.timeout = timeout
        self._factory = factory
        self._backend: Backend | None = None
        self._closed = False
        self._lock = threading.Lock()

    @property
    def started(self) -> bool:
        return self._backend is not None

    def start(self) -> Backend:
        """Create the real backend now (a local kernel then starts in the background) and return it."""
        with self._lock:
            if self._closed:
                raise SessionClosedError(
                    "This code-interpreter session was closed; create a new tool or toolkit to continue."
                )
            if self._backend is None:
                self._backend = self._factory(self.session_id)
                self.timeout = float(getattr(self._backend, "timeout", self.timeout))
            return self._backend

    def execute(self, code: str, *, timeout: float | None = None) -> ExecutionResult:
        return self.start().execute(code, timeout=timeout)

    async def aexecute(self, code: str, *, timeout: float | None = None) -> ExecutionResult:
        return await self.start().aexecute(code, timeout=timeout)

    def upload(self, remote_path: str, source: UploadSource) -> RemoteFile:
        return self.start().upload(remote_path, source)

    async def aupload(self, remote_path: str, source: UploadSource) -> RemoteFile:
        return await self.start().aupload(remote_path, source)

    def download_to(self, remote_path: str, destination: DownloadTarget) -> int:
        return self.start().download_to(remote_path, destination)

    async def adownload_to(self, remote_path: str, destination: DownloadTarget) -> int:
        return await self.start().adownload_to(remote_path, destination)

    def download(self, remote_path: str) -> bytes:
        return self.start().download(remote_path)

    async def adownload(self, remote_path: str) -> bytes:
        return await self.start().adownload(remote_path)

    def list_files(self, path: str = "") -> list[RemoteFile]:
        return self.start().list_files(path)

    async def alist_files(self, path: str = "") -> list[RemoteFile]:
        return await self.start().alist_files(path)

    def delete_file(self, remote_path: str) -> None:
        self.start().delete_file(remote_path)

    async def adelete_file(self, remote_path: str) -> None:
        await self.start().adelete_file(remote_path)

    def restart(self) -> None:
        self.start().restart()

    async def arestart(self) -> None:
        await self.start().arestart()

    def _mark_closed(self) -> Backend | None:
        with self._lock:
            self._closed = True
            return self._backend

    def close(self) -> None:
        backend = self._mark_closed()
        if backend is not None:
            backend.close()

    async def aclose(self) -> None:
        backend = self._mark_closed()
        if backend is not None:
            await backend.aclose()

    def status(self) -> Mapping[str, Any]:
        backend = self._backend
        if backend is not None:
            return backend.status()
        return {"kind": self.kind, "session_id": self.session_id, "started": False, "closed": self._closed}


class SessionOptions(BaseModel):
    """The settings shared by every tool and the toolkit: which session to use and what the model may do."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    backend: Backend | None = Field(default=None, exclude=True)
    """The session to use (e.g. ``LocalKernelBackend(timeout=60)`` or ``AzureSessionsBackend(...)``). It stays
    yours: closing the tool or toolkit does not close it. Default: a new session created here."""
    pool_management_endpoint: str | None = Field(default_factory=lambda: os.environ.get(POOL_ENDPOINT_ENV) or None)
    """An Azure Container Apps session pool's management endpoint (default: ``$AZURE_POOL_MANAGEMENT_ENDPOINT``).
    Without one, a local Jupyter kernel is used."""
    session_id: str | None = None
    """Identifier of a session created here (a uuid4 by default)."""
    backend_options: dict[str, Any] = Field(default_factory=dict)
    """Keyword arguments for the backend created here, e.g. ``{"timeout": 60}`` or ``{"data_dir": "work"}``."""
    toolset: CodeInterpreterToolset | None = Field(default=None, exclude=True)
    """A ready :class:`CodeInterpreterToolset` to use as it is (instead of all the settings here)."""
    sanitize_input: bool = True
    """Strip a Markdown fence (```` ```python ````) the model wrapped around its code."""
    image_blocks: bool = False
    """Also send the figures a run produced to the model as image content blocks (for vision models)."""
    allowed_upload_dirs: list[Path] = Field(default_factory=list)
    """Host directories the model may upload files from (none by default)."""
    allowed_download_dirs: list[Path] = Field(default_factory=list)
    """Host directories the model may save downloaded files into (none by default)."""
    render: RenderOptions | None = None
    """Size budgets for what the model sees (about 4,000 characters per stream by default)."""

    _owns_backend: bool = PrivateAttr(default=False)
    _toolset: CodeInterpreterToolset | None = PrivateAttr(default=None)

    def __init__(self, **data: Any) -> None:
        super().__init__(**data)
        # Built here, not in model_post_init: pydantic would wrap a ConfigurationError (a ValueError) raised
        # there in a ValidationError, and callers should be able to catch ConfigurationError.
        self._toolset = self._build_toolset()

    @property
    def session(self) -> CodeInterpreterToolset:
        """The core toolset the tools call; ``.session.backend`` is the session itself."""
        if self._toolset is None:  # made without __init__ (model_validate, model_construct)
            self._toolset = self._build_toolset()
        return self._toolset

    def start(self) -> Backend:
        """Create the session now instead of on first use (a local kernel then warms up in the background)."""
        backend = self.session.backend
        return backend.start() if isinstance(backend, DeferredBackend) else backend

    def close(self) -> None:
        """Close the session if it was created here (a backend or toolset you passed in stays open). Idempotent."""
        if self._owns_backend:
            self.session.backend.close()

    async def aclose(self) -> None:
        """Async :meth:`close`."""
        if self._owns_backend:
            await self.session.backend.aclose()

    def _build_toolset(self) -> CodeInterpreterToolset:
        """The toolset these settings describe; records whether this object created (and so owns) the backend."""
        if self.toolset is not None:
            chosen = {"backend", "session_id", "backend_options", "sanitize_input", "image_blocks",
                      "allowed_upload_dirs", "allowed_download_dirs", "render"} & self.model_fields_set  # fmt: skip
            if "pool_management_endpoint" in self.model_fields_set and self.pool_management_endpoint:
                chosen.add("pool_management_endpoint")
            if chosen:
                raise ConfigurationError(
                    f"toolset= was given together with {', '.join(sorted(chosen))}; set those on the toolset "
                    "itself, or pass the settings without toolset=."
                )
            return self.toolset
        backend = self.backend
        if backend is not None:
            explicit_endpoint = "pool_management_endpoint" in self.model_fields_set and self.pool_management_endpoint
            if self.session_id or self.backend_options or explicit_endpoint:
                raise ConfigurationError(
                    "backend= was given together with options for creating one (pool_management_endpoint, "
                    "session_id, backend_options); configure the backend itself instead."
                )
        else:
            backend = self._new_backend()
            self._owns_backend = True
        return CodeInterpreterToolset(
            backend,
            render=self.render,
            sanitize_input=self.sanitize_input,
            image_blocks=self.image_blocks,
            allowed_upload_dirs=self.allowed_upload_dirs,
            allowed_download_dirs=self.allowed_download_dirs,
        )

    def _new_backend(self) -> Backend:
        options = dict(self.backend_options)
        if self.pool_management_endpoint:
            return make_backend(
                pool_management_endpoint=self.pool_management_endpoint, session_id=self.session_id, **options
            )

        def create(session_id: str) -> Backend:
            return make_backend(session_id=session_id, **options)

        return DeferredBackend(create, session_id=self.session_id, timeout=options.get("timeout", DEFAULT_TIMEOUT))
