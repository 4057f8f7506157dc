"""The Starlette application: Azure session-pool data-plane routes over local kernel sessions.

Each route names the operation; the ``api-version`` query parameter picks the wire dialect of the answer
(see :mod:`.wire`). One :class:`~..sessions.SessionManager` holds a session per ``identifier``: created on
the first call that names it, culled after the idle cooldown, capped in number. Uploads stream to disk
(Starlette spools multipart parts to temporary files) and downloads stream from disk. Session files are only
ever opened through :func:`~..paths.open_in_root` (no symlink followed at any step), since code in the session
can swap a path for a link between a check and an open.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hmac
import ipaddress
import json
import logging
import os
import platform
import re
import shutil
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.utils import formatdate
from pathlib import Path
from stat import S_ISDIR, S_ISLNK
from typing import IO, Any

from starlette.applications import Starlette
from starlette.datastructures import Headers, UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..backend import DEFAULT_TIMEOUT, Backend
from ..errors import (
    ConfigurationError,
    FileTooLargeError,
    InvalidPathError,
    KernelError,
    RemoteFileNotFoundError,
    SessionClosedError,
    SessionLimitError,
)
from ..paths import guess_mime_type, normalize_remote_path, open_in_root, resolve_in_root
from ..sessions import DEFAULT_COOLDOWN, ManagedSession, SessionManager
from . import wire
from .wire import Dialect, FileEntry

__all__ = ["DEFAULT_MAX_SESSIONS", "TOKEN_ENV", "ApiError", "ServerConfig", "create_app"]

log = logging.getLogger(__name__)

#: Environment variable the bearer token can come from instead of ``--token``.
TOKEN_ENV = "CODEINTERP_SERVER_TOKEN"
DEFAULT_MAX_SESSIONS = 50
MIB = 1024 * 1024
#: Room for multipart headers and boundaries on top of the upload limit.
_MULTIPART_OVERHEAD = 64 * 1024
#: How much of a rejected oversized body is read and discarded so the client sees the 413, not a reset.
_MAX_DRAIN_BYTES = 1024 * MIB
#: Read size when streaming a download.
_DOWNLOAD_CHUNK = 256 * 1024

# 2025-10-02-preview: 4-128 printable ASCII characters, no space (uuid4 and every client default fit).
_IDENTIFIER_RE = re.compile(r"[\x21-\x7e]{4,128}")


@dataclass
class ServerConfig:
    """Limits and wiring of one pool server.

    Args:
        token: The bearer token every call must carry (None: no check; then only loopback binds are allowed,
            and requests with an ``Origin`` header or a non-loopback ``Host`` are refused, so web pages cannot
            reach the server).
        cooldown: Idle seconds after which a session, its kernel and its files are removed.
        max_sessions: Most sessions alive at once; one more gets 429 ``SessionPoolFull``.
        max_execution_seconds: Cap on one execution; a larger ``timeoutInSeconds`` is clamped to it.
        max_upload_bytes: Largest file one upload may carry (413 above it).
        max_request_bytes: Largest JSON request body (413 above it).
        data_root: Directory holding one sub-directory per session (None: a temporary directory removed at
            shutdown).
        file_ttl: Seconds after its last change that a file is deleted from a live session (None: never).
        backend_options: Extra keyword arguments for each session's ``LocalKernelBackend``.
        warm_kernels: Kernels kept started ahead of demand (a ``KernelPool``), so a new session's first call does
            not wait for a kernel to start (~0.8 s). Pooled sessions keep their files in directories the pool
            creates in the system temp dir rather than under ``data_root``. 0: off.
        backend_factory: Makes a session's backend from ``(identifier, data_dir)`` instead of the default
            ``LocalKernelBackend`` (the backend must expose ``data_dir``).
    """

    token: str | None = None
    cooldown: float = DEFAULT_COOLDOWN
    max_sessions: int = DEFAULT_MAX_SESSIONS
    max_execution_seconds: float = DEFAULT_TIMEOUT
    max_upload_bytes: int = 128 * MIB
    max_request_bytes: int = 16 * MIB
    data_root: str | os.PathLike[str] | None = None
    file_ttl: float | None = None
    backend_options: Mapping[str, Any] = field(default_factory=dict)
    backend_factory: Callable[[str, Path], Backend] | None = None
    warm_kernels: int = 0

    def __post_init__(self) -> None:
        if self.token is not None and not self.token.strip():
            raise ConfigurationError("The server token is empty; pass a non-empty --token or leave it unset.")
        for name in ("cooldown", "max_execution_seconds"):
            if getattr(self, name) <= 0:
                raise ConfigurationError(f"{name} must be a positive number of seconds, got {getattr(self, name)!r}.")
        if self.warm_kernels < 0:
            raise ConfigurationError(f"warm_kernels must be 0 or more, got {self.warm_kernels!r}.")
        if self.warm_kernels and self.backend_factory is not None:
            raise ConfigurationError("warm_kernels works with the default local backends, not a backend_factory.")
        for name in ("max_sessions", "max_upload_bytes", "max_request_bytes"):
            if getattr(self, name) < 1:
                raise ConfigurationError(f"{name} must be at least 1, got {getattr(self, name)!r}.")


class ApiError(Exception):
    """An answer in the service's error shape: ``{"error": {"code", "message"}}`` plus ``x-ms-error-code``."""

    def __init__(self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})

    def response(self) -> JSONResponse:
        return error_response(self.status, self.code, self.message, self.headers)


def error_response(status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": code, "message": message}},
        status_code=status,
        headers={"x-ms-error-code": code, **(headers or {})},
    )


class _BodyTooLarge(Exception):
    pass


class BearerAuth:
    """ASGI middleware: every path but ``/health`` needs ``Authorization: Bearer <token>`` (audience unchecked)."""

    def __init__(self, app: ASGIApp, token: str | None, open_paths: frozenset[str] = frozenset({"/health"})) -> None:
        self.app = app
        self.token = token.encode() if token else None
        self.open_paths = open_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.token is None or scope["path"] in self.open_paths:
            await self.app(scope, receive, send)
            return
        header = Headers(scope=scope).get("authorization", "")
        scheme, _, credential = header.partition(" ")
        if not header:
            message = "No bearer token was sent. Send 'Authorization: Bearer <token>' with the server's token."
        elif scheme.lower() != "bearer" or not hmac.compare_digest(credential.strip().encode(), self.token):
            message = "The bearer token is not valid for this server. Use the token the server was started with."
        else:
            await self.app(scope, receive, send)
            return
        response = error_response(401, "Unauthorized", message, {"WWW-Authenticate": 'Bearer realm="codeinterp"'})
        await response(scope, receive, send)


class LocalCallersOnly:
    """ASGI middleware for a server without a token: local programs may call it, web pages may not.

    Without a token, a page open in the user's browser could otherwise run code here: by a cross-origin POST
    that needs no CORS preflight (e.g. ``text/plain``), or through DNS rebinding (its own host name resolving
    to 127.0.0.1). Browsers send ``Origin`` on such cross-origin requests and the page's host name in ``Host``,
    so a request with an ``Origin`` or a ``Host`` that is not a loopback name or address is refused.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        host = headers.get("host")
        fix = (
            "Start the server with --token (or set CODEINTERP_SERVER_TOKEN) and send 'Authorization: Bearer "
            "<token>' to call it from a browser or through another host name."
        )
        if "origin" in headers:
            response = error_response(
                403,
                "OriginNotAllowed",
                "This server has no token, so it refuses requests from web pages (this one carries an Origin "
                f"header: {headers['origin'][:100]!r}). {fix}",
            )
        elif host is not None and not is_loopback_host(host):
            response = error_response(
                403,
                "HostNotAllowed",
                f"This server has no token, so it only answers requests addressed to localhost, 127.0.0.1 or "
                f"[::1] (this one names {host[:100]!r}). Call it at http://127.0.0.1:<port>, or: {fix}",
            )
        else:
            await self.app(scope, receive, send)
            return
        await response(scope, receive, send)


def is_loopback_host(host_header: str) -> bool:
    """True if a ``Host`` header (``name[:port]``, ``[v6]:port``) names this machine's loopback interface."""
    host = host_header.strip().lower()
    if host.startswith("["):
        name, bracket, _ = host[1:].partition("]")
        if not bracket:
            return False
    else:
        name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class PoolServer:
    """The routes and the sessions behind them; :func:`create_app` wires it into Starlette."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.started_at = datetime.now(timezone.utc)
        self.data_root: Path | None = None
        self._owns_data_root = False
        self._kernel_pool: Any = None  # a KernelPool when warm_kernels > 0 (imported lazily: local backend only)
        self.manager = SessionManager(
            self._make_backend,
            cooldown=config.cooldown,
            max_sessions=config.max_sessions,
            file_ttl=config.file_ttl,
            on_close=self._remove_session_dir,
        )

    # -- lifecycle ----------------------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        if self.config.data_root is None:
            self.data_root = Path(tempfile.mkdtemp(prefix="codeinterp-pool-"))
            self._owns_data_root = True
        else:
            self.data_root = Path(self.config.data_root).expanduser().resolve()
            self.data_root.mkdir(parents=True, exist_ok=True)
        self.manager.start()
        # The sandbox probe runs subprocesses (up to seconds); do it once now, off the event loop, so the first
        # session does not pay for it. Its answer is cached for the process.
        from ..local.sandbox import bwrap_support

        support = await asyncio.to_thread(bwrap_support)
        log.info("Sandbox: %s", f"bubblewrap at {support.path}" if support.usable else f"none ({support.reason})")
        if self.config.warm_kernels:
            from ..local.pool import LAUNCH_OPTIONS, KernelPool

            launch = {k: v for k, v in self.config.backend_options.items() if k in LAUNCH_OPTIONS}
            self._kernel_pool = await asyncio.to_thread(KernelPool, self.config.warm_kernels, **launch)
            log.info("Keeping %d kernels warm for new sessions", self.config.warm_kernels)
        log.info("Session pool ready; session data under %s", self.data_root)
        try:
            yield
        finally:
            # Every kernel is stopped before the server process goes away.
            await self.manager.aclose()
            if self._kernel_pool is not None:
                await asyncio.to_thread(self._kernel_pool.close)
            if self._owns_data_root and self.data_root is not None:
                shutil.rmtree(self.data_root, ignore_errors=True)

    def _make_backend(self, identifier: str) -> Backend:
        if self.data_root is None:
            raise KernelError("The pool server has not started (its lifespan did not run); start it with uvicorn.")
        options: dict[str, Any] = {
            "timeout": self.config.max_execution_seconds,
            "max_upload_bytes": self.config.max_upload_bytes,
            **self.config.backend_options,
        }
        if self._kernel_pool is not None:
            from ..local.pool import LAUNCH_OPTIONS

            per_session = {k: v for k, v in options.items() if k not in LAUNCH_OPTIONS}
            return self._kernel_pool.backend(session_id=identifier, **per_session)
        data_dir = self.data_root / f"session-{uuid.uuid4().hex}"
        data_dir.mkdir()
        try:
            if self.config.backend_factory is not None:
                return self.config.backend_factory(identifier, data_dir)
            from ..local import LocalKernelBackend

            return LocalKernelBackend(session_id=identifier, data_dir=data_dir, **options)
        except BaseException:
            # No session owns the directory yet, so nothing else would ever remove it.
            shutil.rmtree(data_dir, ignore_errors=True)
            raise

    def _remove_session_dir(self, session: ManagedSession) -> None:
        data_dir = getattr(session.backend, "data_dir", None)
        # Only ever remove a directory this server created under its own root.
        if data_dir is not None and self.data_root is not None and Path(data_dir).parent == self.data_root.resolve():
            shutil.rmtree(data_dir, ignore_errors=True)

    # -- request helpers ----------------------------------------------------------------------------
    def _dialect(self, request: Request) -> Dialect:
        version = request.query_params.get("api-version")
        if not version:
            raise ApiError(
                400,
                "MissingApiVersionParameter",
                "The 'api-version' query parameter is required, e.g. ?api-version=2025-10-02-preview "
                f"(supported: {', '.join(wire.SUPPORTED_VERSIONS)}).",
            )
        dialect = wire.dialect_of(version)
        if dialect is None:
            raise ApiError(
                400,
                "UnsupportedApiVersionValue",
                f"api-version {version!r} is not supported; use one of {', '.join(wire.SUPPORTED_VERSIONS)}.",
            )
        return dialect

    def _identifier(self, request: Request) -> str:
        identifier = request.query_params.get("identifier")
        if identifier is None or identifier == "":
            raise ApiError(
                400,
                "MissingIdentifier",
                "The 'identifier' query parameter is required: the session id (e.g. a uuid4), URL-encoded.",
            )
        if not _IDENTIFIER_RE.fullmatch(identifier):
            raise ApiError(
                400,
                "InvalidIdentifier",
                "The session identifier must be 4 to 128 printable ASCII characters without spaces "
                f"(got {len(identifier)} characters); a uuid4 string always fits.",
            )
        return identifier

    async def _json_body(self, request: Request) -> dict[str, Any]:
        # Only JSON: a browser can send text/plain or form bodies cross-origin without a CORS preflight.
        media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if media_type != "application/json":
            shown = f"Content-Type {media_type!r}" if media_type else "no Content-Type"
            raise ApiError(
                415,
                "UnsupportedMediaType",
                f"The request body must be JSON sent with 'Content-Type: application/json' (this one has {shown}).",
            )
        raw = bytearray()
        limit = self.config.max_request_bytes
        async for chunk in request.stream():
            raw.extend(chunk)
            if len(raw) > limit:
                raise ApiError(
                    413,
                    "RequestBodyTooLarge",
                    f"The request body is over {limit:,} bytes. Send less code per call, or upload data as a file.",
                )
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ApiError(400, "InvalidRequestBody", f"The request body is not valid JSON: {exc}.") from exc
        if not isinstance(body, dict):
            raise ApiError(400, "InvalidRequestBody", "The request body must be a JSON object.")
        return body

    def _directory_param(self, request: Request) -> str:
        """The ``path`` query parameter (a directory relative to /mnt/data; ``/`` and ``/mnt/data`` = root)."""
        raw = request.query_params.get("path", "").strip()
        if raw in ("", "/", ".") or raw.rstrip("/") == "/mnt/data":
            return ""
        if raw.startswith("/") and not raw.startswith("/mnt/data/"):
            raw = raw.lstrip("/")
        return normalize_remote_path(raw, allow_root=True)

    def _data_dir(self, session: ManagedSession) -> Path:
        data_dir = getattr(session.backend, "data_dir", None)
        if data_dir is None:  # pragma: no cover - every backend this server makes has one
            raise KernelError("This session's backend has no local data directory.")
        return Path(data_dir)

    # -- code -----------------------------------------------------------------------------------------
    async def execute(self, request: Request) -> Response:
        dialect = self._dialect(request)
        identifier = self._identifier(request)
        body = await self._json_body(request)
        props = body["properties"] if isinstance(body.get("properties"), dict) else body
        code = self._code_of(props)
        timeout = self._timeout_of(props)
        stream_limit = props.get("outputStreamsMaxLength")
        if stream_limit is not None and (not isinstance(stream_limit, int) or stream_limit < 1):
            raise ApiError(400, "InvalidRequestBody", "outputStreamsMaxLength must be a positive integer.")
        execution_type = props.get("executionType") or "Synchronous"
        if not isinstance(execution_type, str) or execution_type.lower() not in ("synchronous", "asynchronous"):
            raise ApiError(400, "InvalidRequestBody", "executionType must be 'Synchronous' or 'Asynchronous'.")

        async with self.manager.use(identifier) as session:
            result = await session.backend.aexecute(code, timeout=timeout)
        execution_id = str(uuid.uuid4())
        headers = {"operation-id": execution_id}
        if dialect is Dialect.LEGACY:
            return JSONResponse(wire.legacy_execution(result, stream_limit=stream_limit), headers=headers)
        # Asynchronous runs are run to completion too, so the answer is already final.
        shape = wire.current_execution(
            result,
            execution_id=execution_id,
            identifier=identifier,
            execution_type=execution_type[0].upper() + execution_type[1:].lower(),
            stream_limit=stream_limit,
        )
        return JSONResponse(shape, headers=headers)

    @staticmethod
    def _code_of(props: Mapping[str, Any]) -> str:
        code = props.get("code")
        if not isinstance(code, str) or not code.strip():
            raise ApiError(400, "InvalidRequestBody", "The `code` field is required in the request: Python source.")
        input_type = str(props.get("codeInputType") or "inline").lower()
        if input_type in ("inline", "inlinetext"):
            return code
        if input_type == "inlinebase64":
            try:
                return base64.b64decode(code, validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError) as exc:
                message = f"codeInputType is InlineBase64 but code is not base64 UTF-8: {exc}."
                raise ApiError(400, "InvalidRequestBody", message) from exc
        raise ApiError(400, "InvalidRequestBody", "codeInputType must be 'Inline', 'InlineBase64' or 'InlineText'.")

    def _timeout_of(self, props: Mapping[str, Any]) -> float:
        cap = self.config.max_execution_seconds
        value = props.get("timeoutInSeconds")
        if value is None:
            return cap
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise ApiError(400, "InvalidRequestBody", "timeoutInSeconds must be a positive number of seconds.")
        return min(float(value), cap)  # the service clamps to its execution cap

    async def get_execution(self, request: Request) -> Response:
        self._dialect(request)
        self._identifier(request)
        execution_id = request.path_params["execution_id"]
        raise ApiError(
            404,
            "ExecutionNotFound",
            f"No execution available for operation Id: {execution_id}. This server runs every execution to "
            "completion before answering, so the POST answer is already final.",
        )

    # -- files ----------------------------------------------------------------------------------------
    async def list_files(self, request: Request) -> Response:
        dialect = self._dialect(request)
        identifier = self._identifier(request)
        if dialect is Dialect.LEGACY:
            async with self.manager.use(identifier) as session:
                files = await session.backend.alist_files()
            return JSONResponse(wire.legacy_files([FileEntry.from_remote(f) for f in files]))
        directory = self._directory_param(request)
        recursive = request.query_params.get("recursive", "false").lower() == "true"
        with_directory = request.query_params.get("api-version") == "2025-10-02-preview"
        async with self.manager.use(identifier) as session:
            root = self._data_dir(session)
            entries = await asyncio.to_thread(_scan, root, directory, recursive)
        return JSONResponse(
            {"value": [wire.current_file(e, with_directory=with_directory) for e in entries], "nextLink": None}
        )

    async def upload(self, request: Request) -> Response:
        dialect = self._dialect(request)
        identifier = self._identifier(request)
        directory = self._directory_param(request) if dialect is Dialect.CURRENT else ""
        cap = self.config.max_upload_bytes
        too_large = ApiError(
            413,
            "PayloadTooLarge",
            f"The upload is over the limit of {cap:,} bytes per file. Split the file or compress it.",
        )
        body_limit = cap + _MULTIPART_OVERHEAD
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > body_limit:
            await _drain(request.receive)
            raise too_large
        if not request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
            raise ApiError(
                400,
                "InvalidRequestBody",
                "Upload files as multipart/form-data with one part named 'file' that has a filename.",
            )
        counted = Request(request.scope, _limited_receive(request.receive, body_limit))
        try:
            form = await counted.form(max_files=100, max_fields=100)
        except _BodyTooLarge:
            await _drain(request.receive)
            raise too_large from None
        except HTTPException as exc:  # malformed multipart
            raise ApiError(400, "InvalidRequestBody", f"The multipart body could not be read: {exc.detail}") from exc
        try:
            uploads = [value for _, value in form.multi_items() if isinstance(value, UploadFile)]
            if not uploads:
                raise ApiError(
                    400,
                    "InvalidRequestBody",
                    "No file in the upload: send a multipart part named 'file' with a filename "
                    "(e.g. 'report.csv' or '/mnt/data/report.csv').",
                )
            targets = []
            for upload in uploads:
                if upload.size is not None and upload.size > cap:
                    raise too_large
                name = normalize_remote_path(upload.filename or "")
                targets.append((f"{directory}/{name}" if directory else name, upload))
            async with self.manager.use(identifier) as session:
                stored = [await session.backend.aupload(rel, upload.file) for rel, upload in targets]
        finally:
            await form.close()
        entries = [FileEntry.from_remote(r) for r in stored]
        if dialect is Dialect.LEGACY:
            return JSONResponse(wire.legacy_files(entries))
        files = [wire.current_file(e) for e in entries]
        return JSONResponse(files[0] if len(files) == 1 else {"value": files})

    async def file_item(self, request: Request) -> Response:
        """``GET files/content/{name}`` (legacy), ``GET files/{name}[/content]`` and ``DELETE files/{name}``."""
        dialect = self._dialect(request)
        identifier = self._identifier(request)
        rest: str = request.path_params["rest"]
        if dialect is Dialect.LEGACY:
            if not rest.startswith("content/") or request.method != "GET":
                raise ApiError(
                    404,
                    "NotFound",
                    f"With api-version {request.query_params['api-version']} files are read with "
                    "GET files/content/{name}; file metadata and DELETE need api-version 2024-10-02-preview or later.",
                )
            rel, want = normalize_remote_path(rest[len("content/") :]), "content"
        elif rest.endswith("/content") and request.method == "GET":
            rel, want = rest[: -len("/content")], "content"
        else:
            rel, want = rest, "metadata" if request.method == "GET" else "delete"
        directory = self._directory_param(request) if dialect is Dialect.CURRENT else ""
        rel = normalize_remote_path(f"{directory}/{rel}" if directory else rel)

        async with self.manager.use(identifier) as session:
            if want == "delete":
                # The backend removes it with unlink_in_root (no link followed on the way).
                await session.backend.adelete_file(rel)
                return Response(status_code=204)
            root = self._data_dir(session)
            if want == "content":
                handle = await asyncio.to_thread(open_in_root, root, rel, "rb")
                info = os.fstat(handle.fileno())
                headers = {
                    "content-length": str(info.st_size),
                    "last-modified": formatdate(info.st_mtime, usegmt=True),
                }
                return StreamingResponse(
                    _read_chunks(handle, info.st_size), media_type="application/octet-stream", headers=headers
                )
            info = await asyncio.to_thread(_stat_in_root, root, rel)
            entry = FileEntry(rel, info.st_size, _mtime(info.st_mtime), guess_mime_type(rel), S_ISDIR(info.st_mode))
            return JSONResponse(wire.current_file(entry))

    # -- sessions -------------------------------------------------------------------------------------
    def _session_shape(self, session: ManagedSession) -> dict[str, Any]:
        expire_at = session.last_used_at + timedelta(seconds=self.manager.cooldown)
        return {
            "identifier": session.session_id,
            "createdAt": _iso(session.created_at),
            "lastAccessedAt": _iso(session.last_used_at),
            "expireAt": _iso(expire_at),
            "etag": str(getattr(session.backend, "data_dir", Path(session.session_id)).name),
        }

    async def session(self, request: Request) -> Response:
        self._dialect(request)
        identifier = self._identifier(request)
        if request.method == "DELETE":
            if not await self.manager.delete(identifier):
                raise _no_session(identifier)
            return Response(status_code=204)
        try:
            async with self.manager.use(identifier, create=False) as session:
                return JSONResponse(self._session_shape(session))
        except KeyError:
            raise _no_session(identifier) from None

    async def list_sessions(self, request: Request) -> Response:
        self._dialect(request)
        sessions = [self._session_shape(s) for s in self.manager.sessions()]
        return JSONResponse({"sessions": sessions, "nextLink": None})

    async def metadata(self, request: Request) -> Response:
        self._dialect(request)
        python = platform.python_version()
        return JSONResponse(
            {
                "runtimes": [{"name": "python", "version": python}],
                "preInstalledPackages": [],
                "createdAt": _iso(self.started_at),
                "lastUpdatedAt": _iso(self.started_at),
                "jupyterKernel": {
                    "name": "python3",
                    "version": python,
                    "projectUrl": "https://ipython.org",
                    "description": f"ipykernel on {sys.executable}",
                },
            }
        )

    # -- operations -----------------------------------------------------------------------------------
    async def health(self, request: Request) -> Response:
        return JSONResponse({"status": "ok", "sessions": len(self.manager), "maxSessions": self.config.max_sessions})

    async def status(self, request: Request) -> Response:
        report = await asyncio.to_thread(self.manager.status)
        report["limits"] = {
            "max_execution_seconds": self.config.max_execution_seconds,
            "max_upload_bytes": self.config.max_upload_bytes,
            "max_request_bytes": self.config.max_request_bytes,
        }
        report["data_root"] = str(self.data_root) if self.data_root else None
        report["auth"] = "bearer" if self.config.token else "none"
        return JSONResponse(report)


# -- session directory access without following links ----------------------------------------------------
# Listing walks directory file descriptors (openat with O_NOFOLLOW), so code in the session that swaps a
# directory for a symlink meanwhile cannot make the server list or stat anything outside /mnt/data.
_O_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_FD_WALK = bool(_O_NOFOLLOW) and os.open in os.supports_dir_fd and os.scandir in os.supports_fd
DirHandle = int | str  # a directory fd; a path where the platform has no dir_fd (Windows)


def _open_directory(root: Path, rel: str) -> DirHandle:
    """The directory ``rel`` under ``root``, reached without following any symlink (OSError if it is none)."""
    if not _FD_WALK:  # pragma: no cover - Windows: best effort through resolve_in_root
        path = resolve_in_root(root, rel, must_exist=True)
        if not path.is_dir():
            raise NotADirectoryError(str(path))
        return str(path)
    fd = os.open(root, os.O_RDONLY | _O_DIRECTORY | _O_CLOEXEC)
    try:
        for name in rel.split("/") if rel else []:
            child = _open_child(fd, name)
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd


def _open_child(parent: DirHandle, name: str) -> DirHandle:
    if isinstance(parent, str):  # pragma: no cover - Windows
        return os.path.join(parent, name)
    return os.open(name, os.O_RDONLY | _O_DIRECTORY | _O_NOFOLLOW | _O_CLOEXEC, dir_fd=parent)


def _close(handle: DirHandle) -> None:
    if isinstance(handle, int):
        os.close(handle)


def _stat_in_root(root: Path, rel: str) -> os.stat_result:
    """Status of the file or directory ``rel`` under ``root``; links, FIFOs and devices are refused."""
    try:
        handle = _open_directory(root, rel)
    except OSError:
        # Not a directory: open_in_root says whether it is a file, missing, a link or something else.
        with open_in_root(root, rel, "rb") as file:
            return os.fstat(file.fileno())
    try:
        return os.stat(handle)
    finally:
        _close(handle)


def _scan(root: Path, directory: str, recursive: bool) -> list[FileEntry]:
    """Entries of a directory under /mnt/data (a file lists as itself). Symbolic links are left out: the file
    API never follows them, so they could be neither read nor written through it."""
    try:
        base = _open_directory(root, directory)
    except OSError:
        info = _stat_in_root(root, directory)
        return [FileEntry(directory, info.st_size, _mtime(info.st_mtime), guess_mime_type(directory))]
    entries: list[FileEntry] = []
    pending = [(base, directory)]
    try:
        while pending:
            handle, rel_folder = pending.pop()
            try:
                with os.scandir(handle) as listing:
                    items = list(listing)
                for item in items:
                    try:
                        info = item.stat(follow_symlinks=False)
                    except OSError:  # removed meanwhile
                        continue
                    if S_ISLNK(info.st_mode):
                        continue
                    rel = f"{rel_folder}/{item.name}" if rel_folder else item.name
                    is_dir = S_ISDIR(info.st_mode)
                    entries.append(FileEntry(rel, info.st_size, _mtime(info.st_mtime), guess_mime_type(rel), is_dir))
                    if is_dir and recursive:
                        with contextlib.suppress(OSError):  # replaced by a link or removed meanwhile
                            pending.append((_open_child(handle, item.name), rel))
            finally:
                _close(handle)
    finally:
        for handle, _ in pending:
            _close(handle)
    return sorted(entries, key=lambda e: e.path)


def _read_chunks(handle: IO[bytes], size: int) -> Iterator[bytes]:
    """The first ``size`` bytes of an open file, chunk by chunk (the Content-Length already promised them)."""
    try:
        remaining = size
        while remaining > 0:
            chunk = handle.read(min(_DOWNLOAD_CHUNK, remaining))
            if not chunk:
                break
            remaining -= len(chunk)
            yield chunk
    finally:
        handle.close()


def _mtime(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=timezone.utc)


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def _no_session(identifier: str) -> ApiError:
    return ApiError(
        404, "SessionNotFound", f"No session {identifier!r} in this pool: it was deleted, expired, or never used."
    )


def _limited_receive(receive: Receive, limit: int) -> Receive:
    seen = 0

    async def limited() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise _BodyTooLarge
        return message

    return limited


async def _drain(receive: Receive) -> None:
    """Read and drop the rest of a rejected body, so the client gets the answer instead of a broken pipe."""
    drained = 0
    while drained < _MAX_DRAIN_BYTES:
        message = await receive()
        if message["type"] != "http.request":
            return
        drained += len(message.get("body", b""))
        if not message.get("more_body", False):
            return


def _exception_handlers() -> dict[Any, Callable[[Request, Exception], Awaitable[Response]]]:
    def handler(status: int, code: str) -> Callable[[Request, Exception], Awaitable[Response]]:
        async def handle(request: Request, exc: Exception) -> Response:
            return error_response(status, code, str(exc))

        return handle

    async def api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return exc.response()

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 404:
            message = f"No operation at {request.method} {request.url.path}; see the Azure session-pool data-plane API."
            return error_response(404, "NotFound", message)
        if exc.status_code == 405:
            return error_response(405, "MethodNotAllowed", f"{request.method} is not allowed on {request.url.path}.")
        return error_response(exc.status_code, "BadRequest", str(exc.detail))

    async def session_limit(request: Request, exc: Exception) -> Response:
        return error_response(429, "SessionPoolFull", str(exc), {"Retry-After": "10"})

    async def internal(request: Request, exc: Exception) -> Response:
        log.exception("Unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return error_response(500, "InternalServerError", f"The server failed to handle this call: {exc}")

    return {
        ApiError: api_error,
        HTTPException: http_error,
        InvalidPathError: handler(400, "InvalidPath"),
        RemoteFileNotFoundError: handler(404, "FileNotFound"),
        FileTooLargeError: handler(413, "PayloadTooLarge"),
        SessionLimitError: session_limit,
        SessionClosedError: handler(404, "SessionNotFound"),
        KernelError: handler(503, "KernelUnavailable"),
        ConfigurationError: handler(503, "SessionBackendMisconfigured"),
        Exception: internal,
    }


def create_app(config: ServerConfig | None = None, **options: Any) -> Starlette:
    """The pool server as an ASGI app. Pass a :class:`ServerConfig` or its fields as keywords.

    Run it with uvicorn (``codeinterp serve`` does). The app's ``state.pool`` is the :class:`PoolServer`
    (its ``manager`` holds the sessions).
    """
    if config is None:
        config = ServerConfig(**options)
    elif options:
        raise TypeError("Pass either a ServerConfig or keyword options, not both.")
    pool = PoolServer(config)
    routes = [
        Route("/health", pool.health, methods=["GET"]),
        Route("/status", pool.status, methods=["GET"]),
        Route("/code/execute", pool.execute, methods=["POST"]),
        Route("/code/execute/", pool.execute, methods=["POST"]),  # Semantic Kernel adds the slash
        Route("/executions", pool.execute, methods=["POST"]),
        Route("/executions/{execution_id}", pool.get_execution, methods=["GET"]),
        Route("/files/upload", pool.upload, methods=["POST"]),
        Route("/files", pool.list_files, methods=["GET"]),
        Route("/files", pool.upload, methods=["POST"]),
        Route("/files/{rest:path}", pool.file_item, methods=["GET", "DELETE"]),
        Route("/session", pool.session, methods=["GET", "DELETE"]),
        Route("/listSessions", pool.list_sessions, methods=["GET"]),
        Route("/metadata", pool.metadata, methods=["GET"]),
    ]
    app = Starlette(routes=routes, exception_handlers=_exception_handlers(), lifespan=pool.lifespan)
    app.add_middleware(BearerAuth, token=config.token)
    if config.token is None:
        app.add_middleware(LocalCallersOnly)
    app.state.pool = pool
    return app
