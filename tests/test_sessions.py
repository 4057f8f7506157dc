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
