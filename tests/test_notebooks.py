"""The example notebooks run from top to bottom, offline, and do what their prose says.

Each notebook is executed with nbclient in a fresh kernel of this interpreter (the ``python3`` kernelspec), with
the scripted LLM forced and every real-LLM / Azure variable removed from its environment, so the agents' tool
calls are real but nothing leaves the machine. The expected numbers are computed here from the shipped CSV, so
the checks fail if a notebook's analysis (run in the session kernel) went wrong.
"""

from __future__ import annotations

import importlib.util
import os
import re
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import psutil
import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOKS_DIR = Path(__file__).resolve().parents[1] / "notebooks"
SALES_CSV = Path(__file__).resolve().parents[1] / "llama_index_tools_codeinterp" / "demo" / "data" / "sales_2025.csv"
EXPECTED_NOTEBOOKS = [
    "01_llamaindex_local.ipynb",
    "02_langchain_agent.ipynb",
    "03_azure_session_pools.ipynb",
    "04_files_and_rich_output.ipynb",
]
# Variables that would make a notebook call a real model, a real Azure pool, or a tracing service.
LEAKY_PREFIXES = ("OPENAI_", "OLLAMA_", "AZURE_", "LANGCHAIN_", "LANGSMITH_", "CODEINTERP_")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _load_llm_choice() -> Any:
    spec = importlib.util.spec_from_file_location("_llm_choice", NOTEBOOKS_DIR / "_llm_choice.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["_llm_choice"] = module  # pydantic resolves the scripted model's annotations through it
    spec.loader.exec_module(module)
    return module


def _notebook_env(output_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(LEAKY_PREFIXES)}
    env["CODEINTERP_DEMO_LLM"] = "scripted"
    env["CODEINTERP_NOTEBOOK_OUTPUT"] = str(output_dir)
    return env


def _texts(notebook: Any) -> str:
    """All text a reader sees in the executed notebook: streams and the plain-text form of results."""
    parts: list[str] = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if output.output_type == "stream":
                parts.append(output.text)
            elif output.output_type in ("execute_result", "display_data"):
                parts.append(str(output.data.get("text/plain", "")))
    return "\n".join(parts)


def _image_outputs(notebook: Any) -> int:
    return sum(
        "image/png" in output.get("data", {})
        for cell in notebook.cells
        for output in cell.get("outputs", [])
        if output.output_type in ("execute_result", "display_data")
    )


def _execute(name: str, output_dir: Path) -> tuple[Any, str]:
    notebook = nbformat.read(NOTEBOOKS_DIR / name, as_version=4)
    # One extra cell (in memory only) records which interpreter ran the notebook.
    marker = output_dir / "kernel-python.txt"
    notebook.cells.append(
        nbformat.v4.new_code_cell(f"import pathlib, sys\npathlib.Path({str(marker)!r}).write_text(sys.executable)")
    )
    client = nbclient.NotebookClient(
        notebook,
        timeout=120,
        # nbclient waits only 4 s for a cell's output after its reply and then silently drops it; on a busy
        # machine that loses the last prints. Wait longer, and fail loudly if output really goes missing.
        iopub_timeout=60,
        raise_on_iopub_timeout=True,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOKS_DIR)}},
    )
    try:
        client.execute(env=_notebook_env(output_dir))
    finally:
        nbformat.write(notebook, output_dir / f"executed-{name}")  # to read when a check below fails
    text = _texts(notebook)
    assert Path(marker.read_text()).resolve() == Path(sys.executable).resolve()
    # Every agent run says which LLM it used, and here it must be the labelled stand-in.
    assert "LLM: scripted stand-in" in text
    return notebook, text


@pytest.fixture(scope="module")
def sales() -> pd.DataFrame:
    return pd.read_csv(SALES_CSV)


def _is_png(path: Path) -> bool:
    return path.is_file() and path.read_bytes()[:8] == PNG_MAGIC


def test_the_notebooks_are_all_there_and_stripped_of_outputs() -> None:
    names = sorted(p.name for p in NOTEBOOKS_DIR.glob("*.ipynb"))
    assert names == EXPECTED_NOTEBOOKS
    for name in names:
        notebook = nbformat.read(NOTEBOOKS_DIR / name, as_version=4)
        nbformat.validate(notebook)
        assert notebook.metadata.kernelspec.name == "python3", name
        for index, cell in enumerate(notebook.cells):
            if cell.cell_type == "code":
                where = f"{name} cell {index}: clear outputs before committing (Kernel > Restart & Clear Output)"
                assert cell.outputs == [], where
                assert cell.execution_count is None, where
        # Each notebook is prose plus code, starting with a title.
        assert notebook.cells[0].cell_type == "markdown" and notebook.cells[0].source.startswith("# ")


def test_01_llamaindex_agent_analyses_the_csv_and_saves_the_chart(tmp_path: Path, sales: pd.DataFrame) -> None:
    notebook, text = _execute("01_llamaindex_local.ipynb", tmp_path)
    by_region = sales.groupby("region")["revenue"].sum()
    share = by_region.max() / by_region.sum()
    assert f"Answer: Best region: {by_region.idxmax()} with {by_region.max():,.0f} ({share:.1%}" in text
    assert "→ download_file_to_local(" in text
    assert _is_png(tmp_path / "01_llamaindex_local" / "revenue_by_month.png")
    assert _image_outputs(notebook) >= 1  # the chart is shown inline
    # The direct call after the agent run sees the agent's variables (state persisted).
    assert f"Success ('{by_region.idxmax()}', {round(by_region.max())})" in text


def test_02_langchain_agent_finds_the_best_product(tmp_path: Path, sales: pd.DataFrame) -> None:
    notebook, text = _execute("02_langchain_agent.ipynb", tmp_path)
    by_product = sales.groupby("product")["revenue"].sum()
    assert f"Answer: Best product: {by_product.idxmax()} with {by_product.max():,.0f}" in text
    assert "status: succeeded" in text and "/mnt/data/revenue_by_product.png" in text
    assert _is_png(tmp_path / "02_langchain_agent" / "revenue_by_product.png")
    assert _image_outputs(notebook) >= 1


def test_03_session_pool_notebook_uses_codeinterp_serve_and_stops_it(tmp_path: Path, sales: pd.DataFrame) -> None:
    notebook, text = _execute("03_azure_session_pools.ipynb", tmp_path)
    monthly = sales.groupby("month")["revenue"].sum()
    assert f"Answer: Best month: {monthly.idxmax()} with {monthly.max():,.0f}" in text
    assert "AzureSessionsBackend" in text and re.search(r"pool management endpoint: http://127\.0\.0\.1:\d+", text)
    assert "(this notebook): 2 files" in text  # the server's /status lists the notebook's session and files
    assert _is_png(tmp_path / "03_azure_session_pools" / "monthly_total.png")
    assert _image_outputs(notebook) >= 1
    pid = int(re.findall(r"server \(pid (\d+)\) stopped", text)[0])
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_04_files_reach_the_model_as_text_and_the_program_as_files(tmp_path: Path, sales: pd.DataFrame) -> None:
    notebook, text = _execute("04_files_and_rich_output.ipynb", tmp_path)
    out = tmp_path / "04_files_and_rich_output"
    best = sales.groupby("region")["revenue"].sum().idxmax()
    # What the model read: file paths and sizes, the table as text, errors as "Name: value".
    assert "files created or changed:\n- /mnt/data/summary.csv (text/csv" in text
    assert "/mnt/data/summary.json (application/json" in text
    assert "is a binary file of" in text and "HostPathNotAllowedError" in text
    assert "error: FileNotFoundError" in text and "error as data: FileNotFoundError | status: failed" in text
    # What the program got: the files themselves.
    assert _is_png(out / "figure_1.png")
    assert pd.read_csv(out / "summary.csv", index_col=0)["revenue"].idxmax() == best
    assert f'"best_region": "{best}"' in (out / "summary.json").read_text()
    for module, filename in (("openpyxl", "summary.xlsx"), ("pyarrow", "sales.parquet")):
        if importlib.util.find_spec(module):
            assert (out / filename).is_file()
        else:
            assert f"{module} is not installed in the session: skipped {filename}" in text
    assert _image_outputs(notebook) >= 1
    assert f"Answer: The best region is {best}." in text


# -- the notebooks' LLM choice (no network: nothing here reaches a model) ------------------------------------------
def _clear_llm_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(("OPENAI_", "OLLAMA_", "CODEINTERP_DEMO_LLM")):
            monkeypatch.delenv(name)


def test_llm_choice_uses_the_stand_in_when_nothing_is_configured_or_when_forced(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    choice = _load_llm_choice()
    _clear_llm_env(monkeypatch)
    stand_in = object()
    assert choice.choose_llamaindex_llm(lambda: stand_in) == (stand_in, choice.SCRIPTED_LABEL)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-not-used")
    monkeypatch.setenv("OLLAMA_MODEL", "llama3.1")
    monkeypatch.setenv("CODEINTERP_DEMO_LLM", "scripted")
    assert choice.choose_llamaindex_llm(lambda: stand_in)[0] is stand_in
    assert choice.choose_langchain_model(lambda: stand_in)[0] is stand_in


def test_llm_choice_rejects_an_unknown_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    choice = _load_llm_choice()
    monkeypatch.setenv("CODEINTERP_DEMO_LLM", "gpt5")
    with pytest.raises(ValueError, match="not one of: scripted, openai, ollama"):
        choice.choose_llamaindex_llm(object)


@pytest.mark.skipif(
    importlib.util.find_spec("langchain_openai") is not None, reason="langchain-openai is installed here"
)
def test_llm_choice_says_which_package_is_missing(monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    choice = _load_llm_choice()
    _clear_llm_env(monkeypatch)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-not-used")
    stand_in = object()
    assert choice.choose_langchain_model(lambda: stand_in)[0] is stand_in
    assert "pip install langchain-openai" in capsys.readouterr().out


def test_scripted_chat_model_replays_turns_and_answers_from_the_conversation() -> None:
    from langchain_core.messages import HumanMessage, ToolMessage

    choice = _load_llm_choice()
    model = choice.scripted_chat_model(
        [
            choice.tool_call("code_interpreter", "c1", python_code="6 * 7"),
            _answer_from_last_message,
        ]
    )
    assert model.bind_tools([]) is model
    first = model.invoke([HumanMessage("compute")])
    assert first.tool_calls[0]["args"] == {"python_code": "6 * 7"}
    second = model.invoke([HumanMessage("compute"), first, ToolMessage("result:\n42", tool_call_id="c1")])
    assert second.content == "got result:\n42"


def _answer_from_last_message(messages: list[Any]) -> Any:
    from langchain_core.messages import AIMessage

    return AIMessage(content=f"got {messages[-1].content}")
