"""Turning a run's iopub messages into an :class:`ExecutionResult`, and watching /mnt/data for changes."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..models import ExecutionError, Output, RemoteFile
from ..paths import guess_mime_type
from ..render import strip_ansi

__all__ = ["FileSnapshot", "RunCollector", "StreamBuffer", "diff_snapshots", "snapshot"]

#: Directory entries a snapshot visits at most; a data directory bigger than that is only partly watched.
MAX_SNAPSHOT_ENTRIES = 20_000

#: (size, mtime_ns) per relative path.
FileSnapshot = dict[str, tuple[int, int]]


class StreamBuffer:
    """Text of one output stream, bounded in memory: past ``limit`` characters the head and the tail are
    kept and the middle is counted as dropped (a program that prints 100 MB cannot exhaust the host)."""

    def __init__(self, limit: int) -> None:
        self._limit = max(limit, 2)
        self._head: list[str] = []
        self._head_len = 0
        self._tail: list[str] = []
        self._tail_len = 0
        self.dropped = 0

    def write(self, text: str) -> None:
        half = self._limit // 2
        if self._head_len < half:
            take = text[: half - self._head_len]
            self._head.append(take)
            self._head_len += len(take)
            text = text[len(take) :]
            if not text:
                return
        self._tail.append(text)
        self._tail_len += len(text)
        if self._tail_len > 2 * half:
            joined = "".join(self._tail)
            self.dropped += len(joined) - half
            self._tail, self._tail_len = [joined[-half:]], half

    def clear(self) -> None:
        self.__init__(self._limit)  # type: ignore[misc]

    def getvalue(self) -> str:
        head, tail = "".join(self._head), "".join(self._tail)
        if self.dropped:
            return f"{head}\n[... {self.dropped:,} characters not kept ...]\n{tail}"
        return head + tail


@dataclass
class RunCollector:
    """Accumulates one execution's output messages."""

    stream_limit: int
    stdout: StreamBuffer = field(init=False)
    stderr: StreamBuffer = field(init=False)
    result: Output | None = None
    displays: list[Output] = field(default_factory=list)
    error: ExecutionError | None = None
    execution_count: int | None = None
    _by_display_id: dict[str, Output] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.stdout = StreamBuffer(self.stream_limit)
        self.stderr = StreamBuffer(self.stream_limit)

    def handle(self, msg: dict[str, Any]) -> bool:
        """Take one iopub message of this run; returns True when the kernel went idle."""
        kind = msg["msg_type"]
        content = msg["content"]
        if kind == "stream":
            (self.stderr if content.get("name") == "stderr" else self.stdout).write(content.get("text", ""))
        elif kind == "execute_input":
            self.execution_count = content.get("execution_count")
        elif kind == "execute_result":
            self.result = Output(dict(content.get("data", {})), dict(content.get("metadata", {})))
            self.execution_count = content.get("execution_count", self.execution_count)
        elif kind == "display_data":
            output = Output(dict(content.get("data", {})), dict(content.get("metadata", {})))
            self.displays.append(output)
            display_id = (content.get("transient") or {}).get("display_id")
            if display_id:
                self._by_display_id[display_id] = output
        elif kind == "update_display_data":
            display_id = (content.get("transient") or {}).get("display_id")
            target = self._by_display_id.get(display_id) if display_id else None
            if target is not None:
                target.data = dict(content.get("data", {}))
                target.metadata = dict(content.get("metadata", {}))
        elif kind == "clear_output":
            self.stdout.clear()
            self.stderr.clear()
            self.displays.clear()
        elif kind == "error":
            self.error = ExecutionError(
                name=content.get("ename", "Error"),
                value=content.get("evalue", ""),
                traceback=strip_ansi("\n".join(content.get("traceback", []))),
            )
        elif kind == "status" and content.get("execution_state") == "idle":
            return True
        return False


def snapshot(root: Path) -> FileSnapshot:
    """Size and mtime of every file under ``root`` (symlinks are not followed)."""
    found: FileSnapshot = {}
    stack = [("", str(root))]
    visited = 0
    while stack and visited < MAX_SNAPSHOT_ENTRIES:
        prefix, directory = stack.pop()
        try:
            entries = os.scandir(directory)
        except OSError:
            continue
        with entries:
            for entry in entries:
                visited += 1
                rel = prefix + entry.name
                try:
                    if entry.is_dir(follow_symlinks=False):
                        stack.append((rel + "/", entry.path))
                    else:
                        st = entry.stat(follow_symlinks=False)
                        found[rel] = (st.st_size, st.st_mtime_ns)
                except OSError:
                    continue
    return found


def diff_snapshots(before: FileSnapshot, after: FileSnapshot) -> list[RemoteFile]:
    """Files created or changed between two snapshots, sorted by name."""
    changed: list[RemoteFile] = []
    for rel in sorted(after):
        size, mtime_ns = after[rel]
        previous = before.get(rel)
        if previous == (size, mtime_ns):
            continue
        changed.append(
            RemoteFile(
                filename=rel,
                size_in_bytes=size,
                mime_type=guess_mime_type(rel),
                last_modified=datetime.fromtimestamp(mtime_ns / 1e9, tz=timezone.utc),
                change="created" if previous is None else "modified",
            )
        )
    return changed
