"""``codeinterp serve`` over real HTTP: both Azure dialects, the official LangChain and LlamaIndex clients,
many concurrent sessions, hostile and malformed requests, auth. One server (and its kernels) per module."""

from __future__ import annotations

import base64
import io
import json
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import requests
from pool_server import running_pool_server, server_app

LEGACY = "2024-02-02-preview"
CURRENT = "2025-10-02-preview"
TOKEN = "test-token"


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with running_pool_server(token=TOKEN, max_sessions=40) as base:
        yield base


@pytest.fixture(scope="module")
def http() -> Iterator[requests.Session]:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {TOKEN}"
    yield session
    session.close()


def call(
    http: requests.Session,
    url: str,
    method: str,
    path: str,
    identifier: str | None,
    version: str | None = LEGACY,
    **kwargs: Any,
) -> requests.Response:
    params = {}
    if version is not None:
        params["api-version"] = version
    if identifier is not None:
        params["identifier"] = identifier
    query = "&".join(f"{k}={quote(v, safe='')}" for k, v in params.items())
    return http.request(method, f"{url}/{path}?{query}", timeout=60, **kwargs)


def new_id() -> str:
    return str(uuid.uuid4())


def assert_error(response: requests.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and body["error"]["message"], body
    assert response.headers["x-ms-error-code"] == body["error"]["code"]
    if code is not None:
        assert body["error"]["code"] == code
    return body["error"]


# -- legacy dialect (2024-02-02-preview) -------------------------------------------------------------------
def test_legacy_execute_keeps_state_and_returns_the_properties_envelope(url: str, http: requests.Session) -> None:
    sid = new_id()
    body = {"properties": {"codeInputType": "inline", "executionType": "synchronous", "code": "x = 20"}}
    assert call(http, url, "POST", "code/execute", sid, json=body).status_code == 200
    body["properties"]["code"] = "print('hello world')\nx + 22"
    response = call(http, url, "POST", "code/execute", sid, json=body)
    assert response.status_code == 200
    data = response.json()
    assert data["$id"] == "1" and data["properties"]["$id"] == "2"
    props = data["properties"]
    assert props["status"] == "Success"
    assert props["stdout"] == "hello world\n" and props["stderr"] == ""
    assert props["result"] == 42
    assert isinstance(props["executionTimeInMilliseconds"], int)
    # Semantic Kernel posts to code/execute/ (trailing slash) with timeoutInSeconds inside properties.
    body["properties"].update(code="x", timeoutInSeconds=100)
    assert call(http, url, "POST", "code/execute/", sid, json=body).json()["properties"]["result"] == 20


def test_legacy_python_error_is_200_failure_with_traceback_in_stderr(url: str, http: requests.Session) -> None:
    sid = new_id()
    response = call(http, url, "POST", "code/execute", sid, json={"properties": {"code": "y = 1\n1 + 'a'"}})
    assert response.status_code == 200
    props = response.json()["properties"]
    assert props["status"] == "Failure"
    assert "TypeError: unsupported operand type(s) for +" in props["stderr"]
    assert "Traceback" in props["stderr"] and "\x1b[" not in props["stderr"]
    again = call(http, url, "POST", "code/execute", sid, json={"properties": {"code": "y"}})
    assert again.json()["properties"]["result"] == 1


def test_legacy_figure_result_is_the_image_dict_with_base64(url: str, http: requests.Session) -> None:
    code = "import matplotlib.pyplot as plt\nplt.plot([1, 3, 2])\nplt.show()"
    props = call(http, url, "POST", "code/execute", new_id(), json={"properties": {"code": code}}).json()["properties"]
    result = props["result"]
    assert result["type"] == "image" and result["format"] == "png"
    assert base64.b64decode(result["base64_data"]).startswith(b"\x89PNG")


def test_legacy_files_upload_list_download(url: str, http: requests.Session) -> None:
    sid = new_id()
    # LlamaIndex and Semantic Kernel send /mnt/data/<name>; LangChain sends a relative name.
    for filename, content in (("/mnt/data/abs.txt", b"absolute name"), ("nested/rel.bin", bytes(range(256)))):
        up = call(http, url, "POST", "files/upload", sid, files={"file": (filename, content)})
        assert up.status_code == 200, up.text
        entry = up.json()["value"][0]
        assert up.json()["$id"] == "1" and entry["$id"] == "2" and entry["properties"]["$id"] == "3"
        assert entry["properties"]["filename"] == filename.removeprefix("/mnt/data/")
        assert entry["properties"]["size"] == len(content)
        assert entry["properties"]["lastModifiedTime"].endswith("Z")
    listed = call(http, url, "GET", "files", sid).json()
    names = {e["properties"]["filename"]: e["properties"]["size"] for e in listed["value"]}
    assert names == {"abs.txt": 13, "nested/rel.bin": 256}
    assert [e["$id"] for e in listed["value"]] == ["2", "4"]
    got = call(http, url, "GET", "files/content/nested/rel.bin", sid)
    assert got.status_code == 200 and got.content == bytes(range(256))
    # The kernel sees the uploads in its working directory (/mnt/data).
    code = {"properties": {"code": "open('abs.txt').read()"}}
    assert call(http, url, "POST", "code/execute", sid, json=code).json()["properties"]["result"] == "absolute name"


# -- current dialect (2024-10-02-preview and later) --------------------------------------------------------
@pytest.mark.parametrize("version", ["2024-10-02-preview", "2025-02-02-preview", CURRENT])
def test_current_execute_is_flat_with_execution_result(url: str, http: requests.Session, version: str) -> None:
    sid = new_id()
    body = {
        "codeInputType": "Inline",
        "executionType": "Synchronous",
        "code": "print(63)\n7 * 6",
        "timeoutInSeconds": 60,
    }
    response = call(http, url, "POST", "executions", sid, version, json=body)
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["status"] == "Succeeded" and data["identifier"] == sid and data["executionType"] == "Synchronous"
    assert uuid.UUID(data["id"]) and "properties" not in data and "error" not in data
    assert data["result"]["stdout"] == "63\n" and data["result"]["executionResult"] == 42
    # The whole run rides along under the additive "codeinterp" key (our azure client rebuilds it exactly).
    assert data["codeinterp"]["status"] == "succeeded" and data["codeinterp"]["result"]["data"]["text/plain"] == "42"
    failed = call(http, url, "POST", "executions", sid, version, json={"code": "raise KeyError('nope')"}).json()
    assert failed["status"] == "Failed"
    assert failed["error"]["code"] == "KeyError" and "nope" in failed["error"]["message"]
    assert "KeyError" in failed["result"]["stderr"]


def test_current_base64_code_and_clamped_timeout(url: str, http: requests.Session) -> None:
    sid = new_id()
    code = base64.b64encode(b"'from base64'").decode()
    body = {"codeInputType": "InlineBase64", "code": code, "timeoutInSeconds": 100000}
    data = call(http, url, "POST", "executions", sid, CURRENT, json=body).json()
    assert data["status"] == "Succeeded" and data["result"]["executionResult"] == "from base64"


def test_current_timeout_is_failed_with_a_clear_message(url: str, http: requests.Session) -> None:
    sid = new_id()
    body = {"code": "import time\ntime.sleep(30)", "timeoutInSeconds": 1}
    data = call(http, url, "POST", "executions", sid, CURRENT, json=body).json()
    assert data["status"] == "Failed"
    assert data["error"]["code"] == "TimeoutError"
    assert "1 s time limit" in data["result"]["stderr"]
    assert (
        call(http, url, "POST", "executions", sid, CURRENT, json={"code": "2 + 2"}).json()["result"]["executionResult"]
        == 4
    )


def test_current_files_lifecycle_with_path_parameter(url: str, http: requests.Session) -> None:
    sid = new_id()
    up = http.post(
        f"{url}/files?api-version={CURRENT}&identifier={sid}&path=reports",
        files={"file": ("/mnt/data/q1.csv", b"a,b\n1,2\n", "text/csv")},
        timeout=30,
    )
    assert up.status_code == 200, up.text
    meta = up.json()
    assert meta["name"] == "q1.csv" and meta["sizeInBytes"] == 8 and meta["type"] == "File"
    assert meta["contentType"] == "text/csv" and meta["lastModifiedAt"].endswith("Z")
    call(http, url, "POST", "files", sid, CURRENT, files={"file": ("top.txt", b"top")})

    top = call(http, url, "GET", "files", sid, CURRENT).json()
    assert {(e["name"], e["type"]) for e in top["value"]} == {("reports", "Directory"), ("top.txt", "File")}
    assert top["nextLink"] is None
    deep = http.get(f"{url}/files?api-version={CURRENT}&identifier={sid}&recursive=true", timeout=30).json()
    assert {(e["directory"], e["name"]) for e in deep["value"]} == {
        ("", "reports"),
        ("reports", "q1.csv"),
        ("", "top.txt"),
    }
    sub = http.get(f"{url}/files?api-version={CURRENT}&identifier={sid}&path=/mnt/data/reports", timeout=30).json()
    assert [e["name"] for e in sub["value"]] == ["q1.csv"]

    assert call(http, url, "GET", "files/reports/q1.csv", sid, CURRENT).json()["sizeInBytes"] == 8
    content = call(http, url, "GET", "files/reports/q1.csv/content", sid, CURRENT)
    assert content.status_code == 200 and content.content == b"a,b\n1,2\n"
    assert content.headers["content-type"] == "application/octet-stream"
    deleted = call(http, url, "DELETE", "files/reports/q1.csv", sid, CURRENT)
    assert deleted.status_code == 204 and deleted.content == b""
    assert_error(call(http, url, "GET", "files/reports/q1.csv/content", sid, CURRENT), 404, "FileNotFound")


def test_session_get_and_delete_remove_state_and_files(url: str, http: requests.Session) -> None:
    sid = new_id()
    assert_error(call(http, url, "GET", "session", sid, CURRENT), 404, "SessionNotFound")
    call(http, url, "POST", "executions", sid, CURRENT, json={"code": "kept = 1\nopen('f.txt', 'w').write('x')"})
    info = call(http, url, "GET", "session", sid, CURRENT).json()
    assert info["identifier"] == sid and info["expireAt"] > info["lastAccessedAt"] >= info["createdAt"]
    listed = call(http, url, "GET", "listSessions", None, CURRENT).json()
    assert sid in {s["identifier"] for s in listed["sessions"]}
    data_dir = Path(server_app(url).state.pool.manager.get(sid).backend.data_dir)
    assert (data_dir / "f.txt").exists()

    assert call(http, url, "DELETE", "session", sid, CURRENT).status_code == 204
    assert not data_dir.exists()
    fresh = call(http, url, "POST", "executions", sid, CURRENT, json={"code": "kept"}).json()
    assert fresh["status"] == "Failed" and fresh["error"]["code"] == "NameError"
    assert call(http, url, "GET", "files", sid, CURRENT).json()["value"] == []
    call(http, url, "DELETE", "session", sid, CURRENT)


def test_status_and_health(url: str, http: requests.Session) -> None:
    sid = new_id()
    call(http, url, "POST", "files/upload", sid, files={"file": ("s.bin", b"12345")})
    assert requests.get(f"{url}/health", timeout=10).json()["status"] == "ok"
    report = http.get(f"{url}/status", timeout=30).json()
    mine = next(s for s in report["sessions"] if s["session_id"] == sid)
    assert mine["files"] == 1 and mine["bytes"] == 5
    assert mine["sandboxed"] is mine["backend"]["sandboxed"]
    assert 0 <= mine["idle_seconds"] < report["cooldown_seconds"]
    assert report["limits"]["max_upload_bytes"] == 128 * 1024 * 1024 and report["auth"] == "bearer"


def test_url_encoded_identifier_names_one_session(url: str, http: requests.Session) -> None:
    sid = "user|42/conversation:7"
    call(http, url, "POST", "code/execute", sid, json={"properties": {"code": "marker = 'same'"}})
    raw = http.post(
        f"{url}/code/execute?identifier={quote(sid)}&api-version={LEGACY}",  # LangChain's encoding keeps '/'
        json={"properties": {"code": "marker"}},
        timeout=30,
    )
    assert raw.json()["properties"]["result"] == "same"


# -- the official clients, unchanged -----------------------------------------------------------------------
def test_langchain_sessions_python_repl_tool(url: str, tmp_path: Path) -> None:
    from langchain_azure_dynamic_sessions import SessionsPythonREPLTool

    # The tool's public `access_token_provider` field replaces the Entra ID token fetch.
    tool = SessionsPythonREPLTool(pool_management_endpoint=url, access_token_provider=lambda: TOKEN)
    content = json.loads(tool.invoke("print('hello world')\n1 + 1"))
    assert content == {"result": 2, "stdout": "hello world\n", "stderr": ""}
    message = tool.invoke(
        {
            "args": {"python_code": "import matplotlib.pyplot as plt\nplt.plot([1, 2])\nplt.show()"},
            "id": "call-1",
            "name": tool.name,
            "type": "tool_call",
        }
    )
    shown = json.loads(message.content)["result"]  # what the LLM sees: base64 stripped by the tool
    assert shown["type"] == "image" and shown["format"] == "png" and "base64_data" not in shown
    assert base64.b64decode(message.artifact["result"]["base64_data"]).startswith(b"\x89PNG")

    meta = tool.upload_file(data=io.BytesIO(b"hello from test1"), remote_file_path="test1.txt")
    assert (meta.filename, meta.size_in_bytes) == ("test1.txt", 16)
    local = tmp_path / "sample.csv"
    local.write_text("a,b\n1,2\n")
    assert tool.upload_file(local_file_path=str(local)).filename == "sample.csv"
    assert {"test1.txt", "sample.csv"} <= {f.filename for f in tool.list_files()}
    assert tool.download_file(remote_file_path="test1.txt").read() == b"hello from test1"
    assert json.loads(tool.invoke("open('/mnt/data/test1.txt').read()"))["result"] == "hello from test1"

    # close() sends DELETE session (api-version 2025-10-02-preview) from a daemon thread and rotates the id.
    old_id = tool.session_id
    manager = server_app(url).state.pool.manager
    assert old_id in manager
    tool.close()
    deadline = time.monotonic() + 30
    while old_id in manager and time.monotonic() < deadline:
        time.sleep(0.05)
    assert old_id not in manager and tool.session_id != old_id


def test_llamaindex_azure_code_interpreter_tool_spec(url: str, tmp_path: Path) -> None:
    from llama_index.tools.azure_code_interpreter import AzureCodeInterpreterToolSpec

    spec = AzureCodeInterpreterToolSpec(pool_management_endpoint=url, local_save_path=str(tmp_path))
    # The spec's public `access_token_provider` attribute is what every call asks for its bearer token.
    spec.access_token_provider = lambda: TOKEN
    out = spec.code_interpreter("```python\nz = 6\nz * 7\n```")
    assert out["properties"]["status"] == "Success" and out["properties"]["result"] == 42
    image = spec.code_interpreter("import matplotlib.pyplot as plt\nplt.bar([1, 2], [3, 4])\nplt.show()")
    assert image["properties"]["result"]["saved_to_local_path"] is True
    saved = list(tmp_path.glob(f"{spec.session_id}_*.png"))
    assert saved and saved[0].read_bytes().startswith(b"\x89PNG")

    local = tmp_path / "numbers.txt"
    local.write_text("1 2 3")
    uploaded = spec.upload_file(local_file_path=str(local))
    assert [(m.filename, m.size_in_bytes) for m in uploaded] == [("numbers.txt", 5)]
    assert "numbers.txt" in {m.filename for m in spec.list_files()}
    assert spec.download_file_to_local("/mnt/data/numbers.txt").read() == b"1 2 3"
    target = tmp_path / "copy.txt"
    assert spec.download_file_to_local("numbers.txt", str(target)) is None and target.read_text() == "1 2 3"
    assert spec.code_interpreter("sum(map(int, open('numbers.txt').read().split()))")["properties"]["result"] == 6


# -- session code racing the file API ----------------------------------------------------------------------
FLIPPER = """
import os, threading
flips = 0
stop_flipping = False
def _flip():
    global flips
    while not stop_flipping:
        with open('flip.regular', 'wb') as f:
            f.write(b'regular content')
        os.replace('flip.regular', 'flip.txt')
        os.symlink(HOST_FILE, 'flip.link')
        os.replace('flip.link', 'flip.txt')
        flips += 1
threading.Thread(target=_flip, daemon=True).start()
"""


def test_download_never_follows_a_file_swapped_for_a_symlink(url: str, http: requests.Session, tmp_path: Path) -> None:
    host_file = tmp_path / "host-secret.txt"
    host_file.write_bytes(b"HOST SECRET - must never be served")
    sid = new_id()
    started = call(http, url, "POST", "executions", sid, CURRENT, json={"code": f"HOST_FILE = {str(host_file)!r}"})
    assert started.status_code == 200
    assert call(http, url, "POST", "executions", sid, CURRENT, json={"code": FLIPPER}).json()["status"] == "Succeeded"
    outcomes: dict[int, int] = {}
    try:
        for i in range(200):
            path = "files/flip.txt/content" if i % 2 else "files/content/flip.txt"
            response = call(http, url, "GET", path, sid, CURRENT if i % 2 else LEGACY)
            assert b"HOST SECRET" not in response.content, f"download {i} served the host file"
            if response.status_code == 200:
                assert response.content == b"regular content"
            else:
                assert_error(response, 400, "InvalidPath")  # the final component was a symlink just then
            outcomes[response.status_code] = outcomes.get(response.status_code, 0) + 1
            metadata = call(http, url, "GET", "files/flip.txt", sid, CURRENT)
            assert metadata.status_code in (200, 400) and "HOST SECRET" not in metadata.text
            if metadata.status_code == 200:
                assert metadata.json()["sizeInBytes"] == len(b"regular content")
    finally:
        stopped = call(http, url, "POST", "executions", sid, CURRENT, json={"code": "stop_flipping = True\nflips"})
        call(http, url, "DELETE", "session", sid, CURRENT)
    assert stopped.json()["result"]["executionResult"] > 200, "the flipping thread barely ran"
    # Both states were hit, so the race really was exercised.
    assert outcomes.get(200) and outcomes.get(400), outcomes


def test_listing_leaves_out_links_and_never_stats_through_them(url: str, http: requests.Session) -> None:
    sid = new_id()
    code = "import os\nos.makedirs('real/deep')\nopen('real/deep/f.txt', 'w').write('12345')\n"
    code += "os.symlink('/etc', 'etc-link')"
    assert call(http, url, "POST", "executions", sid, CURRENT, json={"code": code}).json()["status"] == "Succeeded"
    deep = call(http, url, "GET", "files", sid, CURRENT, params={"recursive": "true"})
    assert {(e["directory"], e["name"], e["type"]) for e in deep.json()["value"]} == {
        ("", "real", "Directory"),
        ("real", "deep", "Directory"),
        ("real/deep", "f.txt", "File"),
    }
    sized = call(http, url, "GET", "files/real/deep/f.txt", sid, CURRENT).json()
    assert sized["sizeInBytes"] == 5 and sized["type"] == "File"
    assert call(http, url, "GET", "files/real", sid, CURRENT).json()["type"] == "Directory"
    assert_error(call(http, url, "GET", "files/etc-link", sid, CURRENT), 400, "InvalidPath")
    listed_through_link = http.get(f"{url}/files?api-version={CURRENT}&identifier={sid}&path=etc-link", timeout=30)
    assert_error(listed_through_link, 400, "InvalidPath")
    call(http, url, "DELETE", "session", sid, CURRENT)


# -- many sessions at once -----------------------------------------------------------------------------
def test_twenty_concurrent_sessions_do_not_cross_talk(url: str) -> None:
    ids = [f"crowd-{i:02d}-{uuid.uuid4().hex[:8]}" for i in range(20)]

    def one(sid: str) -> tuple[str, Any, list[str], bytes]:
        with requests.Session() as s:
            s.headers["Authorization"] = f"Bearer {TOKEN}"
            call(s, url, "POST", "code/execute", sid, json={"properties": {"code": f"secret = {sid!r}"}})
            call(s, url, "POST", "files/upload", sid, files={"file": (f"{sid}.txt", sid.encode())})
            got = call(s, url, "POST", "executions", sid, CURRENT, json={"code": "secret"}).json()
            names = [e["name"] for e in call(s, url, "GET", "files", sid, CURRENT).json()["value"]]
            content = call(s, url, "GET", f"files/{sid}.txt/content", sid, CURRENT).content
            return sid, got["result"]["executionResult"], names, content

    with ThreadPoolExecutor(max_workers=len(ids)) as pool:
        results = list(pool.map(one, ids))
    try:
        for sid, secret, names, content in results:
            assert secret == sid
            assert names == [f"{sid}.txt"]
            assert content == sid.encode()
    finally:
        with requests.Session() as s:
            s.headers["Authorization"] = f"Bearer {TOKEN}"
            for sid in ids:
                call(s, url, "DELETE", "session", sid, CURRENT)


# -- malformed and hostile requests --------------------------------------------------------------------
WITNESS = "witness-session"

MALFORMED = [
    ("no api-version", "POST", "code/execute", WITNESS, None, {"json": {"properties": {"code": "1"}}}, 400),
    (
        "unknown api-version",
        "POST",
        "code/execute",
        WITNESS,
        "2023-01-01",
        {"json": {"properties": {"code": "1"}}},
        400,
    ),
    ("no identifier", "POST", "code/execute", None, LEGACY, {"json": {"properties": {"code": "1"}}}, 400),
    ("short identifier", "POST", "executions", "abc", CURRENT, {"json": {"code": "1"}}, 400),
    ("identifier with space", "POST", "executions", "has space", CURRENT, {"json": {"code": "1"}}, 400),
    ("identifier too long", "GET", "files", "x" * 129, CURRENT, {}, 400),
    (
        "not json",
        "POST",
        "executions",
        WITNESS,
        CURRENT,
        {"data": b"{nope", "headers": {"Content-Type": "application/json"}},
        400,
    ),
    ("json array", "POST", "executions", WITNESS, CURRENT, {"json": ["code"]}, 400),
    (
        "text/plain execute",
        "POST",
        "executions",
        WITNESS,
        CURRENT,
        {"data": b'{"code": "1"}', "headers": {"Content-Type": "text/plain"}},
        415,
    ),
    ("execute without content type", "POST", "code/execute", WITNESS, LEGACY, {"data": b'{"code": "1"}'}, 415),
    (
        "form-encoded execute",
        "POST",
        "executions",
        WITNESS,
        CURRENT,
        {"data": {"code": "1"}},
        415,
    ),
    (
        "missing code",
        "POST",
        "code/execute",
        WITNESS,
        LEGACY,
        {"json": {"properties": {"codeInputType": "inline"}}},
        400,
    ),
    ("code not a string", "POST", "executions", WITNESS, CURRENT, {"json": {"code": 42}}, 400),
    ("bad codeInputType", "POST", "executions", WITNESS, CURRENT, {"json": {"code": "1", "codeInputType": "Url"}}, 400),
    (
        "bad base64",
        "POST",
        "executions",
        WITNESS,
        CURRENT,
        {"json": {"code": "%%%", "codeInputType": "InlineBase64"}},
        400,
    ),
    ("negative timeout", "POST", "executions", WITNESS, CURRENT, {"json": {"code": "1", "timeoutInSeconds": -5}}, 400),
    ("upload not multipart", "POST", "files/upload", WITNESS, LEGACY, {"data": b"raw bytes"}, 400),
    ("upload without filename", "POST", "files/upload", WITNESS, LEGACY, {"files": {"file": (None, b"x")}}, 400),
    ("upload traversal", "POST", "files/upload", WITNESS, LEGACY, {"files": {"file": ("../../evil.txt", b"x")}}, 400),
    ("upload absolute", "POST", "files", WITNESS, CURRENT, {"files": {"file": ("/etc/evil.txt", b"x")}}, 400),
    ("download traversal", "GET", "files/content/%2e%2e/%2e%2e/etc/passwd", WITNESS, LEGACY, {}, 400),
    ("download through symlink", "GET", "files/escape/passwd/content", WITNESS, CURRENT, {}, 400),
    ("download missing", "GET", "files/content/missing.txt", WITNESS, LEGACY, {}, 404),
    ("legacy has no metadata route", "GET", "files/witness.txt", WITNESS, LEGACY, {}, 404),
    ("delete a directory", "DELETE", "files/sub", WITNESS, CURRENT, {}, 400),
    ("path parameter traversal", "GET", "files", WITNESS, CURRENT, {"params": {"path": "../.."}}, 400),
    ("unknown route", "GET", "python/execute", WITNESS, LEGACY, {}, 404),
    ("wrong method", "PUT", "files", WITNESS, CURRENT, {}, 405),
]


@pytest.fixture(scope="module")
def witness(url: str, http: requests.Session) -> str:
    code = "import os\nwitness_state = 'alive'\nos.symlink('/etc', 'escape')\nos.makedirs('sub/inner')"
    props = call(http, url, "POST", "code/execute", WITNESS, json={"properties": {"code": code}}).json()["properties"]
    assert props["status"] == "Success", props
    call(http, url, "POST", "files/upload", WITNESS, files={"file": ("witness.txt", b"intact")})
    return WITNESS


@pytest.mark.parametrize(
    ("method", "path", "identifier", "version", "kwargs", "status"),
    [case[1:] for case in MALFORMED],
    ids=[case[0] for case in MALFORMED],
)
def test_malformed_request_gets_4xx_and_hurts_no_session(
    url: str,
    http: requests.Session,
    witness: str,
    method: str,
    path: str,
    identifier: str | None,
    version: str | None,
    kwargs: dict[str, Any],
    status: int,
) -> None:
    extra_params = kwargs.pop("params", None)
    if extra_params:
        path = f"{path}?{'&'.join(f'{k}={quote(v)}' for k, v in extra_params.items())}"
        params = {"api-version": version, "identifier": identifier}
        response = http.request(method, f"{url}/{path}&{'&'.join(f'{k}={quote(v)}' for k, v in params.items())}")
    else:
        response = call(http, url, method, path, identifier, version, **kwargs)
    assert_error(response, status)
    alive = call(http, url, "POST", "code/execute", witness, json={"properties": {"code": "witness_state"}})
    assert alive.json()["properties"]["result"] == "alive"
    assert call(http, url, "GET", "files/content/witness.txt", witness).content == b"intact"


def test_auth_is_required_and_checked(url: str) -> None:
    target = f"{url}/code/execute?api-version={LEGACY}&identifier={new_id()}"
    body = {"properties": {"code": "1"}}
    missing = requests.post(target, json=body, timeout=10)
    assert "No bearer token" in assert_error(missing, 401, "Unauthorized")["message"]
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    wrong = requests.post(target, json=body, headers={"Authorization": "Bearer not-the-token"}, timeout=10)
    assert "not valid" in assert_error(wrong, 401, "Unauthorized")["message"]
    basic = requests.post(target, json=body, headers={"Authorization": f"Basic {TOKEN}"}, timeout=10)
    assert_error(basic, 401, "Unauthorized")
    assert_error(requests.get(f"{url}/status", timeout=10), 401)
