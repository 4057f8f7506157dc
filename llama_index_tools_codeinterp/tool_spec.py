"""LlamaIndex front: :class:`CodeInterpreterToolSpec`.

Two faces over one :class:`~llama_index_tools_codeinterp.core.CodeInterpreterToolset`:

* **Python callers** call the methods directly and get what LlamaIndex's ``AzureCodeInterpreterToolSpec``
  returns (an Azure-shaped dict, ``RemoteFile`` lists, a ``BytesIO``), so existing code keeps working.
* **The LLM** gets the tools from :meth:`CodeInterpreterToolSpec.to_tool_list`: compact text within a
  budget (and image blocks when enabled), while ``ToolOutput.raw_output`` carries the full object.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

from llama_index.core.base.llms.types import ImageBlock, TextBlock
from llama_index.core.tools import FunctionTool, ToolMetadata, ToolOutput
from llama_index.core.tools.tool_spec.base import SPEC_FUNCTION_TYPE, BaseToolSpec
from llama_index.core.tools.utils import create_schema_from_function

from .core import (
    Backend,
    CodeInterpreterError,
    CodeInterpreterToolset,
    ConfigurationError,
    ExecutionResult,
    RemoteFile,
    RenderOptions,
    ToolReply,
)
from .core.factory import make_backend
from .core.toolset import DOWNLOAD_FILE_DESCRIPTION, LIST_FILES_DESCRIPTION, UPLOAD_FILE_DESCRIPTION

__all__ = ["CodeInterpreterResponse", "CodeInterpreterToolSpec"]


class CodeInterpreterResponse(dict):  # type: ignore[type-arg]
    """The Azure-shaped response dict of a direct ``code_interpreter`` call.

    It is a plain ``dict`` (``response["properties"]["stdout"]`` works as with Azure's spec); the full
    :class:`ExecutionResult` is on :attr:`execution`.
    """

    def __init__(self, execution: ExecutionResult) -> None:
        super().__init__(execution.to_azure_dict())
        self.execution = execution


class _ReplyTool(FunctionTool):
    """A FunctionTool whose function returns a :class:`ToolReply`: the text (and images) go to the model,
    the reply's artifact becomes ``ToolOutput.raw_output``."""

    def _parse_tool_output(self, raw_output: Any) -> list[Any]:
        if not isinstance(raw_output, ToolReply):
            return super()._parse_tool_output(raw_output)
        blocks: list[Any] = [TextBlock(text=raw_output.text)]
        blocks.extend(ImageBlock(image=img.data, image_mimetype=img.mime_type) for img in raw_output.images)
        return blocks

    @staticmethod
    def _unwrap(output: ToolOutput) -> ToolOutput:
        reply = output.raw_output
        if isinstance(reply, ToolReply):
            output.raw_output = reply.artifact
            output.is_error = reply.is_error
        return output

    def call(self, *args: Any, **kwargs: Any) -> ToolOutput:
        return self._unwrap(super().call(*args, **kwargs))

    async def acall(self, *args: Any, **kwargs: Any) -> ToolOutput:
        return self._unwrap(await super().acall(*args, **kwargs))


class CodeInterpreterToolSpec(BaseToolSpec):
    """A stateful, sandboxed Python code interpreter as LlamaIndex tools.

    ``CodeInterpreterToolSpec()`` runs a local Jupyter kernel, under the bubblewrap sandbox on Linux when it
    is available (``sandbox="auto"``: no network, a read-only system, only ``/mnt/data`` and ``/tmp`` writable,
    resource limits; ``status()["sandboxed"]`` says which). ``backend=`` takes any backend (a configured
    ``LocalKernelBackend``, ``AzureSessionsBackend``); ``pool_management_endpoint=`` (or the env var
    ``AZURE_POOL_MANAGEMENT_ENDPOINT``) selects Azure Container Apps session pools.

    Tools for agents (``to_tool_list()``): ``code_interpreter``, ``upload_file``, ``download_file_to_local``,
    ``list_files``, each with an async twin. The model gets compact text (a size budget per stream, figures as
    ``/mnt/data/...`` paths, never base64); ``ToolOutput.raw_output`` carries the full :class:`ExecutionResult`
    (or file objects) for your program. The session's files live in ``/mnt/data``.

    Args:
        backend: The session to use. Default: a new local kernel (or Azure, see above).
        pool_management_endpoint: An Azure session pool's management endpoint.
        session_id: The session identifier for a backend created here (uuid4 by default).
        local_save_path: A host directory where every figure the code produces is also copied.
        sanitize_input: Strip Markdown code fences wrapped around the model's code.
        image_blocks: Also send figures to the model as image blocks (vision models; at most
            ``render.max_images`` per run).
        allowed_upload_dirs: Host directories the *model* may upload from (none by default).
        allowed_download_dirs: Host directories the *model* may download into (none by default).
        render: Size budgets for what the model sees (about 4,000 characters per stream by default).
        **backend_options: Passed to the backend created here. For the local backend the common ones are
            ``timeout=220`` (seconds per run), ``sandbox="auto"`` (``True`` to require it, ``False`` to run
            unsandboxed), ``allow_network=False``, ``limits={"memory": "4GB", "processes": 256, "disk": "2GB",
            "cpu_seconds": None, ...}``, ``data_dir=None`` (an existing folder to use as ``/mnt/data``),
            ``python=`` / ``kernel_name=`` (the kernel's environment), ``env={}``, ``startup_code=``, ``pool=``
            (a ``KernelPool`` for a fast first call). See ``LocalKernelBackend`` and ``AzureSessionsBackend``.

    Errors: a Python exception in the code is *data* (``properties.status == "Failure"`` and
    ``response.execution.error``; the model reads ``error: Name: value``). Exceptions are raised for problems
    with the interpreter or its inputs, all subclasses of ``CodeInterpreterError`` with a message that says what
    to do: ``InvalidPathError`` (a path outside ``/mnt/data``), ``RemoteFileNotFoundError``,
    ``SessionClosedError``, ``KernelError``, ``ConfigurationError``, and for Azure ``AuthenticationError``,
    ``PermissionDeniedError``, ``SessionNotFoundError``, ``RateLimitError``, ``ServiceUnavailableError``.
    Tool calls made by the model never raise these: the model gets the message as the tool's answer.

    Calls from your own Python code (``spec.upload_file(local_file_path=...)``) are not limited by the
    allow-lists; only tool calls made by the model are. Close the spec (``close()`` or ``with``) to stop a
    kernel it created; one dropped without closing is cleaned up when garbage-collected.

    Example:
        >>> from llama_index.core.agent.workflow import ReActAgent
        >>> spec = CodeInterpreterToolSpec()
        >>> agent = ReActAgent(tools=spec.to_tool_list(), llm=llm)  # doctest: +SKIP
        >>> spec.code_interpreter("1 + 1")["properties"]["result"]  # doctest: +SKIP
        2
    """

    spec_functions: list[SPEC_FUNCTION_TYPE] = [
        ("code_interpreter", "acode_interpreter"),
        ("upload_file", "aupload_file"),
        ("download_file_to_local", "adownload_file_to_local"),
        ("list_files", "alist_files"),
    ]

    def __init__(
        self,
        backend: Backend | None = None,
        *,
        pool_management_endpoint: str | None = None,
        session_id: str | None = None,
        local_save_path: str | os.PathLike[str] | None = None,
        sanitize_input: bool = True,
        image_blocks: bool = False,
        allowed_upload_dirs: Sequence[str | os.PathLike[str]] = (),
        allowed_download_dirs: Sequence[str | os.PathLike[str]] = (),
        render: RenderOptions | None = None,
        **backend_options: Any,
    ) -> None:
        if backend is not None and (pool_management_endpoint or session_id or backend_options):
            raise ConfigurationError(
                "backend= was given together with options for creating one "
                "(pool_management_endpoint, session_id, ...); configure the backend itself instead."
            )
        if local_save_path is not None and not Path(local_save_path).is_dir():
            raise ConfigurationError(f"local_save_path {str(local_save_path)!r} does not exist; create it first.")
        self.local_save_path = Path(local_save_path) if local_save_path is not None else None
        self._owns_backend = backend is None
        if backend is None:
            backend = make_backend(
                pool_management_endpoint=pool_management_endpoint, session_id=session_id, **backend_options
            )
        self.toolset = CodeInterpreterToolset(
            backend,
            render=render,
            sanitize_input=sanitize_input,
            image_blocks=image_blocks,
            allowed_upload_dirs=allowed_upload_dirs,
            allowed_download_dirs=allowed_download_dirs,
        )

    @property
    def backend(self) -> Backend:
        return self.toolset.backend

    @property
    def session_id(self) -> str:
        return self.backend.session_id

    # -- direct calls (Azure-compatible return values) ------------------------------------------------
    def code_interpreter(self, python_code: str) -> CodeInterpreterResponse:
        """Run Python code in the session and return the Azure-shaped response dict.

        ``response["properties"]`` has ``status`` (``Success``/``Failure``), ``stdout``, ``stderr``, ``result``
        (the last expression's value as JSON, or an image descriptor with its ``file_full_path``) and
        ``executionTimeInMilliseconds``. The full result (rich outputs, files created, error details, notices
        about timeouts or restarts) is on ``response.execution``. A Python error in the code is returned, not
        raised; ``SessionClosedError``/``KernelError`` (or a service error on Azure) are raised.
        """
        result = self.backend.execute(self.toolset.prepare_code(python_code))
        self._save_figures_locally(result)
        return CodeInterpreterResponse(result)

    async def acode_interpreter(self, python_code: str) -> CodeInterpreterResponse:
        """Async twin of :meth:`code_interpreter`."""
        result = await self.backend.aexecute(self.toolset.prepare_code(python_code))
        await self._asave_figures_locally(result)
        return CodeInterpreterResponse(result)

    def upload_file(
        self,
        data: bytes | str | IO[bytes] | None = None,
        local_file_path: str | os.PathLike[str] | None = None,
        remote_file_path: str | None = None,
    ) -> list[RemoteFile]:
        """Upload bytes, text, a binary file object, or a host file into ``/mnt/data``.

        ``remote_file_path`` names the file in ``/mnt/data``; it defaults to the local file's name (or a file
        object's ``name``) and is required for other ``data``. Returns a one-element list, like Azure's spec.
        Raises ``ConfigurationError`` for missing arguments, ``InvalidPathError`` for a name outside
        ``/mnt/data``, ``FileTooLargeError`` over the backend's limit.
        """
        remote, source = _upload_source(data, local_file_path, remote_file_path)
        return [self.backend.upload(remote, source)]

    async def aupload_file(
        self,
        data: bytes | str | IO[bytes] | None = None,
        local_file_path: str | os.PathLike[str] | None = None,
        remote_file_path: str | None = None,
    ) -> list[RemoteFile]:
        """Async twin of :meth:`upload_file`."""
        remote, source = _upload_source(data, local_file_path, remote_file_path)
        return [await self.backend.aupload(remote, source)]

    def download_file_to_local(
        self, remote_file_path: str, local_file_path: str | os.PathLike[str] | None = None
    ) -> io.BytesIO | None:
        """Download a session file: to ``local_file_path`` (returns None), or into a ``BytesIO``.

        Raises ``RemoteFileNotFoundError`` for a missing file, ``InvalidPathError`` for a path outside
        ``/mnt/data`` or one that goes through a symbolic link.
        """
        if local_file_path is not None:
            self.backend.download_to(remote_file_path, local_file_path)
            return None
        buffer = io.BytesIO()
        self.backend.download_to(remote_file_path, buffer)
        buffer.seek(0)
        return buffer

    async def adownload_file_to_local(
        self, remote_file_path: str, local_file_path: str | os.PathLike[str] | None = None
    ) -> io.BytesIO | None:
        """Async twin of :meth:`download_file_to_local`."""
        if local_file_path is not None:
            await self.backend.adownload_to(remote_file_path, local_file_path)
            return None
        buffer = io.BytesIO()
        await self.backend.adownload_to(remote_file_path, buffer)
        buffer.seek(0)
        return buffer

    def list_files(self) -> list[RemoteFile]:
        """Every file in ``/mnt/data`` (``filename``, ``size_in_bytes``, ``file_full_path``, ...)."""
        return self.backend.list_files()

    async def alist_files(self) -> list[RemoteFile]:
        """Async twin of :meth:`list_files`."""
        return await self.backend.alist_files()

    def close(self) -> None:
        """Stop the session if this spec created it (a backend passed in is left to its owner)."""
        if self._owns_backend:
            self.backend.close()

    def __enter__(self) -> CodeInterpreterToolSpec:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _figures_to_save(self, result: ExecutionResult) -> list[tuple[str, Path]]:
        if self.local_save_path is None:
            return []
        return [(o.saved_as, self.local_save_path / Path(o.saved_as).name) for o in result.images if o.saved_as]

    def _save_figures_locally(self, result: ExecutionResult) -> None:
        for remote, local in self._figures_to_save(result):
            self.backend.download_to(remote, local)

    async def _asave_figures_locally(self, result: ExecutionResult) -> None:
        for remote, local in self._figures_to_save(result):
            await self.backend.adownload_to(remote, local)

    @staticmethod
    def _noting_failure(reply: ToolReply, exc: Exception) -> ToolReply:
        # The run itself succeeded; the model hears that the host copy failed rather than losing the result.
        reply.text += f"\n\nNOTE: the figures could not be copied to local_save_path: {exc}"
        return reply

    # -- what the LLM gets ----------------------------------------------------------------------------
    def to_tool_list(  # type: ignore[override]
        self,
        spec_functions: list[SPEC_FUNCTION_TYPE] | None = None,
        func_to_metadata_mapping: dict[str, ToolMetadata] | None = None,
    ) -> list[FunctionTool]:
        """The tools for an agent: compact text for the model, the full object as ``raw_output``."""
        mapping = func_to_metadata_mapping or {}
        table = self._llm_function_table()
        tools: list[FunctionTool] = []
        for spec in spec_functions or self.spec_functions:
            name = spec if isinstance(spec, str) else spec[0]
            if name not in table:
                raise ValueError(f"Unknown tool {name!r}; choose from {sorted(table)}.")
            fn, afn, description = table[name]
            metadata = mapping.get(name) or ToolMetadata(
                name=name, description=description, fn_schema=create_schema_from_function(name, fn)
            )
            tools.append(_ReplyTool.from_defaults(fn=fn, async_fn=afn, tool_metadata=metadata))
        return tools

    def _llm_function_table(self) -> dict[str, tuple[Callable[..., ToolReply], Callable[..., Any], str]]:
        ts = self.toolset

        def code_interpreter(python_code: str) -> ToolReply:
            reply = ts.run_code(python_code)
            if isinstance(reply.artifact, ExecutionResult):
                try:
                    self._save_figures_locally(reply.artifact)
                except (CodeInterpreterError, OSError) as exc:
                    return self._noting_failure(reply, exc)
            return reply

        async def acode_interpreter(python_code: str) -> ToolReply:
            reply = await ts.arun_code(python_code)
            if isinstance(reply.artifact, ExecutionResult):
                try:
                    await self._asave_figures_locally(reply.artifact)
                except (CodeInterpreterError, OSError) as exc:
                    return self._noting_failure(reply, exc)
            return reply

        def upload_file(
            local_file_path: str | None = None, data: str | None = None, remote_file_path: str | None = None
        ) -> ToolReply:
            return ts.upload_file(data=data, local_file_path=local_file_path, remote_file_path=remote_file_path)

        async def aupload_file(
            local_file_path: str | None = None, data: str | None = None, remote_file_path: str | None = None
        ) -> ToolReply:
            return await ts.aupload_file(data=data, local_file_path=local_file_path, remote_file_path=remote_file_path)

        def download_file_to_local(remote_file_path: str, local_file_path: str | None = None) -> ToolReply:
            return ts.download_file(remote_file_path, local_file_path)

        async def adownload_file_to_local(remote_file_path: str, local_file_path: str | None = None) -> ToolReply:
            return await ts.adownload_file(remote_file_path, local_file_path)

        return {
            "code_interpreter": (code_interpreter, acode_interpreter, ts.code_interpreter_description),
            "upload_file": (upload_file, aupload_file, UPLOAD_FILE_DESCRIPTION),
            "download_file_to_local": (download_file_to_local, adownload_file_to_local, DOWNLOAD_FILE_DESCRIPTION),
            "list_files": (ts.list_files, ts.alist_files, LIST_FILES_DESCRIPTION),
        }


def _upload_source(
    data: bytes | str | IO[bytes] | None,
    local_file_path: str | os.PathLike[str] | None,
    remote_file_path: str | None,
) -> tuple[str, Any]:
    if (data is None) == (local_file_path is None):
        raise ConfigurationError("Pass exactly one of data= or local_file_path= to upload_file().")
    if local_file_path is not None:
        return remote_file_path or Path(local_file_path).name, local_file_path
    if not remote_file_path:
        name = getattr(data, "name", None)
        if not isinstance(name, str):
            raise ConfigurationError("remote_file_path= is required when uploading data (the name in /mnt/data).")
        remote_file_path = Path(name).name
    return remote_file_path, data.encode("utf-8") if isinstance(data, str) else data
