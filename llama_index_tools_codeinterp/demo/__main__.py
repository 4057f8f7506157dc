"""``make demo``: a LlamaIndex ReActAgent analyses a CSV with codeinterp's tools and downloads its chart.

The LLM is real when one is configured, otherwise a scripted stand-in (clearly labelled) drives the very same
tool calls against a real Jupyter kernel:

* ``OPENAI_API_KEY`` (and optionally ``OPENAI_BASE_URL``/``OPENAI_MODEL`` for any OpenAI-compatible server)
  with ``pip install llama-index-llms-openai-like`` (or ``llama-index-llms-openai``);
* ``OLLAMA_MODEL`` (e.g. ``llama3.1``) with ``pip install llama-index-llms-ollama`` and Ollama running;
* ``CODEINTERP_DEMO_LLM=scripted`` forces the scripted LLM.

Outputs land in ``./demo_output`` (override with ``CODEINTERP_DEMO_OUTPUT``).
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
import textwrap
from importlib import resources
from pathlib import Path
from typing import Any

from llama_index.core.agent.workflow import AgentStream, ReActAgent, ToolCall, ToolCallResult

from llama_index_tools_codeinterp import CodeInterpreterToolSpec
from llama_index_tools_codeinterp.scripted import ScriptedReActLLM, react_action, react_answer

TASK = (
    "The file {csv} holds 2025 monthly sales by region and product. Upload it, compute total revenue per "
    "region and per product, find the best region, plot monthly revenue per region as a line chart saved to "
    "/mnt/data/revenue_by_month.png, and save that chart to {out}/revenue_by_month.png on my machine."
)

ANALYSIS_CODE = """\
import pandas as pd
df = pd.read_csv("/mnt/data/sales_2025.csv")
print(df.shape[0], "rows;", df["month"].min(), "to", df["month"].max())
by_region = df.groupby("region")["revenue"].sum().sort_values(ascending=False)
by_product = df.groupby("product")["revenue"].sum().sort_values(ascending=False)
print("Revenue by region:\\n" + by_region.round(0).to_string())
print("Revenue by product:\\n" + by_product.round(0).to_string())
print(f"Best region: {by_region.index[0]} ({by_region.iloc[0] / by_region.sum():.1%} of {by_region.sum():,.0f})")
"""

CHART_CODE = """\
import matplotlib.pyplot as plt
monthly = df.pivot_table(index="month", columns="region", values="revenue", aggfunc="sum")
ax = monthly.plot(figsize=(8, 4.5), marker="o", title="Monthly revenue by region, 2025")
ax.set_ylabel("revenue")
plt.tight_layout()
plt.savefig("/mnt/data/revenue_by_month.png", dpi=120)
plt.show()
"""


def _scripted_llm(csv: Path, out: Path) -> ScriptedReActLLM:
    def final_answer(prompt: str) -> str:
        # Built from what the real kernel returned, so the scripted answer reports real numbers.
        best = re.findall(r"Best region: (\w+ \([^)]*\))", prompt)
        return react_answer(
            f"Best region: {best[-1] if best else 'unknown'}. The chart of monthly revenue per region is saved "
            f"to {out / 'revenue_by_month.png'}."
        )

    return ScriptedReActLLM(
        turns=[
            react_action("upload_file", "First I upload the CSV into the session.", local_file_path=str(csv)),
            react_action("code_interpreter", "Now I load it and compute totals.", python_code=ANALYSIS_CODE),
            react_action("code_interpreter", "Next, the monthly chart per region.", python_code=CHART_CODE),
            react_action(
                "download_file_to_local",
                "I save the chart on the user's machine.",
                remote_file_path="/mnt/data/revenue_by_month.png",
                local_file_path=str(out / "revenue_by_month.png"),
            ),
            final_answer,
        ]
    )


def _configured_llm() -> tuple[Any, str] | None:
    choice = os.environ.get("CODEINTERP_DEMO_LLM", "").lower()
    if choice == "scripted":
        return None
    if os.environ.get("OPENAI_API_KEY") and choice in ("", "openai"):
        model = os.environ.get("OPENAI_MODEL", "gpt-4o-mini")
        try:
            from llama_index.llms.openai_like import OpenAILike  # type: ignore[import-not-found]

            base = os.environ.get("OPENAI_BASE_URL", "https://api.openai.com/v1")
            return OpenAILike(model=model, api_base=base, is_chat_model=True, is_function_calling_model=True), model
        except ImportError:
            pass
        try:
            from llama_index.llms.openai import OpenAI  # type: ignore[import-not-found]

            return OpenAI(model=model), model
        except ImportError:
            print(
                "OPENAI_API_KEY is set but no OpenAI LLM package is installed: pip install llama-index-llms-openai-like"
            )
    if os.environ.get("OLLAMA_MODEL") and choice in ("", "ollama"):
        try:
            from llama_index.llms.ollama import Ollama  # type: ignore[import-not-found]

            return Ollama(model=os.environ["OLLAMA_MODEL"], request_timeout=300), f"ollama:{os.environ['OLLAMA_MODEL']}"
        except ImportError:
            print(
                "OLLAMA_MODEL is set but llama-index-llms-ollama is not installed: pip install llama-index-llms-ollama"
            )
    return None


def _show(text: str, width: int = 100, limit: int = 1200) -> str:
    text = text if len(text) <= limit else text[:limit] + " [...]"
    return textwrap.indent(text, "    │ ")


async def run_demo(out: Path) -> int:
    csv_resource = resources.files("llama_index_tools_codeinterp.demo") / "data" / "sales_2025.csv"
    with resources.as_file(csv_resource) as csv:
        configured = _configured_llm()
        if configured is None:
            llm: Any = _scripted_llm(csv, out)
            print("LLM: scripted stand-in (no real LLM configured; see README) — the tool calls below are real.")
        else:
            llm, name = configured
            print(f"LLM: {name}")
        print("Starting a Jupyter kernel for the session ...", flush=True)
        with CodeInterpreterToolSpec(allowed_upload_dirs=[csv.parent], allowed_download_dirs=[out]) as spec:
            status = spec.backend.status()
            print(f"Session {spec.session_id}, sandboxed: {status.get('sandboxed')}")
            print(f"/mnt/data is {status.get('data_dir')} on this machine")
            agent = ReActAgent(tools=spec.to_tool_list(), llm=llm, streaming=False)
            task = TASK.format(csv=csv, out=out)
            print(f"\nTask: {task}\n")
            handler = agent.run(user_msg=task)
            async for event in handler.stream_events():
                if isinstance(event, ToolCall) and not isinstance(event, ToolCallResult):
                    args = ", ".join(
                        f"{k}={v!r}" if len(repr(v)) < 80 else f"{k}=<{len(str(v))} chars>"
                        for k, v in event.tool_kwargs.items()
                    )
                    print(f"→ {event.tool_name}({args})", flush=True)
                elif isinstance(event, ToolCallResult):
                    print(_show(event.tool_output.content), flush=True)
                elif isinstance(event, AgentStream):
                    pass
            answer = await handler
            print(f"\nAgent's answer:\n{_show(str(answer))}\n")
            files = spec.list_files()
            print("Files in the session's /mnt/data:")
            for f in files:
                print(f"  {f.file_full_path}  ({f.size_in_bytes:,} bytes, {f.mime_type})")
    chart = out / "revenue_by_month.png"
    if not chart.exists():
        print(f"The chart was not downloaded to {chart}.", file=sys.stderr)
        return 1
    print(f"\nDone. Outputs are in {out}:")
    for path in sorted(out.iterdir()):
        print(f"  {path}  ({path.stat().st_size:,} bytes)")
    return 0


def main() -> int:
    out = Path(os.environ.get("CODEINTERP_DEMO_OUTPUT", "demo_output")).resolve()
    out.mkdir(parents=True, exist_ok=True)
    return asyncio.run(run_demo(out))


if __name__ == "__main__":
    sys.exit(main())
