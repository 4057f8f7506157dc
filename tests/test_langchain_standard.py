"""LangChain's own standard tool tests (langchain-tests) for every tool of ``langchain_codeinterp``.

Unit suites construct each tool class with no arguments: that must work and must not start a kernel (the
local session is created on first use). Integration suites invoke tool instances from one toolkit, so the
whole module runs on a single real kernel.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from langchain_core.tools import BaseTool
from langchain_tests.integration_tests import ToolsIntegrationTests
from langchain_tests.unit_tests import ToolsUnitTests

from langchain_codeinterp import (
    CodeInterpreterTool,
    CodeInterpreterToolkit,
    DownloadFileTool,
    ListFilesTool,
    UploadFileTool,
)
from llama_index_tools_codeinterp.core.factory import POOL_ENDPOINT_ENV

_shared: dict[str, BaseTool] = {}
_EXAMPLE_ENDPOINT = "https://eastus.dynamicsessions.io/subscriptions/s/resourceGroups/g/sessionPools/p"


@pytest.fixture(scope="module", autouse=True)
def shared_tools() -> Iterator[None]:
    """One toolkit (one kernel) for every integration suite; the file the download suite reads exists."""
    with CodeInterpreterToolkit(backend_options={"timeout": 60}) as toolkit:
        _shared.update({tool.name: tool for tool in toolkit.get_tools()})
        toolkit.session.backend.upload("standard.txt", b"standard tests\n")
        yield
    _shared.clear()


def _azure_env_params() -> tuple[dict[str, str], dict[str, Any], dict[str, Any]]:
    # Reading the endpoint from the environment creates the Azure backend (an HTTP client, no request is made).
    try:
        from llama_index_tools_codeinterp.core.azure import AzureSessionsBackend  # noqa: F401
    except ImportError as exc:
        pytest.skip(f"the Azure backend is not available yet: {exc}")
    return {POOL_ENDPOINT_ENV: _EXAMPLE_ENDPOINT}, {}, {"pool_management_endpoint": _EXAMPLE_ENDPOINT}


class _UnitBase(ToolsUnitTests):
    @property
    def tool_constructor_params(self) -> dict[str, Any]:
        return {}

    @property
    def init_from_env_params(self) -> tuple[dict[str, str], dict[str, Any], dict[str, Any]]:
        return _azure_env_params()


class TestCodeInterpreterToolUnit(_UnitBase):
    @property
    def tool_constructor(self) -> type[BaseTool]:
        return CodeInterpreterTool

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return {"python_code": "print(6 * 7)"}


class TestUploadFileToolUnit(_UnitBase):
    @property
    def tool_constructor(self) -> type[BaseTool]:
        return UploadFileTool

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return {"data": "a,b\n1,2\n", "remote_file_path": "table.csv"}


class TestDownloadFileToolUnit(_UnitBase):
    @property
    def tool_constructor(self) -> type[BaseTool]:
        return DownloadFileTool

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return {"remote_file_path": "/mnt/data/standard.txt"}


class TestListFilesToolUnit(_UnitBase):
    @property
    def tool_constructor(self) -> type[BaseTool]:
        return ListFilesTool


class TestCodeInterpreterToolIntegration(ToolsIntegrationTests):
    @property
    def tool_constructor(self) -> BaseTool:
        return _shared["code_interpreter"]

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return {"python_code": "import math\nmath.factorial(10)"}


class TestUploadFileToolIntegration(ToolsIntegrationTests):
    @property
    def tool_constructor(self) -> BaseTool:
        return _shared["upload_file"]

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return {"data": "a,b\n1,2\n", "remote_file_path": "table.csv"}


class TestDownloadFileToolIntegration(ToolsIntegrationTests):
    @property
    def tool_constructor(self) -> BaseTool:
        return _shared["download_file"]

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return {"remote_file_path": "/mnt/data/standard.txt"}


class TestListFilesToolIntegration(ToolsIntegrationTests):
    @property
    def tool_constructor(self) -> BaseTool:
        return _shared["list_files"]


def test_constructing_tools_starts_no_kernel() -> None:
    """What the unit suites rely on: a tool made with no arguments holds a session that has not started."""
    tool = CodeInterpreterTool()
    try:
        assert tool.session.backend.status()["started"] is False
        assert tool.session.backend.status()["kind"] == "deferred"
    finally:
        tool.close()
    assert tool.session.backend.status()["closed"] is True
