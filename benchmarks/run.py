"""``make bench``: codeinterp side by side with raw jupyter-client and peer tools, on this machine, in one run.

Every timing has untimed warm-up calls first, then the median with min-max over n samples. Ratios compare
our row with the baseline named in its section (below 1.0 is faster for times, above 1.0 is more for rates).
Targets are shown next to the numbers; they are measured here and never asserted in tests.

Usage: ``python -m benchmarks.run [--quick] [--only SECTION ...] [--no-write]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from ._measure import PeakRss, Stat, machine, process_tree_memory, time_calls

RESULTS = Path(__file__).with_name("results.md")


@dataclass
class Row:
    label: str
    stat: Stat | None
    unit: str
    #: Label of the row in the same section this one is compared with.
    baseline: str | None = None
    #: Target text and its check on the median (None: no target).
    target: str | None = None
    meets: Callable[[float], bool] | None = None
    note: str = ""


@dataclass
class Section:
    title: str
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, row: Row) -> Row:
        self.rows.append(row)
        print(f"  {row.label}: {_fmt_stat(row.stat, row.unit)} {row.note}", flush=True)
        return row


@dataclass
class Config:
    quick: bool

    def n(self, full: int) -> int:
        return max(3, full // 5) if self.quick else full


# -- warm trivial call ----------------------------------------------------------------------------------
def bench_warm_call(cfg: Config) -> Section:
    from jupyter_client.manager import KernelManager

    from llama_index_tools_codeinterp import CodeInterpreterToolSpec
    from llama_index_tools_codeinterp.core.local import LocalKernelBackend

    sec = Section("Trivial call `1+1` on a warm session (ms per call)")
    raw_label = "raw jupyter-client `execute_interactive`, default ipykernel (store_history=True)"
    km = KernelManager(kernel_name="python3")
    km.start_kernel()
    kc = km.client()
    kc.start_channels()
    kc.wait_for_ready(timeout=60)
    try:
        n = cfg.n(200)
        sec.add(
            Row(raw_label, time_calls(lambda: kc.execute_interactive("1+1", output_hook=_ignore), warmup=20, n=n), "ms")
        )
        sec.add(
            Row(
                "raw jupyter-client `execute_interactive`, default ipykernel (store_history=False)",
                time_calls(
                    lambda: kc.execute_interactive("1+1", store_history=False, output_hook=_ignore), warmup=20, n=n
                ),
                "ms",
                baseline=raw_label,
            )
        )
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)

    backend = LocalKernelBackend()
    try:
        backend.wait_ready()
        sec.add(
            Row(
                "ours: `LocalKernelBackend.execute`",
                time_calls(lambda: backend.execute("1+1"), warmup=20, n=n),
                "ms",
                baseline=raw_label,
                target="≤ raw, aim < 5 ms",
                meets=lambda m: m < 5,
            )
        )
    finally:
        backend.close()

    spec = CodeInterpreterToolSpec()
    try:
        spec.backend.wait_ready()  # type: ignore[attr-defined]
        sec.add(
            Row(
                "ours: `CodeInterpreterToolSpec.code_interpreter` (direct call)",
                time_calls(lambda: spec.code_interpreter("1+1"), warmup=20, n=n),
                "ms",
                baseline=raw_label,
                target="≤ raw, aim < 5 ms",
                meets=lambda m: m < 5,
            )
        )
        tool = spec.to_tool_list()[0]
        sec.add(
            Row(
                "ours: LLM tool path `to_tool_list()[0].call(python_code=...)`",
                time_calls(lambda: tool.call(python_code="1+1"), warmup=20, n=n),
                "ms",
                baseline=raw_label,
            )
        )
    finally:
        spec.backend.close()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from langchain_experimental.tools import PythonREPLTool
        from llama_index.tools.code_interpreter import CodeInterpreterToolSpec as LlamaSubprocessSpec

    llama_spec = LlamaSubprocessSpec()
    sec.add(
        Row(
            "peer: llama-index-tools-code-interpreter `code_interpreter` (subprocess per call, stateless)",
            time_calls(lambda: llama_spec.code_interpreter("print(1+1)"), warmup=3, n=cfg.n(30)),
            "ms",
            baseline=raw_label,
        )
    )
    repl = PythonREPLTool()
    sec.add(
        Row(
            "peer: langchain-experimental `PythonREPLTool.invoke` (exec in the host process, no isolation)",
            time_calls(lambda: repl.invoke("print(1+1)"), warmup=20, n=n),
            "ms",
            baseline=raw_label,
        )
    )
    return sec


def _ignore(msg: Any) -> None:
    pass


# -- first call on a new session ------------------------------------------------------------------------
def bench_first_call(cfg: Config) -> Section:
    from jupyter_client.manager import KernelManager

    from llama_index_tools_codeinterp.core.local import LocalKernelBackend

    sec = Section("First call on a new session: construct + first `execute('1+1')` (ms)")
    n = cfg.n(8)
    raw_label = "raw jupyter-client: `start_kernel` + `wait_for_ready` + `execute_interactive`"

    def raw_first() -> None:
        km = KernelManager(kernel_name="python3")
        km.start_kernel()
        kc = km.client()
        kc.start_channels()
        kc.wait_for_ready(timeout=60)
        kc.execute_interactive("1+1", output_hook=_ignore)
        kc.stop_channels()
        km.shutdown_kernel(now=True)

    sec.add(Row(raw_label, time_calls(raw_first, warmup=1, n=n), "ms"))

    samples = []
    for _ in range(n + 1):
        started = time.perf_counter()
        backend = LocalKernelBackend()
        backend.execute("1+1")
        samples.append((time.perf_counter() - started) * 1000)
        backend.close()
    sec.add(Row("ours, no pool: `LocalKernelBackend()` + `execute`", Stat.of(samples[1:]), "ms", baseline=raw_label))

    try:
        from llama_index_tools_codeinterp.core.local.pool import KernelPool
    except ImportError:
        sec.notes.append("The warm pool (`core/local/pool.py`) is not there yet: no pooled row.")
        return sec
    pool = KernelPool(size=2)
    try:
        samples = []
        for _ in range(n + 1):
            pool.wait_full(timeout=60)  # a warm pool: every pooled kernel is ready before the session starts
            started = time.perf_counter()
            backend = LocalKernelBackend(pool=pool)
            backend.execute("1+1")
            samples.append((time.perf_counter() - started) * 1000)
            backend.close()
        sec.add(
            Row(
                "ours, warm pool (size 2): `LocalKernelBackend(pool=pool)` + `execute`",
                Stat.of(samples[1:]),
                "ms",
                baseline=raw_label,
                target="< 50 ms",
                meets=lambda m: m < 50,
            )
        )
    finally:
        pool.close()
    return sec


# -- the lean per-call path: where a trivial call's time goes ------------------------------------------
_LEAN_FLAGS = ("--Kernel._execute_sleep=", "--IPKernelApp.exec_lines=def _codeinterp_lean_flush")


def _started_with_flags(flags: tuple[str, ...]) -> Any:
    """A local backend whose kernel was launched with ``flags`` instead of ours (for the A/B rows only)."""
    from llama_index_tools_codeinterp.core.local import LocalKernelBackend, kernel

    saved = kernel.KERNEL_FLAGS
    kernel.KERNEL_FLAGS = flags
    try:
        backend = LocalKernelBackend()
        backend.wait_ready()
    finally:
        kernel.KERNEL_FLAGS = saved
    return backend


def _cpu_ms(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        times = psutil.Process(pid).cpu_times()
        total += times.user + times.system
    return total * 1000


def bench_lean(cfg: Config) -> Section:
    from llama_index_tools_codeinterp.core import _loop
    from llama_index_tools_codeinterp.core.local import kernel
    from llama_index_tools_codeinterp.core.local.outputs import snapshot

    sec = Section(
        "Lean per-call path: our kernel flags vs ipykernel's stock per-call behaviour (same run, interleaved)"
    )
    stock = tuple(f for f in kernel.KERNEL_FLAGS if not f.startswith(_LEAN_FLAGS))
    variants = {
        "stock ipykernel flush + 0.5 ms execute sleep": stock,
        "ours (lean flush, no sleep)": kernel.KERNEL_FLAGS,
    }
    wall: dict[str, list[float]] = {name: [] for name in variants}
    kernel_cpu: dict[str, list[float]] = {name: [] for name in variants}
    host_cpu: dict[str, list[float]] = {name: [] for name in variants}
    n = cfg.n(150)
    for _ in range(1 if cfg.quick else 3):
        for name, flags in variants.items():
            backend = _started_with_flags(flags)
            try:
                root = psutil.Process(backend.status()["kernel_pid"])
                pids = [root.pid, *(c.pid for c in root.children(recursive=True))]
                me = [os.getpid()]
                for _ in range(20):
                    backend.execute("1+1")
                k0, h0 = _cpu_ms(pids), _cpu_ms(me)
                for _ in range(n):
                    started = time.perf_counter()
                    backend.execute("1+1")
                    wall[name].append((time.perf_counter() - started) * 1000)
                kernel_cpu[name].append((_cpu_ms(pids) - k0) / n)
                host_cpu[name].append((_cpu_ms(me) - h0) / n)
            finally:
                backend.close()
    base = next(iter(variants))
    for name in variants:
        sec.add(Row(f"{name}: `execute('1+1')` wall", Stat.of(wall[name]), "ms", f"{base}: `execute('1+1')` wall"))
        sec.add(Row(f"{name}: kernel CPU per call", Stat.of(kernel_cpu[name]), "ms", f"{base}: kernel CPU per call"))
        sec.add(Row(f"{name}: host CPU per call", Stat.of(host_cpu[name]), "ms", f"{base}: host CPU per call"))

    # Fixed per-call pieces on the host side.
    backend = _started_with_flags(kernel.KERNEL_FLAGS)
    try:

        async def noop() -> None:
            pass

        sec.add(
            Row(
                "host: hop onto the I/O loop and back (`run_sync` of a no-op)",
                time_calls(lambda: _loop.run_sync(noop()), warmup=50, n=cfg.n(500)),
                "ms",
            )
        )
        km = backend._km
        sec.add(
            Row(
                "host: `is_alive()` check before each run",
                time_calls(lambda: _loop.run_sync(km.is_alive()), warmup=50, n=cfg.n(500)),
                "ms",
                note="(includes the hop)",
            )
        )
        sec.add(
            Row(
                "host: /mnt/data snapshot, empty dir (2 per run)",
                time_calls(lambda: snapshot(backend.data_dir), warmup=50, n=cfg.n(500)),
                "ms",
            )
        )
    finally:
        backend.close()
    sec.notes.append(
        "CPU per call is psutil user+system time of the kernel process tree and of this process over n calls; "
        "n = interleaved rounds (fresh kernel each)."
    )
    return sec


# -- throughput with concurrent sessions ----------------------------------------------------------------
async def _loop_calls(call: Callable[[], Any], until: float) -> int:
    done = 0
    while time.perf_counter() < until:
        await call()
        done += 1
    return done


async def _throughput(calls: list[Callable[[], Any]], seconds: float) -> float:
    for call in calls:  # warm-up
        await call()
    started = time.perf_counter()
    counts = await asyncio.gather(*(_loop_calls(call, started + seconds) for call in calls))
    return sum(counts) / (time.perf_counter() - started)


def _raw_async_call(kc: Any) -> Callable[[], Any]:
    async def call() -> None:
        msg_id = kc.execute("1+1", store_history=False)
        while True:
            msg = await kc.get_iopub_msg(timeout=30)
            if (
                msg["parent_header"].get("msg_id") == msg_id
                and msg["msg_type"] == "status"
                and msg["content"]["execution_state"] == "idle"
            ):
                break
        while (await kc.get_shell_msg(timeout=30))["parent_header"].get("msg_id") != msg_id:
            pass

    return call


def bench_concurrency(cfg: Config) -> tuple[Section, Section]:
    from jupyter_client.manager import AsyncKernelManager

    from llama_index_tools_codeinterp.core.local import LocalKernelBackend

    sec = Section("Aggregate trivial calls per second with N concurrent sessions (calls/s, higher is better)")
    mem = Section("Memory per idle session (MiB of the kernel process tree, psutil)")
    counts = (1, 2, 4, 8)
    seconds = 1.0 if cfg.quick else 2.5
    reps = 1 if cfg.quick else 3

    raw: dict[int, list[float]] = {k: [] for k in counts}
    ours: dict[int, list[float]] = {k: [] for k in counts}
    backends = [LocalKernelBackend() for _ in range(max(counts))]

    async def run_all() -> None:
        managers = [AsyncKernelManager(kernel_name="python3") for _ in range(max(counts))]
        await asyncio.gather(*(km.start_kernel() for km in managers))
        clients = [km.client() for km in managers]
        for kc in clients:
            kc.start_channels()
        try:
            await asyncio.gather(*(kc.wait_for_ready(timeout=60) for kc in clients))
            await asyncio.gather(*(b.aexecute("1") for b in backends))
            await asyncio.sleep(1.0)
            raw_usage = [process_tree_memory(km.provisioner.pid) for km in managers]  # type: ignore[union-attr]
            our_usage = [process_tree_memory(b.status()["kernel_pid"]) for b in backends]
            for label, index in (("USS", 0), ("RSS", 1)):
                base = f"raw jupyter-client, default ipykernel: {label}"
                mem.add(_mem_row(base, [u[index] for u in raw_usage]))
                mem.add(_mem_row(f"ours: {label}", [u[index] for u in our_usage], baseline=base))
            raw_calls = [_raw_async_call(kc) for kc in clients]
            our_calls = [_ours_async_call(b) for b in backends]
            # Interleaved, so that load from elsewhere on the machine hits both sides alike.
            for _ in range(reps):
                for k in counts:
                    raw[k].append(await _throughput(raw_calls[:k], seconds))
                    ours[k].append(await _throughput(our_calls[:k], seconds))
        finally:
            for kc in clients:
                kc.stop_channels()
            await asyncio.gather(*(km.shutdown_kernel(now=True) for km in managers))

    try:
        asyncio.run(run_all())
    finally:
        for b in backends:
            b.close()
    for k in counts:
        label = f"raw jupyter-client async, {k} session(s)"
        sec.add(Row(label, Stat.of(raw[k]), "calls/s"))
        row = sec.add(Row(f"ours `aexecute`, {k} session(s)", Stat.of(ours[k]), "calls/s", label))
        if k == 4:
            raw_median = Stat.of(raw[k]).median
            row.target, row.meets = "within 10% of raw", lambda m, r=raw_median: m >= 0.9 * r
    sec.notes.append(f"Each sample is {seconds:g} s of back-to-back calls per session; n = repetitions.")
    return sec, mem


def _ours_async_call(backend: Any) -> Callable[[], Any]:
    async def call() -> None:
        await backend.aexecute("1+1")

    return call


def _mem_row(label: str, values: list[float], baseline: str | None = None) -> Row:
    return Row(label, Stat.of(values), "MiB", baseline)


# -- 100 MB upload / download ---------------------------------------------------------------------------
def bench_files(cfg: Config) -> Section:
    from llama_index_tools_codeinterp.core.local import LocalKernelBackend

    sec = Section("100 MB file into and out of a local session (ms; peak RSS growth of the host process in MiB)")
    n = cfg.n(5)
    scratch = Path(tempfile.mkdtemp(prefix="codeinterp-bench-"))
    source = scratch / "source.bin"
    with open(source, "wb") as f:
        for _ in range(100):
            f.write(os.urandom(1 << 20))
    backend = LocalKernelBackend()
    try:
        backend.wait_ready()
        copy_target = scratch / "copy.bin"

        def timed(fn: Callable[[], object]) -> tuple[Stat, float]:
            fn()  # warm-up (page cache)
            samples, growth = [], 0.0
            for _ in range(n):
                with PeakRss() as peak:
                    started = time.perf_counter()
                    fn()
                    samples.append((time.perf_counter() - started) * 1000)
                growth = max(growth, peak.growth_mib)
            return Stat.of(samples), growth

        copy_stat, copy_growth = timed(lambda: shutil.copyfile(source, copy_target))
        copy_label = "plain `shutil.copyfile` on the same disk"
        sec.add(Row(copy_label, copy_stat, "ms", note=f"(peak RSS growth {copy_growth:.1f} MiB)"))
        count_before = backend.execute("1").execution_count
        up_stat, up_growth = timed(lambda: backend.upload("big.bin", source))
        sec.add(
            Row(
                "ours: `upload('big.bin', host_path)`",
                up_stat,
                "ms",
                copy_label,
                "≤ 2x copy, growth < 32 MiB",
                lambda m, g=up_growth, c=copy_stat.median: m <= 2 * c and g < 32,
                note=f"(peak RSS growth {up_growth:.1f} MiB)",
            )
        )
        count_after = backend.execute("1").execution_count
        down_target = scratch / "down.bin"
        down_stat, down_growth = timed(lambda: backend.download_to("big.bin", down_target))
        sec.add(
            Row(
                "ours: `download_to('big.bin', host_path)`",
                down_stat,
                "ms",
                copy_label,
                "≤ 2x copy, growth < 32 MiB",
                lambda m, g=down_growth, c=copy_stat.median: m <= 2 * c and g < 32,
                note=f"(peak RSS growth {down_growth:.1f} MiB)",
            )
        )
        cells = (count_after or 0) - (count_before or 0) - 1
        sec.notes.append(
            f"Uploads ran {cells} code cell(s) in the kernel (execution count before/after): files go through "
            "the file system, never through code. For scale, base64 through a cell takes ≈40 s for 50 MiB "
            "(reference measurements §2g)."
        )
    finally:
        backend.close()
        shutil.rmtree(scratch, ignore_errors=True)
    return sec


# -- data-dir snapshot cost -----------------------------------------------------------------------------
def bench_snapshot(cfg: Config) -> Section:
    from llama_index_tools_codeinterp.core.local import LocalKernelBackend
    from llama_index_tools_codeinterp.core.local.outputs import snapshot

    sec = Section("Per-call /mnt/data snapshot (before and after every run) by data-dir size (ms)")
    n = cfg.n(100)
    for files in (0, 1000):
        backend = LocalKernelBackend()
        try:
            for i in range(files):
                (backend.data_dir / f"d{i % 10}").mkdir(exist_ok=True)
                (backend.data_dir / f"d{i % 10}" / f"f{i}.txt").write_text("x")
            backend.wait_ready()
            label = f"`snapshot()` alone, {files} files"
            sec.add(Row(label, time_calls(lambda b=backend: snapshot(b.data_dir), warmup=5, n=n), "ms"))
            sec.add(
                Row(
                    f"ours: `execute('1+1')`, {files} files in /mnt/data",
                    time_calls(lambda b=backend: b.execute("1+1"), warmup=10, n=n),
                    "ms",
                )
            )
        finally:
            backend.close()
    return sec


# -- through `codeinterp serve` -------------------------------------------------------------------------
def bench_serve(cfg: Config) -> Section:
    sec = Section("Through `codeinterp serve` on 127.0.0.1: our azure backend, HTTP, a local kernel (ms)")
    try:
        from llama_index_tools_codeinterp.core.azure import AzureSessionsBackend

        from ._server import serving
    except ImportError as exc:
        sec.notes.append(f"Skipped: the server or the azure backend is not there yet ({exc}).")
        print(f"  skipped: {exc}")
        return sec
    token = "bench-token"
    n = cfg.n(100)
    try:
        for warm in (0, 2):
            with serving(token=token, cooldown=600, warm_kernels=warm) as (url, app):

                def session(identifier: str | None = None, url: str = url) -> Any:
                    return AzureSessionsBackend(url, session_id=identifier, token_provider=lambda: token, timeout=60)

                if not warm:
                    backend = session()
                    try:
                        backend.execute("1")
                        sec.add(
                            Row(
                                "warm call: `AzureSessionsBackend.execute('1+1')` via serve",
                                time_calls(lambda b=backend: b.execute("1+1"), warmup=10, n=n),
                                "ms",
                            )
                        )
                        _bench_serve_files(sec, backend, cfg)
                    finally:
                        backend.close()
                samples = []
                for _ in range(cfg.n(6) + 1):
                    if warm:
                        app.state.pool._kernel_pool.wait_full(timeout=60)
                    started = time.perf_counter()
                    backend = session()
                    backend.execute("1+1")
                    samples.append((time.perf_counter() - started) * 1000)
                    backend.close()
                label = "first call on a new session via serve" + (", `--warm-kernels 2`" if warm else "")
                sec.add(Row(label, Stat.of(samples[1:]), "ms"))
    except Exception as exc:  # noqa: BLE001 - the row is reported as skipped, the run goes on
        sec.notes.append(f"Stopped early: {type(exc).__name__}: {exc}")
        print(f"  stopped early: {exc}")
    return sec


def _bench_serve_files(sec: Section, backend: Any, cfg: Config) -> None:
    """100 MB up and down through the azure backend and the server (both in this process, so the peak RSS
    growth covers the client and the server together)."""
    size = (25 if cfg.quick else 100) * 2**20
    with tempfile.TemporaryDirectory(prefix="codeinterp-bench-") as tmp:
        source, target = Path(tmp) / "big.bin", Path(tmp) / "back.bin"
        with open(source, "wb") as f:
            for _ in range(size // 2**20):
                f.write(os.urandom(2**20))
        for label, action in (
            ("upload", lambda: backend.upload("big.bin", source)),
            ("download", lambda: backend.download_to("big.bin", target)),
        ):
            with PeakRss() as peak:
                started = time.perf_counter()
                action()
                took = (time.perf_counter() - started) * 1000
            sec.add(
                Row(
                    f"{size // 2**20} MB {label} via serve (peak RSS growth of client + server: "
                    f"{peak.growth_mib:.1f} MiB)",
                    Stat.of([took]),
                    "ms",
                )
            )
        assert target.stat().st_size == size


# -- import time ----------------------------------------------------------------------------------------
def bench_imports(cfg: Config) -> Section:
    sec = Section("Import time in a fresh interpreter (ms)")
    n = cfg.n(5)
    probe = (
        "import sys, time; t = time.perf_counter(); {stmt}; "
        "print((time.perf_counter() - t) * 1000, 'llama_index.core' in sys.modules)"
    )
    # Each of ours next to what it cannot avoid importing (the baseline row just above it).
    statements = {
        "import jupyter_client": None,
        "import llama_index_tools_codeinterp.core": "import jupyter_client",
        "from langchain_core.tools import BaseTool": None,
        "import langchain_codeinterp": "from langchain_core.tools import BaseTool",
        "import llama_index_tools_codeinterp": None,
    }
    for stmt, baseline in statements.items():
        samples, pulls_llama = [], False
        for _ in range(n + 1):
            out = subprocess.run([sys.executable, "-c", probe.format(stmt=stmt)], capture_output=True, text=True)
            if out.returncode != 0:
                sec.notes.append(f"`{stmt}` failed: {out.stderr.strip().splitlines()[-1:]}")
                break
            ms, loaded = out.stdout.split()
            samples.append(float(ms))
            pulls_llama = loaded == "True"
        if len(samples) > 1:
            note = "(imports llama_index.core)" if pulls_llama else "(does not import llama_index.core)"
            base = f"`{baseline}`" if baseline else None
            sec.add(Row(f"`{stmt}`", Stat.of(samples[1:]), "ms", base, note=note))
    return sec


# -- rendering ------------------------------------------------------------------------------------------
def _fmt_num(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.2f}" if abs(x) < 10 else f"{x:.1f}"


def _fmt_stat(stat: Stat | None, unit: str) -> str:
    if stat is None:
        return "—"
    return f"{_fmt_num(stat.median)} {unit} ({_fmt_num(stat.low)}-{_fmt_num(stat.high)}, n={stat.n})"


def render(sections: list[Section], info: dict[str, str], elapsed: float) -> str:
    lines = ["# codeinterp benchmarks", "", "Produced by `make bench` (`python -m benchmarks.run`). Medians with"]
    lines += ["(min-max, n) after warm-up calls; ratios are against the section's baseline row.", ""]
    lines += [f"- **{k}**: {v}" for k, v in info.items()]
    lines += [f"- **run time**: {elapsed:.0f} s", ""]
    for sec in sections:
        lines += [f"## {sec.title}", ""]
        if sec.rows:
            lines += ["| | median | min-max | n | ratio | target |", "|---|---:|---:|---:|---:|---|"]
        by_label = {row.label: row for row in sec.rows}
        for row in sec.rows:
            if row.stat is None:
                continue
            ratio = ""
            base = by_label.get(row.baseline or "")
            if base is not None and base is not row and base.stat is not None and base.stat.median:
                ratio = f"{row.stat.median / base.stat.median:.2f}x"
            target = ""
            if row.target:
                ok = row.meets(row.stat.median) if row.meets else None
                target = f"{row.target} {'✅' if ok else '❌'}" if ok is not None else row.target
            label = f"{row.label} {row.note}".strip()
            med = f"{_fmt_num(row.stat.median)} {row.unit}"
            lines.append(
                f"| {label} | {med} | {_fmt_num(row.stat.low)}-{_fmt_num(row.stat.high)} | {row.stat.n} | {ratio} | {target} |"  # noqa: E501
            )
        lines += ([""] if sec.rows else []) + [f"*{note}*" for note in sec.notes] + ([""] if sec.notes else [])
    return "\n".join(lines).rstrip() + "\n"


SECTIONS: dict[str, Callable[[Config], Any]] = {
    "warm": bench_warm_call,
    "first": bench_first_call,
    "lean": bench_lean,
    "concurrency": bench_concurrency,
    "files": bench_files,
    "snapshot": bench_snapshot,
    "serve": bench_serve,
    "imports": bench_imports,
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples (a smoke run, not for publishing)")
    parser.add_argument("--only", nargs="+", choices=list(SECTIONS), help="run only these sections")
    parser.add_argument("--no-write", action="store_true", help=f"do not write {RESULTS.name}")
    args = parser.parse_args(argv)
    cfg = Config(quick=args.quick)
    info = machine()
    started = time.perf_counter()
    sections: list[Section] = []
    for name, bench in SECTIONS.items():
        if args.only and name not in args.only:
            continue
        print(f"[{name}]", flush=True)
        result = bench(cfg)
        sections.extend(result if isinstance(result, tuple) else [result])
    info["load average (1/5/15 min)"] += f" at start; {', '.join(f'{x:.2f}' for x in os.getloadavg())} at end"
    text = render(sections, info, time.perf_counter() - started)
    print()
    print(text)
    if not args.no_write:
        RESULTS.write_text(text)
        print(f"Written to {RESULTS}")


if __name__ == "__main__":
    main()
