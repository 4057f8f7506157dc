"""The ``/mnt/data`` path model.

Every session has one data directory. Wherever the LLM or a user sees it, it is called ``/mnt/data`` (as on
Azure session pools and in OpenAI's code interpreter, which models are trained on). File-API paths are
relative to it; a leading ``/mnt/data/`` is accepted and stripped. Anything that would resolve outside it is
refused with :class:`InvalidPathError`.
"""

from __future__ import annotations

import contextlib
import errno
import mimetypes
import os
import stat
from pathlib import Path, PurePosixPath
from typing import IO, Literal

from .errors import InvalidPathError, RemoteFileNotFoundError

__all__ = [
    "DATA_ROOT",
    "guess_mime_type",
    "normalize_remote_path",
    "open_in_root",
    "remote_display_path",
    "resolve_in_root",
    "unlink_in_root",
]

#: The name of the data directory as the model and the user see it.
DATA_ROOT = "/mnt/data"

_EXTRA_MIME_TYPES = {
    ".parquet": "application/vnd.apache.parquet",
    ".feather": "application/vnd.apache.arrow.file",
    ".arrow": "application/vnd.apache.arrow.file",
    ".jsonl": "application/jsonl",
    ".ndjson": "application/x-ndjson",
    ".ipynb": "application/x-ipynb+json",
    ".md": "text/markdown",
    ".py": "text/x-python",
    ".csv": "text/csv",
    ".tsv": "text/tab-separated-values",
    ".yaml": "application/yaml",
    ".yml": "application/yaml",
    ".toml": "application/toml",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    ".pkl": "application/octet-stream",
    ".npy": "application/octet-stream",
    ".webp": "image/webp",
    ".svg": "image/svg+xml",
}


def guess_mime_type(name: str) -> str:
    """A MIME type from the file name; ``application/octet-stream`` when unknown."""
    suffix = PurePosixPath(name).suffix.lower()
    if suffix in _EXTRA_MIME_TYPES:
        return _EXTRA_MIME_TYPES[suffix]
    guessed, _ = mimetypes.guess_type(name, strict=False)
    return guessed or "application/octet-stream"


def normalize_remote_path(path: str | os.PathLike[str], *, allow_root: bool = False) -> str:
    """Turn a user- or model-supplied session path into a clean relative POSIX path.

    Accepts ``"report.csv"``, ``"/mnt/data/report.csv"`` and ``"out/plot.png"``. Refuses empty names,
    NUL bytes, ``..`` segments and absolute paths outside ``/mnt/data``. With ``allow_root`` the data
    directory itself (``""``, ``"/mnt/data"``) is allowed and returned as ``""``.
    """
    text = os.fspath(path)
    if not isinstance(text, str):
        raise InvalidPathError(f"Session paths must be text, not {type(text).__name__}.")
    if "\x00" in text:
        raise InvalidPathError("Session paths cannot contain NUL bytes.")
    text = text.replace("\\", "/").strip()
    if text == DATA_ROOT or text == DATA_ROOT + "/":
        rel = ""
    elif text.startswith(DATA_ROOT + "/"):
        rel = text[len(DATA_ROOT) + 1 :]
    elif text.startswith("/"):
        raise InvalidPathError(
            f"{text!r} is outside the session's data directory. "
            f"Use a path relative to {DATA_ROOT} or one that starts with {DATA_ROOT}/."
        )
    else:
        rel = text
    parts = [p for p in rel.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise InvalidPathError(f"{text!r} uses '..' to leave {DATA_ROOT}; name a file inside {DATA_ROOT} instead.")
    clean = "/".join(parts)
    if not clean and not allow_root:
        raise InvalidPathError(f"A file name is required (for example {DATA_ROOT}/data.csv).")
    return clean


def remote_display_path(relative: str) -> str:
    """``"a/b.csv"`` -> ``"/mnt/data/a/b.csv"``."""
    return f"{DATA_ROOT}/{relative}" if relative else DATA_ROOT


def resolve_in_root(root: Path, relative: str, *, must_exist: bool = False) -> Path:
    """The host path of a session path, refusing any that resolves (through symlinks) outside ``root``."""
    root_real = root.resolve()
    candidate = root_real / relative if relative else root_real
    real = candidate.resolve()
    if real != root_real and root_real not in real.parents:
        raise InvalidPathError(
            f"{remote_display_path(relative)!r} points outside {DATA_ROOT} (through a symbolic link); "
            "it cannot be read or written through the file API."
        )
    if must_exist and not real.exists():
        raise RemoteFileNotFoundError(
            f"No file {remote_display_path(relative)!r} in this session. Call list_files() to see what exists."
        )
    return real


# -- race-free file access ---------------------------------------------------------------------------------
# Code in the session can swap any path component for a symlink between a check and an open. So file APIs do
# not check-then-open: they walk from the data directory one component at a time with O_NOFOLLOW, which the
# kernel enforces at each step. Where dir_fd is unsupported (Windows) they fall back to resolve_in_root.
_RACE_FREE = os.name == "posix" and os.open in os.supports_dir_fd and os.unlink in os.supports_dir_fd
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


def _refusal(relative: str, exc: OSError) -> Exception:
    shown = remote_display_path(relative)
    if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK):
        return InvalidPathError(
            f"{shown!r} goes through a symbolic link or a non-directory; the file API does not follow links."
        )
    if exc.errno == errno.ENOENT:
        return RemoteFileNotFoundError(f"No file {shown!r} in this session. Call list_files() to see what exists.")
    if exc.errno == errno.EISDIR:
        return InvalidPathError(f"{shown!r} is a directory; name a file inside it.")
    return exc


def _open_parent(root: Path, parts: list[str], *, create: bool) -> int:
    """A directory fd for ``parts[:-1]`` under ``root``, reached without following any symlink."""
    dir_fd = os.open(root, os.O_RDONLY | _DIRECTORY | _CLOEXEC)
    try:
        for name in parts[:-1]:
            if create:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(name, 0o755, dir_fd=dir_fd)
            next_fd = os.open(name, os.O_RDONLY | _DIRECTORY | _NOFOLLOW | _CLOEXEC, dir_fd=dir_fd)
            os.close(dir_fd)
            dir_fd = next_fd
    except BaseException:
        os.close(dir_fd)
        raise
    return dir_fd


def open_in_root(root: Path, relative: str, mode: Literal["rb", "wb"]) -> IO[bytes]:
    """Open the regular file ``relative`` under ``root`` for reading or (creating parents) writing.

    No symlink is followed on the way, FIFOs and devices are refused (they could block or leak), and the errors
    are the package's own: :class:`InvalidPathError`, :class:`RemoteFileNotFoundError`.
    """
    if not relative:
        raise InvalidPathError(f"A file name is required (for example {DATA_ROOT}/data.csv).")
    if not _RACE_FREE:
        real = resolve_in_root(root, relative, must_exist=mode == "rb")
        if mode == "wb":
            real.parent.mkdir(parents=True, exist_ok=True)
        return open(real, mode)
    parts = relative.split("/")
    # O_NONBLOCK: opening a FIFO must not hang; it is refused below once fstat shows what it is.
    flags = os.O_NONBLOCK | _NOFOLLOW | _CLOEXEC
    flags |= os.O_RDONLY if mode == "rb" else os.O_WRONLY | os.O_CREAT
    try:
        dir_fd = _open_parent(root, parts, create=mode == "wb")
        try:
            fd = os.open(parts[-1], flags, 0o644, dir_fd=dir_fd)
        finally:
            os.close(dir_fd)
    except OSError as exc:
        raise _refusal(relative, exc) from exc
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        kind = "a directory" if stat.S_ISDIR(info.st_mode) else "not a regular file"
        raise InvalidPathError(f"{remote_display_path(relative)!r} is {kind}; the file API reads and writes files.")
    os.set_blocking(fd, True)
    if mode == "wb":
        os.ftruncate(fd, 0)
    return os.fdopen(fd, mode)


def unlink_in_root(root: Path, relative: str) -> None:
    """Remove the file (or symlink itself) ``relative`` under ``root`` without following links on the way."""
    if not relative:
        raise InvalidPathError(f"A file name is required (for example {DATA_ROOT}/data.csv).")
    if not _RACE_FREE:
        target = resolve_in_root(root, str(PurePosixPath(relative).parent)) / PurePosixPath(relative).name
        if not os.path.lexists(target):
            raise RemoteFileNotFoundError(f"No file {remote_display_path(relative)!r} in this session.")
        if target.is_dir() and not target.is_symlink():
            raise InvalidPathError(f"{remote_display_path(relative)!r} is a directory; delete the files in it.")
        target.unlink()
        return
    parts = relative.split("/")
    try:
        dir_fd = _open_parent(root, parts, create=False)
        try:
            os.unlink(parts[-1], dir_fd=dir_fd)
        finally:
            os.close(dir_fd)
    except IsADirectoryError as exc:
        raise InvalidPathError(f"{remote_display_path(relative)!r} is a directory; delete the files in it.") from exc
    except OSError as exc:
        raise _refusal(relative, exc) from exc
