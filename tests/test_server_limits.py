"""Pool-server limits and lifecycle over real HTTP: cooldown expiry, the session cap, upload and body caps,
the execution cap, the loopback rule without a token, and a graceful shutdown that leaves no kernel behind."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import requests
from pool_server import running_pool_server, server_app

from llama_index_tools_codeinterp.core.errors import ConfigurationError
from llama_index_tools_codeinterp.core.local import LocalKernelBackend
from llama_index_tools_codeinterp.core.server import check_bind_allowed

CURRENT = "2025-10-02-preview"
LEGACY = "2024-02-02-preview"
AUTH = {"Authorization": "Bearer limits-token"}
MIB = 1024 * 1024


def execute(url: str, sid: str, code: str, **extra: object) -> requests.Response:
    return requests.post(
        f"{url}/executions?api-version={CURRENT}&identifier={sid}",
        json={"code": code, **extra},
        headers=AUTH,
        timeout=60,
    )


def kernel_pids(url: str) -> dict[str, int]:
    report = requests.get(f"{url}/status", headers=AUTH, timeout=30).json()
    return {s["session_id"]: s["backend"]["kernel_pid"] for s in report["sessions"]}


def wait_gone(pids: list[int], timeout: float = 30) -> list[int]:
    deadline = time.monotonic() + timeout
    alive = pids
    while time.monotonic() < deadline:
        alive = [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
        if not alive:
            break
        time.sleep(0.1)
    return alive


@pytest.fixture(scope="module")
def small() -> Iterator[str]:
    with running_pool_server(
        token="limits-token",
        max_sessions=2,
        max_upload_bytes=1 * MIB,
        max_request_bytes=64 * 1024,
        max_execution_seconds=1,
    ) as url:
        yield url


def test_session_cap_answers_429_pool_full_until_a_session_is_deleted(small: str) -> None:
    first, second, third = (str(uuid.uuid4()) for _ in range(3))
    assert execute(small, first, "1").status_code == 200
    assert execute(small, second, "2").status_code == 200
    full = execute(small, third, "3")
    assert full.status_code == 429
    assert full.headers["x-ms-error-code"] == full.json()["error"]["code"] == "SessionPoolFull"
    assert "All 2 sessions are in use" in full.json()["error"]["message"]
    # The sessions that exist keep working, and deleting one makes room.
    assert execute(small, first, "40 + 2").json()["result"]["executionResult"] == 42
    deleted = requests.delete(f"{small}/session?api-version={CURRENT}&identifier={second}", headers=AUTH, timeout=30)
    assert deleted.status_code == 204
    assert execute(small, third, "3").json()["status"] == "Succeeded"
    for sid in (first, third):
        requests.delete(f"{small}/session?api-version={CURRENT}&identifier={sid}", headers=AUTH, timeout=30)


def test_execution_cap_clamps_the_requested_timeout(small: str) -> None:
    sid = str(uuid.uuid4())
    data = execute(small, sid, "import time\ntime.sleep(20)", timeoutInSeconds=200).json()
    assert data["status"] == "Failed" and "1 s time limit" in data["result"]["stderr"]
    requests.delete(f"{small}/session?api-version={CURRENT}&identifier={sid}", headers=AUTH, timeout=30)


def test_upload_over_the_cap_is_413_with_and_without_content_length(small: str) -> None:
    sid = str(uuid.uuid4())
    target = f"{small}/files/upload?api-version={LEGACY}&identifier={sid}"
    big = b"x" * (2 * MIB)
    declared = requests.post(target, files={"file": ("big.bin", big)}, headers=AUTH, timeout=60)
    assert declared.status_code == 413 and declared.json()["error"]["code"] == "PayloadTooLarge"
    assert "limit of 1,048,576 bytes" in declared.json()["error"]["message"]

    boundary = "testboundary"

    def chunked() -> Iterator[bytes]:  # no Content-Length: the server must count while it streams
        yield f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.bin"\r\n\r\n'.encode()
        for _ in range(8):
            yield b"y" * (256 * 1024)
        yield f"\r\n--{boundary}--\r\n".encode()

    streamed = requests.post(
        target,
        data=chunked(),
        headers={**AUTH, "Content-Type": f"multipart/form-data; boundary={boundary}"},
        timeout=60,
    )
    assert streamed.status_code == 413, streamed.text
    listed = requests.get(f"{small}/files?api-version={LEGACY}&identifier={sid}", headers=AUTH, timeout=30)
    assert listed.status_code == 200 and listed.json()["value"] == []
    exact = requests.post(target, files={"file": ("ok.bin", b"z" * MIB)}, headers=AUTH, timeout=60)
    assert exact.status_code == 200 and exact.json()["value"][0]["properties"]["size"] == MIB
    requests.delete(f"{small}/session?api-version={CURRENT}&identifier={sid}", headers=AUTH, timeout=30)


def test_oversized_json_body_is_413(small: str) -> None:
    response = execute(small, str(uuid.uuid4()), "#" * (100 * 1024))
    assert response.status_code == 413 and response.json()["error"]["code"] == "RequestBodyTooLarge"


def test_idle_sessions_expire_with_their_files_and_kernel() -> None:
    with running_pool_server(token="limits-token", cooldown=1.0) as url:
        sid = str(uuid.uuid4())
        assert execute(url, sid, "open('kept.txt', 'w').write('x')").json()["status"] == "Succeeded"
        pid = kernel_pids(url)[sid]
        data_dir = Path(server_app(url).state.pool.manager.get(sid).backend.data_dir)
        assert (data_dir / "kept.txt").exists()
        deadline = time.monotonic() + 30
        while (sid in kernel_pids(url) or data_dir.exists()) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert sid not in kernel_pids(url), "the idle session was not culled"
        assert not data_dir.exists(), "the culled session's files were not removed"
        assert wait_gone([pid]) == []
        # The same identifier later starts a fresh, empty session.
        again = execute(url, sid, "import os\nsorted(os.listdir('.'))").json()
        assert again["result"]["executionResult"] == []


def test_in_process_server_shutdown_stops_every_kernel() -> None:
    with running_pool_server(token="limits-token") as url:
        for _ in range(2):
            assert execute(url, str(uuid.uuid4()), "1").status_code == 200
        pids = list(kernel_pids(url).values())
        data_root = Path(server_app(url).state.pool.data_root)
        assert len(pids) == 2 and all(psutil.pid_exists(p) for p in pids)
    assert wait_gone(pids) == []
    assert not data_root.exists()


def test_no_token_is_refused_beyond_loopback() -> None:
    with pytest.raises(ConfigurationError, match="without a token"):
        check_bind_allowed("0.0.0.0", None)
    check_bind_allowed("0.0.0.0", "secret")
    check_bind_allowed("127.0.0.1", None)
    check_bind_allowed("::1", None)
    env = {k: v for k, v in os.environ.items() if k != "CODEINTERP_SERVER_TOKEN"}
    cli = [sys.executable, "-m", "llama_index_tools_codeinterp.cli", "serve", "--host", "0.0.0.0", "--port", "1"]
    refused = subprocess.run(cli, capture_output=True, text=True, timeout=60, env=env)
    assert refused.returncode == 2
    assert "Refusing to listen on '0.0.0.0' without a token" in refused.stderr and "--token" in refused.stderr


def test_tokenless_loopback_server_accepts_local_calls_and_refuses_web_pages() -> None:
    with running_pool_server(token=None) as url:
        port = url.rsplit(":", 1)[1]
        files = f"{url}/files?api-version={CURRENT}&identifier={uuid.uuid4()}"
        listed = requests.get(files, timeout=30)
        assert listed.status_code == 200 and listed.json()["value"] == []
        for host in (f"localhost:{port}", "localhost", f"[::1]:{port}", f"127.0.0.1:{port}"):
            assert requests.get(files, headers={"Host": host}, timeout=30).status_code == 200, host

        sid = str(uuid.uuid4())
        target = f"{url}/executions?api-version={CURRENT}&identifier={sid}"
        # What a web page can send without a CORS preflight: a text/plain POST, with the browser's Origin.
        page = requests.post(
            target,
            data="{\"code\": \"open('/tmp/pwned', 'w')\"}",
            headers={"Content-Type": "text/plain", "Origin": "https://evil.example"},
            timeout=30,
        )
        assert page.status_code == 403 and page.json()["error"]["code"] == "OriginNotAllowed"
        assert "--token" in page.json()["error"]["message"]
        # Even as JSON, and even from a local-looking origin: a browser page is not a local program.
        for origin in ("https://evil.example", "http://127.0.0.1:8000", "null"):
            refused = requests.post(target, json={"code": "1"}, headers={"Origin": origin}, timeout=30)
            assert refused.status_code == 403, origin
        # DNS rebinding: the page's own host name resolves to 127.0.0.1, so the request names it in Host.
        for host in (f"evil.example:{port}", "attacker.test", f"127.0.0.1.nip.io:{port}", "[2001:db8::1]:80"):
            rebound = requests.post(target, json={"code": "1"}, headers={"Host": host}, timeout=30)
            assert rebound.status_code == 403 and rebound.json()["error"]["code"] == "HostNotAllowed", host
            assert rebound.headers["x-ms-error-code"] == "HostNotAllowed"
        assert sid not in server_app(url).state.pool.manager, "a refused request must not start a session"

        plain = requests.post(target, data='{"code": "1"}', headers={"Content-Type": "text/plain"}, timeout=30)
        assert plain.status_code == 415 and plain.json()["error"]["code"] == "UnsupportedMediaType"
        assert "application/json" in plain.json()["error"]["message"]
        charset = requests.post(
            target, data=b'{"code": "6 * 7"}', headers={"Content-Type": "application/json; charset=utf-8"}, timeout=30
        )
        assert charset.status_code == 200 and charset.json()["result"]["executionResult"] == 42


def test_token_server_answers_pages_that_carry_the_token(small: str) -> None:
    # With a token, only the token matters: a browser app that holds it may call from any origin or host name.
    sid = str(uuid.uuid4())
    response = requests.post(
        f"{small}/executions?api-version={CURRENT}&identifier={sid}",
        json={"code": "1 + 1"},
        headers={**AUTH, "Origin": "https://app.example", "Host": "pool.example"},
        timeout=60,
    )
    assert response.status_code == 200 and response.json()["result"]["executionResult"] == 2
    requests.delete(f"{small}/session?api-version={CURRENT}&identifier={sid}", headers=AUTH, timeout=30)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_cli_serve_stops_every_kernel_on_sigterm(tmp_path: Path) -> None:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "CODEINTERP_SERVER_TOKEN": "limits-token"}
    cli = [sys.executable, "-m", "llama_index_tools_codeinterp.cli", "serve", "--port", str(port)]
    cli += ["--data-root", str(tmp_path / "pool"), "--log-level", "warning"]
    server = subprocess.Popen(cli, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                time.sleep(0.1)
        for _ in range(2):
            assert execute(url, str(uuid.uuid4()), "open('f.txt', 'w').write('x')").json()["status"] == "Succeeded"
        pids = list(kernel_pids(url).values())
        assert len(pids) == 2
        server.send_signal(signal.SIGTERM)
        output, _ = server.communicate(timeout=60)
        # uvicorn re-raises the signal it handled once its shutdown (our lifespan included) is complete.
        assert server.returncode in (0, -signal.SIGTERM), output
        assert "Traceback" not in output, output
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    assert wait_gone(pids) == [], "kernels outlived the server"
    assert list((tmp_path / "pool").iterdir()) == []  # session directories removed, the given root kept


def test_backend_that_cannot_be_built_leaves_no_session_directory(tmp_path: Path) -> None:
    def misconfigured(identifier: str, data_dir: Path) -> LocalKernelBackend:
        return LocalKernelBackend(session_id=identifier, data_dir=data_dir, limits={"processes": 1})

    with running_pool_server(token="limits-token", data_root=tmp_path, backend_factory=misconfigured) as url:
        for _ in range(2):
            refused = execute(url, str(uuid.uuid4()), "1")
            assert refused.status_code == 503 and refused.json()["error"]["code"] == "SessionBackendMisconfigured"
            assert "processes" in refused.json()["error"]["message"]
        assert list(tmp_path.iterdir()) == [], "the data directory of a session that never started was left behind"
        assert len(server_app(url).state.pool.manager) == 0


def test_warm_kernels_serve_new_sessions_from_the_pool() -> None:
    with running_pool_server(token=None, warm_kernels=2) as url:
        kernel_pool = server_app(url).state.pool._kernel_pool
        kernel_pool.wait_full(timeout=60)
        for ident, value in (("warm-one", 6), ("warm-two", 7)):
            r = requests.post(
                f"{url}/executions",
                params={"api-version": "2025-10-02-preview", "identifier": ident},
                json={"code": f"import os\nwho = {value}\n(os.path.basename(os.getcwd()), who * 7)"},
                timeout=60,
            )
            assert r.status_code == 200, r.text
            assert r.json()["result"]["executionResult"][1] == value * 7
        assert kernel_pool.hits == 2
        # Pooled sessions are as separate as any: the second one never saw the first one's variable.
        r = requests.post(
            f"{url}/executions",
            params={"api-version": "2025-10-02-preview", "identifier": "warm-two"},
            json={"code": "who"},
            timeout=60,
        )
        assert r.json()["result"]["executionResult"] == 7
        kernel_pool.wait_full(timeout=60)  # refilled after the two takes
        pids = kernel_pool.kernel_pids()
    assert len(pids) == 2

    def alive(pid: int) -> bool:
        return psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE

    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(alive(pid) for pid in pids), "shutdown must stop the warm kernels too"
