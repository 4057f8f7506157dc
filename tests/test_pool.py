"""The warm kernel pool: a pooled session is indistinguishable from a fresh one, the pool refills, and nothing
is left running after close (or at interpreter exit)."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from backend_contract import BackendContract

from llama_index_tools_codeinterp.core import ConfigurationError
from llama_index_tools_codeinterp.core.local import LocalKernelBackend
from llama_index_tools_codeinterp.core.local.pool import KernelPool


def _tree(pid: int | None) -> set[int]:
    """A kernel's pid and its children's (a sandboxed kernel runs under a bubblewrap process)."""
    if not pid:
        return set()
    try:
        root = psutil.Process(pid)
        return {pid, *(child.pid for child in root.children(recursive=True))}
    except psutil.NoSuchProcess:
        return set()


def _alive(pids: set[int]) -> set[int]:
    alive = set()
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                alive.add(pid)
        except psutil.NoSuchProcess:
            pass
    return alive


def _wait_gone(pids: set[int], timeout: float = 15.0) -> set[int]:
    deadline = time.monotonic() + timeout
    while (left := _alive(pids)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


@pytest.fixture(scope="module")
def pool() -> Iterator[KernelPool]:
    with KernelPool(size=2, refill_delay=0) as pool:
        pool.wait_full(timeout=60)
        yield pool


def _pooled(pool: KernelPool, **options: object) -> LocalKernelBackend:
    """A session that must have taken an already-started kernel from the pool."""
    pool.wait_full(timeout=60)
    waiting = set(pool.kernel_pids())
    hits = pool.hits
    backend = pool.backend(timeout=60, **options)  # type: ignore[arg-type]
    assert pool.hits == hits + 1
    assert backend.status()["kernel_pid"] in waiting
    return backend


@pytest.fixture(scope="module")
def pooled_backend(pool: KernelPool) -> Iterator[LocalKernelBackend]:
    backend = _pooled(pool)
    try:
        yield backend
    finally:
        backend.close()


class TestPooledContract(BackendContract):
    """Everything a fresh local session does, a pooled one does too."""

    @pytest.fixture
    def backend(self, pooled_backend: LocalKernelBackend) -> LocalKernelBackend:
        return pooled_backend


def test_pooled_session_starts_like_a_fresh_one(pool: KernelPool) -> None:
    backend = _pooled(pool)
    fresh = LocalKernelBackend(timeout=60)
    try:
        probe = "import os, sys; (os.getcwd(), sorted(os.listdir('.')), len(sys.argv) > 0)"
        pooled_first, fresh_first = backend.execute(probe), fresh.execute(probe)
        assert pooled_first.ok, pooled_first.error
        # Same working directory (the data dir, or /mnt/data in the sandbox), empty, and the first cell is 1.
        assert pooled_first.text.replace(str(backend.data_dir), "<data>") == fresh_first.text.replace(
            str(fresh.data_dir), "<data>"
        )
        assert "[]" in pooled_first.text
        assert pooled_first.execution_count == fresh_first.execution_count == 1
        assert not pooled_first.kernel_restarted and not pooled_first.notices
        status, fresh_status = backend.status(), fresh.status()
        for key in ("sandboxed", "network", "limits"):
            assert status.get(key) == fresh_status.get(key)
        assert status["session_id"] == backend.session_id != fresh.session_id
        assert backend.data_dir.is_dir() and list(backend.data_dir.iterdir()) == []
    finally:
        backend.close()
        fresh.close()
    assert not backend.data_dir.exists()


def test_two_pooled_sessions_share_nothing(pool: KernelPool) -> None:
    first, second = _pooled(pool), _pooled(pool)
    try:
        assert first.data_dir != second.data_dir
        assert first.status()["kernel_pid"] != second.status()["kernel_pid"]
        assert first.execute("secret = 'first'\nopen('mine.txt', 'w').write('first')").ok
        other = second.execute("secret")
        assert other.error is not None and other.error.name == "NameError"
        assert second.execute("import os; os.path.exists('mine.txt')").text == "False"
        assert [f.filename for f in first.list_files()] == ["mine.txt"]
        assert second.list_files() == []
        second.upload("theirs.bin", b"\x00\x01")
        assert first.execute("import os; os.path.exists('theirs.bin')").text == "False"
        assert second.execute("open('theirs.bin', 'rb').read()").text == "b'\\x00\\x01'"
        assert first.download("mine.txt") == b"first"
    finally:
        first.close()
        second.close()


def test_session_options_apply_to_a_pooled_kernel(pool: KernelPool) -> None:
    backend = _pooled(pool, session_id="pooled-session-1", startup_code="preloaded = 6 * 7", keep_files=True)
    try:
        assert backend.session_id == "pooled-session-1"
        assert backend.execute("preloaded").text == "42"
        result = backend.execute("import time; time.sleep(5)", timeout=0.5)
        assert result.error is not None and result.error.name == "TimeoutError"
    finally:
        backend.close()
    assert backend.data_dir.is_dir()  # keep_files=True keeps the handed-over directory
    shutil.rmtree(backend.data_dir)


def test_the_pool_refills_with_new_kernels(pool: KernelPool) -> None:
    pool.wait_full(timeout=60)
    before = set(pool.kernel_pids())
    taken = [_pooled(pool), _pooled(pool)]
    try:
        pool.wait_full(timeout=60)
        after = set(pool.kernel_pids())
        assert len(after) == pool.size
        assert not after & {b.status()["kernel_pid"] for b in taken}  # a kernel is handed out once
        assert before & {b.status()["kernel_pid"] for b in taken}
    finally:
        for b in taken:
            b.close()


def test_only_matching_sessions_take_a_pooled_kernel(pool: KernelPool, tmp_path: os.PathLike[str]) -> None:
    pool.wait_full(timeout=60)
    waiting = set(pool.kernel_pids())
    hits = pool.hits
    own_dir = LocalKernelBackend(data_dir=tmp_path, pool=pool, timeout=60)
    other_env = LocalKernelBackend(env={"CODEINTERP_POOL_TEST": "1"}, pool=pool, timeout=60)
    try:
        assert pool.hits == hits
        for backend in (own_dir, other_env):
            backend.wait_ready(60)
            assert backend.status()["kernel_pid"] not in waiting
        assert own_dir.execute("import os; os.listdir('.') == []").text == "True"
        assert other_env.execute("import os; os.environ.get('CODEINTERP_POOL_TEST')").text == "'1'"
    finally:
        own_dir.close()
        other_env.close()


def _host_resources() -> set[str]:
    """This process's session temp dirs and pids cgroups, as they exist on the host right now."""
    from llama_index_tools_codeinterp.core.local.sandbox import PidsCgroup

    found = {str(p) for p in Path(tempfile.gettempdir()).glob("codeinterp-*")}
    controller = PidsCgroup._controller_root()
    if controller is not None and (controller / "codeinterp").is_dir():
        found |= {str(p) for p in (controller / "codeinterp").glob(f"{os.getpid()}-*")}
    return found


def _resources_of(backend: LocalKernelBackend) -> set[str]:
    cgroup = backend._confinement._cgroup
    return {str(backend.data_dir), str(backend._runtime_dir), *([str(cgroup.path)] if cgroup else [])}


def test_taking_a_pooled_kernel_leaves_nothing_behind(pool: KernelPool) -> None:
    pool.wait_full(timeout=60)
    before = _host_resources()
    waiting = set().union(*(_resources_of(b) for b in list(pool._ready)))
    backend = _pooled(pool)
    mine = _resources_of(backend)
    assert mine <= waiting  # the session runs on the donor's dirs and cgroup and made none of its own
    backend.close()
    pool.wait_full(timeout=60)
    after = _host_resources()
    refilled = set().union(*(_resources_of(b) for b in list(pool._ready)))
    assert not mine & after  # closing removed them
    assert after <= (before - mine) | refilled, after - before - refilled  # nothing else appeared


def test_a_pooled_kernel_that_died_while_waiting_is_not_handed_out() -> None:
    with KernelPool(size=1, refill_delay=0) as pool:
        pool.wait_full(timeout=60)
        victims = set().union(*(_tree(pid) for pid in pool.kernel_pids()))
        for pid in victims:
            with contextlib.suppress(psutil.NoSuchProcess):  # a sandbox's kernel dies with its bwrap parent
                psutil.Process(pid).kill()
        assert not _wait_gone(victims)
        backend = pool.backend(timeout=60)
        try:
            result = backend.execute("1 + 1")
            assert result.text == "2"
            assert not result.kernel_restarted and not result.notices
            assert backend.status()["kernel_pid"] not in victims
        finally:
            backend.close()


def test_bad_pool_options_say_what_to_do() -> None:
    with pytest.raises(ConfigurationError, match="at least 1"):
        KernelPool(size=0)
    with pytest.raises(ConfigurationError, match=r"pool\.backend"):
        KernelPool(size=1, timeout=5)


def test_launch_options_cannot_be_overridden_per_session(pool: KernelPool) -> None:
    with pytest.raises(ConfigurationError, match="launch options"):
        pool.backend(sandbox=False)


def test_closing_everything_leaves_no_kernel_process() -> None:
    pool = KernelPool(size=2, refill_delay=0)
    pool.wait_full(timeout=60)
    backend = pool.backend(timeout=60)
    assert backend.execute("1").ok
    pool.wait_full(timeout=60)
    pids = _tree(backend.status()["kernel_pid"]).union(*(_tree(pid) for pid in pool.kernel_pids()))
    assert len(pids) >= 3
    backend.close()
    pool.close()
    assert not _wait_gone(pids)


def test_a_pool_left_open_is_stopped_at_interpreter_exit() -> None:
    script = textwrap.dedent(
        """
        from llama_index_tools_codeinterp.core.local.pool import KernelPool
        pool = KernelPool(size=2, refill_delay=0)
        pool.wait_full(timeout=60)
        session = pool.backend()
        session.execute("1")
        pool.wait_full(timeout=60)
        print(" ".join(map(str, [session.status()["kernel_pid"], *pool.kernel_pids()])), flush=True)
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    pids = {int(pid) for pid in out.stdout.split()}
    assert len(pids) == 3
    assert not _wait_gone(pids)
