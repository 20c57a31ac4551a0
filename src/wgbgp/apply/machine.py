"""Apply on one machine, in parts: results.py (what is reported), runner.py (plan, apply,
rollback), actions.py (each step and its undo), daemons.py (FRR and BIRD start, stop,
reload), down.py (removing it all). This module keeps the names callers used before the
split; new code imports them from `wgbgp.apply`."""

from .down import down_machine, parse_manifest
from .results import ApplyResult, MachinePlan, Progress, StepResult
from .runner import apply_machine, plan_machine

__all__ = ["ApplyResult", "MachinePlan", "Progress", "StepResult", "apply_machine",
           "down_machine", "parse_manifest", "plan_machine"]
