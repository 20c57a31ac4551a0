"""An Executor over SSH (asyncssh), with a synchronous facade.

All SSH connections live on one background event loop thread; `SSHExecutor.run` submits a
coroutine there and waits. Apply code stays synchronous and identical for local, lab and
remote machines, while many machines can be driven in parallel from worker threads
(`parallel.apply_many`), each thread blocking only on its own machine.

Host keys are verified by default against ~/.ssh/known_hosts (asyncssh's default, which
also reads ~/.ssh/config). Commands are sent as one shell-quoted string; no secret is ever
part of a command (apply passes secrets only on stdin or reads them on the machine).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import re
import shlex
import socket
import threading
from collections.abc import Callable
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any

import asyncssh

from .executor import CommandFailed, CommandResult

CONNECTION_LOST = 255


@dataclass(frozen=True)
class SSHTarget:
    host: str
    user: str | None = None
    port: int | None = None

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        user = f"{self.user}@" if self.user else ""
        return f"{user}{host}" + (f":{self.port}" if self.port else "")


_TARGET = re.compile(
    r"^(?:ssh://)?(?:(?P<user>[^@\s/]+)@)?(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[^:@\s/\[\]]+))"
    r"(?::(?P<port>\d+))?/?$")


def parse_target(text: str) -> SSHTarget:
    """`root@203.0.113.10`, `user@host:2222`, `[2001:db8::1]:22`, `ssh://user@host:port`."""
    m = _TARGET.match(text.strip())
    if not m:
        raise ValueError(f"ssh target {text!r} is not [user@]host[:port]")
    port = int(m.group("port")) if m.group("port") else None
    if port is not None and not 1 <= port <= 65535:
        raise ValueError(f"port {port} in ssh target {text!r} is out of range 1-65535")
    return SSHTarget(m.group("v6") or m.group("host"), m.group("user"), port)


class _Loop:
    """One daemon thread running an asyncio loop for every SSH connection of the process."""

    _lock = threading.Lock()
    _loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    def get(cls) -> asyncio.AbstractEventLoop:
        with cls._lock:
            if cls._loop is None or cls._loop.is_closed():
                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, name="wgbgp-ssh", daemon=True).start()
                cls._loop = loop
            return cls._loop

    @classmethod
    def call(cls, coro: Any, timeout: float | None) -> Any:
        fut = asyncio.run_coroutine_threadsafe(coro, cls.get())
        try:
            return fut.result(timeout)
        except FutureTimeout:
            fut.cancel()
            raise


def _why_connect(target: SSHTarget, exc: BaseException) -> str:
    if isinstance(exc, asyncssh.HostKeyNotVerifiable) or "Host key is not trusted" in str(exc):
        return (f"host key of {target.host} is not in known_hosts: verify its fingerprint, then "
                f"add it (e.g. `ssh {target}` once, or ssh-keyscan after checking)")
    if isinstance(exc, asyncssh.PermissionDenied):
        return f"permission denied for {target}: check the user and your SSH key"
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        return f"connecting to {target} timed out"
    return f"cannot connect to {target}: {exc}"


@dataclass
class SSHExecutor:
    """Runs commands on a machine over SSH. Same interface as LocalExecutor.

    `known_hosts=()` (the default) verifies the host key against ~/.ssh/known_hosts; pass a
    path or a list of keys to use others. `env` is set for every command (`env K=V ...`).
    A connection that drops is re-opened on the next command, so a rollback can still run.
    """

    target: str
    name: str = ""
    known_hosts: Any = ()
    client_keys: Any = ()
    env: dict[str, str] = field(default_factory=dict)
    connect_timeout: float = 15.0
    options: dict[str, Any] = field(default_factory=dict)  # more asyncssh.connect() options
    # Makes the TCP connection (e.g. `netns_connector` for a lab's management network);
    # called again for every reconnect. Host-key checks still use the target's host name.
    sock_factory: Callable[[], socket.socket] | None = None

    def __post_init__(self) -> None:
        self._target = parse_target(self.target)
        if not self.name:
            self.name = self._target.host
        self._conn: asyncssh.SSHClientConnection | None = None
        self._lock = threading.Lock()

    async def _connect(self) -> asyncssh.SSHClientConnection:
        kwargs: dict[str, Any] = dict(self.options)
        if self._target.user:
            kwargs["username"] = self._target.user
        if self._target.port:
            kwargs["port"] = self._target.port
        if self.client_keys != ():
            kwargs["client_keys"] = self.client_keys
        if self.sock_factory is not None:
            loop = asyncio.get_running_loop()
            kwargs["sock"] = await asyncio.wait_for(
                loop.run_in_executor(None, self.sock_factory), self.connect_timeout)
        return await asyncio.wait_for(
            asyncssh.connect(self._target.host, known_hosts=self.known_hosts, **kwargs),
            self.connect_timeout)

    async def _run(self, command: str, input: str | None,
                   timeout: float | None) -> asyncssh.SSHCompletedProcess:
        if self._conn is None:
            self._conn = await self._connect()
        return await self._conn.run(command, input=input, check=False, timeout=timeout)

    def connect(self) -> None:
        """Open the connection now (else the first command does); raises CommandFailed."""
        self.run(["true"])

    def run(
        self, argv: list[str], *, input: str | None = None, check: bool = True,
        timeout: float | None = 60,
    ) -> CommandResult:
        command = shlex.join(argv)
        if self.env:
            command = shlex.join(["env", *(f"{k}={v}" for k, v in self.env.items())]) + " " + \
                command
        outer = None if timeout is None else timeout + self.connect_timeout + 5
        with self._lock:
            try:
                proc = _Loop.call(self._run(command, input, timeout), outer)
            except asyncssh.TimeoutError as exc:
                result = CommandResult(tuple(argv), 124, str(exc.stdout or ""),
                                       f"timed out after {timeout} s")
            except (asyncssh.Error, OSError, TimeoutError, FutureTimeout) as exc:
                connected = self._conn is not None
                self._drop()
                why = (f"ssh connection to {self._target} lost: {exc}" if connected
                       else _why_connect(self._target, exc))
                result = CommandResult(tuple(argv), CONNECTION_LOST, "", why)
            else:
                err = _text(proc.stderr)
                code = proc.exit_status
                if code is None or code < 0:  # killed by a signal, or the channel closed
                    sig = proc.exit_signal[0] if proc.exit_signal else "unknown"
                    err += f"\nremote command ended without an exit status (signal {sig})"
                    code = CONNECTION_LOST
                result = CommandResult(tuple(argv), code, _text(proc.stdout), err)
        if check and not result.ok:
            raise CommandFailed(result, self.name)
        return result

    def read_file(self, path: str) -> str | None:
        res = self.run(["cat", "--", path], check=False)
        if res.ok:
            return res.stdout
        if res.returncode == CONNECTION_LOST:
            raise CommandFailed(res, self.name)
        return None

    def write_file(self, path: str, text: str, mode: int = 0o644) -> None:
        script = (
            'set -e; d=$(dirname "$1"); mkdir -p "$d"; t=$(mktemp "$1.XXXXXX"); '
            'chmod "$2" "$t"; cat > "$t"; mv -f "$t" "$1"'
        )
        self.run(["sh", "-c", script, "sh", path, f"{mode:o}"], input=text)

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            # asyncssh objects belong to the loop's thread; an error: already gone.
            with contextlib.suppress(Exception):
                _Loop.get().call_soon_threadsafe(conn.abort)

    def close(self) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            async def _close() -> None:
                conn.close()
                await conn.wait_closed()
            with contextlib.suppress(Exception):  # closing: nothing left to report to
                _Loop.call(_close(), 10)

    def __enter__(self) -> SSHExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _text(data: Any) -> str:
    if data is None:
        return ""
    if isinstance(data, bytes):
        return data.decode("utf-8", errors="replace")
    return str(data)


CLONE_NEWNET = 0x40000000


def netns_connector(netns: str | os.PathLike[str], host: str, port: int = 22,
                    timeout: float = 10.0) -> Callable[[], socket.socket]:
    """A sock_factory that opens the TCP connection from inside a network namespace (root).

    A short-lived thread joins the namespace (setns affects only the calling thread), makes
    the connection and exits; the socket stays in that namespace. This is how a process in
    the host's namespace reaches, say, a lab machine on the lab's management network.
    """
    def connect() -> socket.socket:
        # What the thread made, or what it raised (at most one of them).
        made: list[socket.socket] = []
        raised: list[BaseException] = []

        def work() -> None:
            try:
                libc = ctypes.CDLL(None, use_errno=True)
                fd = os.open(netns, os.O_RDONLY)
                try:
                    if libc.setns(fd, CLONE_NEWNET) != 0:
                        err = ctypes.get_errno()
                        raise OSError(err, f"setns({netns}): {os.strerror(err)}")
                finally:
                    os.close(fd)
                sock = socket.create_connection((host, port), timeout)
                sock.settimeout(None)
                made.append(sock)
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                raised.append(exc)

        t = threading.Thread(target=work, name="wgbgp-netns-connect")
        t.start()
        t.join()
        if raised:
            raise raised[0]
        return made[0]

    return connect
