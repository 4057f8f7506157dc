"""The Azure client against a fault-injecting server on 127.0.0.1: every failure maps to an error that names
the fix, safe calls are retried, and an execute is never sent twice once the service may have run it."""

from __future__ import annotations

import io
import os
import socket
import sys
import time
from collections.abc import Iterator

import pytest
from azure.core.credentials import AccessToken
from fault_server import Drop, FaultServer, Reply, Slow
from requests_toolbelt.multipart.decoder import MultipartDecoder

from llama_index_tools_codeinterp.core import (
    AuthenticationError,
    ConfigurationError,
    ExecutionStatus,
    FileTooLargeError,
    PermissionDeniedError,
    RateLimitError,
    RemoteFileNotFoundError,
    ServiceUnavailableError,
    SessionNotFoundError,
    render_execution,
)
from llama_index_tools_codeinterp.core.azure import AzureSessionsBackend, RetryPolicy

LEGACY = "2024-02-02-preview"
CURRENT = "2025-10-02-preview"
EXECUTE_PATH = {LEGACY: "/code/execute", CURRENT: "/executions"}
FAST_RETRY = RetryPolicy(attempts=3, backoff=0.01, max_backoff=0.05, max_retry_after=5)


@pytest.fixture(scope="module")
def server() -> Iterator[FaultServer]:
    with FaultServer() as fault_server:
        yield fault_server


@pytest.fixture(autouse=True)
def _clean(server: FaultServer) -> None:
    server.reset()


def make(server: FaultServer, api_version: str = CURRENT, **options) -> AzureSessionsBackend:
    options.setdefault("token_provider", lambda: "tok")
    options.setdefault("retry", FAST_RETRY)
    options.setdefault("track_files", False)
    options.setdefault("read_timeout", 2.0)
    options.setdefault("delete_session_on_close", False)
    return AzureSessionsBackend(server.url, api_version=api_version, **options)


# -- status codes -> errors that name the fix ------------------------------------------------------------
@pytest.mark.parametrize("api_version", [LEGACY, CURRENT])
@pytest.mark.parametrize(
    ("status", "error", "hint"),
    [
        (401, AuthenticationError, "https://dynamicsessions.io"),
        (403, PermissionDeniedError, "Azure ContainerApps Session Executor"),
        (404, SessionNotFoundError, "cooldown"),
        (429, RateLimitError, "delete sessions you no longer use"),
        (500, ServiceUnavailableError, "server error"),
        (502, ServiceUnavailableError, "server error"),
        (503, ServiceUnavailableError, "server error"),
        (504, ServiceUnavailableError, "server error"),
    ],
)
def test_execute_errors_are_mapped_and_never_resent(server, api_version, status, error, hint) -> None:
    path = EXECUTE_PATH[api_version]
    server.plan("POST", path, *[Reply(status, error_code="InjectedCode")] * 5)
    backend = make(server, api_version)
    with pytest.raises(error) as info:
        backend.execute("print('hi')")
    message = str(info.value)
    assert hint in message
    assert "InjectedCode" in message and "Injected fault" in message  # the service's own words are kept
    assert info.value.status_code == status
    # 429 means the service refused before running anything, so only it may be retried.
    assert server.count("POST", path) == (FAST_RETRY.attempts if status == 429 else 1)


def test_413_upload_names_the_limit(server) -> None:
    server.plan("POST", "/files", Reply(413))
    with pytest.raises(FileTooLargeError, match="128 MB"):
        make(server).upload("big.bin", b"x" * 1000)


def test_oversized_upload_is_refused_before_sending(server, tmp_path) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(b"x" * 2048)
    backend = make(server, max_upload_bytes=1024)
    with pytest.raises(FileTooLargeError, match="at most 1,024 bytes"):
        backend.upload("big.bin", big)
    with pytest.raises(FileTooLargeError):
        backend.upload("big.bin", io.BytesIO(b"x" * 2048))
    assert server.requests == []


@pytest.mark.parametrize("api_version", [LEGACY, CURRENT])
def test_missing_file_on_download_is_a_file_error(server, api_version) -> None:
    content = "/files/content/nope.txt" if api_version == LEGACY else "/files/nope.txt/content"
    server.plan("GET", content, Reply(404, error_code="FileNotFound"))
    with pytest.raises(RemoteFileNotFoundError, match=r"/mnt/data/nope.txt.*list_files"):
        make(server, api_version).download("nope.txt")


# -- retries where safe ----------------------------------------------------------------------------------
def test_throttled_read_honours_retry_after(server) -> None:
    server.plan("GET", "/files", Reply(429, headers={"Retry-After": "1"}))
    started = time.monotonic()
    assert make(server).list_files() == []
    assert time.monotonic() - started >= 0.9, "the client must wait as long as Retry-After says"
    assert server.count("GET", "/files") == 2


def test_retry_after_longer_than_the_cap_is_not_waited_for(server) -> None:
    server.plan("GET", "/files", Reply(429, headers={"Retry-After": "3600"}))
    started = time.monotonic()
    with pytest.raises(RateLimitError):
        make(server).list_files()
    assert time.monotonic() - started < 30
    assert server.count("GET", "/files") == 1


def test_throttled_execute_is_resent_because_it_never_ran(server) -> None:
    server.plan("POST", "/executions", Reply(429, headers={"Retry-After": "0"}))
    result = make(server).execute("1 + 1")
    assert result.ok and result.azure_result_value() == 2
    assert server.count("POST", "/executions") == 2


@pytest.mark.parametrize("fault", [Reply(503), Reply(502), Reply(504), Drop()], ids=["503", "502", "504", "drop"])
def test_reads_and_deletes_are_retried(server, fault) -> None:
    server.plan("GET", "/files", fault)
    server.plan("GET", "/files/a.txt/content", fault)
    server.plan("DELETE", "/files/a.txt", fault)
    backend = make(server)
    assert backend.list_files() == []
    assert backend.download("a.txt") == server.file_content
    backend.delete_file("a.txt")
    assert server.count("GET", "/files") == server.count("DELETE", "/files/a.txt") == 2


def test_upload_from_a_stream_is_replayed_whole_on_retry(server) -> None:
    server.plan("POST", "/files", Reply(503))
    payload = bytes(range(256)) * 100
    stream = io.BytesIO(b"skip" + payload)
    stream.seek(4)  # uploads start at the stream's current position
    uploaded = make(server).upload("data/blob.bin", stream)
    assert uploaded.filename == "data/blob.bin" and uploaded.size_in_bytes == len(payload)
    sent = server.matching("POST", "/files")
    assert [_part(r).content for r in sent] == [payload, payload]
    assert sent[1].query["path"] == "data"


def test_upload_from_a_pipe_is_spooled_and_replayed(server) -> None:
    server.plan("POST", "/files", Drop())
    payload = b"streamed " * 5000
    read_end, write_end = os.pipe()
    with os.fdopen(write_end, "wb") as writer:
        writer.write(payload[:4096])  # a pipe cannot seek, so the client has to spool it to retry
    with os.fdopen(read_end, "rb") as reader:
        assert make(server).upload("piped.txt", reader).size_in_bytes == 4096
    assert [_part(r).content for r in server.matching("POST", "/files")] == [payload[:4096]] * 2


def _part(recorded):
    return MultipartDecoder(recorded.body, recorded.headers["content-type"]).parts[0]


@pytest.mark.parametrize("api_version", [LEGACY, CURRENT])
def test_dropped_execute_is_not_resent(server, api_version) -> None:
    path = EXECUTE_PATH[api_version]
    server.plan("POST", path, Drop())
    with pytest.raises(ServiceUnavailableError, match="may or may not have run; it was not re-sent"):
        make(server, api_version).execute("x = 1")
    assert server.count("POST", path) == 1


def test_slow_execute_times_out_once_and_says_state_is_unknown(server) -> None:
    server.plan("POST", "/executions", Slow(4))
    backend = make(server, timeout=0.5, execute_grace=0.5)
    started = time.monotonic()
    with pytest.raises(ServiceUnavailableError, match="may still be running"):
        backend.execute("import time; time.sleep(100)")
    assert time.monotonic() - started < 3.5, "the read timeout must fire long before the server answers"
    assert server.count("POST", "/executions") == 1


def test_slow_reads_are_retried_then_reported(server) -> None:
    server.plan("GET", "/files", *[Slow(3)] * FAST_RETRY.attempts)
    with pytest.raises(ServiceUnavailableError, match="did not answer in time"):
        make(server, read_timeout=0.3).list_files()
    assert server.count("GET", "/files") == FAST_RETRY.attempts


def test_unreachable_endpoint_names_the_fix() -> None:
    with socket.socket() as sock:  # a port with nothing listening
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    backend = AzureSessionsBackend(f"http://127.0.0.1:{port}", token_provider=lambda: "t", retry=FAST_RETRY)
    with pytest.raises(ServiceUnavailableError, match=r"Could not connect.*endpoint"):
        backend.execute("1")


# -- auth ------------------------------------------------------------------------------------------------
class CountingCredential:
    def __init__(self, lifetime: float) -> None:
        self.lifetime = lifetime
        self.calls: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **kwargs) -> AccessToken:
        self.calls.append(scopes)
        return AccessToken(f"token-{len(self.calls)}", int(time.time() + self.lifetime))


def test_token_is_cached_until_it_nears_expiry(server) -> None:
    long_lived = CountingCredential(lifetime=3600)
    backend = make(server, token_provider=None, credential=long_lived)
    for _ in range(3):
        backend.list_files()
    assert long_lived.calls == [("https://dynamicsessions.io/.default",)]
    assert {r.headers["authorization"] for r in server.requests} == {"Bearer token-1"}


def test_expiring_token_is_fetched_again(server) -> None:
    short_lived = CountingCredential(lifetime=120)  # inside the 5-minute refresh margin
    backend = make(server, token_provider=None, credential=short_lived)
    backend.list_files()
    backend.execute("1")
    assert len(short_lived.calls) == 2
    assert [r.headers["authorization"] for r in server.requests] == ["Bearer token-1", "Bearer token-2"]


def test_token_provider_is_asked_for_every_request(server) -> None:
    tokens = iter(["a", "b"])
    backend = make(server, token_provider=lambda: next(tokens))
    backend.list_files()
    backend.list_files()
    assert [r.headers["authorization"] for r in server.requests] == ["Bearer a", "Bearer b"]


def test_credential_failure_is_an_authentication_error(server) -> None:
    class Broken:
        def get_token(self, *scopes: str, **kwargs) -> AccessToken:
            raise RuntimeError("no account signed in")

    with pytest.raises(AuthenticationError, match=r"no account signed in.*az login"):
        make(server, token_provider=None, credential=Broken()).list_files()
    assert server.requests == []


# -- wire shapes -----------------------------------------------------------------------------------------
def test_requests_carry_version_identifier_and_shapes(server) -> None:
    odd_id = "team|42/x&y"
    legacy = make(server, LEGACY, session_id=odd_id)
    legacy.execute("1 + 1", timeout=1.5)
    current = make(server, CURRENT, session_id=odd_id)
    current.execute("1 + 1")
    old, new = server.requests
    assert old.path == "/code/execute" and old.query == {"api-version": LEGACY, "identifier": odd_id}
    assert b'"properties"' in old.body and b'"timeoutInSeconds": 2' in old.body
    assert new.path == "/executions" and new.query["api-version"] == CURRENT and new.query["identifier"] == odd_id
    assert b'"properties"' not in new.body and b'"Synchronous"' in new.body
    assert "identifier=team%7C42%2Fx%26y" in old.raw_path  # encoded like quote(safe='')
    assert new.headers["user-agent"].startswith("llama-index-tools-codeinterp/")


def test_file_names_are_url_encoded(server) -> None:
    backend = make(server)
    backend.download("dir one/ré sumé?#.txt")
    (request,) = server.requests
    assert request.path == "/files/ré sumé?#.txt/content" and request.query["path"] == "dir one"


@pytest.mark.parametrize(
    "endpoint_suffix", ["/", "/python/execute", "/python/execute/"], ids=["slash", "python-execute", "both"]
)
def test_endpoint_leftovers_are_stripped(server, endpoint_suffix) -> None:
    backend = AzureSessionsBackend(server.url + endpoint_suffix, token_provider=lambda: "t", track_files=False)
    assert backend.endpoint == server.url
    assert backend.execute("1 + 1").ok


@pytest.mark.parametrize(
    "answer",
    [
        {"properties": {"status": "SUCCESS", "stdout": "hi\n", "executionResult": 2}},
        {"$id": "1", "status": "succeeded", "result": {"stdout": "hi\n", "executionResult": 2, "extra": 1}},
        {"properties": {"$id": "2", "status": "Success", "stdout": "hi\n", "result": 2, "unknown": [1]}},
    ],
    ids=["legacy-executionResult", "current-lowercase", "legacy-unknown-keys"],
)
def test_answers_are_parsed_tolerantly(server, answer) -> None:
    server.plan("POST", "/executions", Reply(202, answer))
    result = make(server).execute("print('hi'); 2")
    assert result.ok and result.stdout == "hi\n" and result.text == "2"


def test_legacy_dict_value_is_not_mistaken_for_a_result_object(server) -> None:
    value = {"stdout": "mine", "executionResult": 1}
    server.plan(
        "POST", "/code/execute", Reply(200, {"properties": {"status": "Success", "stdout": "", "result": value}})
    )
    result = make(server, LEGACY).execute("d")
    assert result.azure_result_value() == value and result.stdout == ""


def test_list_and_upload_answers_in_every_shape(server) -> None:
    backend = make(server)
    server.plan(
        "GET",
        "/files",
        Reply(200, [{"name": "a.csv", "sizeInBytes": 3, "type": "file", "directory": "sub"}]),
        Reply(200, {"$id": "1", "value": [{"$id": "2", "properties": {"filename": "/mnt/data/b.txt", "size": 5}}]}),
        Reply(200, {"value": [{"name": "d", "type": "Directory"}, {"name": "c.png", "sizeInBytes": 9}]}),
    )
    assert [(f.filename, f.size_in_bytes, f.mime_type) for f in backend.list_files()] == [("sub/a.csv", 3, "text/csv")]
    assert [f.file_full_path for f in backend.list_files()] == ["/mnt/data/b.txt"]
    assert [f.filename for f in backend.list_files()] == ["c.png"]
    server.plan("POST", "/files", Reply(200, [{"name": "x.txt", "sizeInBytes": 4}]))
    assert backend.upload("x.txt", b"four").size_in_bytes == 4


@pytest.mark.parametrize("api_version", [LEGACY, CURRENT])
def test_python_error_is_read_from_stderr(server, api_version) -> None:
    trace = (
        "Traceback (most recent call last):\n  Cell In[1], line 1\n----> 1 1/0\n\n"
        "\x1b[0;31mZeroDivisionError\x1b[0m: division by zero"
    )
    body = (
        {"properties": {"status": "Failure", "stdout": "", "stderr": trace, "result": ""}}
        if api_version == LEGACY
        else {"id": "e", "status": "Failed", "result": {"stdout": "", "stderr": trace, "executionResult": None}}
    )
    server.plan("POST", EXECUTE_PATH[api_version], Reply(200, body))
    result = make(server, api_version).execute("1/0")
    assert result.status is ExecutionStatus.FAILED
    assert result.error is not None and result.error.name == "ZeroDivisionError"
    assert result.error.value == "division by zero" and "1/0" in result.error.traceback
    assert "\x1b[" not in result.error.traceback and result.result is None


@pytest.mark.parametrize("api_version", [LEGACY, CURRENT])
def test_base64_image_becomes_a_session_file(server, api_version) -> None:
    png = b"\x89PNG\r\n\x1a\nfake image bytes"
    import base64

    image = {"type": "image", "format": "png", "base64_data": base64.b64encode(png).decode()}
    body = (
        {"properties": {"status": "Success", "stdout": "", "stderr": "", "result": image}}
        if api_version == LEGACY
        else {"id": "e", "status": "Succeeded", "result": {"stdout": "", "stderr": "", "executionResult": image}}
    )
    server.plan("POST", EXECUTE_PATH[api_version], Reply(200, body))
    backend = make(server, api_version, track_files=True)
    result = backend.execute("plt.show()")
    (figure,) = result.images
    assert figure.saved_as == "figure_1.png" and figure.image_bytes() == png
    upload_path = "/files/upload" if api_version == LEGACY else "/files"
    (upload,) = server.matching("POST", upload_path)
    assert b'filename="figure_1.png"' in upload.body and png in upload.body
    text = render_execution(result).text
    assert "/mnt/data/figure_1.png" in text and image["base64_data"] not in text
    assert result.azure_result_value() == {"type": "image", "format": "png", "file_full_path": "/mnt/data/figure_1.png"}
    # Files before and after the run were listed: one GET each side.
    assert server.count("GET", "/files") == 2


# -- lifecycle and configuration -------------------------------------------------------------------------
@pytest.mark.parametrize("api_version", [LEGACY, CURRENT])
def test_close_deletes_the_session_and_restart_switches_id(server, api_version) -> None:
    backend = make(server, api_version, delete_session_on_close=True)
    first = backend.session_id
    backend.restart()
    assert backend.session_id != first
    backend.close()
    backend.close()  # idempotent
    deletes = server.matching("DELETE", "/session")
    assert [d.query["identifier"] for d in deletes] == [first, backend.session_id]
    assert all(d.query["api-version"] == CURRENT for d in deletes)


def test_failed_session_delete_does_not_raise(server) -> None:
    server.plan("DELETE", "/session", Reply(500), Reply(500), Reply(500))
    make(server, delete_session_on_close=True).close()


def test_status_report(server) -> None:
    status = make(server, LEGACY).status()
    assert status["kind"] == "azure" and status["sandboxed"] is True
    assert status["api_version"] == LEGACY and status["endpoint"] == server.url and len(status["session_id"]) == 36


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"pool_management_endpoint": "not a url"}, "http"),
        ({"pool_management_endpoint": "https://x.io/pool?api-version=1"}, "query string"),
        ({"api_version": "2023-01-01"}, "Unknown api_version"),
        ({"session_id": "abc"}, "4 to 128"),
        ({"session_id": "has space"}, "printable ASCII"),
        ({"token_provider": lambda: "t", "credential": object()}, "either"),
        ({"timeout": 0}, "positive"),
    ],
)
def test_bad_configuration_is_refused_clearly(kwargs, message) -> None:
    kwargs.setdefault("pool_management_endpoint", "https://pool.example")
    with pytest.raises(ConfigurationError, match=message):
        AzureSessionsBackend(**kwargs)


def test_missing_azure_identity_names_the_extra(server, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "azure.identity", None)  # as if the package were not installed
    backend = make(server, token_provider=None)  # no credential: DefaultAzureCredential is needed, lazily
    with pytest.raises(ConfigurationError, match=r"llama-index-tools-codeinterp\[azure\]"):
        backend.list_files()
    assert server.requests == []


def test_default_session_ids_differ_per_instance() -> None:
    a = AzureSessionsBackend("https://pool.example", token_provider=lambda: "t")
    b = AzureSessionsBackend("https://pool.example", token_provider=lambda: "t")
    assert a.session_id != b.session_id


def test_running_answer_is_polled_until_done(server) -> None:
    server.plan("POST", "/executions", Reply(202, {"id": "run-7", "status": "Running"}))
    server.plan(
        "GET",
        "/executions/run-7",
        Reply(200, {"id": "run-7", "status": "Running"}),
        Reply(200, {"id": "run-7", "status": "Succeeded", "result": {"stdout": "done\n", "executionResult": 5}}),
    )
    result = make(server).execute("slow()")
    assert result.ok and result.stdout == "done\n" and result.text == "5"
    assert server.count("POST", "/executions") == 1 and server.count("GET", "/executions/run-7") == 2


def test_service_timeout_is_a_timed_out_result(server) -> None:
    body = {"id": "e", "status": "Failed", "result": {"stdout": "partial\n", "stderr": ""}}
    server.plan("POST", "/executions", Reply(200, {**body, "error": {"code": "Timeout", "message": "took too long"}}))
    result = make(server).execute("while True: pass", timeout=3)
    assert result.status is ExecutionStatus.TIMED_OUT and result.stdout == "partial\n"
    assert result.error is not None and result.error.name == "TimeoutError"
    assert any("time limit (3 s)" in n for n in result.notices)


async def test_async_twins_run_off_the_event_loop(server) -> None:
    backend = make(server)
    result = await backend.aexecute("1 + 1")
    uploaded = await backend.aupload("a.txt", b"abc")
    assert result.text == "2" and uploaded.size_in_bytes == 3
    assert await backend.alist_files() == [] and await backend.adownload("a.txt") == server.file_content
    await backend.aclose()


def test_rejected_credential_token_is_fetched_again_once(server) -> None:
    credential = CountingCredential(lifetime=3600)
    server.plan("POST", "/executions", Reply(401))
    assert make(server, token_provider=None, credential=credential).execute("1 + 1").ok
    assert [r.headers["authorization"] for r in server.requests] == ["Bearer token-1", "Bearer token-2"]
    server.reset()
    server.plan("GET", "/files", Reply(401), Reply(401))
    with pytest.raises(AuthenticationError):
        make(server, token_provider=None, credential=CountingCredential(lifetime=3600)).list_files()
    assert server.count("GET", "/files") == 2


def test_token_cache_is_thread_safe(server) -> None:
    import threading

    credential = CountingCredential(lifetime=3600)
    backend = make(server, token_provider=None, credential=credential)
    threads = [threading.Thread(target=backend.list_files) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(credential.calls) == 1 and server.count("GET", "/files") == 8
