"""Running the pool server with uvicorn, with the bind-address safety rule."""

from __future__ import annotations

import ipaddress
import logging
from typing import Any

from ..errors import ConfigurationError
from .app import TOKEN_ENV, ServerConfig, create_app

__all__ = ["check_bind_allowed", "is_loopback", "serve"]

log = logging.getLogger(__name__)

#: Seconds uvicorn waits for running requests (e.g. a long execution) before it stops anyway.
GRACEFUL_SHUTDOWN_SECONDS = 10


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (``127.0.0.0/8``, ``::1``, ``localhost``)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind_allowed(host: str, token: str | None) -> None:
    """Refuse to expose kernels (arbitrary code execution) beyond this machine without a token."""
    if token is None and not is_loopback(host):
        raise ConfigurationError(
            f"Refusing to listen on {host!r} without a token: anyone who can reach it could run code on this "
            f"machine. Pass --token (or set {TOKEN_ENV}), or listen on 127.0.0.1."
        )


def serve(
    *,
    host: str = "127.0.0.1",
    port: int = 8765,
    log_level: str = "info",
    config: ServerConfig | None = None,
    **options: Any,
) -> None:
    """Run the pool server in the foreground until interrupted (Ctrl-C / SIGTERM stop every kernel)."""
    import uvicorn

    config = config or ServerConfig(**options)
    check_bind_allowed(host, config.token)
    if config.token is None:
        log.warning(
            "No token configured: every local process can use this pool (web pages and non-loopback Host names "
            "are refused). Pass --token to require one."
        )
    uvicorn.run(
        create_app(config),
        host=host,
        port=port,
        log_level=log_level,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        lifespan="on",
    )
