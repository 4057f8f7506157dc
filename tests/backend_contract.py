"""The backend contract: every backend (local, Azure over ``codeinterp serve``, ...) must pass these.

A test module subclasses :class:`BackendContract` and provides a ``backend`` fixture. Tests pick names that
do not collide, so one backend can serve the whole class.
"""

from __future__ import annotations

import io
import time

import pytest

from llama_index_tools_codeinterp.core import (
    Backend,
    ExecutionStatus,
    InvalidPathError,
    RemoteFileNotFoundError,
)

ALL_BYTES = bytes(range(256)) * 4


class BackendContract:
    """Behaviour every backend shares. Subclasses define the ``backend`` fixture."""

    # -- code ------------------------------------------------------------------------------------
    def test_state_persists_and_last_expression_is_the_result(self, backend: Backend) -> None:
        first = backend.execute("contract_x = 41")
        assert first.ok and first.result is None
        second = backend.execute("contract_x + 1")
        assert second.ok
        assert second.text == "42"
        assert second.azure_result_value() == 42

    def test_stdout_and_stderr_are_split(self, backend: Backend) -> None:
        r = backend.execute("import sys\nprint('to out')\nprint('to err', file=sys.stderr)")
        assert r.stdout == "to out\n"
        assert "to err" in r.stderr and "to err" not in r.stdout
        assert r.result is None

    def test_python_error_is_data_and_session_survives(self, backend: Backend) -> None:
        r = backend.execute("contract_before = 1\n1/0")
        assert r.status is ExecutionStatus.FAILED
        assert r.error is not None and r.error.name == "ZeroDivisionError"
        assert "division by zero" in r.error.value
        assert "1/0" in r.error.traceback
        assert "\x1b[" not in r.error.traceback
        assert backend.execute("contract_before").text == "1"

    def test_rich_outputs_are_captured(self, backend: Backend) -> None:
        code = (
            "from IPython.display import display, HTML, JSON, SVG\n"
            "display(HTML('<b>bold</b>'))\n"
            "display(JSON({'k': [1, 2]}))\n"
            'display(SVG(\'<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"></svg>\'))\n'
        )
        r = backend.execute(code)
        assert r.ok, r.error
        kinds = [set(d.data) for d in r.displays]
        assert any("text/html" in k for k in kinds)
        assert any("application/json" in k for k in kinds)
        assert any("image/svg+xml" in k for k in kinds)

    def test_dataframe_result_has_html_and_text(self, backend: Backend) -> None:
        pytest.importorskip("pandas")
        r = backend.execute("import pandas as pd\npd.DataFrame({'a': [1, 2], 'b': [3, 4]})")
        assert r.ok, r.error
        assert r.result is not None
        assert "text/html" in r.result.data
        assert "a" in (r.result.text or "")

    def test_figures_are_saved_as_files(self, backend: Backend) -> None:
        pytest.importorskip("matplotlib")
        r = backend.execute("import matplotlib.pyplot as plt\nplt.plot([1, 3, 2])\nplt.title('t')\nplt.show()")
        assert r.ok, r.error
        pngs = [f for f in r.files if f.mime_type == "image/png"]
        assert pngs, r.files
        content = backend.download(pngs[0].filename)
        assert content.startswith(b"\x89PNG")
        assert pngs[0].file_full_path.startswith("/mnt/data/")

    def test_created_and_changed_files_are_reported(self, backend: Backend) -> None:
        r = backend.execute("open('contract_report.csv', 'w').write('a,b\\n1,2\\n')")
        assert r.ok, r.error
        created = {f.filename: f for f in r.files}
        assert "contract_report.csv" in created
        assert created["contract_report.csv"].size_in_bytes == 8
        assert created["contract_report.csv"].mime_type == "text/csv"
        again = backend.execute("open('contract_report.csv', 'a').write('3,4\\n')")
        assert [f.filename for f in again.files] == ["contract_report.csv"]
        assert again.files[0].change == "modified"
        quiet = backend.execute("contract_noop = 1")
        assert quiet.files == []

    def test_absolute_mnt_data_paths_work_in_code(self, backend: Backend) -> None:
        backend.upload("contract_abs_in.csv", b"n\n2\n3\n")
        code = (
            "import os, pathlib\n"
            "rows = open('/mnt/data/contract_abs_in.csv').read().split()[1:]\n"
            "pathlib.Path('/mnt/data/contract_abs_out.txt').write_text(str(sum(map(int, rows))))\n"
            "(os.path.exists('/mnt/data/contract_abs_out.txt'),\n"
            " sorted(os.listdir('/mnt/data')) == sorted(os.listdir('.')))"
        )
        r = backend.execute(code)
        assert r.ok, r.error
        assert r.text == "(True, True)"
        assert backend.download("contract_abs_out.txt") == b"5"
        assert [f.file_full_path for f in r.files] == ["/mnt/data/contract_abs_out.txt"]

    def test_timeout_interrupts_and_keeps_state(self, backend: Backend) -> None:
        backend.execute("contract_kept = 'still here'")
        r = backend.execute("import time\nwhile True: time.sleep(0.05)", timeout=1.5)
        assert r.status is ExecutionStatus.TIMED_OUT
        assert r.error is not None and r.error.name == "TimeoutError"
        assert not r.kernel_restarted
        assert any("time limit" in n for n in r.notices)
        assert backend.execute("contract_kept").text == "'still here'"

    def test_kernel_death_restarts_and_keeps_files(self, backend: Backend) -> None:
        backend.upload("contract_survivor.txt", b"survives")
        backend.execute("contract_lost = 1")
        started = time.monotonic()
        r = backend.execute("import os\nos._exit(3)", timeout=120)
        elapsed = time.monotonic() - started
        assert r.status is ExecutionStatus.FAILED
        assert r.kernel_restarted
        assert elapsed < 60, "death must be noticed long before the time limit"
        assert any("restarted" in n for n in r.notices)
        assert backend.download("contract_survivor.txt") == b"survives"
        after = backend.execute("'contract_lost' in globals()")
        assert after.ok and after.text == "False"

    def test_segfault_is_survived(self, backend: Backend) -> None:
        r = backend.execute("import ctypes\nctypes.string_at(0)", timeout=120)
        assert r.status is ExecutionStatus.FAILED
        assert r.kernel_restarted
        assert backend.execute("6 * 7").text == "42"

    # -- files -----------------------------------------------------------------------------------
    def test_upload_list_download_round_trip(self, backend: Backend) -> None:
        uploaded = backend.upload("/mnt/data/contract_bytes.bin", ALL_BYTES)
        assert uploaded.filename == "contract_bytes.bin"
        assert uploaded.size_in_bytes == len(ALL_BYTES)
        assert backend.download("contract_bytes.bin") == ALL_BYTES
        names = {f.filename: f for f in backend.list_files()}
        assert names["contract_bytes.bin"].size_in_bytes == len(ALL_BYTES)
        assert names["contract_bytes.bin"].file_full_path == "/mnt/data/contract_bytes.bin"
        r = backend.execute("open('contract_bytes.bin', 'rb').read() == bytes(range(256)) * 4")
        assert r.text == "True"

    def test_non_ascii_names_and_streams(self, backend: Backend) -> None:
        name = "données/résumé ü 東京.txt"
        backend.upload(name, io.BytesIO("héllo wörld".encode()))
        assert backend.download(f"/mnt/data/{name}") == "héllo wörld".encode()
        sink = io.BytesIO()
        assert backend.download_to(name, sink) == len("héllo wörld".encode())
        assert name in {f.filename for f in backend.list_files()}
        r = backend.execute(f"open({name!r}, encoding='utf-8').read()")
        assert r.text == "'héllo wörld'"

    def test_upload_from_host_path(self, backend: Backend, tmp_path) -> None:
        local = tmp_path / "host.csv"
        local.write_bytes(b"x,y\n1,2\n")
        backend.upload("contract_host.csv", local)
        assert backend.download("contract_host.csv") == b"x,y\n1,2\n"
        out = tmp_path / "back.csv"
        backend.download_to("contract_host.csv", out)
        assert out.read_bytes() == b"x,y\n1,2\n"

    def test_delete_file(self, backend: Backend) -> None:
        backend.upload("contract_gone.txt", b"x")
        backend.delete_file("contract_gone.txt")
        assert "contract_gone.txt" not in {f.filename for f in backend.list_files()}
        with pytest.raises(RemoteFileNotFoundError):
            backend.download("contract_gone.txt")

    @pytest.mark.parametrize(
        "bad", ["../escape.txt", "/etc/passwd", "a/../../b", "/mnt/data/../../etc/passwd", "", "x\x00y"]
    )
    def test_path_traversal_is_refused(self, backend: Backend, bad: str) -> None:
        with pytest.raises(InvalidPathError):
            backend.upload(bad, b"nope")
        with pytest.raises(InvalidPathError):
            backend.download(bad)

    def test_missing_file_names_the_fix(self, backend: Backend) -> None:
        with pytest.raises(RemoteFileNotFoundError) as info:
            backend.download("contract_never_written.txt")
        assert "contract_never_written.txt" in str(info.value)
