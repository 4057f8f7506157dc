"""codeinterp for LangChain: a stateful, sandboxable Python code interpreter as LangChain tools.

``CodeInterpreterToolkit().get_tools()`` gives ``code_interpreter``, ``upload_file``, ``download_file`` and
``list_files`` over one session: a local Jupyter kernel by default, or an Azure Container Apps session pool
when ``pool_management_endpoint`` (or ``$AZURE_POOL_MANAGEMENT_ENDPOINT``) is set. The tools are thin adapters
over the framework-free core in :mod:`llama_index_tools_codeinterp.core`; importing this package does not
import LlamaIndex.
"""

from __future__ import annotations

from .toolkit import CodeInterpreterToolkit
from .tools import (
    CodeInterpreterInput,
    CodeInterpreterTool,
    DownloadFileInput,
    DownloadFileTool,
    ListFilesInput,
    ListFilesTool,
    UploadFileInput,
    UploadFileTool,
)

__all__ = [
    "CodeInterpreterInput",
    "CodeInterpreterTool",
    "CodeInterpreterToolkit",
    "DownloadFileInput",
    "DownloadFileTool",
    "ListFilesInput",
    "ListFilesTool",
    "UploadFileInput",
    "UploadFileTool",
]
