"""What apply, plan and down report for one machine: the plan, each step's outcome, the
result. Pure data, shared by the runner (apply, rollback) and down."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from .changes import ChangeSet, FrrDelta
from .drift import Drift
from .probe import MachineState
from .steps import Step

Progress = Callable[[str, str, str, str], None]  # machine, step name, status, detail
Status = Literal["ok", "failed", "undone", "undo-failed"]


@dataclass
class StepResult:
    name: str
    action: str
    status: Status
    detail: str = ""
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "action": self.action, "status": self.status,
                "detail": self.detail, "seconds": round(self.seconds, 3)}


@dataclass
class MachinePlan:
    """What apply would do on one machine: file changes, steps, and why."""

    machine: str
    changes: ChangeSet
    state: MachineState
    steps: tuple[Step, ...]
    problems: tuple[str, ...]
    notes: tuple[str, ...]
    frr_delta: FrrDelta | None = None
    drift: tuple[Drift, ...] = ()  # live state that differs from the (unchanged) files

    @property
    def noop(self) -> bool:
        return not self.steps and not self.problems

    def describe(self) -> str:
        """Readable plan: diff (keys masked), then the steps."""
        out = [f"== {self.machine}: {self.changes.summary()}"]
        if not self.changes.empty:
            out.append(self.changes.diff().rstrip("\n"))
        for p in self.problems:
            out.append(f"cannot apply: {p}")
        for d in self.drift:
            out.append(f"drift: {d.present} (would repair: {d.step})")
        for s in self.steps:
            out.append(f"would {s.name}: {s.reason}")
        if self.frr_delta is not None:
            out.append("FRR would change: " + (self.frr_delta.text() if not self.frr_delta.empty
                                               else "nothing in the running config"))
        for n in self.notes:
            out.append(f"note: {n}")
        if self.noop:
            out.append("nothing to change")
        return "\n".join(out) + "\n"

    def to_dict(self) -> dict[str, Any]:
        return {
            "machine": self.machine, "noop": self.noop, "changes": self.changes.to_dict(),
            "steps": [s.to_dict() for s in self.steps], "problems": list(self.problems),
            "notes": list(self.notes), "state": self.state.to_dict(),
            "drift": [d.to_dict() for d in self.drift],
            "frr_delta": None if self.frr_delta is None else
            {"delete": list(self.frr_delta.delete), "add": list(self.frr_delta.add)},
        }


@dataclass
class ApplyResult:
    """The outcome of apply (or down) on one machine."""

    machine: str
    ok: bool
    steps: list[StepResult] = field(default_factory=list)
    plan: MachinePlan | None = None
    failed_step: str | None = None
    error: str | None = None
    rolled_back: bool | None = None  # None: nothing needed undoing
    rollback_errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)  # "repaired: ..." lines, one a drift
    seconds: float = 0.0

    @property
    def changed(self) -> bool:
        return any(s.status == "ok" for s in self.steps)

    def summary(self) -> str:
        if self.ok:
            done = [s.name for s in self.steps if s.status == "ok"]
            return "\n".join([f"{self.machine}: " + ("applied: " + ", ".join(done) if done
                                                    else "no changes")
                              + f" ({self.seconds:.2f} s)",
                              *(f"    {line}" for line in self.repaired)])
        back = ("; previous configuration restored" if self.rolled_back else
                "; ROLLBACK INCOMPLETE: " + "; ".join(self.rollback_errors)
                if self.rolled_back is False else "; nothing was changed")
        # One line names the step, the cause and what became of the machine; a long cause
        # (e.g. FRR's output) continues on indented lines below it.
        first, *rest = (self.error or "failed").splitlines() or ["failed"]
        return "\n".join([f"{self.machine}: FAILED at step {self.failed_step}: {first}{back}",
                          *(f"    {line}" for line in rest)])

    def to_dict(self) -> dict[str, Any]:
        return {
            "machine": self.machine, "ok": self.ok, "changed": self.changed,
            "failed_step": self.failed_step, "error": self.error,
            "rolled_back": self.rolled_back, "rollback_errors": self.rollback_errors,
            "steps": [s.to_dict() for s in self.steps], "notes": self.notes,
            "repaired": self.repaired, "seconds": round(self.seconds, 3),
            "plan": None if self.plan is None else self.plan.to_dict(),
        }
