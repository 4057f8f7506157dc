"""Pure units: the path model, input sanitising and the LLM rendering rules."""

from __future__ import annotations

import pytest

from llama_index_tools_codeinterp.core import (
    ExecutionError,
    ExecutionResult,
    ExecutionStatus,
    InvalidPathError,
    Output,
    RemoteFile,
    RenderOptions,
    normalize_remote_path,
    render_execution,
    strip_code_fences,
)
from llama_index_tools_codeinterp.core.render import clean_text, truncate


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("a.csv", "a.csv"),
        ("/mnt/data/a.csv", "a.csv"),
        ("./sub//b.txt", "sub/b.txt"),
        ("/mnt/data/", ""),
        ("sub\\\\win.txt", "sub/win.txt"),
    ],
)
def test_normalize_accepts(given: str, expected: str) -> None:
    assert normalize_remote_path(given, allow_root=True) == expected


@pytest.mark.parametrize("bad", ["../x", "/etc/passwd", "/mnt/database/x", "a/../../x", "nul\x00l"])
def test_normalize_refuses_with_a_fix(bad: str) -> None:
    with pytest.raises(InvalidPathError, match=r"/mnt/data|NUL"):
        normalize_remote_path(bad)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("```python\nprint(1)\n```", "print(1)"),
        ("```\nx = 1\ny = 2\n```\n", "x = 1\ny = 2"),
        ("  ```py\nprint('a')```  ", "print('a')"),
        ("`1 + 1`", "1 + 1"),
        ("pythonic = 1", "pythonic = 1"),
        ("python_version = 3\nprint(python_version)", "python_version = 3\nprint(python_version)"),
        ("s = '```'\nprint(s)", "s = '```'\nprint(s)"),
        ("print(1)\n```\nnot a fence start", "print(1)\n```\nnot a fence start"),
    ],
)
def test_strip_code_fences(given: str, expected: str) -> None:
    assert strip_code_fences(given) == expected


def test_clean_text_strips_ansi_and_collapses_progress_bars() -> None:
    assert clean_text("\x1b[31mred\x1b[0m") == "red"
    assert clean_text("10%\r50%\r100%\ndone\r\n") == "100%\ndone\n"


def test_truncate_keeps_head_and_tail_and_says_where() -> None:
    text = "\n".join(f"line {i}" for i in range(1000))
    cut = truncate(text, 400, full_text_at="/mnt/data/outputs/x.txt")
    assert cut.startswith("line 0\n") and cut.endswith("line 999")
    assert "characters cut from the middle; the full text is in /mnt/data/outputs/x.txt" in cut
    assert len(cut) < 520
    assert truncate("short", 400) == "short"


def _result(**kw: object) -> ExecutionResult:
    return ExecutionResult(status=kw.pop("status", ExecutionStatus.SUCCEEDED), **kw)  # type: ignore[arg-type]


def test_render_sections_and_no_base64() -> None:
    png = Output({"image/png": "iVBORw0KGgoAAAA", "text/plain": "<Figure>"}, saved_as="figure_1.png")
    r = _result(
        stdout="hi\n",
        displays=[png, Output({"application/json": {"a": 1}})],
        result=Output({"text/plain": "3"}),
        files=[RemoteFile("figure_1.png", 2048, "image/png", change="created")],
    )
    text = render_execution(r).text
    assert text == (
        "stdout:\nhi\n\n"
        'display:\n[image image/png saved to /mnt/data/figure_1.png]\n{"a": 1}\n\n'
        "result:\n3\n\n"
        "files created or changed:\n- /mnt/data/figure_1.png (image/png, 2.0 KB)"
    )
    assert "iVBOR" not in text


def test_render_error_trims_library_frames_and_keeps_the_cell() -> None:
    tb = (
        "-" * 75 + "\nValueError                Traceback (most recent call last)\n"
        "Cell In[4], line 2\n      1 import lib\n----> 2 lib.go()\n\n"
        "File /site-packages/lib.py:10, in go()\n      8 a = 1\n      9 b = 2\n---> 10 raise ValueError('x')\n"
        "     11 c = 3\n\nValueError: x"
    )
    r = _result(status=ExecutionStatus.FAILED, error=ExecutionError("ValueError", "x", tb))
    text = render_execution(r).text
    assert text.startswith("error: ValueError: x\ntraceback:\n")
    assert "----> 2 lib.go()" in text and "---> 10 raise ValueError('x')" in text
    assert "8 a = 1" not in text and "-----------" not in text


def test_render_notices_come_first_and_empty_runs_say_so() -> None:
    r = _result(kernel_restarted=True, notices=["The kernel died."])
    assert render_execution(r).text.startswith("NOTE: The kernel died.")
    assert "no output" in render_execution(_result()).text


def test_render_budget_spills_full_text() -> None:
    saved: dict[str, str] = {}

    def spill(name: str, text: str) -> str:
        saved[name] = text
        return f"/mnt/data/{name}"

    r = _result(stdout="x" * 10_000, execution_count=7)
    text = render_execution(r, RenderOptions(max_chars=500), spill=spill).text
    assert saved == {"outputs/exec_7_stdout.txt": "x" * 10_000}
    assert "/mnt/data/outputs/exec_7_stdout.txt" in text and len(text) < 700


def test_azure_dict_values() -> None:
    assert _result(result=Output({"text/plain": "'abc'"})).azure_result_value() == "abc"
    assert _result(result=Output({"text/plain": "[1, 2.5, None]"})).azure_result_value() == [1, 2.5, None]
    frame = "   a\n0  1"
    assert _result(result=Output({"text/plain": frame})).azure_result_value() == frame
    assert _result(result=Output({"application/json": {"k": 1}})).azure_result_value() == {"k": 1}
    failed = _result(status=ExecutionStatus.FAILED, error=ExecutionError("E", "v")).to_azure_dict()
    assert failed["properties"]["status"] == "Failure" and failed["properties"]["error"]["name"] == "E"


def test_render_budgets_a_huge_error_value_and_caps_images() -> None:
    huge = _result(status=ExecutionStatus.FAILED, error=ExecutionError("ValueError", "A" * 200_000, "tb"))
    text = render_execution(huge).text
    assert text.startswith("error: ValueError: AAA") and len(text) < 5_000
    assert "characters cut from the middle" in text
    png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
    figures = [Output({"image/png": png}, saved_as=f"figure_{i}.png") for i in range(6)]
    view = render_execution(_result(displays=figures), RenderOptions(max_images=4), with_images=True)
    assert [img.path for img in view.images] == [f"/mnt/data/figure_{i}.png" for i in range(4)]
    assert "2 more image(s) not shown: /mnt/data/figure_4.png, /mnt/data/figure_5.png" in view.text
