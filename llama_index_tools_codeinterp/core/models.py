"""The result model: one shape for every backend.

:class:`ExecutionResult` is what a run produced, as data. Python exceptions in the user's code are an
:class:`ExecutionError` on it, never raised. Two renderings are built from it: the Azure-shaped dict for
Python callers (:meth:`ExecutionResult.to_azure_dict`) and the compact text for the LLM
(:mod:`.render`).
"""

from __future__ import annotations

import ast
import base64
import enum
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from .paths import remote_display_path

__all__ = [
    "IMAGE_EXTENSIONS",
    "IMAGE_MIME_TYPES",
    "ExecutionError",
    "ExecutionResult",
    "ExecutionStatus",
    "Output",
    "RemoteFile",
]

#: Image types a display output can carry, in order of preference.
IMAGE_MIME_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp", "image/svg+xml")
#: The file extension a figure of each image type is saved with in /mnt/data.
IMAGE_EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/jpg": "jpg", "image/gif": "gif",
                    "image/webp": "webp", "image/svg+xml": "svg"}  # fmt: skip


class ExecutionStatus(str, enum.Enum):
    """How a run ended."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"  # the code raised, or the kernel died under it
    TIMED_OUT = "timed_out"  # it ran past its time limit and was interrupted (or the kernel restarted)


@dataclass
class Output:
    """One rich output: a Jupyter MIME bundle.

    ``data`` maps MIME types to payloads as Jupyter sends them: text for ``text/*``, base64 text for binary
    images, a JSON value for ``application/json``. ``saved_as`` is the session path an image was saved to.
    """

    data: dict[str, Any]
    metadata: dict[str, Any] = field(default_factory=dict)
    saved_as: str | None = None

    @property
    def text(self) -> str | None:
        """The ``text/plain`` form, if any."""
        value = self.data.get("text/plain")
        return value if isinstance(value, str) else None

    @property
    def image_mime_type(self) -> str | None:
        """The best image type this bundle carries, if any."""
        return next((m for m in IMAGE_MIME_TYPES if m in self.data), None)

    def image_bytes(self) -> bytes | None:
        """The decoded bytes of the image this bundle carries (SVG as UTF-8 text), if any."""
        mime = self.image_mime_type
        if mime is None:
            return None
        payload = self.data[mime]
        if mime == "image/svg+xml":
            return payload.encode() if isinstance(payload, str) else bytes(payload)
        return base64.b64decode(payload) if isinstance(payload, str) else bytes(payload)

    def to_dict(self) -> dict[str, Any]:
        return {"data": self.data, "metadata": self.metadata, "saved_as": self.saved_as}


@dataclass
class ExecutionError:
    """A Python exception raised by the user's code: ``name: value`` and a plain-text traceback."""

    name: str
    value: str
    traceback: str = ""

    def __str__(self) -> str:
        return f"{self.name}: {self.value}" if self.value else self.name

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "value": self.value, "traceback": self.traceback}


@dataclass
class RemoteFile:
    """A file in a session's ``/mnt/data``.

    ``filename`` is the path relative to ``/mnt/data`` (as Azure's API reports it); ``file_full_path`` is
    the same file as the model sees it. The three fields of LlamaIndex's ``RemoteFileMetadata``
    (``filename``, ``size_in_bytes``, ``file_full_path``) are all here.
    """

    filename: str
    size_in_bytes: int
    mime_type: str = "application/octet-stream"
    last_modified: datetime | None = None
    #: For files reported after a run: whether the run created or changed the file.
    change: Literal["created", "modified"] | None = None

    @property
    def file_full_path(self) -> str:
        return remote_display_path(self.filename)

    def to_dict(self) -> dict[str, Any]:
        return {
            "filename": self.filename,
            "file_full_path": self.file_full_path,
            "size_in_bytes": self.size_in_bytes,
            "mime_type": self.mime_type,
            "last_modified": self.last_modified.isoformat() if self.last_modified else None,
            "change": self.change,
        }


@dataclass
class ExecutionResult:
    """Everything one run of code produced."""

    status: ExecutionStatus
    stdout: str = ""
    stderr: str = ""
    #: The value of the cell's last expression (``Out[n]``), as a MIME bundle.
    result: Output | None = None
    #: Rich outputs shown during the run (figures, HTML, JSON, ...), in order.
    displays: list[Output] = field(default_factory=list)
    error: ExecutionError | None = None
    #: Files the run created or changed in /mnt/data (figures saved from displays included).
    files: list[RemoteFile] = field(default_factory=list)
    duration_ms: float = 0.0
    #: True when the kernel was restarted during this run: variables and imports are gone, files are not.
    kernel_restarted: bool = False
    execution_count: int | None = None
    #: Plain sentences about the run that the model must hear (time limit hit, output cut, restart).
    notices: list[str] = field(default_factory=list)
    session_id: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is ExecutionStatus.SUCCEEDED

    @property
    def text(self) -> str | None:
        """The ``text/plain`` form of the last expression's value, if there was one."""
        return self.result.text if self.result else None

    @property
    def images(self) -> list[Output]:
        """Every output (result or display) that carries an image."""
        outputs = [*self.displays, *([self.result] if self.result else [])]
        return [o for o in outputs if o.image_mime_type]

    def azure_result_value(self) -> Any:
        """The last expression's value as Azure's ``result`` field carries it: a JSON value, an image
        descriptor (``{"type": "image", "format": ..., "file_full_path": ...}``, base64 left out), or ``""``."""
        if self.result is not None:
            return _json_value(self.result)
        for output in reversed(self.displays):
            if output.image_mime_type:
                return _image_descriptor(output)
        return ""

    def to_azure_dict(self) -> dict[str, Any]:
        """The legacy Azure response shape (``properties.status`` ``Success``/``Failure``, ...).

        Keys beyond Azure's are additive: ``error``, ``files``, ``kernelRestarted``, ``notices``.
        """
        return {
            "$id": "1",
            "properties": {
                "$id": "2",
                "status": "Success" if self.ok else "Failure",
                "stdout": self.stdout,
                "stderr": self.stderr,
                "result": self.azure_result_value(),
                "executionTimeInMilliseconds": round(self.duration_ms),
                "error": self.error.to_dict() if self.error else None,
                "files": [f.to_dict() for f in self.files],
                "kernelRestarted": self.kernel_restarted,
                "notices": list(self.notices),
            },
        }

    def to_dict(self) -> dict[str, Any]:
        """Everything, JSON-serialisable (images stay base64 here: this is for programs, not the LLM)."""
        return {
            "status": self.status.value,
            "stdout": self.stdout,
            "stderr": self.stderr,
            "result": self.result.to_dict() if self.result else None,
            "displays": [d.to_dict() for d in self.displays],
            "error": self.error.to_dict() if self.error else None,
            "files": [f.to_dict() for f in self.files],
            "duration_ms": self.duration_ms,
            "kernel_restarted": self.kernel_restarted,
            "execution_count": self.execution_count,
            "notices": list(self.notices),
            "session_id": self.session_id,
        }


def _image_descriptor(output: Output) -> dict[str, Any]:
    mime = output.image_mime_type or "image/png"
    fmt = mime.split("/", 1)[1].split("+", 1)[0]
    descriptor: dict[str, Any] = {"type": "image", "format": fmt}
    if output.saved_as:
        descriptor["file_full_path"] = remote_display_path(output.saved_as)
    return descriptor


def _json_value(output: Output) -> Any:
    if "application/json" in output.data:
        return output.data["application/json"]
    if output.image_mime_type and "text/plain" not in output.data:
        return _image_descriptor(output)
    text = output.text
    if text is None:
        return ""
    # Plain literals (numbers, strings, lists of them, ...) come back as JSON values like Azure's service
    # returns them; anything else (DataFrames, objects) stays as its repr text.
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return text
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return text
    return value
