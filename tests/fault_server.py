"""A fault-injecting session-pool look-alike on 127.0.0.1, for testing how the Azure client copes.

It is a real HTTP server (``http.server.ThreadingHTTPServer``). By default it answers like a tiny, healthy
session pool (both dialects: execute succeeds with result 2, uploads are echoed, lists are empty). Tests
script faults per ``(method, path)`` with :meth:`FaultServer.plan`: each request to that route takes the next
planned fault (an HTTP status with an Azure error body, a slow answer, a dropped connection, or a custom
answer), then the default answers resume. Every request is recorded, so a test can check that an execute
was sent exactly once.

Usage::

    with FaultServer() as server:
        server.plan("POST", "/executions", Reply(503), Reply(503))
        backend = AzureSessionsBackend(server.url, token_provider=lambda: "t")
        ...
        assert server.count("POST", "/executions") == 1
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from requests_toolbelt.multipart.decoder import MultipartDecoder

__all__ = ["Drop", "FaultServer", "Recorded", "Reply", "Slow"]


@dataclass
class Reply:
    """Answer with ``status``; ``body`` (JSON-encoded unless bytes) defaults to an Azure error body."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    error_code: str | None = None


@dataclass
class Slow:
    """Wait ``seconds`` before giving the default answer (the client should time out first)."""

    seconds: float


@dataclass
class Drop:
    """Read the request, then close the connection without answering."""


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    raw_path: str  # as sent, percent-encoding included


_DEFAULT_ERROR_CODES = {
    401: "Unauthorized",
    403: "Forbidden",
    404: "SessionNotFound",
    413: "PayloadTooLarge",
    429: "TooManyRequests",
    500: "InternalServerError",
    502: "BadGateway",
    503: "ServiceUnavailable",
    504: "GatewayTimeout",
}


class FaultServer:
    """Start on enter (or :meth:`start`), stop on exit. ``url`` is the pool management endpoint."""

    def __init__(self) -> None:
        self._plans: dict[tuple[str, str], deque[Reply | Slow | Drop]] = defaultdict(deque)
        self.requests: list[Recorded] = []
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        #: What ``GET .../content`` answers by default.
        self.file_content = b"file content"

    # -- lifecycle --------------------------------------------------------------------------------------
    def start(self) -> FaultServer:
        server = self

        class Handler(_Handler):
            owner = server

        httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        httpd.daemon_threads = True
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> FaultServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._httpd is not None, "start the server first"
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    # -- scripting and inspection -----------------------------------------------------------------------
    def plan(self, method: str, path: str, *faults: Reply | Slow | Drop) -> None:
        """Queue answers for the next requests to ``method path`` (the path without the query string)."""
        with self._lock:
            self._plans[(method.upper(), path)].extend(faults)

    def reset(self) -> None:
        with self._lock:
            self._plans.clear()
            self.requests.clear()

    def count(self, method: str, path: str) -> int:
        with self._lock:
            return sum(1 for r in self.requests if r.method == method.upper() and r.path == path)

    def matching(self, method: str, path: str) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if r.method == method.upper() and r.path == path]

    def _next(self, method: str, path: str, recorded: Recorded) -> Reply | Slow | Drop | None:
        with self._lock:
            self.requests.append(recorded)
            queue = self._plans.get((method, path))
            return queue.popleft() if queue else None

    # -- default answers (a healthy, empty pool) -----------------------------------------------------
    def default_answer(self, method: str, path: str, recorded: Recorded) -> Reply:
        if method == "POST" and path == "/code/execute":
            props = {"$id": "2", "status": "Success", "stdout": "", "stderr": "", "result": 2}
            return Reply(200, {"$id": "1", "properties": {**props, "executionTimeInMilliseconds": 3}})
        if method == "POST" and path == "/executions":
            result = {"stdout": "", "stderr": "", "executionResult": 2, "executionTimeInMilliseconds": 3}
            body = {"id": "e1", "identifier": recorded.query.get("identifier"), "status": "Succeeded"}
            return Reply(200, {**body, "executionType": "Synchronous", "result": result})
        if method == "POST" and path in ("/files/upload", "/files"):
            decoded = MultipartDecoder(recorded.body, recorded.headers.get("content-type", ""))
            part = decoded.parts[0]
            disposition = part.headers.get(b"Content-Disposition", b"").decode()
            filename = disposition.split('filename="', 1)[-1].rstrip('"')
            entry = {"name": filename, "type": "File", "sizeInBytes": len(part.content)}
            return Reply(200, entry if path == "/files" else {"value": [{"properties": entry}]})
        if method == "GET" and path == "/files":
            return Reply(200, {"value": []})
        if method == "GET" and (path.endswith("/content") or path.startswith("/files/content/")):
            return Reply(200, self.file_content, {"Content-Type": "application/octet-stream"})
        if method == "DELETE":
            return Reply(204, b"")
        return Reply(404, error_code="NotFound")


class _Handler(BaseHTTPRequestHandler):
    owner: FaultServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes; without TCP_NODELAY, Nagle + delayed ACK add ~40 ms each.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _serve(self) -> None:
        split = urlsplit(self.path)
        path = unquote(split.path)
        query = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        recorded = Recorded(self.command, path, query, headers, body, self.path)
        fault = self.owner._next(self.command, path, recorded)
        if isinstance(fault, Drop):
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if isinstance(fault, Slow):
            time.sleep(fault.seconds)
            fault = None
        reply = fault or self.owner.default_answer(self.command, path, recorded)
        self._send(reply)

    def _send(self, reply: Reply) -> None:
        body = reply.body
        headers = dict(reply.headers)
        if body is None and reply.status >= 400:
            code = reply.error_code or _DEFAULT_ERROR_CODES.get(reply.status, "Error")
            body = {"error": {"code": code, "message": f"Injected fault {reply.status} ({code})."}}
            headers.setdefault("x-ms-error-code", code)
        if isinstance(body, bytes):
            payload = body
        else:
            payload = json.dumps(body).encode() if body is not None else b""
            headers.setdefault("Content-Type", "application/json")
        try:
            self.send_response(reply.status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up waiting (a read-timeout test)

    do_GET = do_POST = do_DELETE = do_PUT = _serve
