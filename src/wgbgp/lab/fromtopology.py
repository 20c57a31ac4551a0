"""A topology as a lab: where each machine sits, and the lab's own copy of the topology.

Pure. The lab keeps the user's topology as it is, except for what only the lab can know:
the public keys made on its machines, and hub endpoints that are names, not addresses.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network, IPv6Network, ip_address

import yaml

from ..model.schema import LabPlacement, SshDefaults, Topology
from ..model.special import DOCUMENTATION, is_public
from .spec import CarrierSpec, ClientSpec, HubSpec, LabRanges, LabSpec, LabSpecError

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


# Candidates for each of the lab's own ranges, first choice first (LabRanges' defaults).
# Documentation, benchmarking and private space: never a real network's addresses.
_N = IPv4Network
CANDIDATES: dict[str, tuple[IPv4Network, ...]] = {
    "inet_gw": tuple(_N(f"{a}/32") for a in (
        "198.18.0.1", "198.19.255.1", "192.0.2.254", "198.51.100.254", "203.0.113.254",
        "172.31.255.254", "10.255.255.254")),
    "carrier_pool": tuple(_N(n) for n in (
        "198.51.100.0/24", "192.0.2.0/24", "203.0.113.0/24", "198.18.200.0/24",
        "198.19.200.0/24", "172.31.200.0/24", "10.255.200.0/24")),
    # CG-NAT space as at a real carrier, unless the topology itself lives there.
    "subscribers": (*IPv4Network("100.64.0.0/10").subnets(new_prefix=16),
                    _N("10.251.0.0/16"), _N("172.28.0.0/16")),
    "mgmt": tuple(_N(n) for n in ("198.19.0.0/16", "172.31.0.0/16", "10.254.0.0/16",
                                  "198.18.0.0/16", "192.168.0.0/16")),
    "homes": tuple(_N(n) for n in ("192.168.0.0/16", "172.30.0.0/16", "10.253.0.0/16",
                                   "172.29.0.0/16", "10.252.0.0/16")),
}


def used_addresses(topology: Topology, hub_ips: list[IPv4Address]) -> list[IPv4Network]:
    """Every IPv4 network the topology's own traffic uses: overlays, announcements, hubs."""
    used: list[IPv4Network | IPv6Network] = (
        [topology.network.overlay] if topology.network.overlay else [])
    used += [hub.overlay for hub in topology.hubs.values() if hub.overlay is not None]
    used += [p for node in topology.nodes.values() for p in node.announce]
    out = [n for n in used if isinstance(n, IPv4Network)]
    return out + [IPv4Network(ip) for ip in hub_ips]


def choose_ranges(used: list[IPv4Network]) -> LabRanges:
    """The lab's own ranges: for each, the first candidate that overlaps nothing the
    topology uses nor a range chosen before it. LabSpecError when none is free."""
    taken = list(used)
    chosen: dict[str, IPv4Network] = {}
    for what, candidates in CANDIDATES.items():
        free = next((c for c in candidates if not any(c.overlaps(t) for t in taken)), None)
        if free is None:
            raise LabSpecError(f"no free range for the lab's {what} among "
                               f"{', '.join(map(str, candidates[:4]))}, ...: the topology "
                               "uses them all")
        chosen[what] = free
        taken.append(free)
    return LabRanges(chosen["inet_gw"].network_address, chosen["carrier_pool"],
                     chosen["subscribers"], chosen["mgmt"], chosen["homes"])


def spec_for(topology: Topology, name: str) -> LabSpec:
    """The LabSpec of a topology: hubs on the Internet, clients behind their carriers."""
    lab = topology.lab
    placements = lab.nodes if lab else {}
    hubs = tuple(HubSpec(h, hub_ip(hub.host, i), hub.port)
                 for i, (h, hub) in enumerate(topology.hubs.items()))
    ranges = choose_ranges(used_addresses(topology, [h.public_ip for h in hubs]))
    clients = tuple(
        ClientSpec(n, placements.get(n, LabPlacement()).carrier,
                   placements.get(n, LabPlacement()).home_nat)
        for n in topology.nodes)
    declared = dict(lab.carriers) if lab and lab.carriers else {}
    used = dict.fromkeys(c.carrier for c in clients)
    carriers = tuple(CarrierSpec(c, declared[c].udp_timeout if c in declared else 30)
                     for c in [*declared, *(u for u in used if u not in declared)])
    return LabSpec(name=name, hubs=hubs, clients=clients, carriers=carriers, ranges=ranges)


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


def with_ssh_targets(topology: Topology, targets: dict[str, str],
                     defaults: SshDefaults | None = None) -> Topology:
    """The topology with every machine's `ssh:` target set (the lab's sshd addresses),
    and with `defaults` as its `ssh:` section (identity, known_hosts, netns)."""
    return topology.model_copy(update={
        "ssh": defaults if defaults is not None else topology.ssh,
        "hubs": {n: h.model_copy(update={"ssh": targets[n]}) for n, h in topology.hubs.items()},
        "nodes": {n: m.model_copy(update={"ssh": targets[n]}) for n, m in topology.nodes.items()},
    })


def to_yaml(topology: Topology, header: str = "") -> str:
    """A topology as YAML text that `parse` reads back to an equal topology."""
    data = topology.model_dump(mode="json", exclude_none=True, exclude_defaults=True)
    # network.name/overlay and node.asn are required: exclude_defaults keeps them.
    body = yaml.safe_dump(data, sort_keys=False, default_flow_style=False)
    return (header + body) if header else body
