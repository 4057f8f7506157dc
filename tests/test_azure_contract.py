"""The backend contract over HTTP: AzureSessionsBackend talking to ``codeinterp serve`` on 127.0.0.1, once per
wire dialect (legacy 2024-02-02-preview and current 2025-10-02-preview)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from backend_contract import BackendContract
from pool_server import running_pool_server

from llama_index_tools_codeinterp.core.azure import AzureSessionsBackend

TOKEN = "contract-token"


@pytest.fixture(scope="module")
def pool_url() -> Iterator[str]:
    with running_pool_server(token=TOKEN, cooldown=600) as url:
        yield url


def _backend(url: str, api_version: str) -> Iterator[AzureSessionsBackend]:
    backend = AzureSessionsBackend(url, api_version=api_version, token_provider=lambda: TOKEN, timeout=60)
    try:
        yield backend
    finally:
        backend.close()


@pytest.fixture(scope="module")
def legacy_backend(pool_url: str) -> Iterator[AzureSessionsBackend]:
    yield from _backend(pool_url, "2024-02-02-preview")


@pytest.fixture(scope="module")
def current_backend(pool_url: str) -> Iterator[AzureSessionsBackend]:
    yield from _backend(pool_url, "2025-10-02-preview")


class _AzureContract(BackendContract):
    def test_service_sends_the_full_run_result(self, backend: AzureSessionsBackend) -> None:
        # Azure's wire format carries stdout, stderr and one JSON value; display outputs (HTML, JSON, SVG), a
        # DataFrame's text/html and exact reprs (a tuple is a JSON list) come from codeinterp serve's additive
        # "codeinterp" key. Without it the rich-output contract tests above could not hold over HTTP.
        backend.execute("(1, 2)")
        assert backend.service_sends_full_results


class TestAzureLegacyContract(_AzureContract):
    @pytest.fixture
    def backend(self, legacy_backend: AzureSessionsBackend) -> AzureSessionsBackend:
        return legacy_backend


class TestAzureCurrentContract(_AzureContract):
    @pytest.fixture
    def backend(self, current_backend: AzureSessionsBackend) -> AzureSessionsBackend:
        return current_backend


# -- the plain Azure wire format (what a real pool sends: stdout, stderr, one JSON value) ----------------------
@pytest.fixture(scope="module", params=["2024-02-02-preview", "2025-10-02-preview"])
def plain_backend(pool_url: str, request: pytest.FixtureRequest) -> Iterator[AzureSessionsBackend]:
    for backend in _backend(pool_url, request.param):
        backend._read_service_extras = False  # ignore codeinterp serve's additive keys
        yield backend


def test_plain_wire_keeps_state_and_splits_streams(plain_backend: AzureSessionsBackend) -> None:
    assert plain_backend.execute("plain_x = 41").result is None
    r = plain_backend.execute("import sys\nprint('out')\nprint('err', file=sys.stderr)\nplain_x + 1")
    assert r.ok and r.stdout == "out\n" and "err" in r.stderr and r.text == "42" and r.azure_result_value() == 42
    assert not plain_backend.service_sends_full_results


def test_plain_wire_error_is_parsed_from_the_traceback_text(plain_backend: AzureSessionsBackend) -> None:
    r = plain_backend.execute("def f():\n    raise KeyError('missing')\nf()")
    assert not r.ok and r.error is not None
    assert r.error.name == "KeyError" and "missing" in r.error.value and "f()" in r.error.traceback


def test_plain_wire_files_come_from_listing_before_and_after(plain_backend: AzureSessionsBackend) -> None:
    r = plain_backend.execute("open('plain.csv', 'w').write('a\\n1\\n')")
    assert [(f.filename, f.change, f.mime_type) for f in r.files] == [("plain.csv", "created", "text/csv")]
    r = plain_backend.execute("open('plain.csv', 'a').write('2\\n')")
    assert [(f.filename, f.change) for f in r.files] == [("plain.csv", "modified")]
    assert plain_backend.execute("plain_noop = 1").files == []


def test_plain_wire_figure_is_a_session_file(plain_backend: AzureSessionsBackend) -> None:
    pytest.importorskip("matplotlib")
    r = plain_backend.execute("import matplotlib.pyplot as plt\nplt.plot([1, 2])\nplt.show()")
    (figure,) = r.images
    assert figure.saved_as and plain_backend.download(figure.saved_as).startswith(b"\x89PNG")
    assert figure.saved_as in {f.filename for f in r.files}


# -- streaming: client memory does not grow with the file size ------------------------------------------------
_STREAMING_CLIENT = """
import hashlib, os, sys, tempfile
from pathlib import Path
from llama_index_tools_codeinterp.core.azure import AzureSessionsBackend

def status_kb(field):
    return int(open("/proc/self/status").read().split(field + ":")[1].split()[0])

url, token, size_mb = sys.argv[1], sys.argv[2], int(sys.argv[3])
backend = AzureSessionsBackend(url, token_provider=lambda: token, track_files=False)
with tempfile.TemporaryDirectory() as tmp:
    big = Path(tmp) / "big.bin"
    with open(big, "wb") as f:
        for _ in range(size_mb):
            f.write(os.urandom(1 << 20))
    backend.upload("warmup.bin", b"x")  # imports and connections before the baseline
    backend.download("warmup.bin")
    base_kb = status_kb("VmRSS")
    backend.upload("big.bin", big)
    n = backend.download_to("big.bin", Path(tmp) / "back.bin")
    peak_kb = status_kb("VmHWM")  # not ru_maxrss: after fork+exec it can report the parent's size
    digest = lambda p: hashlib.file_digest(open(p, "rb"), "sha256").hexdigest()
    same = digest(big) == digest(Path(tmp) / "back.bin")
    backend.close()
print(n, same, (peak_kb - base_kb) // 1024)
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads VmRSS from /proc")
def test_large_files_stream_without_growing_client_memory(pool_url: str) -> None:
    size_mb = 48
    done = subprocess.run(
        [sys.executable, "-c", _STREAMING_CLIENT, pool_url, TOKEN, str(size_mb)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    transferred, same, growth_mb = done.stdout.split()
    assert int(transferred) == size_mb << 20 and same == "True"
    # Streaming keeps the client's peak far below the file size (measured: about 2 MB for 100 MB files).
    assert int(growth_mb) < size_mb // 2, done.stdout
