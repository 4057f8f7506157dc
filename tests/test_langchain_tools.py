"""The LangChain tools over a real kernel: shared session, content vs artifact, errors, async, host-path rules."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import psutil
import pytest
from langchain_core.messages import ToolMessage
from langchain_core.tools import BaseTool, ToolException

from langchain_codeinterp import (
    CodeInterpreterTool,
    CodeInterpreterToolkit,
    DownloadFileTool,
    ListFilesTool,
    UploadFileTool,
)
from llama_index_tools_codeinterp.core import (
    CodeInterpreterToolset,
    ConfigurationError,
    ExecutionResult,
    RemoteFile,
    RemoteFileNotFoundError,
)
from llama_index_tools_codeinterp.core.backend import DownloadTarget, UploadSource
from llama_index_tools_codeinterp.core.local import LocalKernelBackend
from llama_index_tools_codeinterp.core.toolset import (
    CODE_INTERPRETER_DESCRIPTION,
    DOWNLOAD_FILE_DESCRIPTION,
    LIST_FILES_DESCRIPTION,
    UPLOAD_FILE_DESCRIPTION,
)

_nested: ContextVar[bool] = ContextVar("nested", default=False)


class RecordingBackend(LocalKernelBackend):
    """A real local backend that notes which side (sync or async) of its API each call came in through.

    Only the outermost call is recorded: how the backend implements one side internally is its own business.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.calls: list[str] = []

    @contextlib.contextmanager
    def _record(self, name: str) -> Iterator[None]:
        if not _nested.get():
            self.calls.append(name)
        token = _nested.set(True)
        try:
            yield
        finally:
            _nested.reset(token)

    def execute(self, code: str, *, timeout: float | None = None) -> ExecutionResult:
        with self._record("execute"):
            return super().execute(code, timeout=timeout)

    async def aexecute(self, code: str, *, timeout: float | None = None) -> ExecutionResult:
        with self._record("aexecute"):
            return await super().aexecute(code, timeout=timeout)

    def upload(self, remote_path: str, source: UploadSource) -> RemoteFile:
        with self._record("upload"):
            return super().upload(remote_path, source)

    async def aupload(self, remote_path: str, source: UploadSource) -> RemoteFile:
        with self._record("aupload"):
            return await super().aupload(remote_path, source)

    def download_to(self, remote_path: str, destination: DownloadTarget) -> int:
        with self._record("download_to"):
            return super().download_to(remote_path, destination)

    async def adownload_to(self, remote_path: str, destination: DownloadTarget) -> int:
        with self._record("adownload_to"):
            return await super().adownload_to(remote_path, destination)

    def list_files(self, path: str = "") -> list[RemoteFile]:
        with self._record("list_files"):
            return super().list_files(path)

    async def alist_files(self, path: str = "") -> list[RemoteFile]:
        with self._record("alist_files"):
            return await super().alist_files(path)


@pytest.fixture(scope="module")
def backend() -> Iterator[RecordingBackend]:
    with RecordingBackend(timeout=60, interrupt_grace=3) as b:
        yield b  # type: ignore[misc]


@pytest.fixture(scope="module")
def tools(backend: RecordingBackend) -> dict[str, BaseTool]:
    toolkit = CodeInterpreterToolkit(backend=backend)
    return {tool.name: tool for tool in toolkit.get_tools()}


def call(tool: BaseTool, args: dict[str, Any], call_id: str = "call_1") -> ToolMessage:
    message = tool.invoke({"args": args, "id": call_id, "name": tool.name, "type": "tool_call"})
    assert isinstance(message, ToolMessage)
    return message


async def acall(tool: BaseTool, args: dict[str, Any], call_id: str = "call_1") -> ToolMessage:
    message = await tool.ainvoke({"args": args, "id": call_id, "name": tool.name, "type": "tool_call"})
    assert isinstance(message, ToolMessage)
    return message


# -- the toolkit ------------------------------------------------------------------------------------
def test_toolkit_gives_four_tools_over_one_session(tools: dict[str, BaseTool], backend: RecordingBackend) -> None:
    assert list(tools) == ["code_interpreter", "upload_file", "download_file", "list_files"]
    assert {type(t) for t in tools.values()} == {CodeInterpreterTool, UploadFileTool, DownloadFileTool, ListFilesTool}
    sessions = {id(t.session) for t in tools.values()}  # type: ignore[attr-defined]
    assert len(sessions) == 1
    assert tools["code_interpreter"].session.backend is backend  # type: ignore[attr-defined]
    assert all(t.response_format == "content_and_artifact" for t in tools.values())


def test_descriptions_come_from_the_core(tools: dict[str, BaseTool], backend: RecordingBackend) -> None:
    assert tools["code_interpreter"].description == CODE_INTERPRETER_DESCRIPTION.format(timeout=backend.timeout)
    assert "at most 60 seconds" in tools["code_interpreter"].description
    assert tools["upload_file"].description == UPLOAD_FILE_DESCRIPTION
    assert tools["download_file"].description == DOWNLOAD_FILE_DESCRIPTION
    assert tools["list_files"].description == LIST_FILES_DESCRIPTION
    schema = tools["code_interpreter"].tool_call_schema.model_json_schema()  # type: ignore[union-attr]
    assert schema["required"] == ["python_code"]


def test_files_flow_between_the_tools(tools: dict[str, BaseTool]) -> None:
    uploaded = call(tools["upload_file"], {"data": "n\n3\n4\n5\n", "remote_file_path": "nums.csv"})
    assert uploaded.status == "success"
    assert isinstance(uploaded.artifact, RemoteFile)
    assert uploaded.artifact.file_full_path == "/mnt/data/nums.csv"
    assert "/mnt/data/nums.csv" in uploaded.content

    ran = call(
        tools["code_interpreter"],
        {"python_code": "import csv\nrows = list(csv.DictReader(open('nums.csv')))\n"
                        "total = sum(int(r['n']) for r in rows)\n"
                        "open('/mnt/data/total.txt', 'w').write(f'total={total}')\ntotal"},
    )  # fmt: skip
    assert ran.status == "success"
    assert isinstance(ran.artifact, ExecutionResult)
    assert ran.content == "result:\n12\n\nfiles created or changed:\n- /mnt/data/total.txt (text/plain, 8 bytes)"
    assert ran.artifact.result is not None and ran.artifact.result.text == "12"

    read = call(tools["download_file"], {"remote_file_path": "/mnt/data/total.txt"})
    assert read.artifact == b"total=12"
    assert read.content.endswith("total=12")

    listed = call(tools["list_files"], {})
    names = [f.filename for f in listed.artifact]
    assert {"nums.csv", "total.txt"} <= set(names)
    assert "- /mnt/data/total.txt (text/plain, 8 bytes)" in listed.content


def test_state_persists_and_plain_invoke_returns_the_text(tools: dict[str, BaseTool]) -> None:
    tool = tools["code_interpreter"]
    assert tool.invoke({"python_code": "persisted = [i * i for i in range(5)]"}).startswith("(")
    assert tool.invoke({"python_code": "sum(persisted)"}) == "result:\n30"
    assert tool.invoke("print(len(persisted))") == "stdout:\n5"  # single-argument tools accept a bare string


def test_markdown_fence_around_code_is_stripped(tools: dict[str, BaseTool]) -> None:
    assert tools["code_interpreter"].invoke({"python_code": "```python\nprint('fenced')\n```"}) == "stdout:\nfenced"


def test_python_errors_are_results_not_tool_errors(tools: dict[str, BaseTool]) -> None:
    message = call(tools["code_interpreter"], {"python_code": "{}['missing']"})
    assert message.status == "success"
    assert message.content.startswith("error: KeyError: 'missing'")
    assert message.artifact.error.name == "KeyError"


def test_output_budget_applies_to_the_model_not_the_artifact(tools: dict[str, BaseTool]) -> None:
    message = call(tools["code_interpreter"], {"python_code": "print('x' * 50_000)"})
    assert len(message.content) < 6_000
    assert "/mnt/data/" in message.content  # where the full text was saved
    assert message.artifact.stdout == "x" * 50_000 + "\n"


def test_actionable_errors_reach_the_model_with_error_status(tools: dict[str, BaseTool]) -> None:
    missing = call(tools["download_file"], {"remote_file_path": "no_such_file.txt"})
    assert missing.status == "error"
    assert "no_such_file.txt" in missing.content and "list_files" in missing.content

    escape = call(tools["upload_file"], {"data": "x", "remote_file_path": "../../etc/evil.txt"})
    assert escape.status == "error"
    assert "/mnt/data" in escape.content

    both = call(tools["upload_file"], {"data": "x", "local_file_path": "/etc/hosts", "remote_file_path": "h"})
    assert both.status == "error"
    assert "exactly one of data" in both.content


def test_errors_can_be_raised_instead(backend: RecordingBackend) -> None:
    tool = DownloadFileTool(backend=backend, handle_tool_error=False)
    with pytest.raises(ToolException, match="no_such_file") as caught:
        tool.invoke({"remote_file_path": "no_such_file.txt"})
    assert isinstance(caught.value.__cause__, RemoteFileNotFoundError)
    tool.close()  # not created by the tool: the shared kernel stays up
    assert isinstance(backend.list_files(), list)


# -- async ------------------------------------------------------------------------------------------
async def test_async_calls_use_the_backends_async_api(tools: dict[str, BaseTool], backend: RecordingBackend) -> None:
    backend.calls.clear()
    ran = await acall(tools["code_interpreter"], {"python_code": "import os\nprint(os.getcwd() != '', 2 ** 10)"})
    assert ran.content == "stdout:\nTrue 1024"
    up = await acall(tools["upload_file"], {"data": "async", "remote_file_path": "async.txt"})
    down = await acall(tools["download_file"], {"remote_file_path": "async.txt"})
    listed = await acall(tools["list_files"], {})
    assert up.artifact.filename == "async.txt" and down.artifact == b"async"
    assert "async.txt" in [f.filename for f in listed.artifact]
    assert backend.calls == ["aexecute", "aupload", "adownload_to", "alist_files"]

    backend.calls.clear()
    call(tools["list_files"], {})
    assert backend.calls == ["list_files"]


async def test_async_errors_reach_the_model(tools: dict[str, BaseTool]) -> None:
    message = await acall(tools["download_file"], {"remote_file_path": "../outside.txt"})
    assert message.status == "error"
    assert "/mnt/data" in message.content


# -- images -----------------------------------------------------------------------------------------
_PLOT = "import matplotlib.pyplot as plt\nplt.plot([1, 3, 2])\nplt.show()"


def test_figures_are_text_only_by_default(tools: dict[str, BaseTool]) -> None:
    message = call(tools["code_interpreter"], {"python_code": _PLOT})
    assert isinstance(message.content, str)
    assert "image/png saved to /mnt/data/" in message.content
    assert "base64" not in message.content and "iVBOR" not in message.content


def test_image_blocks_send_figures_as_standard_content_blocks(backend: RecordingBackend) -> None:
    tool = CodeInterpreterTool(backend=backend, image_blocks=True)
    message = call(tool, {"python_code": _PLOT})
    assert isinstance(message.content, list)
    text, image = message.content
    assert isinstance(text, dict) and text["type"] == "text" and "image/png" in text["text"]
    assert isinstance(image, dict) and image["type"] == "image" and image["mime_type"] == "image/png"
    assert image["base64"].startswith("iVBORw0KGgo")  # a PNG signature, base64-encoded
    assert [block["type"] for block in message.content_blocks] == ["text", "image"]
    assert isinstance(message.artifact, ExecutionResult)


# -- host paths -------------------------------------------------------------------------------------
def test_host_paths_are_refused_unless_allowed(tools: dict[str, BaseTool], tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("do not read")
    refused = call(tools["upload_file"], {"local_file_path": str(secret)})
    assert refused.status == "error"
    assert "allowed_upload_dirs" in refused.content

    refused = call(tools["download_file"], {"remote_file_path": "nums.csv", "local_file_path": str(tmp_path / "o")})
    assert refused.status == "error"
    assert "allowed_download_dirs" in refused.content
    assert not (tmp_path / "o").exists()


def test_allowed_host_directories(backend: RecordingBackend, tmp_path: Path) -> None:
    inbox, outbox = tmp_path / "in", tmp_path / "out"
    inbox.mkdir()
    outbox.mkdir()
    (inbox / "data.csv").write_text("a,b\n1,2\n")
    (tmp_path / "secret.txt").write_text("do not read")
    os.symlink(tmp_path / "secret.txt", inbox / "link.txt")
    with CodeInterpreterToolkit(backend=backend, allowed_upload_dirs=[inbox], allowed_download_dirs=[outbox]) as kit:
        tools = {t.name: t for t in kit.get_tools()}
        uploaded = call(tools["upload_file"], {"local_file_path": str(inbox / "data.csv")})
        assert uploaded.status == "success" and uploaded.artifact.file_full_path == "/mnt/data/data.csv"

        escaped = call(tools["upload_file"], {"local_file_path": str(inbox / "link.txt")})
        assert escaped.status == "error"
        assert "outside the host directories allowed" in escaped.content and str(inbox) in escaped.content

        saved = call(tools["download_file"], {"remote_file_path": "data.csv", "local_file_path": str(outbox / "c.csv")})
        assert saved.status == "success"
        assert saved.artifact == outbox / "c.csv"
        assert (outbox / "c.csv").read_text() == "a,b\n1,2\n"

        outside = tmp_path / "not_allowed.csv"
        refused = call(tools["download_file"], {"remote_file_path": "data.csv", "local_file_path": str(outside)})
        assert refused.status == "error" and not outside.exists()
    assert call(tools["list_files"], {}).status == "success"  # the toolkit did not own the backend


# -- construction and lifecycle ---------------------------------------------------------------------
def test_conflicting_settings_are_refused(backend: RecordingBackend) -> None:
    with pytest.raises(ConfigurationError, match="backend= was given together with"):
        CodeInterpreterToolkit(backend=backend, session_id="abcd")
    toolset = CodeInterpreterToolset(backend)
    with pytest.raises(ConfigurationError, match="toolset= was given together with image_blocks"):
        CodeInterpreterTool(toolset=toolset, image_blocks=True)
    assert CodeInterpreterTool(toolset=toolset).session is toolset


def test_default_toolkit_starts_its_kernel_on_first_use_and_closes_it() -> None:
    toolkit = CodeInterpreterToolkit(backend_options={"timeout": 30})
    code, *_, list_files = toolkit.get_tools()
    assert toolkit.session.backend.status()["started"] is False
    assert "at most 30 seconds" in code.description
    assert code.invoke({"python_code": "import os\nos.getpid()"}).startswith("result:\n")
    status = toolkit.session.backend.status()
    assert status["kind"] == "local" and status["session_id"] == toolkit.session.backend.session_id
    kernel = psutil.Process(status["kernel_pid"])
    assert kernel.is_running()
    toolkit.close()
    assert not kernel.is_running() or kernel.status() == psutil.STATUS_ZOMBIE
    closed = call(list_files, {})
    assert closed.status == "error" and "closed" in closed.content
    toolkit.close()  # idempotent


async def test_default_toolkit_async_context_manager() -> None:
    async with CodeInterpreterToolkit(session_id="lc-async-session") as toolkit:
        code = toolkit.get_tools()[0]
        message = await acall(code, {"python_code": "print(sum(range(101)))"})
        assert message.content == "stdout:\n5050"
        assert toolkit.start().session_id == "lc-async-session"
    assert toolkit.session.backend.status()["closed"] is True
