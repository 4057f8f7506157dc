"""The backend contract: one code-interpreter session.

A backend owns exactly one session: a stateful Python kernel plus its ``/mnt/data`` directory. The local
backend runs a Jupyter kernel on this machine; the Azure backend talks to a session pool. Every front
(LlamaIndex, LangChain) and the session-pool server speak to backends only through this class.

Sync and async methods come in pairs (``execute`` / ``aexecute``). A backend implements whichever side is
native to it; the default of the other side bridges to it (a worker thread for async-over-sync).
"""

from __future__ import annotations

import abc
import asyncio
import io
import os
from collections.abc import Mapping
from types import TracebackType
from typing import IO, Any, ClassVar, Union

from .models import ExecutionResult, RemoteFile

__all__ = ["DEFAULT_TIMEOUT", "Backend", "DownloadTarget", "UploadSource"]

#: Seconds a run may take before it is interrupted; Azure session pools cap executions at 220 s.
DEFAULT_TIMEOUT = 220.0

#: What can be uploaded: raw bytes, a readable binary file object (streamed), or a host file path.
UploadSource = Union[bytes, bytearray, memoryview, IO[bytes], str, "os.PathLike[str]"]
#: Where a download can go: a host file path or a writable binary file object (streamed).
DownloadTarget = Union[str, "os.PathLike[str]", IO[bytes]]


class Backend(abc.ABC):
    """One code-interpreter session. Use as a (async) context manager, or call :meth:`close`."""

    #: Short name of the backend kind, shown in status reports ("local", "azure").
    kind: ClassVar[str] = "abstract"

    #: The session's identifier (Azure's ``identifier``; a uuid4 by default).
    session_id: str

    # -- code ---------------------------------------------------------------------------------------
    @abc.abstractmethod
    def execute(self, code: str, *, timeout: float | None = None) -> ExecutionResult:
        """Run ``code`` in the session's kernel. Python errors come back as data on the result."""

    async def aexecute(self, code: str, *, timeout: float | None = None) -> ExecutionResult:
        return await asyncio.to_thread(self.execute, code, timeout=timeout)

    # -- files --------------------------------------------------------------------------------------
    @abc.abstractmethod
    def upload(self, remote_path: str, source: UploadSource) -> RemoteFile:
        """Write ``source`` to ``remote_path`` in ``/mnt/data`` (parents created) and describe the file."""

    async def aupload(self, remote_path: str, source: UploadSource) -> RemoteFile:
        return await asyncio.to_thread(self.upload, remote_path, source)

    @abc.abstractmethod
    def download_to(self, remote_path: str, destination: DownloadTarget) -> int:
        """Stream a session file to a host path or binary file object; returns the number of bytes."""

    async def adownload_to(self, remote_path: str, destination: DownloadTarget) -> int:
        return await asyncio.to_thread(self.download_to, remote_path, destination)

    def download(self, remote_path: str) -> bytes:
        """A session file's content, in memory. Prefer :meth:`download_to` for large files."""
        buffer = io.BytesIO()
        self.download_to(remote_path, buffer)
        return buffer.getvalue()

    async def adownload(self, remote_path: str) -> bytes:
        buffer = io.BytesIO()
        await self.adownload_to(remote_path, buffer)
        return buffer.getvalue()

    @abc.abstractmethod
    def list_files(self, path: str = "") -> list[RemoteFile]:
        """Every file under ``path`` (default: all of ``/mnt/data``), recursively, sorted by name."""

    async def alist_files(self, path: str = "") -> list[RemoteFile]:
        return await asyncio.to_thread(self.list_files, path)

    @abc.abstractmethod
    def delete_file(self, remote_path: str) -> None:
        """Remove one file from ``/mnt/data``."""

    async def adelete_file(self, remote_path: str) -> None:
        await asyncio.to_thread(self.delete_file, remote_path)

    # -- lifecycle ----------------------------------------------------------------------------------
    @abc.abstractmethod
    def restart(self) -> None:
        """Restart the kernel: variables and imports are lost, files in ``/mnt/data`` are kept."""

    async def arestart(self) -> None:
        await asyncio.to_thread(self.restart)

    @abc.abstractmethod
    def close(self) -> None:
        """End the session and release everything it holds. Idempotent."""

    async def aclose(self) -> None:
        await asyncio.to_thread(self.close)

    def status(self) -> Mapping[str, Any]:
        """A small JSON-serialisable report (kind, session id, sandboxed or not, ...)."""
        return {"kind": self.kind, "session_id": self.session_id}

    def __enter__(self) -> Backend:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    async def __aenter__(self) -> Backend:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
