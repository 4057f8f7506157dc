"""`codeinterp serve`'s app on a free loopback port, in a thread, for the benchmarks."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def serving(**options: Any) -> Iterator[tuple[str, Any]]:
    """Run the pool server app with ``options`` (ServerConfig fields); yield its base URL and the app."""
    import uvicorn

    from llama_index_tools_codeinterp.core.server.app import create_app

    app = create_app(**options)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    # IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on sockets whose proto says TCP, and without it
    # every keep-alive request stalls ≈40 ms on delayed ACKs (uvicorn's own host/port binding is fine).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("The pool server did not start.")
            time.sleep(0.02)
        yield url, app
    finally:
        server.should_exit = True
        thread.join(timeout=60)
        sock.close()
