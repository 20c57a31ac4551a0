"""What a lab is made of: plain, frozen input data, independent of the topology schema.

The orchestration layer builds a `LabSpec` from a topology; everything else in the lab
package (address plan, namespaces, machines) is derived from it deterministically.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network
from typing import Any

# Lab and machine names end up in namespace names, hostnames and file names.
LAB_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")
_MACHINE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
# Infrastructure namespaces share the `wgbgp-<lab>-` prefix with machines; their names
# start with `_`, which no machine name does (underlay.infra).


class LabSpecError(ValueError):
    """The lab description is inconsistent (a user error, reported as a message)."""


@dataclass(frozen=True)
class HubSpec:
    """A hub: a machine with a public endpoint inside the lab's Internet."""

    name: str
    public_ip: IPv4Address
    port: int = 51820


@dataclass(frozen=True)
class CarrierSpec:
    """A carrier-grade NAT: many subscribers share one public IPv4 address."""

    name: str
    udp_timeout: int = 30  # seconds an idle UDP mapping survives


@dataclass(frozen=True)
class ClientSpec:
    """A client machine, subscriber of `carrier`, optionally behind a home router too."""

    name: str
    carrier: str
    home_nat: bool = False


@dataclass(frozen=True)
class LabRanges:
    """The lab's own addresses. `fromtopology.choose_ranges` picks them around every
    address a topology uses; these defaults are its first choices."""

    inet_gw: IPv4Address = IPv4Address("198.18.0.1")     # the Internet's end of every link
    carrier_pool: IPv4Network = IPv4Network("198.51.100.0/24")  # carriers' public addresses
    subscribers: IPv4Network = IPv4Network("100.64.0.0/16")     # carrier i: its i-th /24
    mgmt: IPv4Network = IPv4Network("198.19.0.0/16")     # management LAN, never routed
    homes: IPv4Network = IPv4Network("192.168.0.0/16")   # home router i: its i-th /24

    def named(self) -> dict[str, IPv4Network]:
        """Each range by what it is for (the Internet gateway as a /32)."""
        return {"Internet gateway": IPv4Network(self.inet_gw),
                "carrier public": self.carrier_pool, "subscriber": self.subscribers,
                "management": self.mgmt, "home LAN": self.homes}

    def to_dict(self) -> dict[str, str]:
        return {k: str(v) for k, v in self.__dict__.items()}

    @classmethod
    def from_dict(cls, data: dict[str, str] | None) -> LabRanges:
        if not data:
            return cls()
        return cls(IPv4Address(data["inet_gw"]), IPv4Network(data["carrier_pool"]),
                   IPv4Network(data["subscribers"]), IPv4Network(data["mgmt"]),
                   IPv4Network(data["homes"]))


@dataclass(frozen=True)
class LabSpec:
    """The whole lab: hubs on the Internet, clients behind carriers."""

    name: str
    hubs: tuple[HubSpec, ...] = ()
    clients: tuple[ClientSpec, ...] = ()
    carriers: tuple[CarrierSpec, ...] = field(default=())
    ranges: LabRanges = field(default_factory=LabRanges)

    def __post_init__(self) -> None:
        validate(self)

    @property
    def machines(self) -> tuple[str, ...]:
        """Every machine name, hubs first, in declaration order."""
        return tuple(h.name for h in self.hubs) + tuple(c.name for c in self.clients)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (stored in the lab state so `down`/`exec` can rebuild the plan)."""
        return {
            "name": self.name,
            "hubs": [{"name": h.name, "public_ip": str(h.public_ip), "port": h.port}
                     for h in self.hubs],
            "clients": [{"name": c.name, "carrier": c.carrier, "home_nat": c.home_nat}
                        for c in self.clients],
            "carriers": [{"name": c.name, "udp_timeout": c.udp_timeout} for c in self.carriers],
            "ranges": self.ranges.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LabSpec:
        """Inverse of `to_dict`."""
        return cls(
            name=data["name"],
            hubs=tuple(HubSpec(h["name"], IPv4Address(h["public_ip"]), int(h["port"]))
                       for h in data.get("hubs", ())),
            clients=tuple(ClientSpec(c["name"], c["carrier"], bool(c.get("home_nat", False)))
                          for c in data.get("clients", ())),
            carriers=tuple(CarrierSpec(c["name"], int(c.get("udp_timeout", 30)))
                           for c in data.get("carriers", ())),
            ranges=LabRanges.from_dict(data.get("ranges")),
        )


def validate(spec: LabSpec) -> None:
    """Raise LabSpecError when names clash or references dangle."""
    if not LAB_NAME.match(spec.name):
        raise LabSpecError(
            f"lab name {spec.name!r}: use 1-32 lowercase letters, digits or '-', "
            "starting with a letter or digit")
    names = list(spec.machines)
    for n in names:
        if not _MACHINE.match(n):
            raise LabSpecError(f"machine name {n!r}: use letters, digits, '_', '.', '-'")
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise LabSpecError(f"machine names used twice: {', '.join(dupes)}")
    carriers = [c.name for c in spec.carriers]
    if len(set(carriers)) != len(carriers):
        raise LabSpecError("carrier names must be unique")
    for c in spec.carriers:
        if not _MACHINE.match(c.name):
            raise LabSpecError(f"carrier name {c.name!r}: use letters, digits, '_', '.', '-'")
        if c.udp_timeout < 1:
            raise LabSpecError(f"carrier {c.name!r}: udp_timeout must be >= 1 second")
    for cl in spec.clients:
        if cl.carrier not in carriers:
            raise LabSpecError(
                f"client {cl.name!r} uses carrier {cl.carrier!r}, which is not declared "
                f"(declared: {', '.join(carriers) or 'none'})")
    ips = [h.public_ip for h in spec.hubs]
    if len(set(ips)) != len(ips):
        raise LabSpecError("two hubs share a public IP address")
    for h in spec.hubs:
        if not 1 <= h.port <= 65535:
            raise LabSpecError(f"hub {h.name!r}: port {h.port} is out of range")


def classic_spec(name: str = "classic", udp_timeout: int = 30) -> LabSpec:
    """DESIGN.md's classic example: hub `vps`, clients `laptop` and `friend` behind one CG-NAT."""
    return LabSpec(
        name=name,
        hubs=(HubSpec("vps", IPv4Address("203.0.113.10"), 51820),),
        clients=(ClientSpec("laptop", "cgnat"), ClientSpec("friend", "cgnat")),
        carriers=(CarrierSpec("cgnat", udp_timeout),),
    )
