"""LangChain tools over the framework-free core: thin adapters around :class:`CodeInterpreterToolset`.

Every tool answers with ``response_format="content_and_artifact"``: the model reads the toolset's compact text
(and, with ``image_blocks=True``, the figures as image content blocks); the program gets the full object as the
``ToolMessage.artifact``. Errors the model can act on (a missing file, a refused host path, a service failure)
reach it as the message text of a ``ToolMessage`` with ``status="error"``.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any, Literal

from langchain_core.callbacks import AsyncCallbackManagerForToolRun, CallbackManagerForToolRun
from langchain_core.tools import ArgsSchema, BaseTool, ToolException
from pydantic import BaseModel, Field

from llama_index_tools_codeinterp.core.backend import DEFAULT_TIMEOUT
from llama_index_tools_codeinterp.core.paths import DATA_ROOT
from llama_index_tools_codeinterp.core.toolset import (
    CODE_INTERPRETER_DESCRIPTION,
    DOWNLOAD_FILE_DESCRIPTION,
    LIST_FILES_DESCRIPTION,
    UPLOAD_FILE_DESCRIPTION,
    ToolReply,
)

from ._session import SessionOptions

__all__ = [
    "CodeInterpreterInput",
    "CodeInterpreterTool",
    "DownloadFileInput",
    "DownloadFileTool",
    "ListFilesInput",
    "ListFilesTool",
    "UploadFileInput",
    "UploadFileTool",
]

#: What a tool hands LangChain: (content for the model, artifact for the program).
ContentAndArtifact = tuple[str | list[str | dict[str, Any]], Any]


class CodeInterpreterInput(BaseModel):
    """Arguments of the ``code_interpreter`` tool."""

    python_code: str = Field(description="The Python code to run. The value of the last line is returned.")


class UploadFileInput(BaseModel):
    """Arguments of the ``upload_file`` tool."""

    data: str | None = Field(default=None, description="Text to write to the file (instead of local_file_path).")
    local_file_path: str | None = Field(
        default=None, description="A host file to copy (only inside directories the developer allowed)."
    )
    remote_file_path: str | None = Field(
        default=None, description=f"Name of the file in {DATA_ROOT} (required with data)."
    )


class DownloadFileInput(BaseModel):
    """Arguments of the ``download_file`` tool."""

    remote_file_path: str = Field(description=f"The file in {DATA_ROOT} to read, e.g. {DATA_ROOT}/result.csv.")
    local_file_path: str | None = Field(
        default=None, description="Save the file to this host path instead of returning its content."
    )


class ListFilesInput(BaseModel):
    """The ``list_files`` tool takes no arguments."""


class _CodeInterpreterBaseTool(SessionOptions, BaseTool):
    """Shared plumbing: the session settings, the toolset, and turning a ToolReply into LangChain's output."""

    response_format: Literal["content", "content_and_artifact"] = "content_and_artifact"
    handle_tool_error: bool | str | Callable[[ToolException], Any] | None = True
    """Errors the model can act on become its message text (``ToolMessage.status == "error"``). Set False to
    have them raised as :class:`~langchain_core.tools.ToolException` instead."""

    def _output(self, reply: ToolReply) -> ContentAndArtifact:
        if reply.is_error:
            cause = reply.artifact if isinstance(reply.artifact, BaseException) else None
            raise ToolException(reply.text) from cause
        if not reply.images:
            return reply.text, reply.artifact
        blocks: list[str | dict[str, Any]] = [{"type": "text", "text": reply.text}]
        blocks.extend(
            {"type": "image", "base64": base64.b64encode(image.data).decode("ascii"), "mime_type": image.mime_type}
            for image in reply.images
        )
        return blocks, reply.artifact


class CodeInterpreterTool(_CodeInterpreterBaseTool):
    r"""Run Python code in a stateful, sandboxable Jupyter kernel (locally or on Azure session pools).

    Variables, imports and files persist between calls. The model reads a compact rendering of the run
    (stdout, stderr, the last expression's value, errors, new files in ``/mnt/data``); your program gets the
    full :class:`~llama_index_tools_codeinterp.core.models.ExecutionResult` as ``ToolMessage.artifact``.

    Setup:
        Install the package with its LangChain extra. The default session is a Jupyter kernel of the current
        Python on this machine; set ``AZURE_POOL_MANAGEMENT_ENDPOINT`` (or pass ``pool_management_endpoint``)
        to run in an Azure Container Apps dynamic session pool instead.

        .. code-block:: bash

            pip install -U "llama-index-tools-codeinterp[langchain]"
            # optional, for Azure session pools:
            export AZURE_POOL_MANAGEMENT_ENDPOINT="https://<region>.dynamicsessions.io/subscriptions/.../sessionPools/<pool>"

    Instantiation:
        .. code-block:: python

            from langchain_codeinterp import CodeInterpreterTool

            tool = CodeInterpreterTool()  # the kernel starts on first use
            # or, with a backend you configure (and close) yourself:
            # from llama_index_tools_codeinterp.core.local import LocalKernelBackend
            # tool = CodeInterpreterTool(backend=LocalKernelBackend(timeout=60))

    Invocation with args:
        .. code-block:: python

            tool.invoke({"python_code": "import math\nmath.factorial(10)"})

        .. code-block:: none

            'result:\n3628800'

    Invocation with ToolCall:
        .. code-block:: python

            message = tool.invoke(
                {"args": {"python_code": "print(6 * 7)"}, "id": "call_1", "name": tool.name, "type": "tool_call"}
            )
            message.content, message.artifact.stdout

        .. code-block:: none

            ('stdout:\n42', '42\n')

    Call ``tool.close()`` when done if the tool created its session (tools from
    :class:`~langchain_codeinterp.CodeInterpreterToolkit` share the toolkit's session instead).
    """

    name: str = "code_interpreter"
    description: str = CODE_INTERPRETER_DESCRIPTION.format(timeout=DEFAULT_TIMEOUT)
    args_schema: ArgsSchema | None = CodeInterpreterInput

    def __init__(self, **data: Any) -> None:
        super().__init__(**data)
        if "description" not in self.model_fields_set:  # the time limit in it is the session's own
            self.description = self.session.code_interpreter_description

    def _run(self, python_code: str, run_manager: CallbackManagerForToolRun | None = None) -> ContentAndArtifact:
        return self._output(self.session.run_code(python_code))

    async def _arun(
        self, python_code: str, run_manager: AsyncCallbackManagerForToolRun | None = None
    ) -> ContentAndArtifact:
        return self._output(await self.session.arun_code(python_code))


class UploadFileTool(_CodeInterpreterBaseTool):
    r"""Put a file into the session's ``/mnt/data``: text the model writes, or a host file it may read.

    Host files are only reachable inside the directories listed in ``allowed_upload_dirs`` (none by default),
    so by default the model can only create files from text. The artifact is the uploaded file's
    :class:`~llama_index_tools_codeinterp.core.models.RemoteFile`.

    Setup:
        .. code-block:: bash

            pip install -U "llama-index-tools-codeinterp[langchain]"

    Instantiation:
        .. code-block:: python

            from langchain_codeinterp import UploadFileTool

            tool = UploadFileTool(allowed_upload_dirs=["./inputs"])

    Invocation with args:
        .. code-block:: python

            tool.invoke({"data": "a,b\n1,2\n", "remote_file_path": "table.csv"})

        .. code-block:: none

            'Uploaded /mnt/data/table.csv (text/csv, 8 bytes).'

    Invocation with ToolCall:
        .. code-block:: python

            message = tool.invoke(
                {
                    "args": {"local_file_path": "./inputs/sales.xlsx"},
                    "id": "call_2",
                    "name": tool.name,
                    "type": "tool_call",
                }
            )
            message.artifact.file_full_path

        .. code-block:: none

            '/mnt/data/sales.xlsx'
    """

    name: str = "upload_file"
    description: str = UPLOAD_FILE_DESCRIPTION
    args_schema: ArgsSchema | None = UploadFileInput

    def _run(
        self,
        data: str | None = None,
        local_file_path: str | None = None,
        remote_file_path: str | None = None,
        run_manager: CallbackManagerForToolRun | None = None,
    ) -> ContentAndArtifact:
        return self._output(self.session.upload_file(data, local_file_path, remote_file_path))

    async def _arun(
        self,
        data: str | None = None,
        local_file_path: str | None = None,
        remote_file_path: str | None = None,
        run_manager: AsyncCallbackManagerForToolRun | None = None,
    ) -> ContentAndArtifact:
        return self._output(await self.session.aupload_file(data, local_file_path, remote_file_path))


class DownloadFileTool(_CodeInterpreterBaseTool):
    r"""Read a file from the session's ``/mnt/data``, or save it to a host directory the developer allowed.

    Without ``local_file_path`` the model gets the file's text (within the size budget; binary files are
    summarised) and the artifact is the file's bytes. With it, the file is streamed to that host path, which
    must lie inside ``allowed_download_dirs`` (none by default); the artifact is then the host path.

    Setup:
        .. code-block:: bash

            pip install -U "llama-index-tools-codeinterp[langchain]"

    Instantiation:
        .. code-block:: python

            from langchain_codeinterp import DownloadFileTool

            tool = DownloadFileTool(allowed_download_dirs=["./outputs"])

    Invocation with args:
        .. code-block:: python

            tool.invoke({"remote_file_path": "/mnt/data/notes.txt"})

        .. code-block:: none

            'Content of /mnt/data/notes.txt (11 bytes):\nhello world'

    Invocation with ToolCall:
        .. code-block:: python

            message = tool.invoke(
                {
                    "args": {"remote_file_path": "figure_1.png", "local_file_path": "./outputs/figure.png"},
                    "id": "call_3",
                    "name": tool.name,
                    "type": "tool_call",
                }
            )
            message.content, message.artifact

        .. code-block:: none

            ('Saved /mnt/data/figure_1.png (16.9 KB) to /home/me/outputs/figure.png.', PosixPath('/home/me/outputs/figure.png'))
    """  # noqa: E501

    name: str = "download_file"
    description: str = DOWNLOAD_FILE_DESCRIPTION
    args_schema: ArgsSchema | None = DownloadFileInput

    def _run(
        self,
        remote_file_path: str,
        local_file_path: str | None = None,
        run_manager: CallbackManagerForToolRun | None = None,
    ) -> ContentAndArtifact:
        return self._output(self.session.download_file(remote_file_path, local_file_path))

    async def _arun(
        self,
        remote_file_path: str,
        local_file_path: str | None = None,
        run_manager: AsyncCallbackManagerForToolRun | None = None,
    ) -> ContentAndArtifact:
        return self._output(await self.session.adownload_file(remote_file_path, local_file_path))


class ListFilesTool(_CodeInterpreterBaseTool):
    r"""List the files in the session's ``/mnt/data`` with their sizes and types.

    The artifact is the list of :class:`~llama_index_tools_codeinterp.core.models.RemoteFile`.

    Setup:
        .. code-block:: bash

            pip install -U "llama-index-tools-codeinterp[langchain]"

    Instantiation:
        .. code-block:: python

            from langchain_codeinterp import ListFilesTool

            tool = ListFilesTool()

    Invocation with args:
        .. code-block:: python

            print(tool.invoke({}))

        .. code-block:: none

            2 file(s) in /mnt/data:
            - /mnt/data/figure_1.png (image/png, 16.9 KB)
            - /mnt/data/table.csv (text/csv, 8 bytes)

    Invocation with ToolCall:
        .. code-block:: python

            message = tool.invoke({"args": {}, "id": "call_4", "name": tool.name, "type": "tool_call"})
            [f.filename for f in message.artifact]

        .. code-block:: none

            ['figure_1.png', 'table.csv']
    """

    name: str = "list_files"
    description: str = LIST_FILES_DESCRIPTION
    args_schema: ArgsSchema | None = ListFilesInput

    def _run(self, run_manager: CallbackManagerForToolRun | None = None) -> ContentAndArtifact:
        return self._output(self.session.list_files())

    async def _arun(self, run_manager: AsyncCallbackManagerForToolRun | None = None) -> ContentAndArtifact:
        return self._output(await self.session.alist_files())
