"""The two wire dialects of the session-pool data plane, and tolerant parsers for what the service answers.

*Legacy* (2024-02-02-preview, 2024-08-02-preview): ``code/execute``, ``files/upload``, ``files``,
``files/content/{name}``, bodies wrapped in ``properties``, status ``Success``/``Failure``, value in ``result``.
*Current* (2024-10-02-preview and later): ``executions``, ``files`` (GET and POST), ``files/{name}``,
``files/{name}/content``, ``DELETE files/{name}``, ``GET|DELETE session``, flat bodies, status
``Succeeded``/``Failed``, value in ``result.executionResult``.

Parsers accept either shape whatever the dialect: official samples and clients disagree (200 or 202, one
object or a list, ``value`` or a bare array, enum casing, ``$id`` keys), so we read what is there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

from ..errors import ConfigurationError
from ..models import ExecutionError, ExecutionResult, ExecutionStatus, Output, RemoteFile
from ..paths import guess_mime_type
from ..render import strip_ansi

__all__ = [
    "CURRENT_API_VERSIONS",
    "DEFAULT_API_VERSION",
    "LEGACY_API_VERSIONS",
    "MISSING",
    "Dialect",
    "WireExecution",
    "dialect_for",
    "error_from_text",
    "parse_execution",
    "parse_file_list",
    "parse_uploaded_file",
    "result_from_extension",
]

DEFAULT_API_VERSION = "2025-10-02-preview"
LEGACY_API_VERSIONS = ("2024-02-02-preview", "2024-08-02-preview")
CURRENT_API_VERSIONS = ("2024-10-02-preview", "2025-02-02-preview", "2025-10-02-preview")
#: The first version with ``DELETE session``; LangChain's legacy client also uses it for that one call.
SESSION_API_VERSION = "2025-10-02-preview"
#: The key under which ``codeinterp serve`` adds the full result of a run (``ExecutionResult.to_dict()``).
EXTENSION_KEY = "codeinterp"

_VERSION_RE = re.compile(r"^\d{4}-\d{2}-\d{2}(-preview)?$")


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


#: No value field in the response (as opposed to a JSON ``null``).
MISSING: Any = _Missing()


@dataclass(frozen=True)
class Dialect:
    """URLs and request bodies of one api-version. Paths are relative to the pool management endpoint."""

    api_version: str
    legacy: bool

    @property
    def name(self) -> str:
        return "legacy" if self.legacy else "current"

    # Every helper returns (path, api-version to send).
    def execute_path(self) -> str:
        return "code/execute" if self.legacy else "executions"

    def execution_poll_path(self, execution_id: str) -> str:
        return f"executions/{quote(execution_id, safe='')}"

    def execute_body(self, code: str, timeout_seconds: int) -> dict[str, Any]:
        if self.legacy:
            fields = {"codeInputType": "inline", "executionType": "synchronous"}
            return {"properties": {**fields, "code": code, "timeoutInSeconds": timeout_seconds}}
        return {
            "codeInputType": "Inline",
            "executionType": "Synchronous",
            "code": code,
            "timeoutInSeconds": timeout_seconds,
        }

    # File locations. ``rel`` is relative to /mnt/data. The current API names a sub-directory with the
    # ``path`` query parameter; the legacy API carries the relative path in the name itself.
    def upload_target(self, rel: str) -> tuple[str, str, dict[str, str]]:
        """(URL path, multipart file name, extra query parameters) of an upload."""
        directory, name = _split(rel)
        if self.legacy:
            return "files/upload", rel, {}
        return "files", name, _path_param(directory)

    def list_path(self) -> str:
        return "files"

    def content_target(self, rel: str) -> tuple[str, dict[str, str]]:
        directory, name = _split(rel)
        if self.legacy:
            return f"files/content/{quote(rel, safe='/')}", {}
        return f"files/{quote(name, safe='')}/content", _path_param(directory)

    def delete_file_target(self, rel: str) -> tuple[str, str, dict[str, str]]:
        """(URL path, api-version, extra query parameters). Legacy has no file delete: the current route is used."""
        directory, name = _split(rel)
        version = SESSION_API_VERSION if self.legacy else self.api_version
        return f"files/{quote(name, safe='')}", version, _path_param(directory)

    def delete_session_target(self) -> tuple[str, str]:
        version = self.api_version
        if self.legacy or version < "2025-02-02-preview":
            version = SESSION_API_VERSION
        return "session", version


def _split(rel: str) -> tuple[str, str]:
    """``"a/b/c.txt"`` -> (``"a/b"``, ``"c.txt"``)."""
    directory, _, name = rel.rpartition("/")
    return directory, name


def _path_param(directory: str) -> dict[str, str]:
    return {"path": directory} if directory else {}


def dialect_for(api_version: str) -> Dialect:
    """The dialect of an api-version; unknown but well-formed versions after 2024-10-02 use the current one."""
    version = (api_version or "").strip()
    if version in LEGACY_API_VERSIONS:
        return Dialect(version, legacy=True)
    if version in CURRENT_API_VERSIONS or (_VERSION_RE.match(version) and version[:10] >= "2024-10-02"):
        return Dialect(version, legacy=False)
    known = ", ".join((*CURRENT_API_VERSIONS, *LEGACY_API_VERSIONS))
    raise ConfigurationError(
        f"Unknown api_version {api_version!r}; use one of {known} (default {DEFAULT_API_VERSION})."
    )


# -- execute responses -------------------------------------------------------------------------------


@dataclass
class WireExecution:
    """One execute answer, read tolerantly."""

    status: str  # lower-cased: success, succeeded, failure, failed, running, notstarted, canceled, ...
    stdout: str = ""
    stderr: str = ""
    value: Any = MISSING
    duration_ms: float = 0.0
    error_name: str | None = None
    error_message: str | None = None
    error_traceback: str | None = None
    execution_id: str | None = None
    extension: dict[str, Any] | None = None
    # Additive keys some services (codeinterp serve) send: None when absent.
    files: list[RemoteFile] | None = None
    kernel_restarted: bool | None = None
    notices: list[str] | None = None

    @property
    def pending(self) -> bool:
        return self.status in ("notstarted", "running", "queued", "inprogress")

    @property
    def succeeded(self) -> bool:
        return self.status in ("success", "succeeded", "completed")


def _lower_keys(obj: dict[str, Any]) -> dict[str, Any]:
    return {str(k).lower(): v for k, v in obj.items() if not str(k).startswith("$")}


def parse_execution(body: Any) -> WireExecution:
    """Read an execute (or execution poll) answer in either dialect's shape."""
    if not isinstance(body, dict):
        raise ValueError(f"expected a JSON object, got {type(body).__name__}")
    top = _lower_keys(body)
    props = top.get("properties")
    outer = _lower_keys(props) if isinstance(props, dict) else top
    inner = outer
    value: Any = MISSING
    result = outer.get("result", MISSING)
    # Current shape: result is an object holding the streams and executionResult. Legacy (the properties
    # envelope): result is the value itself, whatever keys a dict value has.
    legacy = isinstance(props, dict)
    if (
        not legacy
        and isinstance(result, dict)
        and ({"executionresult", "stdout", "stderr"} & {k.lower() for k in result})
    ):
        inner = {**outer, **_lower_keys(result)}
        value = inner.get("executionresult", MISSING)
    else:
        value = result if result is not MISSING else outer.get("executionresult", MISSING)
    status = str(outer.get("status") or top.get("status") or "").replace("_", "").lower()
    wire = WireExecution(
        status=status,
        stdout=_text(inner.get("stdout")),
        stderr=_text(inner.get("stderr")),
        value=value,
        duration_ms=_number(inner.get("executiontimeinmilliseconds")),
        execution_id=_str_or_none(top.get("id") or outer.get("id")),
    )
    _read_structured_error(wire, inner, top)
    if isinstance(inner.get("files"), list):
        wire.files = [f for f in (_file_from_extension(item) for item in inner["files"]) if f is not None]
    if isinstance(inner.get("kernelrestarted"), bool):
        wire.kernel_restarted = inner["kernelrestarted"]
    if isinstance(inner.get("notices"), list):
        wire.notices = [str(n) for n in inner["notices"]]
    extension = inner.get(EXTENSION_KEY) or outer.get(EXTENSION_KEY) or top.get(EXTENSION_KEY)
    wire.extension = extension if isinstance(extension, dict) else None
    return wire


def _read_structured_error(wire: WireExecution, inner: dict[str, Any], top: dict[str, Any]) -> None:
    raw = inner.get("rawresult")
    raw = _lower_keys(raw) if isinstance(raw, dict) else {}
    error = inner.get("error") or top.get("error")
    error = _lower_keys(error) if isinstance(error, dict) else {}
    wire.error_name = _str_or_none(
        inner.get("errorname") or raw.get("error_name") or error.get("name") or error.get("code")
    )
    wire.error_message = _str_or_none(
        inner.get("errormessage") or raw.get("error_message") or error.get("value") or error.get("message")
    )
    wire.error_traceback = _str_or_none(raw.get("error_stack_trace") or error.get("traceback"))
    # Some shapes repeat the name in the message ("ZeroDivisionError: division by zero").
    name, message = wire.error_name, wire.error_message
    if name and message and (message == name or message.startswith(name + ":")):
        wire.error_message = message[len(name) :].lstrip(":").strip()


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def _str_or_none(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None


# "ZeroDivisionError: division by zero", "pandas.errors.ParserError: ...", or a bare "KeyboardInterrupt".
_EXCEPTION_LINE_RE = re.compile(r"^(?P<name>(?:[A-Za-z_]\w*\.)*[A-Z]\w*)(?::\s?(?P<value>.*))?$")
_EXCEPTION_SUFFIXES = ("Error", "Exception", "Exit", "Interrupt", "Iteration", "Warning", "Timeout")


def error_from_text(*texts: str) -> ExecutionError | None:
    """Find the ``Name: value`` line of a Python traceback in stderr/stdout text (the last one wins)."""
    for text in texts:
        clean = strip_ansi(text or "")
        for line in reversed(clean.strip().splitlines()):
            match = _EXCEPTION_LINE_RE.match(line.strip())
            if not match:
                continue
            name = match.group("name")
            if match.group("value") is None and not name.endswith(_EXCEPTION_SUFFIXES):
                continue
            if match.group("value") is not None and not (name.endswith(_EXCEPTION_SUFFIXES) or "." in name):
                continue
            return ExecutionError(name=name, value=(match.group("value") or "").strip(), traceback=clean.strip("\n"))
    return None


# -- the codeinterp extension -------------------------------------------------------------------------


def result_from_extension(data: dict[str, Any]) -> ExecutionResult:
    """Rebuild an :class:`ExecutionResult` from ``ExecutionResult.to_dict()`` sent by ``codeinterp serve``."""

    def output(item: Any) -> Output | None:
        if not isinstance(item, dict) or not isinstance(item.get("data"), dict):
            return None
        return Output(data=item["data"], metadata=item.get("metadata") or {}, saved_as=item.get("saved_as"))

    error = data.get("error")
    try:
        status = ExecutionStatus(str(data.get("status", "failed")).lower())
    except ValueError:
        status = ExecutionStatus.FAILED
    return ExecutionResult(
        status=status,
        stdout=_text(data.get("stdout")),
        stderr=_text(data.get("stderr")),
        result=output(data.get("result")),
        displays=[o for o in (output(d) for d in data.get("displays") or []) if o is not None],
        error=ExecutionError(
            name=str(error.get("name") or "Error"),
            value=_text(error.get("value")),
            traceback=_text(error.get("traceback")),
        )
        if isinstance(error, dict)
        else None,
        files=[f for f in (_file_from_extension(f) for f in data.get("files") or []) if f is not None],
        duration_ms=_number(data.get("duration_ms")),
        kernel_restarted=bool(data.get("kernel_restarted")),
        execution_count=data.get("execution_count") if isinstance(data.get("execution_count"), int) else None,
        notices=[str(n) for n in data.get("notices") or []],
        session_id=_str_or_none(data.get("session_id")),
    )


def _file_from_extension(item: Any) -> RemoteFile | None:
    if not isinstance(item, dict) or not item.get("filename"):
        return None
    change = item.get("change")
    return RemoteFile(
        filename=str(item["filename"]),
        size_in_bytes=int(_number(item.get("size_in_bytes"))),
        mime_type=str(item.get("mime_type") or guess_mime_type(str(item["filename"]))),
        last_modified=_parse_time(item.get("last_modified")),
        change=change if change in ("created", "modified") else None,
    )


# -- file responses ----------------------------------------------------------------------------------


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    # Azure sends 7 fractional digits; fromisoformat takes at most 6 before Python 3.11.
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def _file_entry(item: Any) -> RemoteFile | None:
    """One file resource in either shape; ``None`` for directories and unreadable entries."""
    if not isinstance(item, dict):
        return None
    fields = _lower_keys(item)
    if isinstance(fields.get("properties"), dict):
        fields = {**fields, **_lower_keys(fields["properties"])}
    if str(fields.get("type") or "file").lower() == "directory":
        return None
    name = fields.get("filename") or fields.get("name")
    if not isinstance(name, str) or not name:
        return None
    name = name.replace("\\", "/")
    if name.startswith("/mnt/data/"):
        name = name[len("/mnt/data/") :]
    directory = fields.get("directory")
    if isinstance(directory, str) and directory.strip("/.") and "/" not in name:
        directory = directory.strip("/")
        if directory.startswith("mnt/data"):
            directory = directory[len("mnt/data") :].strip("/")
        if directory:
            name = f"{directory}/{name}"
    name = name.lstrip("/")
    size = fields.get("sizeinbytes", fields.get("size", 0))
    return RemoteFile(
        filename=name,
        size_in_bytes=int(_number(size)),
        mime_type=str(fields.get("contenttype") or "") or guess_mime_type(name),
        last_modified=_parse_time(fields.get("lastmodifiedat") or fields.get("lastmodifiedtime")),
    )


def _entries(body: Any) -> list[Any]:
    if isinstance(body, list):
        return body
    if isinstance(body, dict):
        for key in ("value", "Value", "files"):
            if isinstance(body.get(key), list):
                return body[key]
        return [body]
    return []


def parse_file_list(body: Any) -> list[RemoteFile]:
    """A list answer (``{"value": [...]}`` or a bare array), directories left out, sorted by name."""
    files = [f for f in (_file_entry(item) for item in _entries(body)) if f is not None]
    # The generic MIME type some services report says less than the file name does.
    for f in files:
        if f.mime_type == "application/octet-stream":
            f.mime_type = guess_mime_type(f.filename)
    return sorted(files, key=lambda f: f.filename)


def parse_uploaded_file(body: Any) -> RemoteFile | None:
    """An upload answer: one object, a list, or a ``value`` list (the first file in it)."""
    files = parse_file_list(body)
    return files[0] if files else None
