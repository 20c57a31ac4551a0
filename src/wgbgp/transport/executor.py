"""Executors: where apply and observe run commands and write files, and what comes back.

An executor is the only thing that touches a machine. The same apply and observe code
drives a local host, a remote host over SSH, and a lab node; only the executor differs.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class CommandResult:
    """Outcome of one command on a machine."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        """The command exited 0."""
        return self.returncode == 0

    @property
    def error(self) -> str:
        """The most telling line of a failed command's output."""
        lines = [ln.strip() for ln in (self.stderr + "\n" + self.stdout).splitlines()]
        # vtysh always complains about a missing vtysh.conf; that is never the point.
        lines = [ln for ln in lines if ln and "vtysh.conf" not in ln]
        if self.returncode == 127:
            return f"{self.argv[0]}: command not found"
        return lines[-1] if lines else f"exit code {self.returncode}"

    def to_json(self) -> dict[str, object]:
        """As status snapshots and doctor fixtures record it."""
        return {"argv": list(self.argv), "returncode": self.returncode, "stdout": self.stdout,
                "stderr": self.stderr}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CommandResult:
        """The inverse of `to_json`."""
        return cls(tuple(data["argv"]), data["returncode"], data["stdout"], data["stderr"])


SHELLS = frozenset({"sh", "bash", "dash", "ash", "zsh"})
_LONG_ARG = 40


def short_command(argv: Sequence[str]) -> str:
    """A command as an error message shows it: program and first argument, no script body.

    `sh -c SCRIPT NAME ARGS` -> `sh -c ... NAME` (NAME, the script's $0, says which script);
    `vtysh -c 'show bgp summary json'` -> `vtysh -c ...`; a long or multi-line first
    argument is elided too."""
    if not argv:
        return "(no command)"
    program = argv[0]
    if os.path.basename(program) in SHELLS and len(argv) > 2 and argv[1] == "-c":
        return f"{program} -c ..." + (f" {argv[3]}" if len(argv) > 3 else "")
    parts = [program]
    if len(argv) > 1:
        first = argv[1]
        parts.append("..." if "\n" in first or len(first) > _LONG_ARG else first)
    if len(argv) > 2:
        parts.append("...")
    return " ".join(parts)


class CommandFailed(Exception):
    """A command exited non-zero where success was required.

    Its message is one line: the command in short (`short_command`), the machine and the
    cause (the last line of the command's stderr, or its exit code)."""

    def __init__(self, result: CommandResult, machine: str = "") -> None:
        self.result = result
        self.machine = machine
        where = f" on {machine}" if machine else ""
        detail = [line for line in (result.stderr or result.stdout).strip().splitlines()
                  if line.strip()]
        tail = detail[-1].strip() if detail else f"exit code {result.returncode}"
        # Quoted with '', not backticks: mask_output hides backticked text (wg quotes a
        # broken key in backticks), and the command never holds a secret.
        super().__init__(f"'{short_command(result.argv)}' failed{where}: {tail}")


class Executor(Protocol):
    """Runs commands and reads/writes files on one machine."""

    name: str

    def run(
        self, argv: list[str], *, input: str | None = None, check: bool = True,
        timeout: float | None = 60,
    ) -> CommandResult: ...

    def read_file(self, path: str) -> str | None:
        """The file's text, or None when it does not exist."""

    def write_file(self, path: str, text: str, mode: int = 0o644) -> None:
        """Write atomically (temp file in the same directory, then rename)."""


class _TimedOut(Exception):
    def __init__(self, stdout: str) -> None:
        super().__init__("timed out")
        self.stdout = stdout


@dataclass
class LocalExecutor:
    """Runs on this machine, optionally with a command prefix (e.g. `nsenter ...`)."""

    name: str = "localhost"
    prefix: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    # The process class: a prefix whose first program waits for the real command (the
    # lab's nsenter into a PID namespace) supplies one whose kill() reaches that command.
    popen: type[subprocess.Popen[str]] = subprocess.Popen

    def run(
        self, argv: list[str], *, input: str | None = None, check: bool = True,
        timeout: float | None = 60,
    ) -> CommandResult:
        full = [*self.prefix, *argv]
        env = {**os.environ, **self.env} if self.env else None
        try:
            # subprocess.run's own steps, with our process class.
            with self.popen(full, stdin=subprocess.PIPE if input is not None else None,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env) as proc:
                try:
                    stdout, stderr = proc.communicate(input, timeout=timeout)
                except subprocess.TimeoutExpired as exc:
                    proc.kill()
                    proc.wait()
                    # A hung command is a failed command, not an exception of another kind.
                    out = exc.stdout or ""
                    if isinstance(out, bytes):
                        out = out.decode(errors="replace")
                    raise _TimedOut(out) from None
        except FileNotFoundError as exc:
            result = CommandResult(tuple(argv), 127, "", str(exc))
        except _TimedOut as exc:
            result = CommandResult(tuple(argv), 124, exc.stdout, f"timed out after {timeout} s")
        else:
            result = CommandResult(tuple(argv), proc.returncode, stdout, stderr)
        if check and not result.ok:
            raise CommandFailed(result, self.name)
        return result

    def read_file(self, path: str) -> str | None:
        if self.prefix:
            res = self.run(["cat", path], check=False)
            return res.stdout if res.ok else None
        try:
            with open(path, encoding="utf-8") as fh:
                return fh.read()
        except FileNotFoundError:
            return None

    def write_file(self, path: str, text: str, mode: int = 0o644) -> None:
        if self.prefix:
            # Inside another mount namespace: let a shell there do the temp+rename.
            script = (
                'set -e; d=$(dirname "$1"); mkdir -p "$d"; t=$(mktemp "$1.XXXXXX"); '
                'chmod "$2" "$t"; cat > "$t"; mv -f "$t" "$1"'
            )
            self.run(["sh", "-c", script, "sh", path, f"{mode:o}"], input=text)
            return
        directory = os.path.dirname(path) or "."
        os.makedirs(directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=os.path.basename(path) + ".")
        try:
            os.fchmod(fd, mode)  # before any byte is written: secrets never sit world-readable
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise


def capture(executor: Executor, argv: list[str], timeout: float) -> CommandResult:
    """Run and keep the result, whatever happens: a timeout or a broken transport becomes
    a failed result (exit -1), so one dead machine never stops a status round."""
    try:
        return executor.run(argv, check=False, timeout=timeout)
    except Exception as exc:  # noqa: BLE001 - any failure becomes a result (see above)
        return CommandResult(tuple(argv), -1, "", f"{type(exc).__name__}: {exc}")
