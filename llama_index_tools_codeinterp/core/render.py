"""What the LLM sees: compact text built from an :class:`ExecutionResult`.

Rules: a size budget per stream (head and tail kept, the cut said in words, the full text saved as a session
file the model can open), no ANSI codes, carriage-return progress bars collapsed, never base64 (images become
``/mnt/data/...`` file references, and optionally image blocks for vision models), errors as ``Name: value``
plus a trimmed traceback, and a plain notice whenever state was lost.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from .models import ExecutionResult, Output, RemoteFile
from .paths import remote_display_path

__all__ = [
    "ImageRef",
    "LLMView",
    "RenderOptions",
    "clean_text",
    "human_size",
    "render_execution",
    "strip_ansi",
    "truncate",
]

_ANSI_RE = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07]*\x07")


def strip_ansi(text: str) -> str:
    """Remove terminal colour and control sequences (CSI and OSC)."""
    return _ANSI_RE.sub("", text)


_TB_RULE_RE = re.compile(r"^-{20,}\s*$", re.MULTILINE)

#: ``spill(name, text)`` saves ``text`` as a session file and returns its ``/mnt/data`` path (or None).
Spill = Callable[[str, str], "str | None"]


@dataclass(frozen=True)
class RenderOptions:
    """Budgets for the LLM rendering."""

    #: Characters kept per stream (stdout, stderr, result, displays); the rest is cut from the middle.
    max_chars: int = 4000
    #: Characters of a traceback kept (its end: the frames nearest the error).
    max_traceback_chars: int = 2000
    #: Files listed after a run before the list is summarised.
    max_files: int = 30
    #: Save the full text of a cut stream as a session file and tell the model where it is.
    save_full_output: bool = True
    #: Images handed to a vision model per run (when image blocks are on); the rest are named by path.
    max_images: int = 4


@dataclass
class ImageRef:
    """An image the run produced, for vision models: its session path and bytes."""

    path: str
    mime_type: str
    data: bytes


@dataclass
class LLMView:
    """The model-facing rendering: text, plus image references when image blocks are enabled."""

    text: str
    images: list[ImageRef] = field(default_factory=list)


def clean_text(text: str) -> str:
    """Strip ANSI escapes and collapse carriage-return rewrites (progress bars) to their final state."""
    text = strip_ansi(text)
    if "\r" in text:
        text = text.replace("\r\n", "\n")
        text = "\n".join(line.rsplit("\r", 1)[-1] for line in text.split("\n"))
    return text


def truncate(text: str, limit: int, *, full_text_at: str | None = None) -> str:
    """Keep the head and tail of ``text`` within ``limit`` characters, cutting at line ends where possible."""
    if len(text) <= limit:
        return text
    head_len = int(limit * 0.6)
    tail_len = limit - head_len
    head = text[:head_len]
    tail = text[-tail_len:]
    if "\n" in head[head_len // 2 :]:
        head = head[: head.rindex("\n") + 1]
    if "\n" in tail[: tail_len // 2]:
        tail = tail[tail.index("\n") + 1 :]
    cut = len(text) - len(head) - len(tail)
    where = f"; the full text is in {full_text_at}" if full_text_at else ""
    return f"{head}\n[... {cut:,} characters cut from the middle{where} ...]\n{tail}"


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("bytes", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{int(value)} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} bytes"  # pragma: no cover


def describe_file(f: RemoteFile) -> str:
    return f"{f.file_full_path} ({f.mime_type}, {human_size(f.size_in_bytes)})"


def render_execution(
    result: ExecutionResult,
    options: RenderOptions | None = None,
    *,
    spill: Spill | None = None,
    with_images: bool = False,
) -> LLMView:
    """Render one run for the model."""
    opts = options or RenderOptions()
    label = f"exec_{result.execution_count}" if result.execution_count is not None else "exec"
    sections: list[str] = [f"NOTE: {n}" for n in result.notices]

    def budgeted(name: str, text: str) -> str:
        text = clean_text(text)
        if len(text) <= opts.max_chars:
            return text
        saved = spill(f"outputs/{label}_{name}.txt", text) if (spill and opts.save_full_output) else None
        return truncate(text, opts.max_chars, full_text_at=saved)

    if result.stdout:
        sections.append("stdout:\n" + budgeted("stdout", result.stdout).rstrip("\n"))
    if result.stderr:
        sections.append("stderr:\n" + budgeted("stderr", result.stderr).rstrip("\n"))
    shown = [_describe_output(o) for o in result.displays]
    shown = [s for s in shown if s]
    if shown:
        sections.append("display:\n" + budgeted("display", "\n".join(shown)))
    if result.result is not None:
        value = _describe_output(result.result)
        if value:
            sections.append("result:\n" + budgeted("result", value))
    if result.error is not None:
        sections.append(_render_error(result, opts, budgeted))
    if result.files:
        lines = [f"- {describe_file(f)}" for f in result.files[: opts.max_files]]
        if len(result.files) > opts.max_files:
            lines.append(f"- ... and {len(result.files) - opts.max_files} more (call list_files to see all)")
        sections.append("files created or changed:\n" + "\n".join(lines))
    if len(sections) == len(result.notices):
        sections.append("(The code ran successfully and produced no output.)" if result.ok else "(no output)")

    images: list[ImageRef] = []
    if with_images:
        for output in result.images:
            data = output.image_bytes()
            mime = output.image_mime_type
            if data and mime and mime != "image/svg+xml":
                images.append(ImageRef(remote_display_path(output.saved_as or ""), mime, data))
        if len(images) > opts.max_images:
            rest = ", ".join(img.path for img in images[opts.max_images :])
            sections.append(f"({len(images) - opts.max_images} more image(s) not shown: {rest})")
            images = images[: opts.max_images]
    return LLMView("\n\n".join(sections), images)


def _describe_output(output: Output) -> str:
    """One rich output as text: an image becomes a file reference, never base64."""
    if output.image_mime_type:
        where = remote_display_path(output.saved_as) if output.saved_as else "not saved"
        return f"[image {output.image_mime_type} saved to {where}]"
    data = output.data
    if "text/markdown" in data and isinstance(data["text/markdown"], str):
        return data["text/markdown"]
    if "application/json" in data:
        return json.dumps(data["application/json"], ensure_ascii=False, default=str)
    if isinstance(data.get("text/plain"), str):
        return data["text/plain"]
    if isinstance(data.get("text/html"), str):
        return "[HTML output; its plain-text form was not provided]"
    kinds = ", ".join(sorted(data)) or "empty"
    return f"[output of type {kinds}]"


def _render_error(result: ExecutionResult, opts: RenderOptions, budgeted: Callable[[str, str], str]) -> str:
    error = result.error
    assert error is not None
    # The value can be arbitrarily long (raise ValueError(huge_text)): it gets the same budget as a stream.
    head = "error: " + budgeted("error", str(error))
    tb = _TB_RULE_RE.sub("", clean_text(error.traceback)).strip("\n")
    if not tb:
        return head
    tb = _compact_traceback(tb)
    if len(tb) > opts.max_traceback_chars:
        tail = tb[-opts.max_traceback_chars :]
        if "\n" in tail:
            tail = tail[tail.index("\n") + 1 :]
        tb = f"[... {len(tb) - len(tail):,} characters of earlier frames cut ...]\n{tail}"
    return f"{head}\ntraceback:\n{tb}"


_ARROW_RE = re.compile(r"^\s*-+>")


def _compact_traceback(tb: str) -> str:
    """Keep the user's cells in full; shrink library frames to their location and the failing line."""
    blocks = tb.split("\n\n")
    compact: list[str] = []
    for block in blocks:
        lines = block.strip("\n").splitlines()
        if lines and lines[0].startswith("File ") and len(lines) > 2:
            arrows = [ln for ln in lines[1:] if _ARROW_RE.match(ln)]
            lines = [lines[0], *arrows]
        compact.append("\n".join(lines))
    return "\n".join(b for b in compact if b)
