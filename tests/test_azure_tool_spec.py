"""The LlamaIndex fronts over Azure: CodeInterpreterToolSpec(pool_management_endpoint=...) and the drop-in
AzureCodeInterpreterToolSpec, both against ``codeinterp serve`` on 127.0.0.1, plus a scripted ReAct agent."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from llama_index.core.agent.workflow import ReActAgent, ToolCallResult
from pool_server import running_pool_server

from llama_index_tools_codeinterp import (
    AzureCodeInterpreterToolSpec,
    AzureSessionsBackend,
    CodeInterpreterToolSpec,
    ExecutionResult,
    RemoteFile,
)
from llama_index_tools_codeinterp.core import ConfigurationError
from llama_index_tools_codeinterp.scripted import ScriptedReActLLM, react_action, react_answer

TOKEN = "spec-token"
PLOT = "import matplotlib.pyplot as plt\nplt.plot([1, 4, 9])\nplt.show()"


@pytest.fixture(scope="module")
def pool_url() -> Iterator[str]:
    with running_pool_server(token=TOKEN, cooldown=600) as url:
        yield url


def _live_sessions(url: str) -> int:
    return requests.get(f"{url}/health", timeout=10).json()["sessions"]


def test_generic_spec_selects_azure_from_the_endpoint(pool_url: str) -> None:
    with CodeInterpreterToolSpec(pool_management_endpoint=pool_url, token_provider=lambda: TOKEN) as spec:
        assert isinstance(spec.backend, AzureSessionsBackend)
        response = spec.code_interpreter("```python\nprint('hello world')\n1 + 1\n```")
        props = response["properties"]
        assert props["status"] == "Success" and props["stdout"] == "hello world\n" and props["result"] == 2
        tools = {t.metadata.name: t for t in spec.to_tool_list()}
        output = tools["code_interpreter"].call(python_code=PLOT)
        assert re.search(r"\[image image/png saved to /mnt/data/figure_\d+\.png\]", output.content), output.content
        assert "base64" not in output.content and "iVBOR" not in output.content
        assert isinstance(output.raw_output, ExecutionResult)
        saved = output.raw_output.images[0].saved_as
        assert spec.backend.download(saved).startswith(b"\x89PNG")


def test_endpoint_from_the_environment(pool_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZURE_POOL_MANAGEMENT_ENDPOINT", pool_url)
    with CodeInterpreterToolSpec(token_provider=lambda: TOKEN, api_version="2024-02-02-preview") as spec:
        assert spec.backend.status()["dialect"] == "legacy"
        assert spec.code_interpreter("6 * 7")["properties"]["result"] == 42


@pytest.mark.parametrize("api_version", ["2024-02-02-preview", "2025-10-02-preview"])
def test_drop_in_spec_works_like_the_original(pool_url: str, tmp_path: Path, api_version: str) -> None:
    plots = tmp_path / "plots"
    plots.mkdir()
    before = _live_sessions(pool_url)
    # The original's positional order; only the import changed.
    spec = AzureCodeInterpreterToolSpec(
        pool_url, None, str(plots), True, token_provider=lambda: TOKEN, api_version=api_version
    )
    assert [t.metadata.name for t in spec.to_tool_list()] == ["code_interpreter", "list_files"]
    response = spec.code_interpreter(PLOT)
    image = response["properties"]["result"]
    assert image["type"] == "image" and image["file_full_path"].startswith("/mnt/data/figure_")
    assert "base64_data" not in image
    assert [p.name for p in plots.iterdir()] == [Path(image["file_full_path"]).name]  # local_save_path copy
    local = tmp_path / "in.csv"
    local.write_text("a,b\n1,2\n")
    uploaded = spec.upload_file(local_file_path=str(local))
    assert isinstance(uploaded[0], RemoteFile) and uploaded[0].file_full_path == "/mnt/data/in.csv"
    listed = {f.filename: f for f in spec.list_files()}
    assert listed["in.csv"].size_in_bytes == 8
    assert spec.download_file_to_local("/mnt/data/in.csv").read() == b"a,b\n1,2\n"
    assert _live_sessions(pool_url) == before + 1
    spec.close()
    assert _live_sessions(pool_url) == before, "close() must delete the session so the pool does not leak it"


def test_drop_in_accepts_the_old_misspelled_keyword(pool_url: str) -> None:
    with AzureCodeInterpreterToolSpec(pool_managment_endpoint=pool_url + "/", token_provider=lambda: TOKEN) as spec:
        assert spec.pool_management_endpoint == pool_url
        assert spec.code_interpreter("'ok'")["properties"]["result"] == "ok"


def test_drop_in_configuration_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AZURE_POOL_MANAGEMENT_ENDPOINT", raising=False)
    with pytest.raises(ConfigurationError, match="AZURE_POOL_MANAGEMENT_ENDPOINT"):
        AzureCodeInterpreterToolSpec(token_provider=lambda: "t")
    with pytest.raises(ConfigurationError, match="different values"):
        AzureCodeInterpreterToolSpec("https://a.example", pool_managment_endpoint="https://b.example")
    with pytest.raises(ConfigurationError, match="does not exist"):
        AzureCodeInterpreterToolSpec("https://a.example", local_save_path=str(tmp_path / "missing"))


async def test_react_agent_over_azure(pool_url: str) -> None:
    spec = AzureCodeInterpreterToolSpec(pool_url, token_provider=lambda: TOKEN)

    def answer(prompt: str) -> str:
        found = re.findall(r"Observation: result:\n(\d+)", prompt)
        return react_answer(f"The sum is {found[-1]}.")

    llm = ScriptedReActLLM(
        turns=[
            react_action("code_interpreter", "Compute.", python_code="total = sum(range(101))\ntotal"),
            react_action("list_files", "Look at the files."),
            answer,
        ]
    )
    agent = ReActAgent(tools=spec.to_tool_list(), llm=llm, streaming=False)
    handler = agent.run(user_msg="Sum 0..100 with code.")
    results = [ev async for ev in handler.stream_events() if isinstance(ev, ToolCallResult)]
    final = str(await handler)
    await spec.backend.aclose()
    assert [r.tool_name for r in results] == ["code_interpreter", "list_files"]
    assert results[0].tool_output.content == "result:\n5050"
    assert "5050" in final
