"""The framework-free core: result model, backend contract, path model, errors and the LLM rendering.

Nothing here imports LlamaIndex or LangChain; both fronts build on these names only.
"""

from .backend import DEFAULT_TIMEOUT, Backend, DownloadTarget, UploadSource
from .errors import (
    AuthenticationError,
    CodeInterpreterError,
    ConfigurationError,
    FileTooLargeError,
    HostPathNotAllowedError,
    InvalidPathError,
    KernelError,
    PermissionDeniedError,
    RateLimitError,
    RemoteFileNotFoundError,
    ServiceError,
    ServiceUnavailableError,
    SessionClosedError,
    SessionLimitError,
    SessionNotFoundError,
)
from .models import ExecutionError, ExecutionResult, ExecutionStatus, Output, RemoteFile
from .paths import DATA_ROOT, normalize_remote_path
from .render import ImageRef, LLMView, RenderOptions, render_execution
from .toolset import CodeInterpreterToolset, HostPathPolicy, ToolReply, strip_code_fences

__all__ = [
    "DATA_ROOT",
    "DEFAULT_TIMEOUT",
    "AuthenticationError",
    "Backend",
    "CodeInterpreterError",
    "CodeInterpreterToolset",
    "ConfigurationError",
    "DownloadTarget",
    "ExecutionError",
    "ExecutionResult",
    "ExecutionStatus",
    "FileTooLargeError",
    "HostPathNotAllowedError",
    "HostPathPolicy",
    "ImageRef",
    "InvalidPathError",
    "KernelError",
    "LLMView",
    "Output",
    "PermissionDeniedError",
    "RateLimitError",
    "RemoteFile",
    "RemoteFileNotFoundError",
    "RenderOptions",
    "ServiceError",
    "ServiceUnavailableError",
    "SessionClosedError",
    "SessionLimitError",
    "SessionNotFoundError",
    "ToolReply",
    "UploadSource",
    "normalize_remote_path",
    "render_execution",
    "strip_code_fences",
]
