"""The four code-interpreter tools as an LLM calls them, framework-free.

Both fronts (the LlamaIndex tool spec and the LangChain tools) are thin adapters over
:class:`CodeInterpreterToolset`: it sanitises the model's input, enforces the host-path allow-lists, runs the
backend, and renders a :class:`ToolReply` — compact text for the model, the full object as the artifact.
Errors a model can act on (a bad path, a refused host directory, a service failure) come back as a reply
with ``is_error=True`` and a message saying what to do, never as an exception out of the agent loop.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .backend import Backend
from .errors import CodeInterpreterError, HostPathNotAllowedError, InvalidPathError
from .models import ExecutionResult, RemoteFile
from .paths import DATA_ROOT, normalize_remote_path, remote_display_path
from .render import ImageRef, RenderOptions, Spill, clean_text, describe_file, human_size, render_execution, truncate

__all__ = [
    "CODE_INTERPRETER_DESCRIPTION",
    "DOWNLOAD_FILE_DESCRIPTION",
    "LIST_FILES_DESCRIPTION",
    "UPLOAD_FILE_DESCRIPTION",
    "CodeInterpreterToolset",
    "HostPathPolicy",
    "ToolReply",
    "strip_code_fences",
]

CODE_INTERPRETER_DESCRIPTION = (
    "Run Python code in a stateful Jupyter kernel: variables, imports and files persist between calls. "
    f"The working directory is {DATA_ROOT}; read input files from there and save every file you create "
    f"there. Figures shown with matplotlib are saved to {DATA_ROOT} automatically. Returns stdout, stderr, "
    "the value of the last expression, errors with a traceback, and the files the code created or changed. "
    "Each call may run for at most {timeout:g} seconds."
)
UPLOAD_FILE_DESCRIPTION = (
    f"Copy a file into the session's {DATA_ROOT}: either from a path on the host (local_file_path, only inside "
    "directories the developer allowed) or from text you provide (data). remote_file_path names the file in "
    f"{DATA_ROOT} (default: the local file's name)."
)
DOWNLOAD_FILE_DESCRIPTION = (
    f"Read a file from the session's {DATA_ROOT}. With local_file_path, save it to that path on the host (only "
    "inside directories the developer allowed); without it, return its text (or a summary of a binary file)."
)
LIST_FILES_DESCRIPTION = f"List every file in the session's {DATA_ROOT} with its size and type."

_FENCE_RE = re.compile(r"^\s*```[ \t]*(?:[A-Za-z0-9_+-]+)?[ \t]*\n(?P<body>.*?)\n?[ \t]*```\s*$", re.DOTALL)
_INLINE_RE = re.compile(r"^\s*`(?P<body>[^`\n]+)`\s*$")


def strip_code_fences(code: str) -> str:
    """Remove a Markdown fence (```python ... ```) or inline backticks wrapped around the whole input.

    Only a fence that encloses the entire input is removed, so code that merely *starts* with ``python``
    (``pythonic = 1``) or contains backticks in strings is left exactly as it is.
    """
    match = _FENCE_RE.match(code) or _INLINE_RE.match(code)
    return match.group("body") if match else code


class HostPathPolicy:
    """Which host directories a model-invoked upload (read) or download (write) may touch."""

    def __init__(self, allowed_dirs: Iterable[str | os.PathLike[str]] = (), *, purpose: str, option: str) -> None:
        self.allowed_dirs: tuple[Path, ...] = tuple(Path(d).expanduser().resolve() for d in allowed_dirs)
        self._purpose = purpose
        self._option = option

    def check(self, path: str | os.PathLike[str]) -> Path:
        """The resolved host path, or :class:`HostPathNotAllowedError` if it is outside every allowed dir."""
        resolved = Path(path).expanduser().resolve()
        for allowed in self.allowed_dirs:
            if resolved == allowed or allowed in resolved.parents:
                return resolved
        if not self.allowed_dirs:
            raise HostPathNotAllowedError(
                f"{self._purpose} host files is not allowed for the model in this application. Use files in "
                f"{DATA_ROOT} instead (the developer can allow host directories with {self._option})."
            )
        allowed_text = ", ".join(str(d) for d in self.allowed_dirs)
        raise HostPathNotAllowedError(
            f"{str(resolved)!r} is outside the host directories allowed for this tool ({allowed_text}). "
            "Use a path inside one of them."
        )


@dataclass
class ToolReply:
    """One tool call's outcome: ``text`` for the model, ``artifact`` (the full object) for the program."""

    text: str
    artifact: Any = None
    images: list[ImageRef] = field(default_factory=list)
    is_error: bool = False


class CodeInterpreterToolset:
    """The LLM-facing operations over one backend (shared by the LlamaIndex and LangChain fronts).

    Args:
        backend: The session to use.
        render: Budgets for what the model sees.
        sanitize_input: Strip a Markdown fence wrapped around the model's code.
        image_blocks: Also hand figures to the model as images (for vision models).
        allowed_upload_dirs: Host directories the model may upload from (none by default).
        allowed_download_dirs: Host directories the model may download into (none by default).
    """

    def __init__(
        self,
        backend: Backend,
        *,
        render: RenderOptions | None = None,
        sanitize_input: bool = True,
        image_blocks: bool = False,
        allowed_upload_dirs: Sequence[str | os.PathLike[str]] = (),
        allowed_download_dirs: Sequence[str | os.PathLike[str]] = (),
    ) -> None:
        self.backend = backend
        self.render = render or RenderOptions()
        self.sanitize_input = sanitize_input
        self.image_blocks = image_blocks
        self.upload_policy = HostPathPolicy(allowed_upload_dirs, purpose="Reading", option="allowed_upload_dirs")
        self.download_policy = HostPathPolicy(allowed_download_dirs, purpose="Writing", option="allowed_download_dirs")

    @property
    def code_interpreter_description(self) -> str:
        timeout = getattr(self.backend, "timeout", 220.0)
        return CODE_INTERPRETER_DESCRIPTION.format(timeout=timeout)

    # -- code_interpreter -----------------------------------------------------------------------------
    def prepare_code(self, python_code: str) -> str:
        return strip_code_fences(python_code) if self.sanitize_input else python_code

    def run_code(self, python_code: str) -> ToolReply:
        try:
            result = self.backend.execute(self.prepare_code(python_code))
        except CodeInterpreterError as exc:
            return _error_reply(exc)
        return self._reply_for(result, self._spill)

    async def arun_code(self, python_code: str) -> ToolReply:
        try:
            result = await self.backend.aexecute(self.prepare_code(python_code))
        except CodeInterpreterError as exc:
            return _error_reply(exc)
        if _needs_spill(result, self.render.max_chars):
            # Saving the full text is a blocking file write (an HTTP upload on Azure): keep it off the loop.
            return await asyncio.to_thread(self._reply_for, result, self._spill)
        return self._reply_for(result, self._spill)

    def _reply_for(self, result: ExecutionResult, spill: Spill) -> ToolReply:
        view = render_execution(result, self.render, spill=spill, with_images=self.image_blocks)
        return ToolReply(view.text, artifact=result, images=view.images, is_error=False)

    def _spill(self, name: str, text: str) -> str | None:
        try:
            saved = self.backend.upload(name, text.encode("utf-8"))
        except Exception:  # noqa: BLE001 - the rendering still works without the saved copy
            return None
        return saved.file_full_path

    # -- upload_file ----------------------------------------------------------------------------------
    def upload_file(
        self, data: str | None = None, local_file_path: str | None = None, remote_file_path: str | None = None
    ) -> ToolReply:
        try:
            remote, source = self._upload_args(data, local_file_path, remote_file_path)
            uploaded = self.backend.upload(remote, source)
        except (CodeInterpreterError, OSError) as exc:
            return _error_reply(exc)
        return ToolReply(f"Uploaded {describe_file(uploaded)}.", artifact=uploaded)

    async def aupload_file(
        self, data: str | None = None, local_file_path: str | None = None, remote_file_path: str | None = None
    ) -> ToolReply:
        try:
            remote, source = self._upload_args(data, local_file_path, remote_file_path)
            uploaded = await self.backend.aupload(remote, source)
        except (CodeInterpreterError, OSError) as exc:
            return _error_reply(exc)
        return ToolReply(f"Uploaded {describe_file(uploaded)}.", artifact=uploaded)

    def _upload_args(
        self, data: str | None, local_file_path: str | None, remote_file_path: str | None
    ) -> tuple[str, bytes | Path]:
        if (data is None) == (local_file_path is None):
            raise InvalidPathError("Pass exactly one of data (text to write) or local_file_path (a host file).")
        if local_file_path is not None:
            host = self.upload_policy.check(local_file_path)
            remote = remote_file_path or host.name
            return normalize_remote_path(remote), host
        if not remote_file_path:
            raise InvalidPathError(f"remote_file_path is required with data: the name of the file in {DATA_ROOT}.")
        return normalize_remote_path(remote_file_path), str(data).encode("utf-8")

    # -- download_file_to_local -----------------------------------------------------------------------
    def download_file(self, remote_file_path: str, local_file_path: str | None = None) -> ToolReply:
        try:
            if local_file_path is not None:
                host = self.download_policy.check(local_file_path)
                size = self.backend.download_to(remote_file_path, host)
                return self._saved_reply(remote_file_path, host, size)
            content = self.backend.download(remote_file_path)
        except (CodeInterpreterError, OSError) as exc:
            return _error_reply(exc)
        return self._content_reply(remote_file_path, content)

    async def adownload_file(self, remote_file_path: str, local_file_path: str | None = None) -> ToolReply:
        try:
            if local_file_path is not None:
                host = self.download_policy.check(local_file_path)
                size = await self.backend.adownload_to(remote_file_path, host)
                return self._saved_reply(remote_file_path, host, size)
            content = await self.backend.adownload(remote_file_path)
        except (CodeInterpreterError, OSError) as exc:
            return _error_reply(exc)
        return self._content_reply(remote_file_path, content)

    def _saved_reply(self, remote_file_path: str, host: Path, size: int) -> ToolReply:
        shown = remote_display_path(normalize_remote_path(remote_file_path))
        return ToolReply(f"Saved {shown} ({human_size(size)}) to {host}.", artifact=host)

    def _content_reply(self, remote_file_path: str, content: bytes) -> ToolReply:
        shown = remote_display_path(normalize_remote_path(remote_file_path))
        try:
            text = content.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        if text is None or "\x00" in text:
            return ToolReply(
                f"{shown} is a binary file of {human_size(len(content))}; inspect it with code_interpreter "
                "instead of reading it as text.",
                artifact=content,
            )
        body = truncate(clean_text(text), self.render.max_chars, full_text_at=shown)
        return ToolReply(f"Content of {shown} ({human_size(len(content))}):\n{body}", artifact=content)

    # -- list_files -----------------------------------------------------------------------------------
    def list_files(self) -> ToolReply:
        try:
            files = self.backend.list_files()
        except CodeInterpreterError as exc:
            return _error_reply(exc)
        return self._list_reply(files)

    async def alist_files(self) -> ToolReply:
        try:
            files = await self.backend.alist_files()
        except CodeInterpreterError as exc:
            return _error_reply(exc)
        return self._list_reply(files)

    def _list_reply(self, files: list[RemoteFile]) -> ToolReply:
        if not files:
            return ToolReply(f"{DATA_ROOT} is empty.", artifact=files)
        limit = 200
        lines = [f"- {describe_file(f)}" for f in files[:limit]]
        if len(files) > limit:
            lines.append(f"- ... and {len(files) - limit} more")
        return ToolReply(f"{len(files)} file(s) in {DATA_ROOT}:\n" + "\n".join(lines), artifact=files)


def _needs_spill(result: ExecutionResult, limit: int) -> bool:
    texts = [result.stdout, result.stderr, *(o.text or "" for o in [*result.displays, result.result] if o)]
    if result.error is not None:
        texts.append(str(result.error))
    return any(len(t) > limit for t in texts)


def _error_reply(exc: BaseException) -> ToolReply:
    name = type(exc).__name__
    message = str(exc) or name
    if isinstance(exc, FileNotFoundError) and not isinstance(exc, CodeInterpreterError):
        message = f"{exc.strerror or 'Not found'}: {exc.filename}" if exc.filename else message
    return ToolReply(f"Error ({name}): {message}", artifact=exc, is_error=True)
