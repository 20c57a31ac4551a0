"""Plan and apply wgbgp's configuration on one machine, through an executor.

`plan_machine` probes the machine (one command) and computes the change set and the steps.
The probe also reads live state (link state, `wg showconf`, routes, sysctls, nft, daemons);
where it drifted from unchanged files (drift.py), the step that applies them runs again and
apply reports each repair as one `repaired: ...` line (`ApplyResult.repaired`).
`apply_machine` runs those steps (actions.py); if one fails, every step already done is
undone (files restored from their `.wgbgp-prev` copies first, then the live state rolled
back in reverse), and the result names the step and the reason. Removing it all is down.py.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from ..render import FRR_CONF, RenderedFile
from ..transport import CommandFailed, Executor
from .actions import Actions
from .changes import (
    FRR_DAEMONS,
    compute_changes,
    daemons_file,
    mask_output,
    parse_wg_quick,
    sysctl_settings,
)
from .daemons import Daemons
from .probe import MANIFEST, PENDING, ProbeError, probe
from .results import ApplyResult, MachinePlan, Progress, StepResult
from .shell import StepFailed
from .steps import plan_steps

Done = tuple[StepResult, Callable[[], None]]  # a step that ran, and how to undo it


def plan_machine(
    executor: Executor, files: Sequence[RenderedFile], *, frr_delta: bool = True,
    enable_at_boot: bool = True, userspace_fallback: bool = True,
) -> MachinePlan:
    """Probe the machine and work out what apply would do. Changes nothing.

    With `frr_delta`, a planned FRR reload also asks frr-reload.py (--test) which lines of
    the running config would change.
    """
    paths = [f.path for f in files]
    has_frr = any(f.kind == "frr" for f in files)
    wgs = [parse_wg_quick(f.path, f.text) for f in files if f.kind == "wireguard"]
    keys = sorted({w.key_file for w in wgs if w.key_file and not w.inline_key})
    has_bird = any(f.kind == "bird" for f in files)
    units = ([f"wg-quick@{w.name}" for w in wgs] + (["frr"] if has_frr else [])
             + (["bird"] if has_bird else []))
    # The manifest too: a daemon config wgbgp installed and no longer renders is retired.
    # Live facts to compare with the files: each tunnel's `wg showconf` and routes, and the
    # current value of every sysctl the files set.
    sysctls = sorted({k for f in files if f.kind == "sysctl" for k, _ in sysctl_settings(f.text)})
    state = probe(executor, files=paths, raw=([FRR_DAEMONS] if has_frr else []) + [MANIFEST],
                  interfaces=[w.name for w in wgs], keys=keys, units=units,
                  wireguard=[w.name for w in wgs], sysctls=sysctls)
    wanted = list(files)
    if has_frr:
        daemons = daemons_file(state.files.get(FRR_DAEMONS))
        if daemons is not None:
            wanted.append(daemons)
    changes = compute_changes(wanted, state.files, executor.name)
    sp = plan_steps(changes, state, enable_at_boot=enable_at_boot,
                    userspace_fallback=userspace_fallback)
    delta = None
    if frr_delta and not sp.problems and any(s.action == "frr-reload" for s in sp.steps):
        frr = changes.get(FRR_CONF)
        assert frr is not None
        delta = Daemons(executor, state.systemd).frr_test(frr.new_text)
    return MachinePlan(executor.name, changes, state, sp.steps, sp.problems, sp.notes, delta,
                       sp.drift)


def apply_machine(
    executor: Executor, files: Sequence[RenderedFile], *, enable_at_boot: bool = True,
    userspace_fallback: bool = True, progress: Progress | None = None,
    plan: MachinePlan | None = None,
) -> ApplyResult:
    """Make one machine run `files`: write what changed, then change only the live state
    that depends on it. An unchanged machine costs one probe command and changes nothing.

    On failure the previous files are restored and the live state rolled back; the result
    names the failed step and why. Never raises for machine-side failures.
    """
    t0 = time.monotonic()
    name = executor.name
    report = progress or (lambda *a: None)
    result = ApplyResult(name, ok=False)
    try:
        if plan is None:
            report(name, "probe", "start", "")
            plan = plan_machine(executor, files, frr_delta=False, enable_at_boot=enable_at_boot,
                                userspace_fallback=userspace_fallback)
    except (CommandFailed, ProbeError, OSError) as exc:
        result.failed_step, result.error = "probe", mask_output(str(exc))
        result.seconds = time.monotonic() - t0
        report(name, "probe", "failed", result.error)
        return result
    result.plan = plan
    result.notes = list(plan.notes)
    if plan.problems:
        result.failed_step, result.error = "preflight", "; ".join(plan.problems)
        result.seconds = time.monotonic() - t0
        report(name, "preflight", "failed", result.error)
        return result

    runner = Actions(executor, plan)
    done: list[Done] = []
    files_undo: Done | None = None
    failure: str | None = None
    for step in plan.steps:
        report(name, step.name, "start", step.reason)
        ts = time.monotonic()
        try:
            detail, undo = runner.run(step)
        except Exception as exc:  # noqa: BLE001 - any failure (incl. a lost SSH link) rolls back
            undo = exc.undo if isinstance(exc, StepFailed) else None
            failure = mask_output(str(exc))
            sr = StepResult(step.name, step.action, "failed", failure, time.monotonic() - ts)
            result.steps.append(sr)
            report(name, step.name, "failed", failure)
            result.failed_step = step.name
            result.error = failure
            if undo is not None:
                if step.action == "write":
                    files_undo = (sr, undo)
                else:
                    done.append((sr, undo))
            break
        sr = StepResult(step.name, step.action, "ok", mask_output(detail), time.monotonic() - ts)
        result.steps.append(sr)
        report(name, step.name, "ok", sr.detail)
        if undo is not None:
            if step.action == "write":
                files_undo = (sr, undo)
            else:
                done.append((sr, undo))

    if failure is None:
        if plan.steps or plan.state.pending:
            try:
                executor.run(["rm", "-f", PENDING, *runner.cleanup])
            except Exception as exc:  # noqa: BLE001 - applied all the same: a note, not a failure
                result.notes.append(f"could not clear {PENDING}: {mask_output(str(exc))}")
        result.ok = True
        ran = {s.name for s in result.steps if s.status == "ok"}
        result.repaired = [d.line() for d in plan.drift if d.step in ran]
    else:
        _rollback(result, files_undo, done, executor, report)
    result.notes += runner.notes
    result.seconds = time.monotonic() - t0
    return result


def _rollback(result: ApplyResult, files_undo: Done | None, done: list[Done],
              executor: Executor, report: Progress) -> None:
    """Restore files first, then undo live steps newest first (each uses restored files)."""
    if files_undo is None and not done:
        result.rolled_back = None
        return
    errors: list[str] = []
    order = ([files_undo] if files_undo else []) + list(reversed(done))
    for sr, undo in order:
        report(result.machine, f"undo {sr.name}", "start", "")
        try:
            undo()
        except Exception as exc:  # noqa: BLE001 - recorded; the other undos still run
            msg = f"undo {sr.name}: {mask_output(str(exc))}"
            errors.append(msg)
            if sr.status == "ok":
                sr.status = "undo-failed"
            report(result.machine, f"undo {sr.name}", "failed", msg)
        else:
            if sr.status == "ok":
                sr.status = "undone"
            report(result.machine, f"undo {sr.name}", "ok", "")
    result.rollback_errors = errors
    result.rolled_back = not errors
    if not errors:
        try:
            executor.run(["rm", "-f", PENDING])
        except Exception as exc:  # noqa: BLE001 - rolled back all the same: a note
            result.notes.append(f"could not clear {PENDING}: {mask_output(str(exc))}")
