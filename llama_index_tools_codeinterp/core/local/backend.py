"""The local backend: one Jupyter kernel (jupyter-client + ipykernel) and one data directory per session."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import tempfile
import time
import uuid
import weakref
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from queue import Empty
from typing import IO, TYPE_CHECKING, Any, cast

from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager

from .. import _loop
from ..backend import DEFAULT_TIMEOUT, Backend, DownloadTarget, UploadSource
from ..errors import (
    ConfigurationError,
    FileTooLargeError,
    InvalidPathError,
    KernelError,
    SessionClosedError,
)
from ..models import IMAGE_EXTENSIONS, ExecutionError, ExecutionResult, ExecutionStatus, Output, RemoteFile
from ..paths import (
    DATA_ROOT,
    guess_mime_type,
    normalize_remote_path,
    open_in_root,
    resolve_in_root,
    unlink_in_root,
)
from .kernel import KernelLaunchConfig, SingleKernelSpecManager, kernel_environment
from .mnt_data import SHIM_CODE as MNT_DATA_SHIM
from .outputs import RunCollector, diff_snapshots, snapshot
from .sandbox import KernelConfinement, ResourceLimits

__all__ = ["LocalKernelBackend"]

if TYPE_CHECKING:
    from .pool import KernelPool

log = logging.getLogger(__name__)

_COPY_CHUNK = 1 << 20

#: Every live backend, so that interpreter exit can stop their kernels.
_live_backends: weakref.WeakSet[LocalKernelBackend] = weakref.WeakSet()


async def _close_all_at_exit() -> None:
    await asyncio.gather(*(b._aclose() for b in list(_live_backends)), return_exceptions=True)


_loop.on_exit(_close_all_at_exit)


class LocalKernelBackend(Backend):
    """A stateful Python session in a Jupyter kernel on this machine.

    The session's data directory is the kernel's working directory and is what ``/mnt/data`` means in every
    file API. The kernel starts in the background as soon as the backend is created.

    Args:
        session_id: Identifier of the session (a uuid4 by default).
        data_dir: An existing directory to use as ``/mnt/data`` (kept on close). By default a private
            temporary directory is created and removed on close (unless ``keep_files``).
        timeout: Seconds a run may take before it is interrupted (default 220, as on Azure).
        interrupt_grace: Seconds to wait after an interrupt before the kernel is restarted instead.
        python: Interpreter to run ipykernel with (default: this one). It needs ipykernel installed.
        kernel_name: An installed kernelspec to launch instead of ``python``.
        env: Extra environment variables for the kernel.
        inherit_env: Pass this process's whole environment to the kernel. Off by default: only an
            allow-list (PATH, HOME, locale, proxies, ...) is passed, so API keys stay in the host.
        startup_code: Code run after every kernel (re)start, e.g. common imports.
        keep_files: Keep an auto-created data directory after :meth:`close`.
        max_output_chars: Characters of each stream kept in memory per run (head and tail beyond that).
        max_upload_bytes: Largest upload accepted (None: no limit).
        startup_timeout: Seconds to wait for the kernel to become ready.
        sandbox: ``"auto"`` (default): run the kernel under bubblewrap when it works here (Linux), else warn
            once and run unsandboxed; ``True``: require the sandbox (:class:`ConfigurationError` if it cannot be
            used); ``False``: never. See ``docs/security.md``.
        allow_network: Give the sandboxed kernel network access (and ``pip install`` into a per-session
            directory). Off by default.
        limits: Resource limits (:class:`~.sandbox.ResourceLimits` or a dict such as ``{"memory": "8GB"}``);
            sane defaults apply, ``None`` values switch single limits off.
        pool: A :class:`~.pool.KernelPool` to take an already-started kernel from (with its fresh data
            directory) when this session's launch options match the pool's and ``data_dir`` is not given.
    """

    kind = "local"

    def __init__(
        self,
        *,
        session_id: str | None = None,
        data_dir: str | os.PathLike[str] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        interrupt_grace: float = 5.0,
        python: str | None = None,
        kernel_name: str | None = None,
        env: Mapping[str, str] | None = None,
        inherit_env: bool = False,
        startup_code: str | None = None,
        keep_files: bool = False,
        max_output_chars: int = 8_000_000,
        max_upload_bytes: int | None = None,
        startup_timeout: float = 60.0,
        sandbox: bool | str = "auto",
        allow_network: bool = False,
        limits: ResourceLimits | Mapping[str, Any] | None = None,
        pool: KernelPool | None = None,
    ) -> None:
        if timeout <= 0:
            raise ConfigurationError(f"timeout must be a positive number of seconds, got {timeout!r}.")
        if python and kernel_name:
            raise ConfigurationError("Pass either python= or kernel_name=, not both.")
        self.session_id = session_id or str(uuid.uuid4())
        self._confinement = KernelConfinement(
            mode=sandbox, allow_network=allow_network, limits=limits, session_id=self.session_id
        )
        self.timeout = float(timeout)
        self.interrupt_grace = float(interrupt_grace)
        self.startup_code = startup_code
        self.max_output_chars = max_output_chars
        self.max_upload_bytes = max_upload_bytes
        self.startup_timeout = startup_timeout

        self._owns_data_dir = data_dir is None and not keep_files
        if data_dir is not None:
            self.data_dir = Path(data_dir).expanduser().resolve()
            if not self.data_dir.is_dir():
                raise ConfigurationError(
                    f"data_dir {str(self.data_dir)!r} is not an existing directory; create it first."
                )
        self._launch = KernelLaunchConfig(python=python, kernel_name=kernel_name)
        self._env = kernel_environment(env, inherit_env=inherit_env)
        self._figure_counter = 0
        self._closed = False
        self._km: AsyncKernelManager | None = None
        self._kc: Any = None
        self._lock: asyncio.Lock | None = None
        # A warm pool hands over a kernel it started earlier with the same launch options, together with its
        # data dir, runtime dir and confinement (see pool.py); only a session starting its own kernel makes them.
        launch = dict(data_dir=data_dir, python=python, kernel_name=kernel_name, env=env, inherit_env=inherit_env)
        launch.update(sandbox=sandbox, allow_network=allow_network, limits=limits)
        adopted = pool is not None and pool.adopt(self, launch)
        if not adopted:
            if data_dir is None:
                self.data_dir = Path(tempfile.mkdtemp(prefix="codeinterp-data-"))
            # Connection file, IPC sockets and the kernel's log live apart from the user's files.
            self._runtime_dir = Path(tempfile.mkdtemp(prefix="codeinterp-rt-"))
            self._confinement.attach(self.data_dir, self._runtime_dir)
        _live_backends.add(self)
        # A backend dropped without close() must not leave its kernel running and its directories behind. The
        # finalizer holds the instance dict, not the instance, so it always sees the current kernel and dirs.
        self._finalizer = weakref.finalize(self, _release_abandoned, self.__dict__)
        if not adopted:
            self._start_future = asyncio.run_coroutine_threadsafe(self._start_kernel(), _loop.io_loop())

    # -- public sync API ------------------------------------------------------------------------------
    def execute(self, code: str, *, timeout: float | None = None) -> ExecutionResult:
        return _loop.run_sync(self._execute(code, timeout))

    async def aexecute(self, code: str, *, timeout: float | None = None) -> ExecutionResult:
        return await _loop.run_async(self._execute(code, timeout))

    def restart(self) -> None:
        _loop.run_sync(self._restart_locked())

    async def arestart(self) -> None:
        await _loop.run_async(self._restart_locked())

    def close(self) -> None:
        if self._closed:
            return
        _loop.run_sync(self._aclose())

    async def aclose(self) -> None:
        if self._closed:
            return
        await _loop.run_async(self._aclose())

    def wait_ready(self, timeout: float | None = None) -> None:
        """Block until the kernel has started (raises :class:`KernelError` if it cannot)."""
        self._check_open()
        _loop.run_sync(self._ensure_kernel(), timeout)

    def status(self) -> dict[str, Any]:
        km = self._km
        return {
            "kind": self.kind,
            "session_id": self.session_id,
            "data_dir": str(self.data_dir),
            **self._confinement.status(),
            "closed": self._closed,
            "kernel_pid": getattr(getattr(km, "provisioner", None), "pid", None) if km else None,
            "timeout": self.timeout,
        }

    # -- files ----------------------------------------------------------------------------------------
    def upload(self, remote_path: str, source: UploadSource) -> RemoteFile:
        self._check_open()
        rel = normalize_remote_path(remote_path)
        limit = self.max_upload_bytes
        host: Path | None = None
        if isinstance(source, (str, os.PathLike)):
            host = Path(source).expanduser()
            if not host.is_file():
                raise FileNotFoundError(f"Local file {str(host)!r} does not exist or is not a regular file.")
        known_size = len(source) if isinstance(source, (bytes, bytearray, memoryview)) else None
        if host is not None:
            known_size = host.stat().st_size
        if known_size is not None:
            if limit is not None and known_size > limit:
                raise FileTooLargeError(_too_large(known_size, limit))
            self._confinement.check_upload(known_size)
        # Opened without following links at any step: code in the session may be swapping paths for symlinks.
        with open_in_root(self.data_dir, rel, "wb") as out:
            if isinstance(source, (bytes, bytearray, memoryview)):
                out.write(source)
            elif host is not None:
                with open(host, "rb") as src:
                    shutil.copyfileobj(src, out, _COPY_CHUNK)
            else:
                written = 0
                while chunk := cast(IO[bytes], source).read(_COPY_CHUNK):
                    written += len(chunk)
                    if limit is not None and written > limit:
                        out.close()
                        unlink_in_root(self.data_dir, rel)
                        raise FileTooLargeError(_too_large(written, limit))
                    out.write(chunk)
            out.flush()
            return _describe_open_file(rel, out)

    def download_to(self, remote_path: str, destination: DownloadTarget) -> int:
        self._check_open()
        rel = normalize_remote_path(remote_path)
        with open_in_root(self.data_dir, rel, "rb") as src:
            if isinstance(destination, (str, os.PathLike)):
                host = Path(destination).expanduser()
                host.parent.mkdir(parents=True, exist_ok=True)
                with open(host, "wb") as out:
                    shutil.copyfileobj(src, out, _COPY_CHUNK)
                    return out.tell()
            total = 0
            while chunk := src.read(_COPY_CHUNK):
                destination.write(chunk)
                total += len(chunk)
            return total

    def list_files(self, path: str = "") -> list[RemoteFile]:
        self._check_open()
        rel = normalize_remote_path(path, allow_root=True)
        root = resolve_in_root(self.data_dir, rel, must_exist=True)
        if root.is_file():
            return [self._describe(rel, root)]
        prefix = f"{rel}/" if rel else ""
        return [
            RemoteFile(
                filename=prefix + name,
                size_in_bytes=size,
                mime_type=guess_mime_type(name),
                last_modified=datetime.fromtimestamp(mtime_ns / 1e9, tz=timezone.utc),
            )
            for name, (size, mtime_ns) in sorted(snapshot(root).items())
        ]

    def delete_file(self, remote_path: str) -> None:
        self._check_open()
        unlink_in_root(self.data_dir, normalize_remote_path(remote_path))

    def _describe(self, rel: str, host: Path) -> RemoteFile:
        st = host.stat()
        return RemoteFile(
            filename=rel,
            size_in_bytes=st.st_size,
            mime_type=guess_mime_type(rel),
            last_modified=datetime.fromtimestamp(st.st_mtime, tz=timezone.utc),
        )

    def _check_open(self) -> None:
        if self._closed:
            raise SessionClosedError(f"Session {self.session_id} is closed; create a new backend to run more code.")

    # -- kernel lifecycle (on the I/O loop) -----------------------------------------------------------
    async def _start_kernel(self) -> None:
        env, preexec_fn = await asyncio.to_thread(self._confinement.prepare, self._launch, self._env)
        spec = self._launch.kernel_spec()
        spec_manager: KernelSpecManager = SingleKernelSpecManager(spec) if spec else KernelSpecManager()
        transport = "ipc" if os.name == "posix" else "tcp"
        km = AsyncKernelManager(
            kernel_name=self._launch.kernel_name or "codeinterp",
            kernel_spec_manager=spec_manager,
            transport=transport,
            # Only the socket dir and the connection file are visible to a sandboxed kernel, not the log beside them.
            ip=str(self._confinement.socket_dir / "kernel") if transport == "ipc" else "127.0.0.1",
            connection_file=str(self._confinement.connection_file),
        )
        self._km = km
        self._log_file = self._confinement.open_log()  # closed in _aclose
        try:
            await km.start_kernel(
                cwd=str(self.data_dir), env=env, stdout=self._log_file, stderr=self._log_file, preexec_fn=preexec_fn
            )
            await self._connect_client()
        except Exception as exc:
            raise KernelError(self._start_failure_message(exc)) from exc

    async def _connect_client(self) -> None:
        assert self._km is not None
        if self._kc is not None:
            self._kc.stop_channels()
        kc = self._km.client()
        kc.start_channels()
        try:
            await kc.wait_for_ready(timeout=self.startup_timeout)
        except Exception:
            kc.stop_channels()
            raise
        self._kc = kc
        await self._run_quietly(MNT_DATA_SHIM)
        if self.startup_code:
            await self._run_quietly(self.startup_code)

    async def _run_quietly(self, code: str) -> None:
        kc = self._kc
        msg_id = kc.execute(code, silent=True, store_history=False)
        collector = RunCollector(stream_limit=10_000)
        deadline = time.monotonic() + self.startup_timeout
        await self._collect(msg_id, collector, deadline)
        if collector.error:
            log.warning("startup_code raised %s", collector.error)

    def _start_failure_message(self, exc: BaseException) -> str:
        tail = self._confinement.read_log_tail(2000)
        python = self._launch.python or "this Python"
        hint = (
            f"Check that ipykernel is installed for {python} (pip install ipykernel)"
            if not self._launch.kernel_name
            else f"Check that the kernelspec {self._launch.kernel_name!r} exists (jupyter kernelspec list)"
        )
        message = f"The Python kernel could not be started: {exc}. {hint}."
        return f"{message}\nKernel log:\n{tail}" if tail else message

    async def _ensure_kernel(self) -> None:
        if self._closed:
            raise SessionClosedError(f"Session {self.session_id} is closed; create a new backend to run more code.")
        await asyncio.wrap_future(self._start_future)

    async def _restart_kernel(self) -> None:
        assert self._km is not None
        if self._kc is not None:
            self._kc.stop_channels()
            self._kc = None
        try:
            await self._km.restart_kernel(now=True)
            await self._connect_client()
        except Exception as exc:
            raise KernelError(self._start_failure_message(exc)) from exc

    async def _restart_locked(self) -> None:
        await self._ensure_kernel()
        async with self._run_lock():
            await self._restart_kernel()

    def _run_lock(self) -> asyncio.Lock:
        if self._lock is None:
            self._lock = asyncio.Lock()
        return self._lock

    async def _aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        _live_backends.discard(self)
        # A kernel that never started still needs its directories removed.
        with contextlib.suppress(Exception):
            await asyncio.wrap_future(self._start_future)
        async with self._run_lock():
            if self._kc is not None:
                self._kc.stop_channels()
                self._kc = None
            if self._km is not None:
                try:
                    if self._km.has_kernel:
                        await self._km.shutdown_kernel(now=True)
                except Exception as exc:  # noqa: BLE001
                    log.warning("Stopping kernel of session %s failed: %s", self.session_id, exc)
                self._km = None
        if getattr(self, "_log_file", None):
            self._log_file.close()
        shutil.rmtree(self._runtime_dir, ignore_errors=True)
        self._confinement.close()
        if self._owns_data_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)
        self._finalizer.detach()

    async def _exit_description(self) -> str:
        km = self._km
        code = None
        if km is not None and km.provisioner is not None:
            code = await km.provisioner.poll()
        return self._confinement.describe_exit(code)

    # -- running code -------------------------------------------------------------------------------
    async def _execute(self, code: str, timeout: float | None) -> ExecutionResult:
        if not isinstance(code, str):
            raise TypeError(f"code must be a str, not {type(code).__name__}")
        limit = self.timeout if timeout is None else float(timeout)
        if limit <= 0:
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}.")
        await self._ensure_kernel()
        async with self._run_lock():
            return await self._execute_locked(code, limit)

    async def _execute_locked(self, code: str, limit: float) -> ExecutionResult:
        assert self._km is not None
        notices: list[str] = []
        restarted = False
        if self._kc is None:
            # The last restart failed half-way (e.g. the kernel never became ready): try again from scratch.
            await self._restart_kernel()
            restarted = True
            notices.append(
                "The kernel could not be restarted after the previous call and was started again before this code "
                f"ran: variables and imports from earlier calls are lost; files in {DATA_ROOT} are kept."
            )
        elif not await self._km.is_alive():
            why = await self._exit_description()
            await self._restart_kernel()
            restarted = True
            notices.append(
                f"The kernel had died since the last call ({why}) and was restarted before this code ran: "
                f"variables and imports from earlier calls are lost; files in {DATA_ROOT} are kept."
            )

        before = snapshot(self.data_dir)
        started = time.perf_counter()
        kc = self._kc
        msg_id = kc.execute(code, store_history=True, allow_stdin=False, stop_on_error=False)
        collector = RunCollector(stream_limit=self.max_output_chars)
        km = self._km
        disk_watch = asyncio.ensure_future(
            self._confinement.watch_disk(km.interrupt_kernel, lambda: km.signal_kernel(signal.SIGKILL))
        )
        try:
            outcome = await self._collect(msg_id, collector, time.monotonic() + limit)
        finally:
            disk_watch.cancel()
        status = ExecutionStatus.FAILED if collector.error else ExecutionStatus.SUCCEEDED
        error = collector.error

        if outcome == "timeout":
            status = ExecutionStatus.TIMED_OUT
            await self._km.interrupt_kernel()
            outcome = await self._collect(msg_id, collector, time.monotonic() + self.interrupt_grace)
            where = collector.error.traceback if collector.error else ""
            if outcome == "idle":
                error = ExecutionError(
                    "TimeoutError", f"Execution exceeded the {limit:g} s time limit and was interrupted.", where
                )
                notices.append(
                    f"The code ran past the {limit:g} s time limit and was interrupted. Variables and imports "
                    "are kept; output up to the interrupt is shown."
                )
            else:
                await self._restart_kernel()
                restarted = True
                error = ExecutionError(
                    "TimeoutError",
                    f"Execution exceeded the {limit:g} s time limit; the kernel did not stop when interrupted "
                    "and was restarted.",
                    where,
                )
                notices.append(
                    f"The code ran past the {limit:g} s time limit and did not stop when interrupted, so the kernel "
                    f"was restarted: all variables and imports are lost; files in {DATA_ROOT} are kept."
                )
        elif outcome == "died":
            why = await self._exit_description()
            await self._restart_kernel()
            restarted = True
            status = ExecutionStatus.FAILED
            error = ExecutionError(
                "KernelDied",
                f"The Python kernel died while running this code ({why}), e.g. a crash, os._exit() or running out of memory.",  # noqa: E501
            )
            notices.append(
                f"The kernel died while running this code ({why}) and was restarted: all variables and imports "
                f"are lost; files in {DATA_ROOT} are kept. Re-run any setup code before continuing."
            )
        else:
            await self._drain_reply(msg_id, collector)

        duration_ms = (time.perf_counter() - started) * 1000
        after = snapshot(self.data_dir)
        files = diff_snapshots(before, after)
        notices.extend(self._confinement.after_run(code, after, error.name if error else None))
        files.extend(self._save_images(collector))
        for stream in (collector.stdout, collector.stderr):
            if stream.dropped:
                notices.append(
                    f"The run printed more than {self.max_output_chars:,} characters; {stream.dropped:,} characters "
                    "in the middle were not kept. Write large output to a file instead of printing it."
                )
        return ExecutionResult(
            status=status,
            stdout=collector.stdout.getvalue(),
            stderr=collector.stderr.getvalue(),
            result=collector.result,
            displays=collector.displays,
            error=error,
            files=files,
            duration_ms=duration_ms,
            kernel_restarted=restarted,
            execution_count=collector.execution_count,
            notices=notices,
            session_id=self.session_id,
        )

    async def _collect(self, msg_id: str, collector: RunCollector, deadline: float) -> str:
        """Read this run's iopub messages until idle; "idle", "timeout" or "died"."""
        assert self._km is not None
        kc = self._kc
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return "timeout"
            try:
                # Short waits so that a dead kernel is noticed within a quarter second, not at the deadline.
                msg = await kc.get_iopub_msg(timeout=min(remaining, 0.25))
            except Empty:
                if not await self._km.is_alive():
                    return "died"
                continue
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            if collector.handle(msg):
                return "idle"

    async def _drain_reply(self, msg_id: str, collector: RunCollector) -> None:
        """Read the execute_reply (it carries pager payloads such as ``obj?``) so replies never pile up."""
        kc = self._kc
        deadline = time.monotonic() + 2.0
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                reply = await kc.get_shell_msg(timeout=remaining)
            except Empty:
                return
            if reply.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            for payload in reply.get("content", {}).get("payload", []) or []:
                if payload.get("source") == "page":
                    collector.stdout.write(str(payload.get("data", {}).get("text/plain", "")))
            return

    def _save_images(self, collector: RunCollector) -> list[RemoteFile]:
        """Save every figure the run displayed as a file in /mnt/data, so the model and user can fetch it."""
        saved: list[RemoteFile] = []
        outputs: list[Output] = [*collector.displays, *([collector.result] if collector.result else [])]
        for output in outputs:
            mime = output.image_mime_type
            if mime is None:
                continue
            data = output.image_bytes()
            if not data:
                continue
            rel = self._next_figure_name(IMAGE_EXTENSIONS[mime])
            try:
                with open_in_root(self.data_dir, rel, "wb") as out:
                    out.write(data)
            except (OSError, InvalidPathError) as exc:  # a full disk must not turn a good run into an exception
                log.warning("Could not save a figure to %s: %s", rel, exc)
                continue
            output.saved_as = rel
            saved.append(RemoteFile(rel, len(data), mime, datetime.now(timezone.utc), change="created"))
        return saved

    def _next_figure_name(self, ext: str) -> str:
        while True:
            self._figure_counter += 1
            name = f"figure_{self._figure_counter}.{ext}"
            if not os.path.lexists(self.data_dir / name):
                return name


def _release_abandoned(state: dict[str, Any]) -> None:
    """Last resort for a backend garbage-collected without close(): kill its kernel, remove its dirs.

    Runs from the garbage collector (any thread, the I/O loop's included), so it only does synchronous,
    non-blocking work: a SIGKILL to the kernel's process group and directory removal.
    """
    if state.get("_closed"):
        return
    state["_closed"] = True
    provisioner = getattr(state.get("_km"), "provisioner", None)
    process = getattr(provisioner, "process", None)
    if process is not None and process.poll() is None:
        pgid = getattr(provisioner, "pgid", None)
        with contextlib.suppress(OSError):
            if pgid and hasattr(os, "killpg"):
                os.killpg(pgid, signal.SIGKILL)
            else:
                process.kill()
    if state.get("_log_file") is not None:
        state["_log_file"].close()
    if state.get("_runtime_dir") is not None:
        shutil.rmtree(state["_runtime_dir"], ignore_errors=True)
    confinement = state.get("_confinement")
    if confinement is not None:
        with contextlib.suppress(Exception):
            confinement.close()
    if state.get("_owns_data_dir") and state.get("data_dir") is not None:
        shutil.rmtree(state["data_dir"], ignore_errors=True)


def _describe_open_file(rel: str, handle: IO[bytes]) -> RemoteFile:
    st = os.fstat(handle.fileno())
    return RemoteFile(
        filename=rel,
        size_in_bytes=st.st_size,
        mime_type=guess_mime_type(rel),
        last_modified=datetime.fromtimestamp(st.st_mtime, tz=timezone.utc),
    )


def _too_large(size: int, limit: int) -> str:
    return (
        f"The upload is {size:,} bytes, over this session's limit of {limit:,} bytes. "
        "Split the file or raise max_upload_bytes."
    )
