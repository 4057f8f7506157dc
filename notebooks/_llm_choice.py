"""Pick the LLM for the example notebooks: a real one when configured, otherwise a scripted stand-in.

A real LLM is used when one of these is set in the environment the notebook runs in:

* ``OPENAI_API_KEY`` (plus optional ``OPENAI_BASE_URL`` for any OpenAI-compatible server and ``OPENAI_MODEL``,
  default ``gpt-4o-mini``) with ``pip install llama-index-llms-openai-like`` (LlamaIndex notebooks) or
  ``pip install langchain-openai`` (LangChain notebook);
* ``OLLAMA_MODEL`` (e.g. ``llama3.1``, Ollama running locally) with ``pip install llama-index-llms-ollama``
  or ``pip install langchain-ollama``.

``CODEINTERP_DEMO_LLM=scripted`` forces the scripted stand-in (the notebook tests do this); ``=openai`` or
``=ollama`` picks one provider when both are configured. The scripted stand-ins replay a fixed plan of tool
calls, but the calls are real: they run in a real Jupyter kernel and the final answer quotes what it returned.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["choose_langchain_model", "choose_llamaindex_llm", "scripted_chat_model", "tool_call"]

CHOICE_ENV = "CODEINTERP_DEMO_LLM"
SCRIPTED_LABEL = "scripted stand-in (no real LLM configured): the plan is fixed, the tool calls below are real"


def _choice() -> str:
    choice = os.environ.get(CHOICE_ENV, "").strip().lower()
    if choice not in ("", "scripted", "openai", "ollama"):
        raise ValueError(f"{CHOICE_ENV}={choice!r} is not one of: scripted, openai, ollama (or unset).")
    return choice


def _wants(provider: str, env_var: str) -> bool:
    choice = _choice()
    return bool(os.environ.get(env_var)) and choice in ("", provider)


def _missing(package: str, env_var: str) -> None:
    print(f"{env_var} is set but {package} is not installed (pip install {package}); using the scripted LLM.")


def choose_llamaindex_llm(scripted: Callable[[], Any]) -> tuple[Any, str]:
    """``(llm, label)``: a configured OpenAI-compatible or Ollama LLM, else ``scripted()``."""
    if _wants("openai", "OPENAI_API_KEY"):
        model = os.environ.get("OPENAI_MODEL", "gpt-4o-mini")
        try:
            from llama_index.llms.openai_like import OpenAILike  # type: ignore[import-not-found]
        except ImportError:
            _missing("llama-index-llms-openai-like", "OPENAI_API_KEY")
        else:
            base = os.environ.get("OPENAI_BASE_URL", "https://api.openai.com/v1")
            llm = OpenAILike(
                model=model,
                api_base=base,
                api_key=os.environ["OPENAI_API_KEY"],
                is_chat_model=True,
                is_function_calling_model=True,
                context_window=32768,  # OpenAILike assumes 3,900 tokens, which would drop earlier tool results
            )
            return llm, f"{model} at {base}"
    if _wants("ollama", "OLLAMA_MODEL"):
        try:
            from llama_index.llms.ollama import Ollama  # type: ignore[import-not-found]
        except ImportError:
            _missing("llama-index-llms-ollama", "OLLAMA_MODEL")
        else:
            model = os.environ["OLLAMA_MODEL"]
            return Ollama(model=model, request_timeout=300), f"ollama:{model}"
    return scripted(), SCRIPTED_LABEL


def choose_langchain_model(scripted: Callable[[], Any]) -> tuple[Any, str]:
    """``(chat_model, label)``: a configured ``ChatOpenAI`` / ``ChatOllama``, else ``scripted()``."""
    if _wants("openai", "OPENAI_API_KEY"):
        model = os.environ.get("OPENAI_MODEL", "gpt-4o-mini")
        try:
            from langchain_openai import ChatOpenAI  # type: ignore[import-not-found]
        except ImportError:
            _missing("langchain-openai", "OPENAI_API_KEY")
        else:
            base = os.environ.get("OPENAI_BASE_URL") or None
            return ChatOpenAI(model=model, base_url=base), f"{model} at {base or 'api.openai.com'}"
    if _wants("ollama", "OLLAMA_MODEL"):
        try:
            from langchain_ollama import ChatOllama  # type: ignore[import-not-found]
        except ImportError:
            _missing("langchain-ollama", "OLLAMA_MODEL")
        else:
            model = os.environ["OLLAMA_MODEL"]
            return ChatOllama(model=model), f"ollama:{model}"
    return scripted(), SCRIPTED_LABEL


def tool_call(name: str, call_id: str, **args: Any) -> Any:
    """A LangChain assistant message that asks for one tool call."""
    from langchain_core.messages import AIMessage

    return AIMessage(content="", tool_calls=[{"name": name, "args": args, "id": call_id, "type": "tool_call"}])


def scripted_chat_model(turns: Sequence[Any]) -> Any:
    """A LangChain chat model that replays ``turns`` (for agents built with ``create_agent``).

    Each turn is an ``AIMessage`` (for example a :func:`tool_call`) or a callable that receives the conversation
    so far and returns one, so the last turn can quote what the tools really returned.
    """
    return _scripted_chat_model_class()(turns=list(turns))


@functools.cache
def _scripted_chat_model_class() -> type:
    # Imported here so that the LlamaIndex notebooks do not need LangChain installed.
    from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
    from langchain_core.messages import BaseMessage
    from langchain_core.outputs import ChatGeneration, ChatResult

    class ScriptedToolCallingChatModel(FakeMessagesListChatModel):
        """``FakeMessagesListChatModel`` with tool calling: ``bind_tools`` returns the model itself (the script
        already knows which tools it calls) and a turn may be computed from the conversation."""

        responses: list[BaseMessage] = []
        turns: list[Any] = []

        def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> ScriptedToolCallingChatModel:  # type: ignore[override]
            return self

        def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None, **kwargs: Any) -> ChatResult:
            turn = self.turns[min(self.i, len(self.turns) - 1)]
            self.i += 1
            message = turn(messages) if callable(turn) else turn
            return ChatResult(generations=[ChatGeneration(message=message)])

        @property
        def _llm_type(self) -> str:
            return "scripted-tool-calling (no real LLM)"

    return ScriptedToolCallingChatModel
