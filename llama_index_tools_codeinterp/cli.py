"""The ``codeinterp`` command.

``codeinterp serve`` runs a self-hosted session pool that speaks the Azure Container Apps dynamic-sessions
data-plane API over local Jupyter kernels.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

__all__ = ["build_parser", "main"]


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    from .core.server.app import DEFAULT_MAX_SESSIONS, TOKEN_ENV

    parser = argparse.ArgumentParser(
        prog="codeinterp",
        description="Stateful Python code interpreter for LLM agents.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve = commands.add_parser(
        "serve",
        help="run an Azure-compatible session-pool server over local Jupyter kernels",
        description=(
            "Serve the Azure Container Apps session-pool data plane (api-versions 2024-02-02-preview\n"
            "through 2025-10-02-preview) over local Jupyter kernels: one kernel and one /mnt/data\n"
            "directory per session identifier. Point any Azure dynamic-sessions client at\n"
            "http://HOST:PORT as its pool management endpoint and give it the token."
        ),
        epilog=(
            "examples:\n"
            "  codeinterp serve                                   # 127.0.0.1:8765, no token (local use only)\n"
            '  codeinterp serve --host 0.0.0.0 --token "$(openssl rand -hex 24)"\n'
            "  CODEINTERP_SERVER_TOKEN=secret codeinterp serve --cooldown 600 --max-sessions 20\n\n"
            "GET /health answers without a token; GET /status reports every session (token required).\n"
            "Without a token only local programs may call: requests from web pages (an Origin header) or\n"
            "addressed to a non-loopback host name are refused with 403."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    serve.add_argument("--port", type=int, default=8765, help="port to listen on (default: %(default)s)")
    serve.add_argument(
        "--token",
        default=None,
        help=f"bearer token clients must send (default: ${TOKEN_ENV}); without one only loopback addresses are allowed",
    )
    serve.add_argument(
        "--cooldown",
        type=_positive_float,
        default=300.0,
        metavar="SECONDS",
        help="idle time after which a session, its kernel and its files are removed (default: %(default)g)",
    )
    serve.add_argument(
        "--max-sessions",
        type=_positive_int,
        default=DEFAULT_MAX_SESSIONS,
        metavar="N",
        help="most sessions alive at once; further new sessions get HTTP 429 (default: %(default)s)",
    )
    serve.add_argument(
        "--max-execution-seconds",
        type=_positive_float,
        default=220.0,
        metavar="SECONDS",
        help="cap on one execution; longer timeoutInSeconds values are clamped (default: %(default)g)",
    )
    serve.add_argument(
        "--max-upload-mb",
        type=_positive_float,
        default=128.0,
        metavar="MB",
        help="largest upload per file in MiB; larger ones get HTTP 413 (default: %(default)g)",
    )
    serve.add_argument(
        "--file-ttl",
        type=_positive_float,
        default=None,
        metavar="SECONDS",
        help="delete files this long after their last change, even in live sessions (default: never)",
    )
    serve.add_argument(
        "--data-root",
        default=None,
        metavar="DIR",
        help="directory for the sessions' data directories (default: a temporary directory removed at exit)",
    )
    serve.add_argument(
        "--sandbox",
        choices=["auto", "on", "off"],
        default="auto",
        help="run each kernel under the bubblewrap sandbox: auto = when available (default: %(default)s)",
    )
    serve.add_argument(
        "--warm-kernels",
        type=int,
        default=0,
        metavar="N",
        help="keep N kernels started ahead of demand so a new session's first call is fast (default: 0)",
    )
    serve.add_argument(
        "--log-level",
        default="info",
        choices=["critical", "error", "warning", "info", "debug"],
        help="server log level (default: %(default)s)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command != "serve":
        parser.print_help()
        return 2

    from .core.errors import ConfigurationError
    from .core.server import TOKEN_ENV, ServerConfig, serve

    token = args.token if args.token is not None else os.environ.get(TOKEN_ENV) or None
    try:
        config = ServerConfig(
            token=token,
            cooldown=args.cooldown,
            max_sessions=args.max_sessions,
            max_execution_seconds=args.max_execution_seconds,
            max_upload_bytes=int(args.max_upload_mb * 1024 * 1024),
            file_ttl=args.file_ttl,
            data_root=args.data_root,
            backend_options={"sandbox": {"auto": "auto", "on": True, "off": False}[args.sandbox]},
            warm_kernels=args.warm_kernels,
        )
        serve(host=args.host, port=args.port, log_level=args.log_level, config=config)
    except ConfigurationError as exc:
        print(f"codeinterp serve: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
