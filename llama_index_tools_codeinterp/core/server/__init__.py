"""``codeinterp serve``: a self-hosted session pool that speaks the Azure Container Apps data-plane API.

Official Azure clients (LangChain's ``SessionsPythonREPLTool``, LlamaIndex's ``AzureCodeInterpreterToolSpec``)
and our own azure backend work against it unchanged: point them at the server's URL as the pool management
endpoint and give them the server's token. Each ``identifier`` gets its own local Jupyter kernel and data
directory (``/mnt/data``).

Programmatic use::

    from llama_index_tools_codeinterp.core.server import create_app, serve
    app = create_app(token="secret", cooldown=600)      # an ASGI app (Starlette)
    serve(host="127.0.0.1", port=8765, token="secret")  # or run it with uvicorn
"""

from .app import DEFAULT_MAX_SESSIONS, TOKEN_ENV, ApiError, PoolServer, ServerConfig, create_app
from .run import check_bind_allowed, is_loopback, serve
from .wire import CURRENT_VERSIONS, LEGACY_VERSIONS, SUPPORTED_VERSIONS

__all__ = [
    "CURRENT_VERSIONS",
    "DEFAULT_MAX_SESSIONS",
    "LEGACY_VERSIONS",
    "SUPPORTED_VERSIONS",
    "TOKEN_ENV",
    "ApiError",
    "PoolServer",
    "ServerConfig",
    "check_bind_allowed",
    "create_app",
    "is_loopback",
    "serve",
]
