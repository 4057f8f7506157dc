"""The ``/mnt/data`` path model.

Every session has one data directory. Wherever the LLM or a user sees it, it is called ``/mnt/data`` (as on
Azure session pools and in OpenAI's code interpreter, which models are trained on). File-API paths are
relative to it; a leading ``/mnt/data/`` is accepted and stripped. Anything that would resolve outside it is
refused with :class:`InvalidPathError`.
"""

from __future__ import annotations

import mimetypes
import os
from pathlib import Path, PurePosixPath

from .errors import InvalidPathError, RemoteFileNotFoundError

__all__ = [
    "DATA_ROOT",
    "guess_mime_type",
    "normalize_remote_path",
    "remote_display_path",
    "resolve_in_root",
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
