"""How a local kernel is launched: its kernelspec, flags, environment and transport.

Kept apart from the backend so the sandbox launcher can wrap the same command line.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jupyter_client.kernelspec import KernelSpec, KernelSpecManager, NoSuchKernel

__all__ = ["KernelLaunchConfig", "SingleKernelSpecManager", "kernel_environment"]

#: Flags that make ipykernel quicker per call and plainer for a model to read. The history database
#: costs a SQLite write per call and grows with every cell; tracebacks come uncoloured.
KERNEL_FLAGS = (
    "--HistoryManager.enabled=False",
    "--InteractiveShell.colors=nocolor",
    "--Completer.use_jedi=False",
    # ipykernel sleeps 0.5 ms after every execute so that clients that stop at execute_reply see late output;
    # we read iopub until the idle status, which is sent after all output, so the sleep is pure latency.
    "--Kernel._execute_sleep=0",
    # ipykernel flushes stdout and stderr 4-6 times per execute, each a blocking round trip to its IOPub thread
    # even when nothing was written: ≈1.8 ms of kernel CPU per trivial call. Skip the round trip when the
    # stream holds nothing (output still goes through the real flush; order on iopub is unchanged). Runs at
    # start-up, leaves no name behind, and falls back to the real flush if ipykernel's internals differ.
    "--IPKernelApp.exec_lines="
    "def _codeinterp_lean_flush():\n"
    "    from ipykernel.iostream import OutStream\n"
    "    flush = OutStream.flush\n"
    "    def lean_flush(self):\n"
    "        if self.echo is None and not getattr(self, '_buffers', True) and self._is_master_process():\n"
    "            return\n"
    "        flush(self)\n"
    "    OutStream.flush = lean_flush\n"
    "_codeinterp_lean_flush()\n"
    "del _codeinterp_lean_flush",
)

#: Host variables a kernel inherits by default. Everything else (API keys, cloud credentials, tokens)
#: stays in the host process unless the developer passes it in ``env`` or sets ``inherit_env=True``.
INHERITED_ENV = (
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "LANG",
    "LANGUAGE",
    "TZ",
    "TMPDIR",
    "TEMP",
    "TMP",
    "PYTHONPATH",
    "VIRTUAL_ENV",
    "CONDA_PREFIX",
    "LD_LIBRARY_PATH",
    "SYSTEMROOT",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "MPLCONFIGDIR",
    "XDG_CACHE_HOME",
)


def kernel_environment(extra: Mapping[str, str] | None, *, inherit_env: bool) -> dict[str, str]:
    """The environment a kernel starts with: an allow-list of the host's, plus ``extra``."""
    if inherit_env:
        env = dict(os.environ)
    else:
        env = {k: v for k, v in os.environ.items() if k in INHERITED_ENV or k.startswith("LC_")}
    env.pop("JPY_PARENT_PID", None)
    # Figures render to PNG in the kernel and arrive as display data; no GUI backend is ever tried.
    env.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    env["PYTHONUNBUFFERED"] = "1"
    env["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"  # silences a debugpy warning on every start
    if extra:
        env.update(extra)
    return env


#: Sets RLIMIT_NPROC, then becomes the kernel: ``python -c SHIM <n> -m ipykernel_launcher ...``.
_NPROC_SHIM = (
    "import os, resource, sys; n = int(sys.argv[1]); resource.setrlimit(resource.RLIMIT_NPROC, (n, n)); "
    "os.execv(sys.executable, [sys.executable, *sys.argv[2:]])"
)


def is_python_spec(spec: KernelSpec) -> bool:
    """Whether a kernelspec starts a Python interpreter (so ``python -c SHIM ...`` can run in front of it)."""
    return (spec.language or "").lower() == "python" and bool(spec.argv)


@dataclass
class KernelLaunchConfig:
    """What to start: the current interpreter's ipykernel by default, a python path, or a kernelspec."""

    python: str | None = None
    kernel_name: str | None = None
    extra_arguments: tuple[str, ...] = ()
    #: Filled by the sandbox: a prefix that wraps the kernel command line (e.g. ``bwrap ... --``).
    wrapper: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    #: "message" under the sandbox: a signal sent to bwrap would not reach the kernel in its PID namespace.
    interrupt_mode: str = "signal"
    #: RLIMIT_NPROC to set inside the sandbox, where the user namespace makes it count only the session's
    #: processes (set outside, it would count every process of the user).
    nproc_inside: int | None = None

    @property
    def interpreter(self) -> str:
        return self.python or sys.executable

    def _nproc_shim(self) -> list[str]:
        return [] if self.nproc_inside is None else ["-c", _NPROC_SHIM, str(self.nproc_inside)]

    def kernel_spec(self) -> KernelSpec | None:
        """The spec to launch, or ``None`` to look ``kernel_name`` up in the installed kernelspecs."""
        if self.kernel_name:
            if not self.wrapper:
                return None
            # A named kernelspec under the sandbox: same command line, wrapped, and for a Python kernel the same
            # process-limit shim. KERNEL_FLAGS are not added: they are ipykernel options tuned for the ipykernel
            # installed here, and a named kernelspec may run another interpreter with another version.
            try:
                named = KernelSpecManager().get_kernel_spec(self.kernel_name)
            except NoSuchKernel:
                return None  # the start then fails with the usual "no such kernelspec" message
            from .sandbox import resolve_python

            shim = self._nproc_shim() if is_python_spec(named) else []
            named.argv = [*self.wrapper, resolve_python(named.argv[0]), *shim, *named.argv[1:]]
            named.interrupt_mode = self.interrupt_mode
            return named
        python = self.interpreter
        shim = self._nproc_shim()
        argv = [
            *self.wrapper,
            python,
            *shim,
            "-m",
            "ipykernel_launcher",
            "-f",
            "{connection_file}",
            *KERNEL_FLAGS,
            *self.extra_arguments,
        ]
        return KernelSpec(
            argv=argv,
            display_name="codeinterp",
            language="python",
            interrupt_mode=self.interrupt_mode,
            env={},
            metadata={},
        )


class SingleKernelSpecManager(KernelSpecManager):
    """Serves one in-memory kernelspec, so no kernelspec has to be installed on disk."""

    def __init__(self, spec: KernelSpec, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._codeinterp_spec = spec

    def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
        return self._codeinterp_spec

    def find_kernel_specs(self) -> dict[str, str]:
        return {"codeinterp": str(Path(sys.executable).parent)}
