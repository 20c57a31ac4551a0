"""How many hub-mode clients one hub carries, by its route server's BGP daemon. Pure.

In hub mode every client has a BGP session with every hub, so a hub's load is the number
of nodes, whatever the number of hubs; what limits it first is the route server's memory
(per configured neighbour), on the 1 GB VPS a hub usually is. `check` warns past the
figure here. This table is the one place those figures live: change them here when a new
measurement comes (and say where it comes from).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from ..words import plural
from .issues import Issue
from .schema import Hub, Topology

HUB_MEMORY = "1 GB"  # the machine the figures are for: the seed's VPS
HUB_MIB = 1024
OS_MIB = 150  # what the OS of such a VPS keeps for itself (README: "~150 MiB of OS")


@dataclass(frozen=True)
class Capacity:
    """Hub-mode clients a 1 GB hub carries with this daemon as its route server."""

    clients: int
    measured: str  # where the figure comes from
    provisional: bool = False

    @property
    def mib_per_client(self) -> float:
        """What one client may cost for `clients` to fit beside the OS: the rate a
        bigger hub is sized by."""
        return (HUB_MIB - OS_MIB) / self.clients


CAPACITY: dict[str, Capacity] = {
    # README, "How many clients a 1 GB hub carries": FRR 8.4 allocates ~0.75 MiB per
    # configured neighbour (`show memory bgpd`); lab: 0.87 MiB per client with
    # wireguard-go from 10 to 60 clients; 1,000 clients measured at 875 MiB for FRR
    # alone. So about 900 are the limit.
    "frr": Capacity(900, "FRR 8.4: 1,000 clients measured at 875 MiB, README"),
    # bench/scale_bench.py routeserver: BIRD 2.0.12 with 5,000 established clients, one
    # prefix each, 123 MiB RSS (26.5 MiB at 1,000; wireguard-go adds ~10 KiB a peer), so
    # memory allows far more. But at 5,000 BIRD used 61% of a core at steady state and
    # ~800 clients' routes never arrived (unexplained): 5,000, the size measured, stays
    # provisional until that is understood.
    "bird": Capacity(5000, "BIRD 2.0.12: 5,000 clients measured at 123 MiB, but 61% of a "
                     "core at steady state", provisional=True),
}


def hub_daemon(hub: Hub) -> str:
    """The BGP daemon of a hub's route server: `hubs.NAME.daemon` where the schema has
    it, else FRR (the only hub daemon so far)."""
    return str(getattr(hub, "daemon", None) or "frr")


def capacity_issues(t: Topology) -> Iterator[Issue]:
    """A warning for each hub that, as a route server, has more clients than its daemon
    carries on a 1 GB VPS (hub mode only: in mesh mode a hub runs WireGuard alone)."""
    if t.network.mode != "hub":
        return
    clients = len(t.nodes)
    for name, hub in t.hubs.items():
        daemon = hub_daemon(hub)
        cap = CAPACITY.get(daemon, CAPACITY["frr"])
        if clients <= cap.clients:
            continue
        need = OS_MIB + cap.mib_per_client * clients
        networks = -(-clients // cap.clients)
        bird = ("; or run BIRD as its route server ('daemon: bird' on the hub, about "
                f"{CAPACITY['bird'].clients} clients)"
                if daemon == "frr" and "daemon" in Hub.model_fields else "")
        yield Issue(
            "warning", ("hubs", name),
            f"hub {name} is the route server of {plural(clients, 'client')}, more than "
            f"{daemon.upper()} carries on a {HUB_MEMORY} VPS: about {cap.clients} "
            f"({cap.measured}{'; a provisional figure' if cap.provisional else ''}); "
            "past that the hub runs out of memory and sessions drop",
            f"give this hub at least {-(-round(need) // HUB_MIB)} GB of memory (about "
            f"{round(need)} MiB: {cap.mib_per_client:.2f} MiB per client plus {OS_MIB} MiB "
            f"for the OS){bird}; or split the clients into "
            f"{networks} networks (topology files) of at most {cap.clients}, each with "
            "its own hub (clients then reach only their own network's). Another hub in "
            "this network does not help: every client peers with every hub")
