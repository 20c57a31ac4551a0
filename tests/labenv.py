"""What a lab test needs on this machine, checked in one place: tests/conftest.py skips a
test marked `@pytest.mark.lab(...)` (or a module's `pytestmark`) with the reason this
gives, and tests/lab/conftest.py's fixtures use the same check.

`pytest.mark.lab` alone needs root and the underlay's tools; its arguments name more:
a group below ("wireguard", "frr", "bird", "sshd") or a program (on PATH, or a path)."""

from __future__ import annotations

import os
import shutil

GROUPS: dict[str, tuple[str, ...]] = {
    "underlay": ("ip", "nft", "nsenter", "unshare", "findmnt", "sysctl", "ping"),
    "wireguard": ("wg", "wg-quick", "wireguard-go"),
    "frr": ("vtysh", "/usr/lib/frr/frrinit.sh", "/usr/lib/frr/frr-reload.py"),
    "bird": ("bird", "birdc"),
    "sshd": ("/usr/sbin/sshd",),
}
# What most lab tests run: WireGuard tunnels and FRR.
DAEMONS = ("wireguard", "frr")


def missing(*needs: str) -> list[str]:
    """The programs among `needs` (groups expanded) that are not installed here."""
    tools = [t for n in needs for t in GROUPS.get(n, (n,))]
    return [t for t in dict.fromkeys(tools)
            if not (os.access(t, os.X_OK) if t.startswith("/") else shutil.which(t))]


def skip_reason(*needs: str) -> str | None:
    """Why a lab test needing `needs` (beyond root and the underlay) cannot run here."""
    if os.geteuid() != 0:
        return "lab tests need root (network and mount namespaces)"
    lacking = missing("underlay", *needs)
    if lacking:
        return (f"lab tests need: {', '.join(lacking)} "
                "(scripts/install.sh installs the lab packages)")
    return None
