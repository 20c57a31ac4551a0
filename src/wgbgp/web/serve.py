"""Serve the live page with uvicorn on a socket bound first, so the URL printed (the
first line of output) is the one served, port 0 included."""

from __future__ import annotations

import socket
from collections.abc import Callable

import uvicorn

from .app import check_listen, create_app
from .collect import Source
from .watch import Watcher

DEFAULT_LISTEN = "127.0.0.1:8586"


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port (IPv6 when the host is an IPv6 address)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://{f'[{host}]' if ':' in host else host}:{port}/"


def serve(source: Source, host: str, port: int, *, token: str | None,
          announce: Callable[[str], None], interval: float = 1.0) -> None:
    """Bind, announce the URL, start reading the machines, and serve until interrupted.

    The page answers at once; until the first reading is in it says it is waiting."""
    check_listen(host, token)  # the CLI checked already; a library caller may not have
    sock = bind(host, port)
    watcher = Watcher(source, interval=interval)
    announce(url_of(sock))
    watcher.start()
    config = uvicorn.Config(create_app(watcher, token), log_level="warning",
                            access_log=False, lifespan="off")
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        watcher.stop()
        sock.close()
