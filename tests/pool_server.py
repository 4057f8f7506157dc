"""Run the real ``codeinterp serve`` pool server in-process, for tests that speak HTTP to it.

Usage (module scope is the usual choice: kernels start once per module)::

    from pool_server import running_pool_server

    @pytest.fixture(scope="module")
    def pool_url():
        with running_pool_server(token="test-token", cooldown=600) as url:
            yield url          # e.g. "http://127.0.0.1:41234" -- the pool management endpoint

Then point any Azure dynamic-sessions client at ``url`` with the bearer token ``test-token``.

What it does: builds the app with :func:`create_app` (keyword options are :class:`ServerConfig` fields:
``cooldown``, ``max_sessions``, ``max_execution_seconds``, ``max_upload_bytes``, ``data_root``, ...), binds
a socket on 127.0.0.1 at a free port, runs the real uvicorn server on it in a daemon thread, waits until
``GET /health`` answers, and yields the base URL. On exit it asks uvicorn to stop, which runs the app's
lifespan shutdown: every session's kernel is stopped and its files removed. ``server_app(url)`` gives the
Starlette app behind a URL (for white-box checks such as ``app.state.pool.manager``).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import requests
import uvicorn
from starlette.applications import Starlette

from llama_index_tools_codeinterp.core.server import create_app

__all__ = ["running_pool_server", "server_app"]

_apps: dict[str, Starlette] = {}


@contextlib.contextmanager
def running_pool_server(
    token: str | None = "test-token", *, startup_timeout: float = 30.0, **options: Any
) -> Iterator[str]:
    """Start the pool server on 127.0.0.1 (free port); yield its base URL; stop it and every kernel after."""
    app = create_app(token=token, **options)
    config = uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=5)
    server = uvicorn.Server(config)
    # IPPROTO_TCP explicitly: with protocol 0 asyncio does not set TCP_NODELAY on accepted connections, and every
    # response then waits ~40 ms for the delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name=f"pool-server-{port}", daemon=True)
    thread.start()
    try:
        _wait_ready(url, server, thread, startup_timeout)
        _apps[url] = app
        yield url
    finally:
        _apps.pop(url, None)
        server.should_exit = True
        thread.join(timeout=60)
        sock.close()
        if thread.is_alive():  # pragma: no cover - would mean a hung shutdown; make it visible
            raise RuntimeError(f"The pool server at {url} did not shut down within 60 s.")


def server_app(url: str) -> Starlette:
    """The app served at ``url`` by :func:`running_pool_server`."""
    return _apps[url]


def _wait_ready(url: str, server: uvicorn.Server, thread: threading.Thread, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not thread.is_alive():
            raise RuntimeError("The pool server thread exited during startup; see the log above.")
        if server.started:
            try:
                if requests.get(f"{url}/health", timeout=2).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
        time.sleep(0.02)
    server.should_exit = True
    raise RuntimeError(f"The pool server at {url} did not become ready within {timeout} s.")
