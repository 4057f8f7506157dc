"""SessionManager with real local kernels: one session per id, the cap, idle culling (by itself, in a task
or a thread), sessions in use are never culled, file time-to-live, status report, close."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import psutil
import pytest

from llama_index_tools_codeinterp.core import ConfigurationError, SessionLimitError
from llama_index_tools_codeinterp.core.local import LocalKernelBackend
from llama_index_tools_codeinterp.core.sessions import ManagedSession, SessionManager

#: Kernels here need no sandbox; that is the local backend's own subject.
OPTIONS = {"timeout": 30, "interrupt_grace": 2, "sandbox": False}


def factory(session_id: str) -> LocalKernelBackend:
    return LocalKernelBackend(session_id=session_id, **OPTIONS)


async def _until(predicate, timeout: float = 20.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.05)
    return predicate()


def _gone(pid: int | None) -> bool:
    return pid is None or not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


async def test_one_session_per_id_cap_and_delete() -> None:
    closed: list[str] = []
    manager = SessionManager(factory, max_sessions=2, on_close=lambda s: closed.append(s.session_id))
    try:
        a = manager.get_or_create("alpha")
        assert manager.get_or_create("alpha") is a
        async with manager.use("beta") as beta:
            result = await beta.backend.aexecute("40 + 2")
            assert result.text == "42"
        with pytest.raises(SessionLimitError, match="All 2 sessions are in use"):
            manager.get_or_create("gamma")
        assert await manager.delete("beta") is True
        assert await manager.delete("beta") is False
        assert closed == ["beta"] and "beta" not in manager
        assert manager.get_or_create("gamma").session_id == "gamma"
        with pytest.raises(KeyError):
            async with manager.use("nobody", create=False):
                pass
    finally:
        await manager.aclose()
    assert sorted(closed) == ["alpha", "beta", "gamma"]
    with pytest.raises(SessionLimitError, match="shut down"):
        manager.get_or_create("late")


async def test_background_cull_spares_sessions_in_use_then_removes_idle_ones() -> None:
    manager = SessionManager(factory, cooldown=0.4, sweep_interval=0.05)
    manager.start()
    try:
        async with manager.use("busy") as busy:
            await busy.backend.aexecute("import time; time.sleep(1.2)")  # three cooldowns long
            assert "busy" in manager
        backend = busy.backend
        pid = backend.status()["kernel_pid"]
        data_dir = Path(backend.data_dir)
        assert await _until(lambda: "busy" not in manager), "idle session was never culled"
        assert await _until(lambda: not data_dir.exists() and _gone(pid))
    finally:
        await manager.aclose()


def test_cull_thread_runs_without_an_event_loop() -> None:
    manager = SessionManager(factory, cooldown=0.3, sweep_interval=0.05)
    manager.start()
    try:
        session = manager.get_or_create("threaded")
        session.backend.execute("1")
        deadline = time.monotonic() + 20
        while "threaded" in manager and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "threaded" not in manager
    finally:
        manager.close()


async def test_file_ttl_removes_old_files_only_and_status_reports_them() -> None:
    manager = SessionManager(factory, file_ttl=60)
    try:
        session: ManagedSession = manager.get_or_create("files")
        backend = session.backend
        backend.upload("old.txt", b"old")
        backend.upload("new.txt", b"new!")
        old = Path(backend.data_dir) / "old.txt"
        past = time.time() - 3600
        os.utime(old, (past, past))
        report = manager.status()
        entry = report["sessions"][0]
        assert entry["session_id"] == "files" and entry["files"] == 2 and entry["bytes"] == 7
        assert entry["sandboxed"] is False and entry["active_calls"] == 0
        assert report["max_sessions"] is None and report["file_ttl_seconds"] == 60
        assert await manager.cull() == []
        assert [f.filename for f in backend.list_files()] == ["new.txt"]
    finally:
        await manager.aclose()


def test_bad_settings_are_refused_with_the_fix() -> None:
    with pytest.raises(ConfigurationError, match="cooldown must be a positive"):
        SessionManager(factory, cooldown=0)
    with pytest.raises(ConfigurationError, match="max_sessions must be at least 1"):
        SessionManager(factory, max_sessions=0)
    with pytest.raises(ConfigurationError, match="file_ttl"):
        SessionManager(factory, file_ttl=-1)


def _slow_factory(built: list[LocalKernelBackend]):  # type: ignore[no-untyped-def]
    """A real backend that takes a while to build, as a first one does while it probes the sandbox."""

    def make(session_id: str) -> LocalKernelBackend:
        time.sleep(0.5)
        backend = factory(session_id)
        built.append(backend)
        return backend

    return make


async def test_concurrent_first_calls_share_one_session_built_off_the_event_loop() -> None:
    built: list[LocalKernelBackend] = []
    manager = SessionManager(_slow_factory(built), max_sessions=2)
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    ticker = asyncio.create_task(tick())
    try:
        first_calls = [manager.aget_or_create("same") for _ in range(5)]
        results = await asyncio.gather(
            *first_calls, manager.aget_or_create("other"), manager.aget_or_create("third"), return_exceptions=True
        )
        same = results[:5]
        assert all(isinstance(s, ManagedSession) and s is same[0] for s in same), results
        assert sorted(b.session_id for b in built) == ["other", "same"]
        # Sessions still being built count against the cap.
        assert isinstance(results[6], SessionLimitError)
        # The loop kept running while the backends were built (it would tick ~50 times in 0.5 s).
        assert ticks >= 10, f"the event loop was blocked: {ticks} ticks"
        async with manager.use("same") as session:
            assert (await session.backend.aexecute("6 * 7")).text == "42"
    finally:
        ticker.cancel()
        await manager.aclose()


async def test_failed_build_reaches_every_waiter_and_the_next_call_retries() -> None:
    attempts: list[str] = []

    def flaky(session_id: str) -> LocalKernelBackend:
        attempts.append(session_id)
        if len(attempts) == 1:
            time.sleep(0.2)
            return LocalKernelBackend(session_id=session_id, limits={"processes": 1}, **OPTIONS)
        return factory(session_id)

    manager = SessionManager(flaky)
    try:
        results = await asyncio.gather(*(manager.aget_or_create("retry") for _ in range(3)), return_exceptions=True)
        assert attempts == ["retry"] and all(isinstance(r, ConfigurationError) for r in results), results
        assert "retry" not in manager
        async with manager.use("retry") as session:
            assert (await session.backend.aexecute("1 + 1")).text == "2"
        assert attempts == ["retry", "retry"]
    finally:
        await manager.aclose()


async def test_shutdown_while_a_backend_is_built_closes_it() -> None:
    built: list[LocalKernelBackend] = []
    manager = SessionManager(_slow_factory(built))
    pending = asyncio.create_task(manager.aget_or_create("late"))
    await asyncio.sleep(0.1)  # the build is under way in its thread
    await manager.aclose()
    with pytest.raises(SessionLimitError, match="shut down"):
        await pending
    assert [b.session_id for b in built] == ["late"] and built[0].status()["closed"] is True
    assert "late" not in manager
