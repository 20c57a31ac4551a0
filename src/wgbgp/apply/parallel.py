"""Several machines at once: one worker thread per machine, one result per machine.

Each machine is applied exactly as alone (`apply_machine`); a failure on one never stops
the others, and every machine gets its own ApplyResult (or plan) back.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from ..render import RenderedFile
from ..transport import Executor
from .applylock import DEFAULT_WAIT, ApplyLocked, LockUnavailable, apply_lock, holder_name
from .changes import mask_output
from .down import down_machine
from .results import ApplyResult, MachinePlan, Progress
from .runner import apply_machine, plan_machine

T = TypeVar("T")
Job = tuple[Executor, Sequence[RenderedFile]]


def for_each(
    jobs: Sequence[Job], fn: Callable[[Executor, Sequence[RenderedFile]], T], *,
    max_parallel: int = 8,
) -> dict[str, T | Exception]:
    """Run `fn(executor, files)` for every job concurrently; results keyed by machine name,
    in job order. An exception becomes that machine's result instead of propagating."""
    names = [x.name for x, _ in jobs]
    if len(set(names)) != len(names):
        raise ValueError(f"machine names must be unique, got {names}")
    out: dict[str, T | Exception] = {}
    if not jobs:
        return out
    with ThreadPoolExecutor(max_workers=max(1, min(max_parallel, len(jobs))),
                            thread_name_prefix="wgbgp-apply") as pool:
        futures = {x.name: pool.submit(fn, x, files) for x, files in jobs}
        for name in names:
            try:
                out[name] = futures[name].result()
            except Exception as exc:  # noqa: BLE001 - reported per machine
                out[name] = exc
    return out


def apply_many(jobs: Sequence[Job], *, max_parallel: int = 8, progress: Progress | None = None,
               enable_at_boot: bool = True, userspace_fallback: bool = True,
               lock_wait: float = DEFAULT_WAIT,
               after: Callable[[Executor, ApplyResult], None] | None = None,
               ) -> dict[str, ApplyResult]:
    """apply_machine on every machine in parallel; never raises for one machine's failure.

    Each machine's apply holds that machine's apply lock (applylock.py): a second apply
    there waits up to `lock_wait` seconds, then fails at step `lock`, having changed nothing.
    `after(executor, result)` runs still under the lock (the CLI hands the agent its new
    topology there, so the agent never sees new files with the old topology).
    """
    def one(x: Executor, files: Sequence[RenderedFile]) -> ApplyResult:
        def run() -> ApplyResult:
            result = apply_machine(x, files, progress=progress, enable_at_boot=enable_at_boot,
                                   userspace_fallback=userspace_fallback)
            if after is not None:
                after(x, result)
            return result
        return locked(x, "apply", lock_wait, run)

    raw = for_each(jobs, one, max_parallel=max_parallel)
    return {name: _as_result(name, r) for name, r in raw.items()}


def locked(x: Executor, what: str, wait: float, fn: Callable[[], ApplyResult]) -> ApplyResult:
    """`fn()` under the machine's apply lock; a failed result at step `lock` if busy.

    When the lock command could not run at all, `fn()` runs anyway: an unreachable
    machine then fails at apply's probe with the real reason, and a machine without
    flock is applied as before, with a note."""
    try:
        with apply_lock(x, holder_name(what), wait):
            return fn()
    except ApplyLocked as exc:
        return ApplyResult(x.name, ok=False, failed_step="lock", error=str(exc))
    except LockUnavailable as exc:
        result = fn()
        if result.ok:
            result.notes.append(f"{exc}: applied without it")
        return result


def plan_many(jobs: Sequence[Job], *, max_parallel: int = 8, frr_delta: bool = True,
              ) -> dict[str, MachinePlan | Exception]:
    """plan_machine on every machine in parallel (an unreachable machine: its exception)."""
    return for_each(jobs, lambda x, files: plan_machine(x, files, frr_delta=frr_delta),
                    max_parallel=max_parallel)


def down_many(jobs: Sequence[Job], *, max_parallel: int = 8, progress: Progress | None = None,
              lock_wait: float = DEFAULT_WAIT) -> dict[str, ApplyResult]:
    """down_machine on every machine in parallel, each under its apply lock."""
    raw = for_each(jobs, lambda x, files: locked(
        x, "down", lock_wait, lambda: down_machine(x, files, progress=progress)),
        max_parallel=max_parallel)
    return {name: _as_result(name, r) for name, r in raw.items()}


def _as_result(name: str, r: ApplyResult | Exception) -> ApplyResult:
    if isinstance(r, ApplyResult):
        return r
    return ApplyResult(name, ok=False, failed_step="internal", error=mask_output(str(r)))
