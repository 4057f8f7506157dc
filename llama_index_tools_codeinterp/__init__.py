"""codeinterp: a stateful, sandboxable Python code interpreter as LlamaIndex tools.

``from llama_index_tools_codeinterp import CodeInterpreterToolSpec`` gives the tool spec. The framework-free
core lives in :mod:`llama_index_tools_codeinterp.core`. The LlamaIndex names are imported lazily, so that
``langchain_codeinterp`` (which uses the core) never pays for importing LlamaIndex.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .core import (
    Backend,
    CodeInterpreterError,
    ExecutionError,
    ExecutionResult,
    ExecutionStatus,
    Output,
    RemoteFile,
    RenderOptions,
)

if TYPE_CHECKING:
    from .azure_spec import AzureCodeInterpreterToolSpec
    from .core.azure import AzureSessionsBackend
    from .core.local import LocalKernelBackend
    from .tool_spec import CodeInterpreterResponse, CodeInterpreterToolSpec

__all__ = [
    "AzureCodeInterpreterToolSpec",
    "AzureSessionsBackend",
    "Backend",
    "CodeInterpreterError",
    "CodeInterpreterResponse",
    "CodeInterpreterToolSpec",
    "ExecutionError",
    "ExecutionResult",
    "ExecutionStatus",
    "LocalKernelBackend",
    "Output",
    "RemoteFile",
    "RenderOptions",
]

_LAZY = {
    "AzureCodeInterpreterToolSpec": ".azure_spec",
    "AzureSessionsBackend": ".core.azure",
    "CodeInterpreterToolSpec": ".tool_spec",
    "CodeInterpreterResponse": ".tool_spec",
    "LocalKernelBackend": ".core.local",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
