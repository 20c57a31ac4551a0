"""Settings a topology implies where the file leaves them out. Pure."""

from __future__ import annotations

from .schema import Topology


def hub_preferences(t: Topology) -> dict[str, int]:
    """Each hub's preference (higher wins): its own, or 100, 90, 80, ... in file order."""
    return {name: hub.preference if hub.preference is not None else max(0, 100 - 10 * i)
            for i, (name, hub) in enumerate(t.hubs.items())}


def bfd_enabled(t: Topology) -> bool:
    """BFD on every session: as the topology says, or on when there are several hubs."""
    if t.network.bfd.enabled is not None:
        return t.network.bfd.enabled
    return len(t.hubs) > 1
