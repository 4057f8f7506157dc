"""The local backend: Jupyter kernels on this machine, optionally sandboxed, optionally from a warm pool."""

from .backend import LocalKernelBackend
from .pool import KernelPool
from .sandbox import ResourceLimits

__all__ = ["KernelPool", "LocalKernelBackend", "ResourceLimits"]
