"""The toolkit: the four code-interpreter tools over one shared session."""

from __future__ import annotations

from types import TracebackType

from langchain_core.tools import BaseTool, BaseToolkit

from ._session import SessionOptions
from .tools import CodeInterpreterTool, DownloadFileTool, ListFilesTool, UploadFileTool

__all__ = ["CodeInterpreterToolkit"]


class CodeInterpreterToolkit(SessionOptions, BaseToolkit):
    r"""A stateful Python code interpreter for agents: run code, move files in and out, list files.

    All four tools work on one session (one kernel and one ``/mnt/data``), so a file uploaded with
    ``upload_file`` is visible to ``code_interpreter`` and a figure it saves can be fetched with
    ``download_file``. The session is a local Jupyter kernel by default, or an Azure Container Apps dynamic
    session pool when a pool endpoint is configured.

    Setup:
        Install the package with its LangChain extra. For Azure session pools, also install the ``azure``
        extra and set the pool's management endpoint (you need the "Azure ContainerApps Session Executor"
        role on the pool).

        .. code-block:: bash

            pip install -U "llama-index-tools-codeinterp[langchain]"
            # optional, for Azure session pools:
            pip install -U "llama-index-tools-codeinterp[langchain,azure]"
            export AZURE_POOL_MANAGEMENT_ENDPOINT="https://<region>.dynamicsessions.io/subscriptions/.../sessionPools/<pool>"

    Instantiation:
        .. code-block:: python

            from langchain_codeinterp import CodeInterpreterToolkit

            toolkit = CodeInterpreterToolkit(
                backend_options={"timeout": 60},  # seconds per run
                allowed_upload_dirs=["./inputs"],  # host files the model may read
                allowed_download_dirs=["./outputs"],  # where the model may save files
            )
            # or with a session you configure and close yourself:
            # toolkit = CodeInterpreterToolkit(backend=LocalKernelBackend(timeout=60))

    Tools:
        .. code-block:: python

            tools = toolkit.get_tools()
            [tool.name for tool in tools]

        .. code-block:: none

            ['code_interpreter', 'upload_file', 'download_file', 'list_files']

    Use within an agent:
        .. code-block:: python

            from langchain.agents import create_agent

            with CodeInterpreterToolkit() as toolkit:
                agent = create_agent("openai:gpt-4.1", tools=toolkit.get_tools())
                result = agent.invoke(
                    {"messages": [{"role": "user", "content": "What is the 30th Fibonacci number? Compute it."}]}
                )
                print(result["messages"][-1].content)

        .. code-block:: none

            The 30th Fibonacci number is 832040.

    A toolkit that created its session closes it on ``close()`` / leaving the ``with`` block (a local kernel is
    only started when a tool is first used; ``start()`` starts it ahead of time).
    """

    def get_tools(self) -> list[BaseTool]:
        """The four tools, all working on this toolkit's session."""
        shared = {"toolset": self.session}
        return [CodeInterpreterTool(**shared), UploadFileTool(**shared), DownloadFileTool(**shared),
                ListFilesTool(**shared)]  # fmt: skip

    def __enter__(self) -> CodeInterpreterToolkit:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    async def __aenter__(self) -> CodeInterpreterToolkit:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
