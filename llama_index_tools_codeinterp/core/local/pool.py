"""A warm pool of pre-started local kernels, so that a new session's first call does not pay kernel start-up.

Starting ipykernel takes ≈0.8 s (two thirds of it imports); a session that takes a kernel from a warm pool runs
its first call in milliseconds. Each pooled kernel is started exactly as a fresh session's would be (same
launch options, sandbox, limits and environment), in its own new, empty data directory, which is handed over
with the kernel: the kernel's working directory *is* the session's data directory (``/mnt/data`` under the
sandbox), so a pooled session cannot be told apart from a fresh one. A kernel is never handed out twice, and
each one taken is replaced in the background.

Opt-in, because idle pooled kernels hold memory (≈35 MiB USS each)::

    pool = KernelPool(size=2, sandbox="auto")
    backend = pool.backend(session_id="abc")          # or LocalKernelBackend(pool=pool, ...)
    ...
    pool.close()                                      # also done at interpreter exit
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .. import _loop
from ..errors import ConfigurationError

if TYPE_CHECKING:
    from .backend import LocalKernelBackend

__all__ = ["LAUNCH_OPTIONS", "SESSION_OPTIONS", "KernelPool"]

log = logging.getLogger(__name__)

#: Constructor options that decide how a kernel is launched; a pooled kernel is adopted only when they match.
LAUNCH_OPTIONS = ("python", "kernel_name", "env", "inherit_env", "sandbox", "allow_network", "limits")

#: Constructor options (and the attributes they set) that belong to one session and can differ from the pool's.
SESSION_OPTIONS = (
    "session_id",
    "timeout",
    "interrupt_grace",
    "startup_code",
    "keep_files",
    "max_output_chars",
    "max_upload_bytes",
    "startup_timeout",
)
_SESSION_ATTRIBUTES = (*[name for name in SESSION_OPTIONS if name != "keep_files"], "_owns_data_dir")


class KernelPool:
    """Pre-started kernels for new :class:`LocalKernelBackend` sessions.

    Args:
        size: Kernels kept started and idle (default 2). Each holds ≈35 MiB of memory while it waits.
        refill_delay: Seconds after a kernel is taken before its replacement starts. Starting a kernel takes
            ≈0.8 s of CPU; deferring it keeps that off the new session's first calls.
        **launch_options: The sessions' launch options (``python``, ``kernel_name``, ``env``, ``inherit_env``,
            ``sandbox``, ``allow_network``, ``limits``), as for :class:`LocalKernelBackend`. Only a session
            created with the same options takes a pooled kernel; others start their own.
    """

    def __init__(self, size: int = 2, *, refill_delay: float = 0.5, **launch_options: Any) -> None:
        if not isinstance(size, int) or size < 1:
            raise ConfigurationError(f"size must be a whole number of kernels, at least 1; got {size!r}.")
        unknown = sorted(set(launch_options) - set(LAUNCH_OPTIONS))
        if unknown:
            raise ConfigurationError(
                f"KernelPool takes launch options only ({', '.join(LAUNCH_OPTIONS)}); got {', '.join(unknown)}. "
                "Pass per-session options to pool.backend(...) instead."
            )
        self.size = size
        self.refill_delay = max(0.0, float(refill_delay))
        self._options = dict(launch_options)
        self._key = _launch_key(self._options)
        self._lock = threading.Lock()
        self._ready: deque[LocalKernelBackend] = deque()
        self._closed = False
        #: Sessions that took a pooled kernel, and sessions that asked but found the pool empty.
        self.hits = 0
        self.misses = 0
        _live_pools.add(self)
        with self._lock:
            self._refill_locked()

    # -- handing out kernels ----------------------------------------------------------------------------
    def backend(self, **session_options: Any) -> LocalKernelBackend:
        """A new session with this pool's launch options, on a pooled kernel when one is available."""
        clash = sorted(set(session_options) & set(LAUNCH_OPTIONS))
        if clash:
            raise ConfigurationError(
                f"{', '.join(clash)} are the pool's launch options; create a KernelPool with other options instead."
            )
        from .backend import LocalKernelBackend

        return LocalKernelBackend(pool=self, **self._options, **session_options)

    def adopt(self, backend: LocalKernelBackend, options: Mapping[str, Any]) -> bool:
        """Give ``backend`` (being constructed) a pooled kernel if ``options`` match; False if it must start one.

        Called by :class:`LocalKernelBackend` at the end of its constructor. ``options`` holds its launch
        options and ``data_dir``: a session with its own data directory never takes a pooled kernel, whose
        working directory is a directory created with it.
        """
        if options.get("data_dir") is not None or _launch_key(options) != self._key:
            return False
        donor = self._take()
        if donor is None or donor._env != backend._env:
            if donor is not None:  # the host environment changed since it started: not the same launch
                _discard(donor)
            self.misses += 1
            return False
        _transplant(donor, backend)
        self.hits += 1
        return True

    def _take(self) -> LocalKernelBackend | None:
        with self._lock:
            if self._closed:
                return None
            donor = None
            while self._ready and donor is None:
                candidate = self._ready.popleft()
                if _usable(candidate):
                    donor = candidate
                else:
                    _discard(candidate)
        loop = _loop.io_loop()
        loop.call_soon_threadsafe(loop.call_later, self.refill_delay, self._refill)
        return donor

    def _refill(self) -> None:
        with self._lock:
            self._refill_locked()

    def _refill_locked(self) -> None:
        from .backend import LocalKernelBackend

        while not self._closed and len(self._ready) < self.size:
            # A plain session whose kernel starts in the background on the I/O loop; it owns a fresh data dir.
            self._ready.append(LocalKernelBackend(**self._options))

    # -- inspection -------------------------------------------------------------------------------------
    @property
    def options(self) -> dict[str, Any]:
        return dict(self._options)

    def ready_count(self) -> int:
        """Pooled kernels that have finished starting."""
        with self._lock:
            return sum(1 for b in self._ready if b._start_future.done() and b._start_future.exception() is None)

    def kernel_pids(self) -> list[int]:
        with self._lock:
            return [pid for b in self._ready if (pid := b.status().get("kernel_pid"))]

    def wait_full(self, timeout: float = 60.0) -> None:
        """Block until every pooled kernel has started (for benchmarks and tests)."""
        deadline = time.monotonic() + timeout
        while self.ready_count() < self.size:
            if self._closed:
                raise ConfigurationError("The pool is closed.")
            if time.monotonic() > deadline:
                raise TimeoutError(f"The kernel pool did not fill within {timeout:g} s.")
            with self._lock:  # a kernel that failed to start is replaced, so the pool can still fill
                for b in [b for b in self._ready if not _usable(b)]:
                    self._ready.remove(b)
                    _discard(b)
                self._refill_locked()
            time.sleep(0.02)

    # -- shutting down ----------------------------------------------------------------------------------
    def close(self) -> None:
        """Stop every pooled kernel; sessions already handed out are not affected."""
        _loop.run_sync(self._aclose())

    async def _aclose(self) -> None:
        with self._lock:
            self._closed = True
            waiting = list(self._ready)
            self._ready.clear()
        _live_pools.discard(self)
        await asyncio.gather(*(b._aclose() for b in waiting), return_exceptions=True)

    def __enter__(self) -> KernelPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _launch_key(options: Mapping[str, Any]) -> tuple[Any, ...]:
    """Launch options in a comparable form (defaults filled in as LocalKernelBackend fills them)."""
    from .sandbox import ResourceLimits

    return (
        options.get("python") or None,
        options.get("kernel_name") or None,
        tuple(sorted(dict(options.get("env") or {}).items())),
        bool(options.get("inherit_env", False)),
        options.get("sandbox", "auto"),
        bool(options.get("allow_network", False)),
        ResourceLimits.coerce(options.get("limits")),
    )


def _usable(donor: LocalKernelBackend) -> bool:
    """Still starting, or started and its process alive (a pooled kernel can die while it waits)."""
    future = donor._start_future
    if not future.done():
        return True
    if future.cancelled() or future.exception() is not None:
        return False
    process = getattr(getattr(donor._km, "provisioner", None), "process", None)
    return process is None or process.poll() is None


def _transplant(donor: LocalKernelBackend, backend: LocalKernelBackend) -> None:
    """Make ``backend`` the donor's session: its kernel, data dir, sandbox and runtime state, with the
    backend's own per-session settings.

    ``backend`` is still being constructed and has made no directories or cgroup of its own (it asks the pool
    first); its confinement object, which has not been attached, is simply replaced by the donor's.
    """
    from .backend import _live_backends

    kept = {name: getattr(backend, name) for name in _SESSION_ATTRIBUTES}
    backend.__dict__.update(donor.__dict__)
    backend.__dict__.update(kept)
    backend._confinement.session_id = backend.session_id
    # The donor object is spent: it must never close the kernel it gave away, not even when it is collected.
    donor._closed = True
    _live_backends.discard(donor)
    finalizer = backend.__dict__.pop("_finalizer", None)  # the donor's; the backend registers its own
    if finalizer is not None:
        finalizer.detach()
    if backend.startup_code:
        backend._start_future = asyncio.run_coroutine_threadsafe(
            _run_startup_code(backend, donor._start_future), _loop.io_loop()
        )


async def _run_startup_code(backend: LocalKernelBackend, started: Any) -> None:
    await asyncio.wrap_future(started)
    await backend._run_quietly(backend.startup_code or "")


def _discard(donor: LocalKernelBackend) -> None:
    asyncio.run_coroutine_threadsafe(donor._aclose(), _loop.io_loop())


#: Open pools, closed at interpreter exit (their kernels are live backends too, so they would be stopped anyway;
#: closing the pool first stops it from starting replacements).
_live_pools: set[KernelPool] = set()


async def _close_pools_at_exit() -> None:
    await asyncio.gather(*(pool._aclose() for pool in list(_live_pools)), return_exceptions=True)


_loop.on_exit(_close_pools_at_exit)
