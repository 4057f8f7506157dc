"""The local backend: Jupyter kernels on this machine."""

from .backend import LocalKernelBackend

__all__ = ["LocalKernelBackend"]
