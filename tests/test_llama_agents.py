"""LlamaIndex agents driven by scripted LLMs really execute code in a kernel through our tools."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from llama_index.core.agent.workflow import FunctionAgent, ReActAgent, ToolCallResult
from llama_index.core.base.llms.types import ChatMessage, MessageRole, ToolCallBlock
from llama_index.core.llms import MockFunctionCallingLLM

from llama_index_tools_codeinterp import CodeInterpreterToolSpec, ExecutionResult
from llama_index_tools_codeinterp.core.local import LocalKernelBackend
from llama_index_tools_codeinterp.scripted import ScriptedReActLLM, react_action, react_answer


async def _run(agent, message: str) -> tuple[list[ToolCallResult], str]:
    handler = agent.run(user_msg=message)
    results = [ev async for ev in handler.stream_events() if isinstance(ev, ToolCallResult)]
    return results, str(await handler)


async def test_react_agent_runs_code_and_reads_the_result(local_backend: LocalKernelBackend) -> None:
    spec = CodeInterpreterToolSpec(backend=local_backend)

    def answer_from_observation(prompt: str) -> str:
        # The scripted model quotes what the real kernel printed, so the answer depends on real execution.
        value = re.findall(r"Observation: result:\n(\d+)", prompt)[0]
        return react_answer(f"The 20th Fibonacci number is {value}.")

    llm = ScriptedReActLLM(
        turns=[
            react_action(
                "code_interpreter",
                "I will compute it.",
                python_code="```python\nfib = [0, 1]\nfor _ in range(19): fib.append(fib[-1] + fib[-2])\nfib[20]\n```",
            ),
            react_action("code_interpreter", "Check the state persisted.", python_code="len(fib)"),
            answer_from_observation,
        ]
    )
    agent = ReActAgent(tools=spec.to_tool_list(), llm=llm, streaming=False)
    results, answer = await _run(agent, "What is the 20th Fibonacci number? Use code.")
    assert [r.tool_name for r in results] == ["code_interpreter", "code_interpreter"]
    assert results[0].tool_output.content == "result:\n6765"
    assert isinstance(results[0].tool_output.raw_output, ExecutionResult)
    assert results[1].tool_output.content == "result:\n21"
    assert "6765" in answer
    # The model's prompt carried the tool descriptions (the LLM really saw /mnt/data).
    assert "/mnt/data" in llm.prompts[0]


async def test_react_agent_sees_errors_and_recovers(local_backend: LocalKernelBackend) -> None:
    spec = CodeInterpreterToolSpec(backend=local_backend)
    llm = ScriptedReActLLM(
        turns=[
            react_action("code_interpreter", "Try.", python_code="undefined_name_xyz + 1"),
            react_action("code_interpreter", "Fix it.", python_code="undefined_name_xyz = 1\nundefined_name_xyz + 1"),
            lambda prompt: react_answer("saw NameError" if "error: NameError" in prompt else "missed it"),
        ]
    )
    results, answer = await _run(ReActAgent(tools=spec.to_tool_list(), llm=llm, streaming=False), "go")
    assert "error: NameError: name 'undefined_name_xyz' is not defined" in results[0].tool_output.content
    assert results[1].tool_output.content == "result:\n2"
    assert answer == "saw NameError"


async def test_function_agent_uses_files_and_code(local_backend: LocalKernelBackend) -> None:
    spec = CodeInterpreterToolSpec(backend=local_backend)
    script = [
        ToolCallBlock(
            tool_call_id="c1",
            tool_name="upload_file",
            tool_kwargs={"data": "n\n3\n4\n5\n", "remote_file_path": "numbers.csv"},
        ),
        ToolCallBlock(
            tool_call_id="c2",
            tool_name="code_interpreter",
            tool_kwargs={"python_code": "import pandas as pd\nint(pd.read_csv('/mnt/data/numbers.csv').n.sum())"},
        ),
        ToolCallBlock(tool_call_id="c3", tool_name="list_files", tool_kwargs={}),
    ]

    def respond(messages: list[ChatMessage], **kwargs: object) -> ChatMessage:
        done = sum(1 for m in messages if m.role == MessageRole.TOOL)
        if done < len(script):
            return ChatMessage(role="assistant", blocks=[script[done]])
        tool_texts = [m.content for m in messages if m.role == MessageRole.TOOL]
        return ChatMessage(role="assistant", content=json.dumps(tool_texts))

    agent = FunctionAgent(tools=spec.to_tool_list(), llm=MockFunctionCallingLLM(response_generator=respond))
    results, answer = await _run(agent, "Sum the numbers.")
    assert [r.tool_name for r in results] == ["upload_file", "code_interpreter", "list_files"]
    assert results[1].tool_output.content == "result:\n12"
    assert "/mnt/data/numbers.csv" in results[2].tool_output.content
    assert "result:\\n12" in answer


def test_demo_runs_end_to_end_with_the_scripted_llm(tmp_path: Path) -> None:
    env = {"CODEINTERP_DEMO_LLM": "scripted", "CODEINTERP_DEMO_OUTPUT": str(tmp_path / "out"), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-m", "llama_index_tools_codeinterp.demo"],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "scripted stand-in" in done.stdout
    assert "Best region: East" in done.stdout
    chart = tmp_path / "out" / "revenue_by_month.png"
    assert chart.read_bytes().startswith(b"\x89PNG")
