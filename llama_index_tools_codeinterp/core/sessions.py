"""Many sessions by identifier: created on first use, culled after an idle cooldown, capped in number.

:class:`SessionManager` is what a session pool needs (the ``codeinterp serve`` server uses it; so can any
program that hands one interpreter session to each user or conversation). It is framework-free and async
first: every method that may stop a kernel is a coroutine, and a sync twin exists where a sync caller needs
one. Backends come from a factory, so the manager does not care which kind it holds.

Lifetime rules, as on Azure session pools:

- every use of a session (``async with manager.use(id)``) resets its idle clock; a session in use is never
  culled, however long the call takes;
- after ``cooldown`` seconds without use the session is closed: kernel stopped, files removed;
- optionally, files older than ``file_ttl`` seconds are deleted from live sessions (off by default);
- at most ``max_sessions`` live at once; one more raises :class:`SessionLimitError`.

Culling runs by itself once :meth:`SessionManager.start` was called (an asyncio task on the caller's loop,
or a daemon thread when there is no loop), and every remaining session is closed by :meth:`aclose` or, as a
last resort, at interpreter exit.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import threading
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from .backend import Backend
from .errors import ConfigurationError, SessionLimitError

__all__ = ["DEFAULT_COOLDOWN", "ManagedSession", "SessionManager"]

log = logging.getLogger(__name__)

#: Idle seconds before a session is removed; Azure pools allow 300-3600 and default to 300.
DEFAULT_COOLDOWN = 300.0

BackendFactory = Callable[[str], Backend]
#: Called after a session's backend was closed (e.g. to remove a data directory the backend does not own).
CloseHook = Callable[["ManagedSession"], "Awaitable[None] | None"]


@dataclass
class ManagedSession:
    """One live session and its bookkeeping."""

    session_id: str
    backend: Backend
    created_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    last_used: float = field(default_factory=time.monotonic)
    last_used_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    #: Calls in flight; a session with calls in flight is never culled.
    active: int = 0

    def touch(self) -> None:
        self.last_used = time.monotonic()
        self.last_used_at = datetime.now(timezone.utc)

    def idle_seconds(self) -> float:
        return 0.0 if self.active else max(0.0, time.monotonic() - self.last_used)


class SessionManager:
    """Sessions keyed by identifier, each a backend made by ``factory(session_id)``.

    Args:
        factory: Makes the backend of a new session. Async callers run it in a worker thread, so it may block
            (the local backend probes the sandbox and prepares directories; its kernel starts in the background).
        cooldown: Idle seconds after which a session is closed and its files removed.
        max_sessions: Most sessions alive at once (None: no cap).
        file_ttl: Seconds after its last change that a file is deleted from a live session (None: never).
        sweep_interval: Seconds between automatic culls (default: a quarter of the shortest lifetime, at
            most 30 s).
        on_close: Called with each session after its backend was closed.
    """

    def __init__(
        self,
        factory: BackendFactory,
        *,
        cooldown: float = DEFAULT_COOLDOWN,
        max_sessions: int | None = None,
        file_ttl: float | None = None,
        sweep_interval: float | None = None,
        on_close: CloseHook | None = None,
    ) -> None:
        if cooldown <= 0:
            raise ConfigurationError(f"cooldown must be a positive number of seconds, got {cooldown!r}.")
        if max_sessions is not None and max_sessions < 1:
            raise ConfigurationError(f"max_sessions must be at least 1 (or None for no cap), got {max_sessions!r}.")
        if file_ttl is not None and file_ttl <= 0:
            raise ConfigurationError(f"file_ttl must be a positive number of seconds or None, got {file_ttl!r}.")
        self.factory = factory
        self.cooldown = float(cooldown)
        self.max_sessions = max_sessions
        self.file_ttl = file_ttl
        shortest = min(self.cooldown, file_ttl or self.cooldown)
        self.sweep_interval = sweep_interval if sweep_interval is not None else max(0.05, min(shortest / 4, 30.0))
        self.on_close = on_close
        self._sessions: dict[str, ManagedSession] = {}
        #: Sessions whose backend is being built, by id: later callers for the same id wait on the same future.
        self._creating: dict[str, Future[ManagedSession]] = {}
        # Guards the dict against sync callers on other threads; never held across an await.
        self._lock = threading.Lock()
        self._closed = False
        self._task: asyncio.Task[None] | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        _live_managers.add(self)

    # -- sessions -----------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._sessions)

    def __contains__(self, session_id: object) -> bool:
        return session_id in self._sessions

    def get(self, session_id: str) -> ManagedSession | None:
        """The live session with this id, if any (its idle clock is not reset)."""
        return self._sessions.get(session_id)

    def sessions(self) -> list[ManagedSession]:
        with self._lock:
            return list(self._sessions.values())

    def get_or_create(self, session_id: str) -> ManagedSession:
        """The session with this id, created if it does not exist yet. Resets its idle clock.

        The backend is built in the calling thread; async callers use :meth:`aget_or_create` (or :meth:`use`),
        which builds it in a worker thread so the event loop keeps serving other calls meanwhile.
        """
        session, pending, owner = self._claim(session_id)
        if session is not None:
            return session
        assert pending is not None
        if owner:
            self._build(session_id, pending)
        return pending.result()

    async def aget_or_create(self, session_id: str) -> ManagedSession:
        """Async :meth:`get_or_create`: the factory runs in a worker thread (a first local kernel backend probes
        the sandbox with subprocesses), and concurrent first calls for one id share one new session."""
        session, pending, owner = self._claim(session_id)
        if session is not None:
            return session
        assert pending is not None
        if owner:
            # The build registers the session itself, so a caller cancelled meanwhile leaks nothing.
            asyncio.get_running_loop().run_in_executor(None, self._build, session_id, pending)
        return await asyncio.wrap_future(pending)

    def _claim(self, session_id: str) -> tuple[ManagedSession | None, Future[ManagedSession] | None, bool]:
        """The live session; else the future of its creation in progress, and whether this caller must build it."""
        if self._closed:
            raise SessionLimitError("The session manager is shut down; no new sessions can be started.")
        with self._lock:
            session = self._sessions.get(session_id)
            if session is not None:
                session.touch()
                return session, None, False
            pending = self._creating.get(session_id)
            if pending is not None:
                return None, pending, False
            # Sessions being built count against the cap, so concurrent first calls cannot overshoot it.
            if self.max_sessions is not None and len(self._sessions) + len(self._creating) >= self.max_sessions:
                raise SessionLimitError(
                    f"All {self.max_sessions} sessions are in use; no new session can start until one is "
                    "deleted or idles out. Delete sessions you no longer need, retry later, or raise the "
                    "max-sessions limit."
                )
            pending = Future()
            pending.set_running_or_notify_cancel()  # a waiter that gives up cannot cancel the shared creation
            self._creating[session_id] = pending
            return None, pending, True

    def _build(self, session_id: str, pending: Future[ManagedSession]) -> None:
        try:
            backend = self.factory(session_id)
        except BaseException as exc:  # noqa: BLE001 - handed to every waiter; the next call tries again
            with self._lock:
                self._creating.pop(session_id, None)
            pending.set_exception(exc)
            return
        session = ManagedSession(session_id, backend)
        with self._lock:
            self._creating.pop(session_id, None)
            shut_down = self._closed
            if not shut_down:
                self._sessions[session_id] = session
        if shut_down:  # the manager closed while this backend was being built
            try:
                backend.close()
                outcome = self.on_close(session) if self.on_close is not None else None
                if asyncio.iscoroutine(outcome):
                    asyncio.run(outcome)
            except Exception as exc:  # noqa: BLE001
                log.warning("Closing session %s built during shutdown failed: %s", session_id, exc)
            pending.set_exception(
                SessionLimitError("The session manager is shut down; no new sessions can be started.")
            )
            return
        pending.set_result(session)

    @contextlib.asynccontextmanager
    async def use(self, session_id: str, *, create: bool = True) -> AsyncIterator[ManagedSession]:
        """Hold a session for one call: it cannot be culled meanwhile, and its idle clock restarts after.

        With ``create=False`` a missing session raises ``KeyError`` instead of being created.
        """
        if create:
            session = await self.aget_or_create(session_id)
        else:
            found = self._sessions.get(session_id)
            if found is None:
                raise KeyError(session_id)
            session = found
        session.active += 1
        session.touch()
        try:
            yield session
        finally:
            session.active -= 1
            session.touch()

    async def delete(self, session_id: str) -> bool:
        """Close one session now (kernel stopped, files removed). False if there was no such session."""
        with self._lock:
            session = self._sessions.pop(session_id, None)
        if session is None:
            return False
        await self._close_session(session)
        return True

    async def cull(self) -> list[str]:
        """Close sessions idle past the cooldown and expire old files; the ids of the closed sessions."""
        with self._lock:
            expired = [s for s in self._sessions.values() if not s.active and s.idle_seconds() >= self.cooldown]
            for session in expired:
                del self._sessions[session.session_id]
        await asyncio.gather(*(self._close_session(s) for s in expired))
        if self.file_ttl is not None:
            await asyncio.gather(*(self._expire_files(s) for s in self.sessions()), return_exceptions=True)
        return [s.session_id for s in expired]

    async def _expire_files(self, session: ManagedSession) -> None:
        assert self.file_ttl is not None
        cutoff = datetime.now(timezone.utc).timestamp() - self.file_ttl
        for remote in await session.backend.alist_files():
            if remote.last_modified is not None and remote.last_modified.timestamp() < cutoff:
                with contextlib.suppress(Exception):  # a file removed meanwhile is fine
                    await session.backend.adelete_file(remote.filename)

    async def _close_session(self, session: ManagedSession) -> None:
        try:
            await session.backend.aclose()
        except Exception as exc:  # noqa: BLE001 - one bad session must not stop the others' cleanup
            log.warning("Closing session %s failed: %s", session.session_id, exc)
        if self.on_close is not None:
            try:
                outcome = self.on_close(session)
                if asyncio.iscoroutine(outcome):
                    await outcome
            except Exception as exc:  # noqa: BLE001
                log.warning("Cleaning up after session %s failed: %s", session.session_id, exc)

    # -- background culling -------------------------------------------------------------------------
    def start(self) -> None:
        """Cull in the background: an asyncio task on the running loop, else a daemon thread."""
        if self._task is not None or self._thread is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is not None:
            self._task = loop.create_task(self._sweep_forever(), name="codeinterp-session-cull")
        else:
            self._thread = threading.Thread(target=self._sweep_thread, name="codeinterp-session-cull", daemon=True)
            self._thread.start()

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self.sweep_interval)
            try:
                await self.cull()
            except Exception as exc:  # noqa: BLE001 - the sweeper must outlive one failure
                log.warning("Culling idle sessions failed: %s", exc)

    def _sweep_thread(self) -> None:
        while not self._stop.wait(self.sweep_interval):
            try:
                asyncio.run(self.cull())
            except Exception as exc:  # noqa: BLE001
                log.warning("Culling idle sessions failed: %s", exc)

    async def aclose(self) -> None:
        """Stop culling and close every session. Idempotent."""
        self._closed = True
        self._stop.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, RuntimeError):
                await self._task
            self._task = None
        with self._lock:
            remaining = list(self._sessions.values())
            self._sessions.clear()
            building = list(self._creating.values())
        await asyncio.gather(*(self._close_session(s) for s in remaining))
        # Backends still being built close themselves once they see the shutdown; wait for that.
        await asyncio.gather(*(asyncio.wrap_future(f) for f in building), return_exceptions=True)
        _live_managers.discard(self)

    def close(self) -> None:
        """Sync twin of :meth:`aclose` (not from inside a running event loop)."""
        asyncio.run(self.aclose())

    # -- reporting ----------------------------------------------------------------------------------
    def status(self, *, include_files: bool = True) -> dict[str, Any]:
        """A JSON-serialisable report: limits, and per session its age, idle time, files and backend status."""
        report = []
        for s in sorted(self.sessions(), key=lambda s: s.created_at):
            idle = s.idle_seconds()
            entry: dict[str, Any] = {
                "session_id": s.session_id,
                "created_at": s.created_at.isoformat(),
                "last_used_at": s.last_used_at.isoformat(),
                "idle_seconds": round(idle, 3),
                "expires_in_seconds": None if s.active else round(max(0.0, self.cooldown - idle), 3),
                "active_calls": s.active,
                "backend": dict(s.backend.status()),
            }
            entry["sandboxed"] = bool(entry["backend"].get("sandboxed", False))
            if include_files:
                try:
                    files = s.backend.list_files()
                    entry["files"] = len(files)
                    entry["bytes"] = sum(f.size_in_bytes for f in files)
                except Exception:  # noqa: BLE001 - a closing session has no files to count
                    entry["files"] = entry["bytes"] = None
            report.append(entry)
        return {
            "sessions": report,
            "count": len(report),
            "max_sessions": self.max_sessions,
            "cooldown_seconds": self.cooldown,
            "file_ttl_seconds": self.file_ttl,
        }


_live_managers: weakref.WeakSet[SessionManager] = weakref.WeakSet()


@atexit.register
def _close_all_at_exit() -> None:
    # Last resort for managers nobody closed; local kernels are also stopped by their own exit hook.
    for manager in list(_live_managers):
        with contextlib.suppress(Exception):
            manager._stop.set()
            for session in manager.sessions():
                session.backend.close()
