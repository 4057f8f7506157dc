"""Timing, memory sampling and machine description shared by the benchmark sections."""

from __future__ import annotations

import os
import platform
import statistics
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timezone

import psutil


@dataclass
class Stat:
    """Median, min and max over ``n`` samples, in the row's unit."""

    median: float
    low: float
    high: float
    n: int

    @classmethod
    def of(cls, samples: list[float]) -> Stat:
        return cls(statistics.median(samples), min(samples), max(samples), len(samples))


def time_calls(fn: Callable[[], object], *, warmup: int, n: int) -> Stat:
    """Milliseconds per call of ``fn``, after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    return Stat.of(samples)


async def atime_calls(fn: Callable[[], Awaitable[object]], *, warmup: int, n: int) -> Stat:
    for _ in range(warmup):
        await fn()
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        await fn()
        samples.append((time.perf_counter() - started) * 1000)
    return Stat.of(samples)


class PeakRss:
    """Samples this process's RSS on a thread (every 2 ms) to find the peak growth during a block.

    The file copies under test release the GIL while reading and writing, so the sampler keeps running.
    """

    def __init__(self) -> None:
        self._proc = psutil.Process()
        self._stop = threading.Event()
        self.baseline = 0
        self.peak = 0

    def __enter__(self) -> PeakRss:
        self.baseline = self.peak = self._proc.memory_info().rss
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._proc.memory_info().rss)
            time.sleep(0.002)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._proc.memory_info().rss)

    @property
    def growth_mib(self) -> float:
        return (self.peak - self.baseline) / 2**20


def process_tree_memory(pid: int) -> tuple[float, float]:
    """USS and RSS in MiB of a process and its children (a sandbox wrapper's kernel is its child)."""
    root = psutil.Process(pid)
    uss = rss = 0
    for proc in [root, *root.children(recursive=True)]:
        info = proc.memory_full_info()
        uss += info.uss
        rss += info.rss
    return uss / 2**20, rss / 2**20


def machine() -> dict[str, str]:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    return {
        "CPU": cpu,
        "cores": str(os.cpu_count()),
        "RAM": f"{psutil.virtual_memory().total / 2**30:.1f} GiB",
        "Python": sys.version.split()[0],
        "OS": platform.platform(),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "load average (1/5/15 min)": load,
    }
