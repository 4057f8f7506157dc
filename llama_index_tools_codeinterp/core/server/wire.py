"""The two wire dialects of the Azure session-pool data plane, as JSON shapes built from our models.

``legacy`` is 2024-02-02-preview (and 2024-08-02-preview): ``properties`` envelopes with ``$id`` keys,
status ``Success``/``Failure``, the value in ``result``, file entries ``value[].properties.{filename,size}``.
``current`` is 2024-10-02-preview and later: flat bodies, status ``Succeeded``/``Failed``, the value in
``result.executionResult``, file entries ``{name, type, contentType, sizeInBytes, lastModifiedAt}``.
Keys beyond the service's are additive (``error``, ``files``, ``kernelRestarted``, ``notices``), and every
execution carries the whole run under ``codeinterp`` (``ExecutionResult.to_dict()``: display outputs, the
result's MIME bundle, ...) so our own azure client can rebuild it exactly; real Azure clients ignore it.
"""

from __future__ import annotations

import base64
import enum
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from ..azure.dialects import CURRENT_API_VERSIONS, EXTENSION_KEY, LEGACY_API_VERSIONS
from ..models import ExecutionResult, Output, RemoteFile

__all__ = [
    "CURRENT_VERSIONS",
    "EXTENSION_KEY",
    "LEGACY_VERSIONS",
    "SUPPORTED_VERSIONS",
    "Dialect",
    "FileEntry",
    "current_execution",
    "current_file",
    "dialect_of",
    "legacy_execution",
    "legacy_files",
    "stderr_with_error",
]

# The wire contract's facts live once, with the client: the api-versions of each dialect and the additive key
# that carries ``ExecutionResult.to_dict()`` of a run.
LEGACY_VERSIONS = LEGACY_API_VERSIONS
CURRENT_VERSIONS = CURRENT_API_VERSIONS
SUPPORTED_VERSIONS = LEGACY_VERSIONS + CURRENT_VERSIONS


class Dialect(str, enum.Enum):
    LEGACY = "legacy"
    CURRENT = "current"


def dialect_of(api_version: str) -> Dialect | None:
    if api_version in LEGACY_VERSIONS:
        return Dialect.LEGACY
    if api_version in CURRENT_VERSIONS:
        return Dialect.CURRENT
    return None


@dataclass
class FileEntry:
    """A file or directory under /mnt/data, as the file API reports it."""

    path: str  # relative to /mnt/data
    size: int
    modified: datetime
    content_type: str
    is_dir: bool = False

    @classmethod
    def from_remote(cls, remote: RemoteFile) -> FileEntry:
        return cls(
            remote.filename,
            remote.size_in_bytes,
            remote.last_modified or datetime.now(timezone.utc),
            remote.mime_type,
        )


def _timestamp(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


# -- executions -------------------------------------------------------------------------------------------
def stderr_with_error(result: ExecutionResult, limit: int | None = None) -> str:
    """stderr as the service reports it: the kernel's stderr, then the traceback of an exception or timeout."""
    text = result.stderr
    if result.error is not None:
        described = str(result.error)
        trace = result.error.traceback.rstrip()
        tail = trace if described in trace else f"{trace}\n{described}".strip()
        text = f"{text}\n{tail}" if text and not text.endswith("\n") else text + tail
    return _truncate(text, limit)


def _truncate(text: str, limit: int | None) -> str:
    return text if limit is None or len(text) <= limit else text[:limit]


def _image_output(result: ExecutionResult) -> Output | None:
    """The figure that stands for the cell's value: an image-only result, else the last image displayed."""
    if result.result is not None:
        if result.result.image_mime_type and "text/plain" not in result.result.data:
            return result.result
        return None
    return next((d for d in reversed(result.displays) if d.image_mime_type), None)


def result_value(result: ExecutionResult) -> Any:
    """The cell's value as the service sends it; a figure is ``{"type": "image", "format", "base64_data"}``."""
    image = _image_output(result)
    if image is None:
        return result.azure_result_value()
    data = image.image_bytes() or b""
    mime = image.image_mime_type or "image/png"
    value: dict[str, Any] = {
        "type": "image",
        "format": mime.split("/", 1)[1].split("+", 1)[0],
        "base64_data": base64.b64encode(data).decode("ascii"),
    }
    if image.saved_as:
        value["file_full_path"] = f"/mnt/data/{image.saved_as}"
    return value


def legacy_execution(result: ExecutionResult, *, stream_limit: int | None = None) -> dict[str, Any]:
    body = result.to_azure_dict()
    props = body["properties"]
    props["stdout"] = _truncate(result.stdout, stream_limit)
    props["stderr"] = stderr_with_error(result, stream_limit)
    props["result"] = result_value(result)
    props[EXTENSION_KEY] = result.to_dict()
    return body


def current_execution(
    result: ExecutionResult,
    *,
    execution_id: str,
    identifier: str,
    execution_type: str = "Synchronous",
    stream_limit: int | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": execution_id,
        "identifier": identifier,
        "executionType": execution_type,
        "status": "Succeeded" if result.ok else "Failed",
        "result": {
            "stdout": _truncate(result.stdout, stream_limit),
            "stderr": stderr_with_error(result, stream_limit),
            "executionResult": result_value(result),
            "executionTimeInMilliseconds": round(result.duration_ms),
            "files": [f.to_dict() for f in result.files],
            "kernelRestarted": result.kernel_restarted,
            "notices": list(result.notices),
        },
    }
    body[EXTENSION_KEY] = result.to_dict()
    if result.error is not None:
        body["error"] = {
            "code": result.error.name,
            "message": str(result.error),
            "traceback": result.error.traceback,
        }
    return body


# -- files ------------------------------------------------------------------------------------------------
def legacy_files(entries: list[FileEntry]) -> dict[str, Any]:
    """``{"$id": "1", "value": [{"$id": "2", "properties": {"$id": "3", "filename", "size", ...}}, ...]}``."""
    value = []
    next_id = 2
    for entry in entries:
        value.append(
            {
                "$id": str(next_id),
                "properties": {
                    "$id": str(next_id + 1),
                    "filename": entry.path,
                    "size": entry.size,
                    "lastModifiedTime": _timestamp(entry.modified),
                },
            }
        )
        next_id += 2
    return {"$id": "1", "value": value}


def current_file(entry: FileEntry, *, with_directory: bool = True) -> dict[str, Any]:
    """SessionResourceFile; ``directory`` (the parent, ``""`` at the root) came with 2025-10-02-preview."""
    name = entry.path.rsplit("/", 1)[-1]
    body: dict[str, Any] = {
        "name": name,
        "type": "Directory" if entry.is_dir else "File",
        "contentType": None if entry.is_dir else entry.content_type,
        "sizeInBytes": 4096 if entry.is_dir else entry.size,
        "lastModifiedAt": _timestamp(entry.modified),
    }
    if with_directory:
        body["directory"] = entry.path.rsplit("/", 1)[0] if "/" in entry.path else ""
    return body
