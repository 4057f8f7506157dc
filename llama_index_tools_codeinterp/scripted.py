"""Scripted LLMs for LlamaIndex agents: no network, no model, the same real tool calls.

Used by the demo, the notebooks and the tests when no real LLM is configured. A script is a list of ReAct
turns; each turn may be a string or a callable that builds the string from the conversation so far (so a
scripted "model" can react to what the tools returned).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from llama_index.core.base.llms.types import CompletionResponse, CompletionResponseGen, LLMMetadata
from llama_index.core.llms import CustomLLM
from llama_index.core.llms.callbacks import llm_completion_callback

__all__ = ["ScriptedReActLLM", "react_action", "react_answer"]

Turn = str | Callable[[str], str]


def react_action(tool: str, thought: str, **kwargs: Any) -> str:
    """One ReAct step that calls ``tool`` with ``kwargs``."""
    import json

    return f"Thought: {thought}\nAction: {tool}\nAction Input: {json.dumps(kwargs)}"


def react_answer(answer: str) -> str:
    """The final ReAct step."""
    return f"Thought: I can answer without using any more tools.\nAnswer: {answer}"


class ScriptedReActLLM(CustomLLM):
    """A stand-in LLM that replays a ReAct script (labelled "scripted" in its metadata)."""

    turns: Sequence[Any]
    position: int = 0
    prompts: list[str] = []

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(model_name="scripted-react (no real LLM)", is_chat_model=False)

    def _next(self, prompt: str) -> str:
        self.prompts.append(prompt)
        turn = self.turns[min(self.position, len(self.turns) - 1)]
        self.position += 1
        return turn(prompt) if callable(turn) else str(turn)

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        return CompletionResponse(text=self._next(prompt))

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseGen:
        text = self._next(prompt)

        def gen() -> CompletionResponseGen:
            yield CompletionResponse(text=text, delta=text)

        return gen()
