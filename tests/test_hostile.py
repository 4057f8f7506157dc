"""Hostile code against a local session, with and without the bubblewrap sandbox.

Every case checks four things: the damage is contained, the result says clearly what happened, the session is
usable afterwards (or was restarted) with its files intact, and the host is unharmed. The same cases run
sandboxed and unsandboxed; where only the sandbox contains an attack, the unsandboxed run proves the danger
harmlessly (signal 0, ``os.access``, reading a file the test itself planted) instead of doing the damage. The
table in ``docs/security.md`` summarises the outcome.
"""

from __future__ import annotations

import hashlib
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from llama_index_tools_codeinterp.core import ExecutionStatus, InvalidPathError
from llama_index_tools_codeinterp.core.errors import FileTooLargeError
from llama_index_tools_codeinterp.core.local import LocalKernelBackend
from llama_index_tools_codeinterp.core.local.sandbox import bwrap_support

MiB = 1 << 20
#: Small limits so every bomb is cheap to set off and quick to stop.
LIMITS = {"memory": "2GB", "processes": 64, "file_size": 5 * MiB, "disk": 20 * MiB}

SANDBOX_USABLE = bwrap_support().usable


@pytest.fixture(
    scope="module",
    params=[
        pytest.param(True, id="sandboxed", marks=pytest.mark.skipif(not SANDBOX_USABLE, reason="bwrap unusable")),
        pytest.param(False, id="unsandboxed"),
    ],
)
def hostile(request: pytest.FixtureRequest) -> Iterator[LocalKernelBackend]:
    backend = LocalKernelBackend(sandbox=request.param, limits=LIMITS, timeout=30, interrupt_grace=2)
    backend.upload("keep.txt", b"precious")
    try:
        yield backend
    finally:
        backend.close()


@pytest.fixture(scope="module")
def victim() -> Iterator[LocalKernelBackend]:
    """Another session on the same host, holding a secret."""
    backend = LocalKernelBackend(sandbox=False)
    backend.upload("secret.txt", b"victim secret")
    try:
        yield backend
    finally:
        backend.close()


def sandboxed(backend: LocalKernelBackend) -> bool:
    return bool(backend.status()["sandboxed"])


def assert_usable(backend: LocalKernelBackend) -> None:
    """The session still runs code and still has the file it started with."""
    assert backend.execute("6 * 7").text == "42"
    assert backend.download("keep.txt") == b"precious"


# -- runaway code ---------------------------------------------------------------------------------------------
def test_infinite_loop_is_interrupted(hostile: LocalKernelBackend) -> None:
    hostile.execute("survivor = 'state'")
    r = hostile.execute("while True:\n    pass", timeout=1.5)
    assert r.status is ExecutionStatus.TIMED_OUT
    assert r.error is not None and "time limit" in r.error.value
    assert not r.kernel_restarted
    assert hostile.execute("survivor").text == "'state'"
    assert_usable(hostile)


def test_sleep_past_the_timeout_is_interrupted(hostile: LocalKernelBackend) -> None:
    r = hostile.execute("import time\ntime.sleep(60)", timeout=1)
    assert r.status is ExecutionStatus.TIMED_OUT
    assert any("time limit" in n for n in r.notices)
    assert_usable(hostile)


def test_kernel_ignoring_sigint_is_restarted(hostile: LocalKernelBackend) -> None:
    r = hostile.execute("import signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\ntime.sleep(60)", timeout=1)
    assert r.status is ExecutionStatus.TIMED_OUT
    assert r.kernel_restarted
    assert any("restarted" in n and "kept" in n for n in r.notices)
    assert_usable(hostile)


def test_memory_bomb_raises_memory_error(hostile: LocalKernelBackend) -> None:
    r = hostile.execute("hog = []\nwhile True:\n    hog.append(bytearray(100 * 1024 * 1024))")
    assert r.error is not None and r.error.name == "MemoryError"
    assert any("limits.memory" in n for n in r.notices)
    assert not r.kernel_restarted
    hostile.execute("del hog")
    assert_usable(hostile)


def test_fork_bomb_is_capped_by_the_process_limit(hostile: LocalKernelBackend) -> None:
    if not hostile.status()["process_limit_enforced"]:
        pytest.skip("no process limit can be enforced here (not root and no sandbox): a fork bomb would hit the host")
    code = """
import os, time
children, failure = [], None
try:
    for _ in range(2000):
        pid = os.fork()
        if pid == 0:
            time.sleep(30)
            os._exit(0)
        children.append(pid)
except OSError as exc:
    failure = type(exc).__name__
for pid in children:
    os.kill(pid, 9)
    os.waitpid(pid, 0)
(failure, len(children))
"""
    r = hostile.execute(code)
    failure, spawned = eval(r.text or "(None, 0)")
    assert failure == "BlockingIOError"
    assert spawned < 64
    assert_usable(hostile)


def test_thread_bomb_is_capped(hostile: LocalKernelBackend) -> None:
    code = """
import threading
stop = threading.Event()
threads, failure = [], None
try:
    for _ in range(5000):
        t = threading.Thread(target=stop.wait, daemon=True)
        t.start()
        threads.append(t)
except RuntimeError as exc:
    failure = str(exc)
stop.set()
for t in threads:
    t.join()
(failure, len(threads))
"""
    r = hostile.execute(code)
    failure, started = eval(r.text or "(None, 0)")
    # The process limit (threads count as tasks) or the address-space limit (8 MiB stacks) stops it.
    assert failure and "thread" in failure
    assert started < 5000
    assert_usable(hostile)


def test_cpu_time_limit_kills_and_restarts() -> None:
    with LocalKernelBackend(sandbox="auto", limits={"cpu_seconds": 3}, timeout=30) as backend:
        backend.upload("keep.txt", b"precious")
        r = backend.execute("while True:\n    pass")
        assert r.kernel_restarted
        assert r.error is not None and r.error.name == "KernelDied"
        assert any("SIGXCPU" in n and "cpu_seconds" in n for n in r.notices)
        assert_usable(backend)


# -- dying kernels ------------------------------------------------------------------------------------------
def test_os_exit_restarts_the_kernel(hostile: LocalKernelBackend) -> None:
    r = hostile.execute("import os\nos._exit(1)")
    assert r.kernel_restarted
    assert r.error is not None and r.error.name == "KernelDied"
    assert any("exited with code 1" in n for n in r.notices)
    assert_usable(hostile)


def test_segfault_restarts_the_kernel(hostile: LocalKernelBackend) -> None:
    r = hostile.execute("import ctypes\nctypes.string_at(0)")
    assert r.kernel_restarted
    assert any("SIGSEGV" in n for n in r.notices)
    assert_usable(hostile)


def test_sys_exit_is_an_ordinary_error(hostile: LocalKernelBackend) -> None:
    hostile.execute("before_exit = 1")
    r = hostile.execute("import sys\nsys.exit(3)")
    assert r.error is not None and r.error.name == "SystemExit"
    assert not r.kernel_restarted
    assert hostile.execute("before_exit").text == "1"


# -- output and disk ------------------------------------------------------------------------------------------
def test_printing_100_mb_is_bounded(hostile: LocalKernelBackend) -> None:
    r = hostile.execute("import sys\nfor _ in range(100):\n    sys.stdout.write('x' * 1_000_000)")
    assert r.ok
    assert len(r.stdout) <= hostile.max_output_chars + 1000
    assert any("not kept" in n for n in r.notices)
    assert_usable(hostile)


def test_file_over_the_size_limit_is_refused(hostile: LocalKernelBackend) -> None:
    r = hostile.execute("open('big.bin', 'wb').write(b'x' * (10 * 1024 * 1024))")
    assert r.error is not None and "File too large" in r.error.value
    assert (hostile.data_dir / "big.bin").stat().st_size <= 5 * MiB
    hostile.delete_file("big.bin")
    assert_usable(hostile)


def test_filling_the_data_directory_is_stopped(hostile: LocalKernelBackend) -> None:
    # Writes 1 MiB every 50 ms for up to 100 s: only the disk watcher can stop it in time.
    code = """
import time
for i in range(2000):
    with open(f'fill_{i}.bin', 'wb') as f:
        f.write(b'x' * (1024 * 1024))
    time.sleep(0.05)
"""
    r = hostile.execute(code, timeout=60)
    assert r.status is not ExecutionStatus.TIMED_OUT  # stopped long before the timeout
    assert any("disk limit" in n and "limits.disk" in n for n in r.notices)
    written = sum(1 for p in hostile.data_dir.glob("fill_*.bin"))
    assert 20 <= written < 60
    with pytest.raises(FileTooLargeError, match="disk limit"):
        hostile.upload("more.bin", b"y" * 1024)
    hostile.execute("import glob, os\nfor p in glob.glob('fill_*.bin'): os.remove(p)")
    hostile.upload("more.bin", b"y" * 1024)
    assert_usable(hostile)


def test_writing_into_the_socket_dir_counts_against_the_disk_limit(hostile: LocalKernelBackend) -> None:
    # The IPC socket dir is on the host and writable by the kernel: what it puts there counts like /mnt/data.
    code = """
import json, os
from ipykernel import get_connection_file
sockets = os.path.dirname(json.load(open(get_connection_file()))['ip'])
for i in range(6):
    with open(os.path.join(sockets, f'junk_{i}.bin'), 'wb') as f:
        f.write(b'x' * (4 * 1024 * 1024))
sockets
"""
    r = hostile.execute(code)
    assert r.error is None, r.error
    assert eval(r.text or "''") == str(hostile._confinement.socket_dir)
    assert any("disk limit" in n and "limits.disk" in n for n in r.notices), r.notices
    with pytest.raises(FileTooLargeError, match="disk limit"):
        hostile.upload("more.bin", b"y" * 1024)
    cleanup = "import glob, os\nfor p in glob.glob(os.path.join(sockets, 'junk_*.bin')): os.remove(p)"
    assert hostile.execute(cleanup).error is None
    hostile.upload("more.bin", b"y" * 1024)
    hostile.delete_file("more.bin")
    assert_usable(hostile)


def test_the_kernel_cannot_make_the_host_read_a_file_through_its_log(
    hostile: LocalKernelBackend, tmp_path: Path
) -> None:
    secret = tmp_path / "host-secret.txt"
    secret.write_text("HOST SECRET 42")
    host_log = hostile._confinement.log_path
    code = f"""
import os
from ipykernel import get_connection_file
log = os.path.join(os.path.dirname(get_connection_file()), 'kernel.log')
visible = os.path.exists(log)
try:
    if os.path.lexists(log):
        os.remove(log)
    os.symlink({str(secret)!r}, log)
    with open(log + '.marker', 'w') as f:
        f.write('planted')
    planted = True
except OSError:
    planted = False
(visible, planted)
"""
    visible, planted = eval(hostile.execute(code).text or "()")
    try:
        # The host reads its log (e.g. into a start-failure message) without following a link.
        message = hostile._start_failure_message(RuntimeError("probe"))
        assert "HOST SECRET" not in message
        if sandboxed(hostile):
            assert not visible  # the log is not in the sandbox at all ...
            assert not host_log.is_symlink() and host_log.is_file()  # ... so the host's is untouched
            assert not host_log.with_name("kernel.log.marker").exists()
        else:
            assert visible and planted  # the danger, contained only by not following links
    finally:
        if host_log.is_symlink():
            host_log.unlink()
        host_log.with_name("kernel.log.marker").unlink(missing_ok=True)
    assert_usable(hostile)


# -- the host's files -----------------------------------------------------------------------------------------
def test_writing_etc(hostile: LocalKernelBackend) -> None:
    if sandboxed(hostile):
        r = hostile.execute("open('/etc/codeinterp_probe', 'w')")
        assert r.error is not None and "Read-only file system" in r.error.value
        assert not os.path.exists("/etc/codeinterp_probe")
    else:
        # Not attempted: the check alone shows that the code could change the host's configuration.
        r = hostile.execute("import os\nos.access('/etc', os.W_OK)")
        assert r.text == str(os.access("/etc", os.W_OK))
    assert_usable(hostile)


def test_writing_the_home_directory(hostile: LocalKernelBackend) -> None:
    home = str(Path.home())
    if sandboxed(hostile):
        r = hostile.execute(
            "import os\nopen(os.path.expanduser('~/probe.txt'), 'w').write('x')\nos.path.expanduser('~')"
        )
        # HOME is the private /tmp ...
        assert r.text == "'/tmp'"
        # ... and the host's home does not exist inside, or is read-only where the interpreter lives under it.
        r = hostile.execute(f"open({home!r} + '/codeinterp_probe.txt', 'w').write('x')")
        assert r.error is not None and r.error.name in ("FileNotFoundError", "OSError", "PermissionError")
        assert not (Path.home() / "codeinterp_probe.txt").exists()
        assert not (Path.home() / "probe.txt").exists()
    else:
        r = hostile.execute(f"import os\nos.access({home!r}, os.W_OK)")
        assert r.text == str(os.access(home, os.W_OK))


def test_ssh_keys_and_the_home_are_hidden(hostile: LocalKernelBackend) -> None:
    home = Path.home()
    r = hostile.execute(f"import os\nsorted(os.listdir({str(home)!r}))")
    visible = set(eval(r.text or "[]"))
    if sandboxed(hostile):
        assert ".ssh" not in visible
        # Of the host's home, only what the interpreter itself needs (e.g. ~/.pyenv for pyenv) is bound back.
        interpreter_dirs = {".pyenv", ".local", ".venv", "venv", ".conda", "miniconda3", "anaconda3"}
        assert visible & set(os.listdir(home)) <= interpreter_dirs
        assert hostile.execute(f"open({str(home / '.bashrc')!r})").error is not None
    else:
        assert visible == set(os.listdir(home))


def test_other_sessions_files(hostile: LocalKernelBackend, victim: LocalKernelBackend) -> None:
    secret = victim.data_dir / "secret.txt"
    r = hostile.execute(f"open({str(secret)!r}).read()")
    w = hostile.execute(f"import os\nos.access({str(victim.data_dir)!r}, os.W_OK)")
    if sandboxed(hostile):
        assert r.error is not None and r.error.name == "FileNotFoundError"
        assert w.text == "False"
    else:
        assert r.text == "'victim secret'"  # the danger: one session reads another's files
        assert w.text == "True"
    assert victim.download("secret.txt") == b"victim secret"


def test_host_environment_is_not_visible(hostile: LocalKernelBackend) -> None:
    # The kernel's own environment is an allow-list; the question is whether it can read the host's.
    code = f"""
import hashlib, os
try:
    seen = hashlib.sha256(open('/proc/{os.getpid()}/environ', 'rb').read()).hexdigest()
except OSError as exc:
    seen = type(exc).__name__
(sorted(os.environ), seen)
"""
    names, seen = eval(hostile.execute(code).text or "([], None)")
    assert not {"PYTEST_CURRENT_TEST", "PYTEST_VERSION"} & set(names)
    if sandboxed(hostile):
        assert seen == "FileNotFoundError"  # the host's /proc entries do not exist in the PID namespace
    else:
        # The danger: an unsandboxed kernel of the same user reads the host process's whole environment block.
        host = hashlib.sha256(Path(f"/proc/{os.getpid()}/environ").read_bytes()).hexdigest()
        assert seen == host


def test_symlink_out_of_the_data_dir_is_not_followed(hostile: LocalKernelBackend, victim: LocalKernelBackend) -> None:
    target = victim.data_dir / "secret.txt"
    hostile.execute(f"import os\nos.symlink({str(target)!r}, 'stolen.txt')\nos.symlink('/etc/passwd', 'passwd')")
    for name in ("stolen.txt", "passwd"):
        with pytest.raises(InvalidPathError):
            hostile.download(name)
        with pytest.raises(InvalidPathError):
            hostile.upload(name, b"overwrite")
    assert target.read_bytes() == b"victim secret"
    hostile.delete_file("stolen.txt")
    hostile.delete_file("passwd")


@pytest.mark.parametrize(
    "name", ["../outside.txt", "/etc/passwd", "/mnt/data/../../etc/passwd", "a/../../b.txt", "..", "/mnt/database/x"]
)
def test_path_traversal_in_file_names(hostile: LocalKernelBackend, name: str) -> None:
    with pytest.raises(InvalidPathError):
        hostile.download(name)
    with pytest.raises(InvalidPathError):
        hostile.upload(name, b"x")
    with pytest.raises((InvalidPathError, FileNotFoundError)):
        hostile.list_files(name)


# -- network and processes -----------------------------------------------------------------------------------
def test_internet_is_unreachable(hostile: LocalKernelBackend) -> None:
    # Probe for a route without sending a single packet: connect() on a UDP socket only picks a route.
    # (No test here ever sends traffic to a non-loopback address.)
    code = """
import socket
probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
try:
    probe.connect(('192.0.2.1', 9))
    outcome = 'routable'
except OSError as exc:
    outcome = exc.errno
finally:
    probe.close()
(outcome, sorted(name for _, name in socket.if_nameindex()))
"""
    outcome, interfaces = eval(hostile.execute(code).text or "(None, None)")
    if sandboxed(hostile):
        assert outcome == 101  # ENETUNREACH: the sandbox has no network interface but a downed loopback
        assert interfaces == ["lo"]
    else:
        # The danger: the host's interfaces and routes are the kernel's.
        assert outcome == "routable"
        assert set(interfaces) - {"lo"}


def test_host_loopback_server(hostile: LocalKernelBackend) -> None:
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    accepted: list[bool] = []
    threading.Thread(target=lambda: accepted.append(bool(server.accept())), daemon=True).start()
    try:
        code = f"""
import socket
try:
    socket.create_connection(('127.0.0.1', {port}), timeout=2).close()
    outcome = 'connected'
except OSError as exc:
    outcome = type(exc).__name__
outcome
"""
        outcome = eval(hostile.execute(code).text or "None")
        if sandboxed(hostile):
            assert outcome != "connected"
        else:
            assert outcome == "connected"  # the danger: local services (databases, admin APIs) are reachable
    finally:
        server.close()


def test_killing_the_parent(hostile: LocalKernelBackend) -> None:
    host_pid = os.getpid()
    if sandboxed(hostile):
        code = f"""
import os
os.kill(os.getppid(), 9)
try:
    os.kill({host_pid}, 9)
    outcome = 'sent'
except ProcessLookupError:
    outcome = 'no such process'
(os.getppid(), outcome)
"""
        r = hostile.execute(code)
        ppid, outcome = eval(r.text or "(None, None)")
        assert ppid == 1  # the sandbox's own init, which ignores signals from inside its namespace
        assert outcome == "no such process"
    else:
        # Not attempted: signal 0 proves the kernel could kill this very process.
        r = hostile.execute(f"import os\nos.kill({host_pid}, 0)\nos.getppid() == {host_pid}")
        assert r.ok and r.text == "True"
    assert os.getpid() == host_pid  # still here
    assert_usable(hostile)


def test_disk_filler_ignoring_interrupts_is_killed_files_kept() -> None:
    with LocalKernelBackend(limits={"disk": 8 * MiB}, timeout=60, interrupt_grace=2) as backend:
        backend.upload("keep.txt", b"precious")
        code = """
import signal, time
signal.signal(signal.SIGINT, signal.SIG_IGN)
for i in range(2000):
    with open(f'fill_{i}.bin', 'wb') as f:
        f.write(b'x' * (512 * 1024))
    time.sleep(0.05)
"""
        r = backend.execute(code)
        assert r.status is not ExecutionStatus.TIMED_OUT
        assert r.kernel_restarted
        assert any("disk limit" in n and "limits.disk" in n for n in r.notices)
        for path in backend.data_dir.glob("fill_*.bin"):
            path.unlink()
        assert_usable(backend)
