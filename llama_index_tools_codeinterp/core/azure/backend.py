"""The Azure backend: one session of an Azure Container Apps dynamic session pool (or of ``codeinterp serve``)."""

from __future__ import annotations

import base64
import binascii
import io
import logging
import math
import os
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, suppress
from pathlib import Path
from typing import IO, Any, cast
from urllib.parse import urlsplit, urlunsplit

import requests

from ..backend import DEFAULT_TIMEOUT, Backend, DownloadTarget, UploadSource
from ..errors import (
    CodeInterpreterError,
    ConfigurationError,
    FileTooLargeError,
    RemoteFileNotFoundError,
    ServiceError,
    ServiceUnavailableError,
    SessionClosedError,
)
from ..models import IMAGE_EXTENSIONS, ExecutionError, ExecutionResult, ExecutionStatus, Output, RemoteFile
from ..paths import guess_mime_type, normalize_remote_path, remote_display_path
from ..render import strip_ansi
from .auth import CredentialTokenProvider, TokenCredentialLike, TokenProvider
from .dialects import (
    DEFAULT_API_VERSION,
    MISSING,
    WireExecution,
    dialect_for,
    error_from_text,
    parse_execution,
    parse_file_list,
    parse_uploaded_file,
    result_from_extension,
)
from .transport import Body, RetryPolicy, SessionsTransport

__all__ = ["MAX_UPLOAD_BYTES", "AzureSessionsBackend"]

log = logging.getLogger(__name__)

#: Azure session pools refuse uploads over 128 MB (HTTP 413).
MAX_UPLOAD_BYTES = 128 * 1024 * 1024
_CHUNK = 1 << 20


def _user_agent() -> str:
    try:
        from importlib.metadata import version

        ours = version("llama-index-tools-codeinterp")
    except Exception:  # noqa: BLE001 - not installed as a distribution (source checkout)
        ours = "0"
    return f"llama-index-tools-codeinterp/{ours} (Language=Python)"


def normalize_endpoint(endpoint: str) -> str:
    """The pool management endpoint without a trailing ``/`` or a leftover ``python/execute`` (as SK strips)."""
    if not isinstance(endpoint, str) or not endpoint.strip():
        raise ConfigurationError(
            "pool_management_endpoint is empty; pass the pool's management endpoint "
            "(az containerapp sessionpool show --query properties.poolManagementEndpoint)."
        )
    parts = urlsplit(endpoint.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigurationError(
            f"pool_management_endpoint {endpoint!r} is not an http(s) URL; expected something like "
            "https://<region>.dynamicsessions.io/subscriptions/<sub>/resourceGroups/<rg>/sessionPools/<pool>."
        )
    if parts.query or parts.fragment:
        raise ConfigurationError(
            f"pool_management_endpoint {endpoint!r} has a query string; remove it (pass api_version= and "
            "session_id= as arguments instead)."
        )
    path = parts.path.rstrip("/")
    if path.endswith("/python/execute") or path == "python/execute":
        path = path[: -len("python/execute")].rstrip("/")
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def _check_session_id(session_id: str) -> str:
    if not isinstance(session_id, str) or not 4 <= len(session_id) <= 128:
        raise ConfigurationError(
            f"session_id must be 4 to 128 characters, got {session_id!r}; leave it unset for a fresh uuid4."
        )
    if any(not (33 <= ord(ch) <= 126) for ch in session_id):
        raise ConfigurationError(
            f"session_id {session_id!r} may only contain printable ASCII without spaces (as Azure requires); "
            "leave it unset for a fresh uuid4."
        )
    return session_id


class AzureSessionsBackend(Backend):
    """A Python session in an Azure Container Apps dynamic session pool (Hyper-V isolated).

    Args:
        pool_management_endpoint: The pool's management endpoint (a trailing ``/`` or ``python/execute``
            is stripped). ``codeinterp serve`` prints one for a self-hosted pool.
        session_id: The session identifier (4-128 printable characters). Default: a fresh uuid4 per
            instance. Treat it as a secret: anyone with pool access and the id reaches the session.
        api_version: ``2025-10-02-preview`` (default), ``2025-02-02-preview``, ``2024-10-02-preview``, or
            the legacy ``2024-02-02-preview`` used by the older Python clients. The wire format follows it.
        credential: An azure-identity ``TokenCredential``. Tokens for ``https://dynamicsessions.io/.default``
            are cached per instance and refreshed 5 minutes before they expire.
        token_provider: A callable returning a bearer token string, called before every request (cache in
            it if needed). With neither, ``DefaultAzureCredential`` is created on first use.
        session: A ``requests.Session`` to send requests with (proxies, certificates, adapters). It is left
            open on :meth:`close`; one created here is closed.
        timeout: Seconds one execution may take (the service caps it at 220). The client waits
            ``execute_grace`` seconds longer for the answer.
        connect_timeout: Seconds to open a connection, for every call.
        read_timeout: Seconds to wait for any answer (or between bytes of a transfer) on non-execute calls.
        execute_grace: Extra seconds the client waits for an execute answer beyond ``timeout``.
        track_files: Report files each run created or changed. This lists ``/mnt/data`` before and after the
            run (one extra GET each side) unless the service reports the files itself (``codeinterp serve``
            does). Turn off to save the two round trips.
        max_upload_bytes: Refuse larger uploads before sending them (default 128 MB, the service limit).
        delete_session_on_close: Delete the session on :meth:`close` so the pool does not keep it until its
            idle cooldown (default on).
        retry: When and how often to retry calls that are safe to repeat (never an execute that may have run).

    Differences from the local backend, plainly: :meth:`restart` deletes the remote session and continues
    in a fresh one, so **files in /mnt/data are lost** on restart (the local backend keeps them); a
    session idle longer than the pool's cooldown (300-3600 s) is gone with its files, and the next call
    raises :class:`~llama_index_tools_codeinterp.core.errors.SessionNotFoundError` or starts empty.
    """

    kind = "azure"

    def __init__(
        self,
        pool_management_endpoint: str,
        *,
        session_id: str | None = None,
        api_version: str = DEFAULT_API_VERSION,
        credential: TokenCredentialLike | None = None,
        token_provider: TokenProvider | None = None,
        session: requests.Session | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        connect_timeout: float = 10.0,
        read_timeout: float = 60.0,
        execute_grace: float = 30.0,
        track_files: bool = True,
        max_upload_bytes: int | None = MAX_UPLOAD_BYTES,
        delete_session_on_close: bool = True,
        retry: RetryPolicy | None = None,
    ) -> None:
        if credential is not None and token_provider is not None:
            raise ConfigurationError("Pass either credential= or token_provider=, not both.")
        if token_provider is not None and not callable(token_provider):
            raise ConfigurationError("token_provider must be a callable returning a bearer token string.")
        if credential is not None and not callable(getattr(credential, "get_token", None)):
            raise ConfigurationError("credential must be an azure-identity TokenCredential (with get_token()).")
        if timeout <= 0:
            raise ConfigurationError(f"timeout must be a positive number of seconds, got {timeout!r}.")
        self.endpoint = normalize_endpoint(pool_management_endpoint)
        self.dialect = dialect_for(api_version)
        self.api_version = self.dialect.api_version
        self.session_id = _check_session_id(session_id) if session_id is not None else str(uuid.uuid4())
        self.timeout = float(timeout)
        self.execute_grace = float(execute_grace)
        self.track_files = track_files
        self.max_upload_bytes = max_upload_bytes
        self.delete_session_on_close = delete_session_on_close
        provider: Callable[[], str] = token_provider or CredentialTokenProvider(credential)
        self._transport = SessionsTransport(
            self.endpoint,
            provider,
            session=session,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            retry=retry,
            user_agent=_user_agent(),
        )
        self._run_lock = threading.Lock()
        self._closed = False
        self._figure_counter = 0
        # Set once the service has shown it reports a run's files itself (then no listing is needed).
        self._service_reports_files = False
        #: True once the service has sent the full result of a run (``codeinterp serve``'s additive
        #: ``codeinterp`` key): rich displays, exact reprs. Real Azure sends only stdout/stderr/result.
        self.service_sends_full_results = False
        # Tests turn this off to exercise the plain-Azure path (stdout/stderr/result only) against our server.
        self._read_service_extras = True

    # -- helpers --------------------------------------------------------------------------------------
    def _params(self, *, api_version: str | None = None, **extra: str) -> dict[str, str]:
        return {"api-version": api_version or self.api_version, "identifier": self.session_id, **extra}

    def _check_open(self) -> None:
        if self._closed:
            raise SessionClosedError(f"Session {self.session_id} is closed; create a new backend to run more code.")

    @staticmethod
    def _file_missing(rel: str) -> Callable[[str], Exception]:
        def build(said: str) -> Exception:
            return RemoteFileNotFoundError(
                f"No file {remote_display_path(rel)!r} in this session. Call list_files() to see what exists "
                f"(files are gone if the session expired after its idle cooldown).{said}"
            )

        return build

    def status(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "session_id": self.session_id,
            "endpoint": self.endpoint,
            "api_version": self.api_version,
            "dialect": self.dialect.name,
            "sandboxed": True,  # every session is a Hyper-V isolated container
            "closed": self._closed,
            "timeout": self.timeout,
        }

    # -- code -----------------------------------------------------------------------------------------
    def execute(self, code: str, *, timeout: float | None = None) -> ExecutionResult:
        if not isinstance(code, str):
            raise TypeError(f"code must be a str, not {type(code).__name__}")
        limit = self.timeout if timeout is None else float(timeout)
        if limit <= 0:
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}.")
        self._check_open()
        with self._run_lock:
            before = self._snapshot() if self.track_files and not self._service_reports_files else None
            started = time.monotonic()
            wire = self._send_execute(code, limit)
            result = self._to_result(wire, limit)
            if not result.duration_ms:
                result.duration_ms = (time.monotonic() - started) * 1000
            taken = set(before or ()) | {f.filename for f in wire.files or ()}
            saved = self._save_images(result, taken=taken)
            reported = wire.extension is not None or wire.files is not None
            if reported and self.track_files:
                # The service lists the run's files itself: no need to list /mnt/data around the next runs.
                self._service_reports_files = True
                if wire.extension is None:
                    result.files = list(wire.files or [])
                known = {f.filename for f in result.files}
                result.files.extend(f for f in saved if f.filename not in known)
            elif before is not None:
                result.files = _diff(before, self.list_files())
            result.session_id = self.session_id
            return result

    def _send_execute(self, code: str, limit: float) -> WireExecution:
        body = self.dialect.execute_body(code, max(1, math.ceil(limit)))
        response = self._transport.request(
            "POST",
            self.dialect.execute_path(),
            params=self._params(),
            what="running code",
            json=body,
            read_timeout=limit + self.execute_grace,
            runs_code=True,
        )
        wire = self._parse(response, parse_execution, "running code")
        if not self._read_service_extras:
            wire.extension = wire.files = wire.kernel_restarted = wire.notices = None
        deadline = time.monotonic() + limit + self.execute_grace
        # Asynchronous answers (202 + Running) are polled; polling is a read and safe to retry.
        while wire.pending and wire.execution_id and time.monotonic() < deadline:
            time.sleep(0.25)
            response = self._transport.request(
                "GET",
                self.dialect.execution_poll_path(wire.execution_id),
                params=self._params(),
                what="waiting for the run to finish",
            )
            wire = self._parse(response, parse_execution, "waiting for the run to finish")
        return wire

    @staticmethod
    def _parse(response: requests.Response, parser: Callable[[Any], Any], what: str) -> Any:
        try:
            return parser(response.json())
        except ValueError as exc:
            raise ServiceError(
                f"The session pool sent an answer that is not the expected JSON while {what} "
                f"(HTTP {response.status_code}, {response.headers.get('Content-Type', 'no content type')}): {exc}. "
                "Check that the endpoint is a session pool's management endpoint.",
                status_code=response.status_code,
            ) from exc

    def _to_result(self, wire: WireExecution, limit: float) -> ExecutionResult:
        if wire.extension is not None:
            self.service_sends_full_results = True
            result = result_from_extension(wire.extension)
            result.duration_ms = result.duration_ms or wire.duration_ms
            return result
        if wire.pending:
            return ExecutionResult(
                status=ExecutionStatus.TIMED_OUT,
                stdout=wire.stdout,
                stderr=wire.stderr,
                error=ExecutionError("TimeoutError", f"the run was still going after {limit:g} seconds"),
                notices=[f"The run was still going when the client stopped waiting ({limit:g} s); it may finish "
                         "in the background, so check the session's state before running it again."],
            )  # fmt: skip
        notices = list(wire.notices or [])
        error_name = (wire.error_name or "").lower()
        timed_out = (
            error_name == "timeout"
            or wire.status in ("timedout", "timeout")
            or (error_name == "timeouterror" and any("time limit" in n for n in notices))
        )
        failed = not wire.succeeded and (wire.status != "" or wire.error_name is not None)
        status = ExecutionStatus.SUCCEEDED
        if timed_out:
            status = ExecutionStatus.TIMED_OUT
        elif failed:
            status = ExecutionStatus.FAILED
        result = ExecutionResult(
            status=status,
            stdout=wire.stdout,
            stderr=wire.stderr,
            duration_ms=wire.duration_ms,
            kernel_restarted=bool(wire.kernel_restarted),
            notices=notices,
        )
        if timed_out:
            result.error = ExecutionError("TimeoutError", wire.error_message or f"the run exceeded {limit:g} seconds")
            if not any("time limit" in n for n in notices):
                result.notices.append(f"The code ran past its time limit ({limit:g} s) and was stopped.")
        elif failed:
            result.error = self._error_of(wire)
        value = wire.value
        if isinstance(value, dict) and str(value.get("type", "")).lower() == "image" and "base64_data" in value:
            fmt = str(value.get("format") or "png").lower()
            mime = "image/svg+xml" if fmt == "svg" else f"image/{'jpeg' if fmt == 'jpg' else fmt}"
            saved_as = None
            if isinstance(value.get("file_full_path"), str):  # the service already stored it (codeinterp serve)
                try:
                    saved_as = normalize_remote_path(value["file_full_path"])
                except CodeInterpreterError:
                    saved_as = None
            payload: str = value.get("base64_data") or ""
            if mime == "image/svg+xml":  # our model keeps SVG as text
                with suppress(binascii.Error, ValueError):
                    payload = base64.b64decode(payload).decode("utf-8", "replace")
            result.displays.append(Output(data={mime: payload}, saved_as=saved_as))
        elif value is not MISSING and value is not None and value != "":
            result.result = Output(data={"text/plain": repr(value), "application/json": value})
        return result

    @staticmethod
    def _error_of(wire: WireExecution) -> ExecutionError:
        if wire.error_name:
            traceback = strip_ansi(wire.error_traceback or wire.stderr)
            return ExecutionError(wire.error_name, wire.error_message or "", traceback)
        found = error_from_text(wire.stderr, wire.stdout)
        if found is not None:
            return found
        text = strip_ansi(wire.stderr or wire.stdout).strip()
        first = text.splitlines()[-1] if text else "the run failed without an error message"
        return ExecutionError("Error", first, text)

    def _save_images(self, result: ExecutionResult, taken: set[str]) -> list[RemoteFile]:
        """Store every image that arrived as base64 as a session file, so the model only sees a file path."""
        saved: list[RemoteFile] = []
        for output in result.images:
            if output.saved_as:
                continue
            mime = output.image_mime_type or "image/png"
            data = output.image_bytes() if mime == "image/svg+xml" else None
            if data is None:
                try:
                    data = base64.b64decode(output.data[mime], validate=False)
                except (binascii.Error, TypeError, ValueError):
                    result.notices.append("An image in the result could not be decoded and was dropped.")
                    continue
            ext = IMAGE_EXTENSIONS.get(mime, "png")
            name = self._next_figure_name(ext, taken)
            try:
                saved.append(self.upload(name, data))
            except CodeInterpreterError as exc:
                result.notices.append(f"A figure could not be saved to {remote_display_path(name)}: {exc}")
                continue
            output.saved_as = name
            taken.add(name)
        return saved

    def _next_figure_name(self, ext: str, taken: set[str]) -> str:
        while True:
            self._figure_counter += 1
            name = f"figure_{self._figure_counter}.{ext}"
            if name not in taken:
                return name

    def _snapshot(self) -> dict[str, RemoteFile]:
        return {f.filename: f for f in self.list_files()}

    # -- files ----------------------------------------------------------------------------------------
    def upload(self, remote_path: str, source: UploadSource) -> RemoteFile:
        self._check_open()
        rel = normalize_remote_path(remote_path)
        url_path, filename, extra = self.dialect.upload_target(rel)
        mime = guess_mime_type(rel)
        with ExitStack() as stack:
            size, open_stream = self._upload_stream(source, stack)
            limit = self.max_upload_bytes
            if limit is not None and size > limit:
                raise FileTooLargeError(f"{remote_display_path(rel)}: {_too_large(size, limit)}")
            try:
                from requests_toolbelt.multipart.encoder import MultipartEncoder
            except ImportError as exc:
                raise ConfigurationError(
                    "Uploads to session pools need requests-toolbelt (to stream multipart bodies): "
                    "pip install 'llama-index-tools-codeinterp[azure]'."
                ) from exc

            def body() -> tuple[IO[bytes], dict[str, str]]:
                part = _Window(open_stream(), size)
                encoder = MultipartEncoder(fields={"file": (filename, part, mime)})
                return cast(IO[bytes], encoder), {"Content-Type": encoder.content_type}

            response = self._transport.request(
                "POST",
                url_path,
                params=self._params(**extra),
                what=f"uploading {remote_display_path(rel)}",
                body=cast(Body, body),
            )
            reported = _parse_or_none(response, parse_uploaded_file)
        return RemoteFile(
            filename=rel,
            size_in_bytes=reported.size_in_bytes if reported and reported.size_in_bytes else size,
            mime_type=mime,
            last_modified=reported.last_modified if reported else None,
        )

    def _upload_stream(self, source: UploadSource, stack: ExitStack) -> tuple[int, Callable[[], IO[bytes]]]:
        """(size, a function giving the stream positioned where the upload starts). Streams are never read
        into memory whole; a stream that cannot seek is spooled to a temporary file so a retry can re-read it."""
        if isinstance(source, (bytes, bytearray, memoryview)):
            data = bytes(source)
            return len(data), lambda: io.BytesIO(data)
        if isinstance(source, (str, os.PathLike)):
            host = Path(source).expanduser()
            if not host.is_file():
                raise FileNotFoundError(f"Local file {str(host)!r} does not exist or is not a regular file.")
            return host.stat().st_size, lambda: stack.enter_context(open(host, "rb"))
        stream = cast(IO[bytes], source)
        if not callable(getattr(stream, "read", None)):
            raise TypeError(
                f"Cannot upload a {type(source).__name__}; pass bytes, a binary file object, or a host file path."
            )
        try:
            start = stream.tell()
            end = stream.seek(0, os.SEEK_END)
            stream.seek(start)
        except (OSError, AttributeError, ValueError):
            stream, start, end = self._spool(stream, stack), 0, 0
            end = stream.seek(0, os.SEEK_END)

        def rewind() -> IO[bytes]:
            stream.seek(start)
            return stream

        return end - start, rewind

    def _spool(self, stream: IO[bytes], stack: ExitStack) -> IO[bytes]:
        spool = stack.enter_context(tempfile.SpooledTemporaryFile(max_size=8 * _CHUNK))  # noqa: SIM115 - closed by stack
        limit = self.max_upload_bytes
        total = 0
        while chunk := stream.read(_CHUNK):
            total += len(chunk)
            if limit is not None and total > limit:
                raise FileTooLargeError(_too_large(total, limit))
            spool.write(chunk)
        return cast(IO[bytes], spool)

    def download_to(self, remote_path: str, destination: DownloadTarget) -> int:
        self._check_open()
        rel = normalize_remote_path(remote_path)
        url_path, extra = self.dialect.content_target(rel)
        what = f"downloading {remote_display_path(rel)}"
        response = self._transport.request(
            "GET",
            url_path,
            params=self._params(**extra),
            what=what,
            stream=True,
            not_found=self._file_missing(rel),
        )
        with response, ExitStack() as stack:
            if isinstance(destination, (str, os.PathLike)):
                host = Path(destination).expanduser()
                host.parent.mkdir(parents=True, exist_ok=True)
                sink: IO[bytes] = stack.enter_context(open(host, "wb"))
            else:
                sink = destination
            total = 0
            for chunk in _chunks(response, what):
                sink.write(chunk)
                total += len(chunk)
            return total

    def list_files(self, path: str = "") -> list[RemoteFile]:
        self._check_open()
        rel = normalize_remote_path(path, allow_root=True)
        params = self._params(recursive="true", **({"path": rel} if rel else {}))
        response = self._transport.request(
            "GET",
            self.dialect.list_path(),
            params=params,
            what="listing files",
            not_found=self._file_missing(rel) if rel else None,
        )
        files: list[RemoteFile] = self._parse(response, parse_file_list, "listing files")
        if rel and self.dialect.legacy:
            # The legacy list has no sub-directory filter: it lists all of /mnt/data.
            files = [f for f in files if f.filename == rel or f.filename.startswith(rel + "/")]
        elif rel:
            for f in files:
                if not (f.filename == rel or f.filename.startswith(rel + "/")):
                    f.filename = f"{rel}/{f.filename}"
            files.sort(key=lambda f: f.filename)
        return files

    def delete_file(self, remote_path: str) -> None:
        self._check_open()
        rel = normalize_remote_path(remote_path)
        url_path, version, extra = self.dialect.delete_file_target(rel)
        self._transport.request(
            "DELETE",
            url_path,
            params=self._params(api_version=version, **extra),
            what=f"deleting {remote_display_path(rel)}",
            not_found=self._file_missing(rel),
        ).close()

    # -- lifecycle ------------------------------------------------------------------------------------
    def restart(self) -> None:
        """Start over in a fresh session: the old one is deleted, so variables **and files** are gone.

        (Azure has no kernel restart that keeps the session; the local backend keeps files on restart.)
        """
        self._check_open()
        with self._run_lock:
            self._delete_session()
            self.session_id = str(uuid.uuid4())
            self._figure_counter = 0

    def close(self) -> None:
        """Delete the remote session (``DELETE session``) and release the HTTP connections. Idempotent.

        The legacy api-version has no session delete; as LangChain's client does, the one call is made with
        2025-10-02-preview. If the pool refuses it, the session ends after the pool's idle cooldown.
        """
        if self._closed:
            return
        self._closed = True
        try:
            if self.delete_session_on_close:
                self._delete_session()
        finally:
            self._transport.close()

    def _delete_session(self) -> None:
        path, version = self.dialect.delete_session_target()
        try:
            self._transport.request(
                "DELETE",
                path,
                params=self._params(api_version=version),
                what="deleting the session",
                not_found=lambda said: RemoteFileNotFoundError(said),
            ).close()
        except CodeInterpreterError as exc:
            # Not fatal: an undeletable session still ends after the pool's cooldown.
            log.info("Deleting session %s failed (it ends after the pool's cooldown): %s", self.session_id, exc)


class _Window:
    """The next ``size`` bytes of a stream, with the ``len`` requests-toolbelt needs to stream it (toolbelt
    would otherwise copy a BytesIO whole, and take a real file's full size whatever its position)."""

    def __init__(self, stream: IO[bytes], size: int) -> None:
        self._stream = stream
        self.len = size

    def read(self, n: int = -1) -> bytes:
        if self.len <= 0:
            return b""
        chunk = self._stream.read(self.len if n is None or n < 0 else min(n, self.len))
        self.len -= len(chunk)
        return chunk


def _too_large(size: int, limit: int) -> str:
    return (
        f"the file is over {size:,} bytes; the session pool accepts at most {limit:,} bytes per file (Azure's "
        "limit is 128 MB). Split or compress it, or generate it inside the session."
    )


def _chunks(response: requests.Response, what: str) -> Iterator[bytes]:
    try:
        yield from response.iter_content(_CHUNK)
    except (requests.RequestException, OSError) as exc:
        raise ServiceUnavailableError(
            f"The connection broke while {what} ({type(exc).__name__}); the file is incomplete. Try again."
        ) from exc


def _parse_or_none(response: requests.Response, parser: Callable[[Any], Any]) -> Any:
    try:
        return parser(response.json())
    except ValueError:
        return None


def _diff(before: dict[str, RemoteFile], after: list[RemoteFile]) -> list[RemoteFile]:
    """Files in ``after`` that are new, or whose size or modification time changed."""
    changed: list[RemoteFile] = []
    for f in after:
        old = before.get(f.filename)
        if old is None:
            f.change = "created"
        elif old.size_in_bytes != f.size_in_bytes or old.last_modified != f.last_modified:
            f.change = "modified"
        else:
            continue
        changed.append(f)
    return changed
