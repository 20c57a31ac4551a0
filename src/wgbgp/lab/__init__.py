"""The lab: the whole network on this machine (namespaces, an emulated Internet, CG-NAT,
sshd), then apply and observe exactly as on real machines. Needs root.

The surface most callers need is here; faults, selftest and the builders' parts are
imported by module (`from wgbgp.lab import faults`)."""

from .build import Lab, build_lab, open_lab
from .runner import (
    Convergence,
    LabError,
    convergence,
    up,
    wait_converged,
    wait_for_convergence,
)
from .spec import CarrierSpec, ClientSpec, HubSpec, LabSpec, LabSpecError, classic_spec
from .state import LabExists, is_running, list_labs, teardown

__all__ = ["CarrierSpec", "ClientSpec", "Convergence", "HubSpec", "Lab", "LabError",
           "LabExists", "LabSpec", "LabSpecError", "build_lab", "classic_spec", "convergence",
           "is_running", "list_labs", "open_lab", "teardown", "up", "wait_converged",
           "wait_for_convergence"]
