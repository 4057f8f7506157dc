"""The local Jupyter backend: the shared contract plus what only a local kernel can show."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from pathlib import Path

import pytest
from backend_contract import BackendContract

from llama_index_tools_codeinterp.core import (
    ConfigurationError,
    ExecutionStatus,
    InvalidPathError,
    SessionClosedError,
)
from llama_index_tools_codeinterp.core.local import LocalKernelBackend


class TestLocalContract(BackendContract):
    @pytest.fixture
    def backend(self, local_backend: LocalKernelBackend) -> LocalKernelBackend:
        return local_backend


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped) counts as gone.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_data_dir_is_the_kernel_cwd(local_backend: LocalKernelBackend) -> None:
    r = local_backend.execute("import os\nos.getcwd()")
    # Under the sandbox the data directory is bind-mounted at /mnt/data.
    sandboxed = local_backend.status()["sandboxed"]
    expected = Path("/mnt/data") if sandboxed else local_backend.data_dir.resolve()
    assert Path(eval(r.text or "''")).resolve() == expected


def test_close_leaves_no_process_and_removes_private_dirs() -> None:
    backend = LocalKernelBackend()
    backend.execute("1")
    pid = backend.status()["kernel_pid"]
    data_dir = backend.data_dir
    assert pid and _pid_alive(pid)
    backend.close()
    deadline = time.monotonic() + 10
    while _pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _pid_alive(pid)
    assert not data_dir.exists()
    with pytest.raises(SessionClosedError):
        backend.execute("1")
    backend.close()  # idempotent


def test_context_manager_and_user_data_dir_is_kept(tmp_path: Path) -> None:
    (tmp_path / "input.txt").write_text("given")
    with LocalKernelBackend(data_dir=tmp_path) as backend:
        assert backend.execute("open('input.txt').read()").text == "'given'"
        backend.execute("open('made.txt', 'w').write('x')")
    assert (tmp_path / "made.txt").read_text() == "x"


def test_bad_configuration_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="not an existing directory"):
        LocalKernelBackend(data_dir=tmp_path / "missing")
    with pytest.raises(ConfigurationError, match="timeout"):
        LocalKernelBackend(timeout=0)


def test_kernel_that_cannot_start_says_why(tmp_path: Path) -> None:
    from llama_index_tools_codeinterp.core import KernelError

    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\necho 'no ipykernel here' >&2\nexit 1\n")
    fake.chmod(0o755)
    backend = LocalKernelBackend(python=str(fake), startup_timeout=10)
    try:
        with pytest.raises(KernelError, match="ipykernel"):
            backend.execute("1")
    finally:
        backend.close()


def test_kernel_ignoring_sigint_is_restarted_on_timeout(fresh_backend: LocalKernelBackend) -> None:
    fresh_backend.upload("kept.txt", b"kept")
    # ipykernel installs its own SIGINT handler before each cell, so the cell itself must ignore it.
    r = fresh_backend.execute(
        "import signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\ntime.sleep(60)", timeout=1
    )
    assert r.status is ExecutionStatus.TIMED_OUT
    assert r.kernel_restarted
    assert any("restarted" in n for n in r.notices)
    assert fresh_backend.download("kept.txt") == b"kept"
    assert fresh_backend.execute("1 + 1").text == "2"


def test_kernel_killed_between_calls_is_noticed(fresh_backend: LocalKernelBackend) -> None:
    fresh_backend.execute("x = 1")
    pid = fresh_backend.status()["kernel_pid"]
    os.kill(pid, 9)
    time.sleep(0.2)
    r = fresh_backend.execute("2 + 2")
    assert r.ok and r.text == "4"
    assert r.kernel_restarted
    assert any("had died" in n for n in r.notices)


def test_environment_secrets_are_not_inherited(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CODEINTERP_TEST_SECRET", "s3cret")
    with LocalKernelBackend(env={"GIVEN": "yes"}) as backend:
        r = backend.execute("import os\n(os.environ.get('CODEINTERP_TEST_SECRET'), os.environ.get('GIVEN'))")
    assert r.text == "(None, 'yes')"


def test_calls_on_one_session_are_serialized(local_backend: LocalKernelBackend) -> None:
    local_backend.execute("serial_log = []")
    slow = "import time\nserial_log.append('a1'); open('serial_started', 'w').close(); time.sleep(0.4)\n"
    slow += "serial_log.append('a2')"
    t = threading.Thread(target=local_backend.execute, args=(slow,))
    t.start()
    # Wait until the slow cell is really running (a marker file), so the order below is not a race.
    deadline = time.monotonic() + 30
    while not (local_backend.data_dir / "serial_started").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    local_backend.execute("serial_log.append('b')")
    t.join()
    assert local_backend.execute("serial_log").text == "['a1', 'a2', 'b']"


def test_sessions_run_side_by_side() -> None:
    backends = [LocalKernelBackend() for _ in range(3)]
    try:
        for i, b in enumerate(backends):
            b.execute(f"who = {i}")
        results: dict[int, str | None] = {}

        def work(i: int) -> None:
            results[i] = backends[i].execute("import time; time.sleep(0.5); who").text

        threads = [threading.Thread(target=work, args=(i,)) for i in range(3)]
        started = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert results == {0: "0", 1: "1", 2: "2"}
        # Three 0.5 s sleeps in parallel, not in series (generous bound: this is about overlap, not speed).
        assert time.monotonic() - started < 1.4
        assert len({b.data_dir for b in backends}) == 3
    finally:
        for b in backends:
            b.close()


async def test_async_api_runs_sessions_concurrently() -> None:
    a, b = LocalKernelBackend(), LocalKernelBackend()
    try:
        ra, rb = await asyncio.gather(a.aexecute("'a' * 2"), b.aexecute("'b' * 2"))
        assert (ra.text, rb.text) == ("'aa'", "'bb'")
        await a.aupload("async.txt", b"async bytes")
        assert await a.adownload("async.txt") == b"async bytes"
        assert [f.filename for f in await a.alist_files()] == ["async.txt"]
    finally:
        await a.aclose()
        await b.aclose()


def test_symlink_pointing_outside_cannot_be_read(local_backend: LocalKernelBackend, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("host secret")
    local_backend.execute(f"import os\nos.symlink({str(secret)!r}, 'link_out.txt')")
    with pytest.raises(InvalidPathError, match="symbolic link"):
        local_backend.download("link_out.txt")
    with pytest.raises(InvalidPathError):
        local_backend.upload("link_out.txt", b"overwrite")
    assert secret.read_text() == "host secret"


def test_huge_output_is_bounded_in_memory() -> None:
    with LocalKernelBackend(max_output_chars=100_000) as backend:
        r = backend.execute("import sys\nfor _ in range(200): sys.stdout.write('x' * 10_000)")
        assert r.ok
        assert len(r.stdout) < 120_000
        assert any("not kept" in n for n in r.notices)


def test_startup_code_runs_after_every_start(fresh_backend: LocalKernelBackend) -> None:
    with LocalKernelBackend(startup_code="import math\npreloaded = True") as backend:
        assert backend.execute("preloaded and math.pi > 3").text == "True"
        backend.restart()
        assert backend.execute("preloaded").text == "True"


def test_a_dropped_backend_stops_its_kernel_and_removes_its_dirs() -> None:
    import gc

    backend = LocalKernelBackend()
    backend.execute("1")
    pid = backend.status()["kernel_pid"]
    dirs = [backend.data_dir, backend._runtime_dir]
    del backend
    gc.collect()
    deadline = time.monotonic() + 10
    while _pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _pid_alive(pid)
    assert not any(d.exists() for d in dirs)


def test_a_failed_restart_is_retried_on_the_next_call(fresh_backend: LocalKernelBackend) -> None:
    fresh_backend.upload("kept.txt", b"kept")
    fresh_backend.execute("x = 1")
    # The state a restart leaves when the new kernel never became ready: no client connected.
    fresh_backend._kc.stop_channels()
    fresh_backend._kc = None
    r = fresh_backend.execute("2 + 2")
    assert r.ok and r.text == "4" and r.kernel_restarted
    assert any("started again" in n for n in r.notices)
    assert fresh_backend.download("kept.txt") == b"kept"
