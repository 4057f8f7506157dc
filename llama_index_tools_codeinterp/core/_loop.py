"""One background event loop that drives every local kernel.

Kernel I/O is asyncio-native (jupyter-client's async manager and client). Running it on one private loop
thread gives both APIs without a thread per call: sync callers block on a future, async callers await it
from their own loop, and a sync call made from inside a running loop (a notebook cell, an async agent
calling a sync tool) cannot deadlock, because the loop it waits on is never its own.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_thread: threading.Thread | None = None
_exit_hooks: list[Callable[[], Coroutine[Any, Any, None]]] = []


def io_loop() -> asyncio.AbstractEventLoop:
    """The shared loop, started on first use."""
    global _loop, _thread
    with _lock:
        if _loop is None or _thread is None or not _thread.is_alive():
            loop = asyncio.new_event_loop()
            ready = threading.Event()

            def run() -> None:
                asyncio.set_event_loop(loop)
                loop.call_soon(ready.set)
                loop.run_forever()

            thread = threading.Thread(target=run, name="codeinterp-io", daemon=True)
            thread.start()
            ready.wait()
            _loop, _thread = loop, thread
        return _loop


def run_sync(coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
    """Run ``coro`` on the shared loop and block until it finishes."""
    loop = io_loop()
    if _on_io_thread():
        coro.close()
        raise RuntimeError("A blocking code-interpreter call was made from its own I/O thread; await it instead.")
    return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout)


async def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Await ``coro`` on the shared loop from any loop (or directly, when already on it)."""
    loop = io_loop()
    try:
        current = asyncio.get_running_loop()
    except RuntimeError:  # pragma: no cover - always called from a coroutine
        current = None
    if current is loop:
        return await coro
    return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, loop))


def _on_io_thread() -> bool:
    return _thread is not None and threading.current_thread() is _thread


def on_exit(hook: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Register a coroutine function to run on the loop when the interpreter exits."""
    _exit_hooks.append(hook)


@atexit.register
def _shutdown() -> None:
    loop = _loop
    if loop is None or not loop.is_running():
        return

    async def run_hooks() -> None:
        await asyncio.gather(*(hook() for hook in _exit_hooks), return_exceptions=True)

    with contextlib.suppress(Exception):  # best effort at interpreter exit
        asyncio.run_coroutine_threadsafe(run_hooks(), loop).result(timeout=15)
    loop.call_soon_threadsafe(loop.stop)
