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
from .keys import KeygenError, RemoteKey, remote_keygen
from .machine import (
    ApplyResult,
    MachinePlan,
    StepResult,
    apply_machine,
    down_machine,
    plan_machine,
)
from .probe import MachineState, probe
from .steps import Step, plan_steps

__all__ = [
    "ApplyResult", "ChangeSet", "CurrentFile",
    "FileChange", "FrrDelta", "KeygenError", "MachinePlan", "MachineState",
    "RemoteKey", "Step", "StepResult", "apply_machine", "compute_changes", "down_machine",
    "enable_daemons", "mask_secrets", "pin_os_lines", "plan_machine", "plan_steps", "probe",
    "remote_keygen",
]
