"""A topology as a lab: where each machine sits, and the lab's own copy of the topology.

Pure. The lab keeps the user's topology as it is, except for what only the lab can know:
the public keys made on its machines, and hub endpoints that are names, not addresses.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network, IPv6Network, ip_address

import yaml

from ..model.schema import LabPlacement, Topology
from ..model.special import DOCUMENTATION, is_public
from .spec import CarrierSpec, ClientSpec, HubSpec, LabSpec, LabSpecError

DEFAULT_CARRIER = "cgnat"
# Hubs whose endpoint is a DNS name get an address from TEST-NET-3 inside the lab.
SPARE_HUB_BASE = IPv4Address("203.0.113.200")


def hub_ip(host: str, spare: int) -> IPv4Address:
    """The hub's public IPv4 in the lab: its own when it is one, else a spare one."""
    try:
        addr = ip_address(host)
    except ValueError:
        return SPARE_HUB_BASE + spare
    if addr.version != 4:
        return SPARE_HUB_BASE + spare
    return addr


# Address ranges the lab's own underlay uses (see underlay.plan_underlay).
LAB_RANGES = {
    "subscriber": IPv4Network("100.64.0.0/16"),
    "internet": IPv4Network("198.18.0.0/16"),
    "management": IPv4Network("198.19.0.0/16"),
    "carrier public": IPv4Network("198.51.100.0/24"),
    "home LAN": IPv4Network("192.168.0.0/16"),
}


def clashes(topology: Topology) -> list[str]:
    """Overlay or announced prefixes that the lab's underlay already uses."""
    mine: list[tuple[str, IPv4Network | IPv6Network]] = (
        [("the overlay", topology.network.overlay)] if topology.network.overlay else [])
    mine += [(f"hub {h}'s overlay", hub.overlay) for h, hub in topology.hubs.items()
             if hub.overlay is not None and hub.overlay != topology.network.overlay]
    mine += [(f"{n}'s {p}", p) for n, node in topology.nodes.items() for p in node.announce]
    # The underlay is IPv4 only: IPv6 prefixes cannot clash with it.
    return [f"{what} overlaps the lab's {kind} range {net}"
            for what, prefix in mine if prefix.version == 4
            for kind, net in LAB_RANGES.items() if prefix.overlaps(net)]


def spec_for(topology: Topology, name: str) -> LabSpec:
    """The LabSpec of a topology: hubs on the Internet, clients behind their carriers."""
    problems = clashes(topology)
    if problems:
        raise LabSpecError("; ".join(problems) + " (pick other prefixes to try it in the lab)")
    lab = topology.lab
    placements = lab.nodes if lab else {}
    hubs = tuple(HubSpec(h, hub_ip(hub.host, i), hub.port)
                 for i, (h, hub) in enumerate(topology.hubs.items()))
    clients = tuple(
        ClientSpec(n, placements.get(n, LabPlacement()).carrier,
                   placements.get(n, LabPlacement()).home_nat)
        for n in topology.nodes)
    declared = dict(lab.carriers) if lab and lab.carriers else {}
    used = dict.fromkeys(c.carrier for c in clients)
    carriers = tuple(CarrierSpec(c, declared[c].udp_timeout if c in declared else 30)
                     for c in [*declared, *(u for u in used if u not in declared)])
    return LabSpec(name=name, hubs=hubs, clients=clients, carriers=carriers)


def with_lab_keys(topology: Topology, spec: LabSpec, public_keys: dict[str, str]) -> Topology:
    """The topology with the lab machines' own public keys and lab-reachable endpoints."""
    hubs = {
        name: hub.model_copy(update={
            "public_key": public_keys[name],
            "endpoint": f"{next(h.public_ip for h in spec.hubs if h.name == name)}:{hub.port}",
        })
        for name, hub in topology.hubs.items()
    }
    nodes = {name: node.model_copy(update={"public_key": public_keys[name]})
             for name, node in topology.nodes.items()}
    update: dict[str, object] = {"hubs": hubs, "nodes": nodes}
    if any(not is_public(h.public_ip) and not any(h.public_ip in d for d in DOCUMENTATION)
           for h in spec.hubs):
        # The lab's Internet is its own: a hub there may sit at any address.
        update["network"] = topology.network.model_copy(update={"underlay": "private"})
    return topology.model_copy(update=update)


def with_ssh_targets(topology: Topology, targets: dict[str, str]) -> Topology:
    """The topology with every machine's `ssh:` target set (the lab's sshd addresses)."""
    return topology.model_copy(update={
        "hubs": {n: h.model_copy(update={"ssh": targets[n]}) for n, h in topology.hubs.items()},
        "nodes": {n: m.model_copy(update={"ssh": targets[n]}) for n, m in topology.nodes.items()},
    })


def to_yaml(topology: Topology, header: str = "") -> str:
    """A topology as YAML text that `parse` reads back to an equal topology."""
    data = topology.model_dump(mode="json", exclude_none=True, exclude_defaults=True)
    # network.name/overlay and node.asn are required: exclude_defaults keeps them.
    body = yaml.safe_dump(data, sort_keys=False, default_flow_style=False)
    return (header + body) if header else body
