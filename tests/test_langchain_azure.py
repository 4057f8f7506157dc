"""The same LangChain tools against the Azure backend, through a real session-pool server on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from langchain.agents import create_agent
from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.tools import BaseTool

from langchain_codeinterp import CodeInterpreterToolkit
from llama_index_tools_codeinterp.core import ExecutionResult, RemoteFile
from llama_index_tools_codeinterp.core.factory import POOL_ENDPOINT_ENV

try:
    from pool_server import running_pool_server

    from llama_index_tools_codeinterp.core.azure import AzureSessionsBackend
except ImportError as exc:  # pragma: no cover - only while the server or the Azure backend is missing
    pytest.skip(f"needs tests/pool_server.py and the Azure backend: {exc}", allow_module_level=True)

from test_langchain_agents import ScriptedToolModel, tool_call

TOKEN = "lc-test-token"


@pytest.fixture(scope="module")
def pool_url() -> Iterator[str]:
    with running_pool_server(token=TOKEN, cooldown=600) as url:
        yield url


@pytest.fixture(scope="module")
def toolkit(pool_url: str) -> Iterator[CodeInterpreterToolkit]:
    options = {"token_provider": lambda: TOKEN, "timeout": 60}
    with CodeInterpreterToolkit(pool_management_endpoint=pool_url, backend_options=options) as kit:
        yield kit


@pytest.fixture(scope="module")
def tools(toolkit: CodeInterpreterToolkit) -> dict[str, BaseTool]:
    return {tool.name: tool for tool in toolkit.get_tools()}


def call(tool: BaseTool, args: dict[str, Any], call_id: str = "call_1") -> ToolMessage:
    return tool.invoke({"args": args, "id": call_id, "name": tool.name, "type": "tool_call"})


def test_endpoint_selects_the_azure_backend(toolkit: CodeInterpreterToolkit, pool_url: str) -> None:
    backend = toolkit.session.backend
    assert isinstance(backend, AzureSessionsBackend)
    assert backend.endpoint.rstrip("/") == pool_url.rstrip("/")
    assert "at most 60 seconds" in toolkit.get_tools()[0].description


def test_environment_variable_selects_the_azure_backend(pool_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(POOL_ENDPOINT_ENV, pool_url)
    with CodeInterpreterToolkit(backend_options={"token_provider": lambda: TOKEN}) as kit:
        assert kit.pool_management_endpoint == pool_url
        assert isinstance(kit.session.backend, AzureSessionsBackend)
        assert kit.get_tools()[0].invoke({"python_code": "print('via env')"}) == "stdout:\nvia env"


def test_tools_share_one_remote_session(tools: dict[str, BaseTool], toolkit: CodeInterpreterToolkit) -> None:
    up = call(tools["upload_file"], {"data": "3\n4\n", "remote_file_path": "in.txt"})
    assert up.status == "success" and isinstance(up.artifact, RemoteFile)
    ran = call(
        tools["code_interpreter"],
        {"python_code": "vals = [int(v) for v in open('/mnt/data/in.txt')]\n"
                        "open('/mnt/data/out.txt', 'w').write(str(sum(v * v for v in vals)))\nsum(vals)"},
    )  # fmt: skip
    assert isinstance(ran.artifact, ExecutionResult)
    assert ran.content.startswith("result:\n7")
    assert ran.artifact.session_id in (None, toolkit.session.backend.session_id)
    assert call(tools["download_file"], {"remote_file_path": "out.txt"}).artifact == b"25"
    listed = call(tools["list_files"], {})
    assert {"in.txt", "out.txt"} <= {f.filename for f in listed.artifact}
    assert "- /mnt/data/out.txt" in listed.content


async def test_async_tools_and_errors(tools: dict[str, BaseTool]) -> None:
    msg = await tools["code_interpreter"].ainvoke(
        {"args": {"python_code": "x_remote = 2 ** 20\nx_remote"}, "id": "a1", "name": "code_interpreter",
         "type": "tool_call"}
    )  # fmt: skip
    assert msg.content == "result:\n1048576"
    missing = await tools["download_file"].ainvoke(
        {"args": {"remote_file_path": "nope.bin"}, "id": "a2", "name": "download_file", "type": "tool_call"}
    )
    assert missing.status == "error" and "nope.bin" in missing.content


def test_agent_over_the_azure_backend(tools: dict[str, BaseTool]) -> None:
    model = ScriptedToolModel(
        responses=[
            tool_call("code_interpreter", {"python_code": "import math\nmath.comb(10, 3)"}, "c1"),
            AIMessage(content="There are 120 ways."),
        ]
    )
    out = create_agent(model=model, tools=list(tools.values())).invoke(
        {"messages": [{"role": "user", "content": "How many ways to pick 3 of 10?"}]}
    )
    (message,) = [m for m in out["messages"] if isinstance(m, ToolMessage)]
    assert message.content == "result:\n120"
    assert out["messages"][-1].content == "There are 120 ways."
