"""CodeInterpreterToolSpec: direct calls, the tools an agent gets, rendering budgets and host-path rules."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from llama_index.core.base.llms.types import ImageBlock

from llama_index_tools_codeinterp import CodeInterpreterToolSpec, ExecutionResult, RemoteFile
from llama_index_tools_codeinterp.core import ConfigurationError
from llama_index_tools_codeinterp.core.local import LocalKernelBackend


@pytest.fixture(scope="module")
def spec(local_backend: LocalKernelBackend) -> CodeInterpreterToolSpec:
    return CodeInterpreterToolSpec(backend=local_backend)


@pytest.fixture(scope="module")
def tools(spec: CodeInterpreterToolSpec) -> dict:
    return {t.metadata.name: t for t in spec.to_tool_list()}


# -- direct calls ------------------------------------------------------------------------------------
def test_code_interpreter_returns_the_azure_shape(spec: CodeInterpreterToolSpec) -> None:
    response = spec.code_interpreter("print('hello world')\n1 + 1")
    props = response["properties"]
    assert props["status"] == "Success"
    assert props["stdout"] == "hello world\n"
    assert props["stderr"] == ""
    assert props["result"] == 2
    assert isinstance(props["executionTimeInMilliseconds"], int)
    assert isinstance(response.execution, ExecutionResult)
    failed = spec.code_interpreter("raise ValueError('bad')")["properties"]
    assert failed["status"] == "Failure"
    assert failed["error"]["name"] == "ValueError"
    assert spec.code_interpreter("x_unused = 3")["properties"]["result"] == ""


def test_image_result_is_a_file_reference_not_base64(spec: CodeInterpreterToolSpec) -> None:
    props = spec.code_interpreter("import matplotlib.pyplot as plt\nplt.bar([1, 2], [3, 4])\nplt.show()")["properties"]
    assert props["result"]["type"] == "image"
    assert props["result"]["format"] == "png"
    assert props["result"]["file_full_path"].startswith("/mnt/data/figure_")
    assert "base64_data" not in props["result"]


def test_upload_in_memory_with_a_name_and_download(spec: CodeInterpreterToolSpec, tmp_path: Path) -> None:
    files = spec.upload_file(data=b"\x00\x01binary", remote_file_path="mem.bin")
    assert isinstance(files, list) and isinstance(files[0], RemoteFile)
    assert files[0].file_full_path == "/mnt/data/mem.bin" and files[0].size_in_bytes == 8
    spec.upload_file(data="text upload", remote_file_path="/mnt/data/text.txt")
    named = io.BytesIO(b"from a named stream")
    named.name = "/somewhere/stream.dat"
    spec.upload_file(data=named)
    buffer = spec.download_file_to_local("/mnt/data/mem.bin")
    assert buffer is not None and buffer.read() == b"\x00\x01binary"
    target = tmp_path / "out" / "text.txt"
    assert spec.download_file_to_local("text.txt", str(target)) is None
    assert target.read_text() == "text upload"
    listed = {f.filename: f for f in spec.list_files()}
    assert {"mem.bin", "text.txt", "stream.dat"} <= set(listed)
    assert listed["stream.dat"].size_in_bytes == len(b"from a named stream")
    with pytest.raises(ConfigurationError, match="remote_file_path"):
        spec.upload_file(data=b"no name")
    with pytest.raises(ConfigurationError, match="exactly one"):
        spec.upload_file()


def test_direct_calls_may_use_any_host_path(spec: CodeInterpreterToolSpec, tmp_path: Path) -> None:
    local = tmp_path / "anywhere.csv"
    local.write_text("a\n1\n")
    assert spec.upload_file(local_file_path=str(local))[0].filename == "anywhere.csv"


async def test_async_twins(spec: CodeInterpreterToolSpec) -> None:
    response = await spec.acode_interpreter("21 * 2")
    assert response["properties"]["result"] == 42
    await spec.aupload_file(data=b"async", remote_file_path="async_twin.txt")
    assert (await spec.adownload_file_to_local("async_twin.txt")).read() == b"async"
    assert "async_twin.txt" in {f.filename for f in await spec.alist_files()}


def test_sanitize_strips_fences_without_mangling_code(spec: CodeInterpreterToolSpec) -> None:
    fenced = "```python\npythonic = 1\nprint(pythonic + 1)\n```"
    assert spec.code_interpreter(fenced)["properties"]["stdout"] == "2\n"
    assert spec.code_interpreter("pythonic = 5\npythonic")["properties"]["result"] == 5
    assert spec.code_interpreter("s = '```'\ns")["properties"]["result"] == "```"


# -- what the LLM gets -------------------------------------------------------------------------------
def test_tool_list_metadata(tools: dict) -> None:
    assert set(tools) == {"code_interpreter", "upload_file", "download_file_to_local", "list_files"}
    ci = tools["code_interpreter"].metadata
    assert "/mnt/data" in ci.description and "stateful" in ci.description
    assert list(ci.fn_schema.model_json_schema()["properties"]) == ["python_code"]
    for tool in tools.values():
        assert tool.async_fn is not None
    dl = tools["download_file_to_local"].metadata.fn_schema.model_json_schema()
    assert dl["required"] == ["remote_file_path"]


def test_tool_call_gives_compact_text_and_full_raw_output(tools: dict) -> None:
    out = tools["code_interpreter"].call(python_code="print('hi')\n40 + 2")
    assert out.content == "stdout:\nhi\n\nresult:\n42"
    assert isinstance(out.raw_output, ExecutionResult) and out.raw_output.text == "42"
    assert not out.is_error


async def test_tool_acall(tools: dict) -> None:
    out = await tools["code_interpreter"].acall(python_code="'async ' + 'tool'")
    assert "'async tool'" in out.content
    listing = await tools["list_files"].acall()
    assert "/mnt/data" in listing.content


def test_errors_render_as_name_value_and_trimmed_traceback(tools: dict) -> None:
    out = tools["code_interpreter"].call(python_code="def f():\n    return {}['missing']\nf()")
    assert "error: KeyError: 'missing'" in out.content
    assert "traceback:" in out.content and "\x1b[" not in out.content
    assert "-----" not in out.content


def test_budget_cuts_the_middle_and_saves_the_full_text(spec: CodeInterpreterToolSpec, tools: dict) -> None:
    out = tools["code_interpreter"].call(python_code="for i in range(20000): print(f'line {i}')")
    assert len(out.content) < 5000
    assert "line 0" in out.content and "line 19999" in out.content
    assert "characters cut from the middle" in out.content
    saved = out.content.split("the full text is in ")[1].split(" ...]")[0]
    assert saved.startswith("/mnt/data/outputs/")
    full = spec.backend.download(saved).decode()
    assert full.count("\n") == 20000
    assert len(out.raw_output.stdout) > 100_000


def test_figures_are_listed_by_path_never_base64(tools: dict) -> None:
    out = tools["code_interpreter"].call(
        python_code="import matplotlib.pyplot as plt\nplt.plot([1, 2, 3])\nplt.savefig('named.png')\nplt.show()"
    )
    assert "/mnt/data/named.png" in out.content
    assert "/mnt/data/figure_" in out.content
    assert "iVBOR" not in out.content  # the base64 prefix of every PNG
    assert all(not isinstance(b, ImageBlock) for b in out.blocks)


def test_image_blocks_for_vision_models(local_backend: LocalKernelBackend) -> None:
    spec = CodeInterpreterToolSpec(backend=local_backend, image_blocks=True)
    tool = {t.metadata.name: t for t in spec.to_tool_list()}["code_interpreter"]
    out = tool.call(python_code="import matplotlib.pyplot as plt\nplt.plot([3, 1])\nplt.show()")
    images = [b for b in out.blocks if isinstance(b, ImageBlock)]
    assert len(images) == 1 and images[0].image_mimetype == "image/png"
    assert "iVBOR" not in out.blocks[0].text


def test_no_output_is_said_plainly(tools: dict) -> None:
    assert "no output" in tools["code_interpreter"].call(python_code="quiet = 1").content


def test_llm_host_paths_need_an_allowed_directory(tools: dict, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("do not read")
    out = tools["upload_file"].call(local_file_path=str(secret))
    assert out.is_error and "not allowed" in out.content and "allowed_upload_dirs" in out.content
    out = tools["download_file_to_local"].call(remote_file_path="text.txt", local_file_path=str(tmp_path / "x"))
    assert out.is_error and "allowed_download_dirs" in out.content
    assert not (tmp_path / "x").exists()


def test_llm_host_paths_inside_allowed_directories(local_backend: LocalKernelBackend, tmp_path: Path) -> None:
    inbox, outbox, elsewhere = tmp_path / "in", tmp_path / "out", tmp_path / "elsewhere"
    for d in (inbox, outbox, elsewhere):
        d.mkdir()
    (inbox / "data.csv").write_text("k,v\n1,2\n")
    (elsewhere / "other.csv").write_text("no")
    spec = CodeInterpreterToolSpec(backend=local_backend, allowed_upload_dirs=[inbox], allowed_download_dirs=[outbox])
    tools = {t.metadata.name: t for t in spec.to_tool_list()}
    ok = tools["upload_file"].call(local_file_path=str(inbox / "data.csv"))
    assert not ok.is_error and "/mnt/data/data.csv" in ok.content
    sneaky = tools["upload_file"].call(local_file_path=str(inbox / ".." / "elsewhere" / "other.csv"))
    assert sneaky.is_error and "outside" in sneaky.content
    saved = tools["download_file_to_local"].call(remote_file_path="data.csv", local_file_path=str(outbox / "d.csv"))
    assert not saved.is_error and (outbox / "d.csv").read_text() == "k,v\n1,2\n"


def test_llm_download_shows_text_and_summarises_binary(tools: dict, spec: CodeInterpreterToolSpec) -> None:
    spec.upload_file(data="alpha\nbeta\n", remote_file_path="notes.txt")
    spec.upload_file(data=bytes(range(256)), remote_file_path="blob.bin")
    text = tools["download_file_to_local"].call(remote_file_path="/mnt/data/notes.txt")
    assert "alpha\nbeta" in text.content
    blob = tools["download_file_to_local"].call(remote_file_path="blob.bin")
    assert "binary file" in blob.content and blob.raw_output == bytes(range(256))
    missing = tools["download_file_to_local"].call(remote_file_path="nope.txt")
    assert missing.is_error and "list_files" in missing.content
    escape = tools["download_file_to_local"].call(remote_file_path="../../etc/passwd")
    assert escape.is_error and "/mnt/data" in escape.content


def test_llm_upload_of_text_data(tools: dict, spec: CodeInterpreterToolSpec) -> None:
    out = tools["upload_file"].call(data="x,y\n", remote_file_path="typed.csv")
    assert not out.is_error
    assert spec.backend.download("typed.csv") == b"x,y\n"


def test_local_save_path_receives_figures(local_backend: LocalKernelBackend, tmp_path: Path) -> None:
    spec = CodeInterpreterToolSpec(backend=local_backend, local_save_path=tmp_path)
    spec.code_interpreter("import matplotlib.pyplot as plt\nplt.plot([0, 1])\nplt.show()")
    assert [p.suffix for p in tmp_path.iterdir()] == [".png"]
    with pytest.raises(ConfigurationError):
        CodeInterpreterToolSpec(backend=local_backend, local_save_path=tmp_path / "missing")


def test_default_spec_starts_and_stops_its_own_local_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AZURE_POOL_MANAGEMENT_ENDPOINT", raising=False)
    with CodeInterpreterToolSpec(timeout=30) as spec:
        assert isinstance(spec.backend, LocalKernelBackend)
        assert spec.code_interpreter("3 * 3")["properties"]["result"] == 9
    with pytest.raises(Exception, match="closed"):
        spec.code_interpreter("1")
