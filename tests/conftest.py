"""Shared fixtures: real kernels, nothing mocked."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from llama_index_tools_codeinterp.core.local import LocalKernelBackend


@pytest.fixture(scope="module")
def local_backend() -> Iterator[LocalKernelBackend]:
    """One kernel shared by a module's tests (they use distinct names); closed at the end."""
    backend = LocalKernelBackend(timeout=60, interrupt_grace=3)
    try:
        yield backend
    finally:
        backend.close()


@pytest.fixture
def fresh_backend() -> Iterator[LocalKernelBackend]:
    backend = LocalKernelBackend(timeout=60, interrupt_grace=2)
    try:
        yield backend
    finally:
        backend.close()
