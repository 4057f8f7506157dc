"""Make ``/mnt/data`` paths work in a kernel that runs outside the sandbox.

Under the sandbox the session's data directory is bind-mounted at the real path ``/mnt/data``. Without it
(macOS, no bubblewrap) there is no such directory, yet models write ``pd.read_csv("/mnt/data/x.csv")`` because
that is where Azure's and OpenAI's interpreters keep files. This kernel-side shim maps ``/mnt/data`` to the
working directory for the Python-level file functions (``open``, ``os.*``, ``pathlib``, and so everything
built on them: pandas, numpy, matplotlib, PIL). Libraries that open files from C with their own path handling
(e.g. some of pyarrow, h5py) still need relative paths; the sandbox has no such gap.
"""

from __future__ import annotations

#: Executed silently in the kernel after every start. It installs itself only when /mnt/data is not
#: already the working directory (i.e. when no sandbox mounted it there).
SHIM_CODE = r"""
def _codeinterp_install_mnt_data_shim():
    import builtins, functools, io, os
    root = "/mnt/data"
    try:
        if os.path.realpath(root) == os.path.realpath(os.getcwd()):
            return
    except OSError:
        pass
    here = os.getcwd()

    def translate(path):
        raw = os.fspath(path) if isinstance(path, os.PathLike) else path
        if isinstance(raw, str) and (raw == root or raw.startswith(root + "/")):
            return here + raw[len(root):]
        if isinstance(raw, bytes) and (raw == root.encode() or raw.startswith(root.encode() + b"/")):
            return os.fsencode(here) + raw[len(root):]
        return path

    def wrap(func, nargs=1):
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            args = [translate(a) if i < nargs else a for i, a in enumerate(args)]
            return func(*args, **kwargs)
        wrapper.__codeinterp_shim__ = True
        return wrapper

    if getattr(builtins.open, "__codeinterp_shim__", False):
        return
    builtins.open = io.open = wrap(io.open)
    # IPython puts its own open() into the user namespace; wrap that one too.
    shell = get_ipython()  # noqa: F821 - defined in every IPython kernel
    if "open" in shell.user_ns:
        shell.user_ns["open"] = wrap(shell.user_ns["open"])
    for name in ("stat", "lstat", "listdir", "scandir", "mkdir", "makedirs", "remove", "unlink", "rmdir",
                 "chdir", "access", "chmod", "utime", "open", "readlink", "truncate", "walk"):
        if hasattr(os, name):
            setattr(os, name, wrap(getattr(os, name)))
    for name in ("rename", "replace", "symlink", "link"):
        setattr(os, name, wrap(getattr(os, name), nargs=2))
    os.path.realpath = wrap(os.path.realpath)
    os.path.abspath = wrap(os.path.abspath)
    # pathlib calls os/io at call time (3.11+); 3.10 binds them on an accessor class instead.
    import pathlib
    accessor = getattr(pathlib, "_NormalAccessor", None)
    if accessor is not None:
        for name in ("stat", "lstat", "open", "listdir", "scandir", "mkdir", "unlink", "rmdir", "chmod",
                     "readlink", "utime"):
            if hasattr(accessor, name):
                setattr(accessor, name, staticmethod(wrap(getattr(accessor, name))))
        for name in ("rename", "replace", "symlink", "link_to"):
            if hasattr(accessor, name):
                setattr(accessor, name, staticmethod(wrap(getattr(accessor, name), nargs=2)))

_codeinterp_install_mnt_data_shim()
del _codeinterp_install_mnt_data_shim
"""
