"""LangChain agents (langchain 1.x ``create_agent`` and langchain-classic ``AgentExecutor``) driven by scripted chat
models that call the code-interpreter tools; the tools really run the code in a kernel."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from langchain.agents import create_agent
from langchain_classic.agents import AgentExecutor, create_tool_calling_agent
from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.tools import BaseTool

from langchain_codeinterp import CodeInterpreterToolkit
from llama_index_tools_codeinterp.core import ExecutionResult, RemoteFile


class ScriptedToolModel(FakeMessagesListChatModel):
    """Answers with a fixed list of messages (tool calls included); binding tools leaves it unchanged."""

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> ScriptedToolModel:  # type: ignore[override]
        return self


def tool_call(name: str, args: dict[str, Any], call_id: str) -> AIMessage:
    return AIMessage(content="", tool_calls=[{"name": name, "args": args, "id": call_id, "type": "tool_call"}])


@pytest.fixture(scope="module")
def toolkit() -> Iterator[CodeInterpreterToolkit]:
    with CodeInterpreterToolkit(backend_options={"timeout": 60}) as kit:
        yield kit


@pytest.fixture(scope="module")
def tools(toolkit: CodeInterpreterToolkit) -> list[BaseTool]:
    return toolkit.get_tools()


def _tool_messages(messages: list[BaseMessage]) -> list[ToolMessage]:
    return [m for m in messages if isinstance(m, ToolMessage)]


_FIB = "def fib(n):\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a\nfib(30)"


def test_create_agent_runs_code_in_the_kernel(tools: list[BaseTool]) -> None:
    model = ScriptedToolModel(
        responses=[
            tool_call("code_interpreter", {"python_code": _FIB}, "call_fib"),
            tool_call("code_interpreter", {"python_code": "print(fib(30) % 1000)"}, "call_mod"),
            AIMessage(content="fib(30) is 832040."),
        ]
    )
    agent = create_agent(model=model, tools=tools, system_prompt="Use the code interpreter for arithmetic.")
    out = agent.invoke({"messages": [{"role": "user", "content": "What is the 30th Fibonacci number?"}]})
    first, second = _tool_messages(out["messages"])
    assert first.name == "code_interpreter" and first.tool_call_id == "call_fib"
    assert first.content == "result:\n832040"
    assert isinstance(first.artifact, ExecutionResult) and first.artifact.result.text == "832040"
    assert second.content == "stdout:\n40"  # the function defined by the first call is still there
    assert out["messages"][-1].content == "fib(30) is 832040."


async def test_create_agent_async_uses_files_across_tools(tools: list[BaseTool]) -> None:
    model = ScriptedToolModel(
        responses=[
            tool_call("upload_file", {"data": "x,y\n1,2\n3,4\n5,6\n", "remote_file_path": "pts.csv"}, "c1"),
            tool_call(
                "code_interpreter",
                {
                    "python_code": "import csv\nrows = list(csv.DictReader(open('/mnt/data/pts.csv')))\n"
                    "open('sums.txt', 'w').write(str(sum(int(r['x']) * int(r['y']) for r in rows)))"
                },
                "c2",
            ),
            tool_call("download_file", {"remote_file_path": "sums.txt"}, "c3"),
            tool_call("list_files", {}, "c4"),
            AIMessage(content="The dot product is 44."),
        ]
    )
    agent = create_agent(model=model, tools=tools)
    out = await agent.ainvoke({"messages": [{"role": "user", "content": "Dot product of x and y in my data?"}]})
    uploaded, ran, downloaded, listed = _tool_messages(out["messages"])
    assert isinstance(uploaded.artifact, RemoteFile) and uploaded.artifact.file_full_path == "/mnt/data/pts.csv"
    assert "- /mnt/data/sums.txt" in ran.content
    assert downloaded.artifact == b"44"
    assert downloaded.content.endswith("\n44")
    assert {"pts.csv", "sums.txt"} <= {f.filename for f in listed.artifact}
    assert all(m.status == "success" for m in (uploaded, ran, downloaded, listed))


def test_create_agent_sees_tool_errors_as_messages(tools: list[BaseTool]) -> None:
    model = ScriptedToolModel(
        responses=[
            tool_call("download_file", {"remote_file_path": "missing.csv"}, "c1"),
            tool_call("code_interpreter", {"python_code": "import os\nsorted(os.listdir('.'))[:0]"}, "c2"),
            AIMessage(content="The file does not exist."),
        ]
    )
    out = create_agent(model=model, tools=tools).invoke({"messages": [{"role": "user", "content": "open missing.csv"}]})
    error, recovered = _tool_messages(out["messages"])
    assert error.status == "error"
    assert "missing.csv" in error.content and "list_files" in error.content
    assert recovered.status == "success" and recovered.content == "result:\n[]"


def test_classic_agent_executor_runs_code(tools: list[BaseTool]) -> None:
    model = ScriptedToolModel(
        responses=[
            tool_call(
                "code_interpreter", {"python_code": "import statistics\nstatistics.median([7, 1, 5, 3, 9])"}, "c1"
            ),
            AIMessage(content="The median is 5."),
        ]
    )
    prompt = ChatPromptTemplate.from_messages(
        [("system", "You run code."), ("human", "{input}"), ("placeholder", "{agent_scratchpad}")]
    )
    executor = AgentExecutor(
        agent=create_tool_calling_agent(model, tools, prompt), tools=tools, return_intermediate_steps=True
    )
    result = executor.invoke({"input": "median of 7 1 5 3 9?"})
    ((action, observation),) = result["intermediate_steps"]
    assert action.tool == "code_interpreter"
    assert action.tool_input == {"python_code": "import statistics\nstatistics.median([7, 1, 5, 3, 9])"}
    assert observation == "result:\n5"
    assert result["output"] == "The median is 5."
