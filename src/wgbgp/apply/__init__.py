"""Apply: put rendered files on a machine and change its live state, through an executor.

Everything with side effects lives in this layer. Computing what would change is pure
(`changes`, `steps`); doing it goes through a `transport.Executor` (local, lab namespace, SSH).
"""

from .changes import (
    ChangeSet,
    CurrentFile,
    FileChange,
    FrrDelta,
    compute_changes,
    enable_daemons,
    mask_secrets,
    pin_os_lines,
)
from .down import down_machine
from .keys import KeygenError, RemoteKey, remote_keygen
from .probe import MachineState, probe
from .results import ApplyResult, MachinePlan, Progress, StepResult
from .runner import apply_machine, plan_machine
from .steps import Step, plan_steps

__all__ = [
    "ApplyResult", "ChangeSet", "CurrentFile",
    "FileChange", "FrrDelta", "KeygenError", "MachinePlan", "MachineState", "Progress",
    "RemoteKey", "Step", "StepResult", "apply_machine", "compute_changes", "down_machine",
    "enable_daemons", "mask_secrets", "pin_os_lines", "plan_machine", "plan_steps", "probe",
    "remote_keygen",
]
