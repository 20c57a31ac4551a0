"""Running wgbgp's shell scripts on a machine, and turning a failed command into a step
failure that says why (the last lines of its output, keys masked)."""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence

from ..transport import CommandResult, Executor
from .changes import mask_output


class StepFailed(Exception):
    """A step failed; `undo` (if any) reverts what it did before failing."""

    def __init__(self, message: str, undo: Callable[[], None] | None = None) -> None:
        super().__init__(message)
        self.undo = undo


def b64_lines(texts: Sequence[str]) -> str:
    """One base64 line per text: how the scripts receive several files on one stdin."""
    return "".join(base64.b64encode(t.encode("utf-8")).decode("ascii") + "\n" for t in texts)


def sh(executor: Executor, script: str, name: str, *args: str, input: str | None = None,
       check: bool = True, timeout: float | None = 120) -> CommandResult:
    """Run `script` with `sh -c`, `name` as its $0 and `args` as its arguments."""
    return executor.run(["sh", "-c", script, name, *args], input=input, check=check,
                        timeout=timeout)


def why(result: CommandResult) -> str:
    """The last lines a failed command printed (secrets masked), or its exit code."""
    text = mask_output(result.stderr.strip() or result.stdout.strip())
    lines = [line for line in text.splitlines() if line.strip()]
    return "\n".join(lines[-12:]) if lines else f"exit code {result.returncode}"


def check(result: CommandResult, what: str, undo: Callable[[], None] | None = None) -> None:
    """Raise StepFailed ("WHAT failed: why") unless `result` succeeded."""
    if not result.ok:
        raise StepFailed(f"{what} failed: {why(result)}", undo)
