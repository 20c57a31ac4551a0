"""The topology schema: what a user may write in a topology file.

Every section forbids unknown keys so typos are caught. Optional fields have defaults
that produce the classic recipe. New capabilities (IPv6 overlays, several hubs, hub
mode, BIRD) arrive as new optional keys or new values of existing ones, so files written
today stay valid.
"""

from __future__ import annotations

from collections.abc import Iterator
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    PrivateAttr,
    Tag,
    model_validator,
)

from .fields import (
    NAME_RE,
    PAIR,
    Announce,
    Asn,
    Endpoint,
    HubName,
    NodeName,
    Overlay6,
    PublicKey,
    invalid,
    secret_problem,
    split_endpoint,
)

# The sections, and the field names callers used to import from here (model/fields.py).
__all__ = ["NAME_RE", "PAIR", "Bfd", "Hub", "Lab", "LabCarrier", "LabPlacement",
           "MoreSpecifics", "Network", "Node", "Secret", "Section", "Topology",
           "split_endpoint"]

class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Secret(Section):
    """Where wgbgp reads a secret when it renders: a file, or an environment variable, on
    the machine that runs wgbgp. The topology holds only this name, never the secret."""

    file: str | None = None
    env: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _named_not_written(cls, value: object) -> object:
        problem = secret_problem(value)
        if problem:
            raise invalid(*problem)
        return value

    def for_pair(self, a: str, b: str) -> tuple[Literal["file", "env"], str]:
        """(kind, name) for the session or tunnel between machines a and b."""
        pair = "-".join(sorted((a, b)))
        if self.file is not None:
            return "file", self.file.replace(PAIR, pair)
        assert self.env is not None
        return "env", self.env.replace(PAIR, pair.upper().replace("-", "_"))


class Bfd(Section):
    """Bidirectional Forwarding Detection on every BGP session (FRR's bfdd).

    A dead hub is noticed in interval x multiplier (0.9 s by default) instead of the BGP
    hold time (30 s), so traffic moves to another hub's plane within about a second.
    """

    # None: on when the topology has several hubs (there is somewhere to fail over to).
    enabled: bool | None = None
    interval: int = Field(300, ge=50, le=60000, strict=True)  # ms, sent and expected
    multiplier: int = Field(3, ge=2, le=255, strict=True)


def _bfd_shorthand(value: object) -> object:
    # `bfd: true` / `bfd: false` is short for `bfd: {enabled: ...}`.
    return {"enabled": value} if isinstance(value, bool) else value


class Network(Section):
    name: NodeName
    # Tunnel addresses come from these: IPv4, IPv6, or both (dual stack). At least one
    # (validate.py says so); IPv6 prefixes announced without overlay6 imply "auto".
    overlay: IPv4Network | None = None
    overlay6: Overlay6 | None = None
    # mesh: every client pair peers through the hub (the classic recipe).
    # hub: every client peers with each hub only; the hub is a BGP route server (RFC 7947).
    mode: Literal["mesh", "hub"] = "mesh"
    mtu: int = Field(1420, ge=1280, le=9000, strict=True)
    keepalive: int = Field(25, ge=1, le=3600, strict=True)
    # TCP-MD5 (RFC 2385) on every BGP session, read when rendering; see Secret.
    bgp_password: Secret | None = None
    # A WireGuard preshared key on every client-hub tunnel (a second, symmetric layer of
    # encryption), read when rendering; see Secret.
    preshared_key: Secret | None = None
    bfd: Annotated[Bfd, BeforeValidator(_bfd_shorthand)] = Field(default_factory=Bfd)
    # How machines reach the hubs: over the Internet (hub endpoints must be public
    # addresses; check warns otherwise), or over a private network (a LAN, a VPN, the lab).
    underlay: Literal["internet", "private"] = "internet"


class Hub(Section):
    endpoint: Endpoint
    address: IPv4Address | None = None
    address6: IPv6Address | None = None
    public_key: PublicKey | None = None
    ssh: str | None = None
    # Forward (masqueraded) traffic from nodes that ask for an exit to the Internet.
    exit: bool = Field(False, strict=True)
    # The hub's own ASN: required in hub mode, where the hub is the route server.
    asn: Asn | None = None
    # This hub's plane: its own tunnel subnet. Left out: network.overlay, which only one
    # hub may use; every other hub needs its own, disjoint from the others.
    overlay: IPv4Network | None = None
    # Its IPv6 tunnel subnet, when the network has an IPv6 overlay. Left out: the
    # network's overlay6 for the hub on network.overlay, for every other hub a ULA /64 in
    # the network's ULA /48, derived from the hub's name.
    overlay6: IPv6Network | None = None
    # Traffic prefers the plane of the hub with the highest preference (BGP local-pref
    # on the clients). Left out: 100 for the first hub, 90 for the second, and so on.
    preference: int | None = Field(None, ge=0, le=4294967295, strict=True)
    # The route server's BGP daemon in hub mode: FRRouting (default) or BIRD 2, which
    # carries thousands of clients in the memory FRR needs for hundreds (README, Scale).
    daemon: Literal["frr", "bird"] = "frr"

    @property
    def port(self) -> int:
        return split_endpoint(self.endpoint)[1]

    @property
    def host(self) -> str:
        return split_endpoint(self.endpoint)[0]


class MoreSpecifics(Section):
    """The longest more-specific peers accept, per address family (left out: exactly the
    announced prefixes of that family)."""

    ipv4: int | None = Field(None, ge=1, le=32, strict=True)
    ipv6: int | None = Field(None, ge=1, le=128, strict=True)


def _more_specifics(value: object) -> object:
    """A length for every announced prefix (`more_specifics: 28`), or one per family
    (`more_specifics: {ipv4: 28, ipv6: 64}`)."""
    if isinstance(value, bool) or not isinstance(value, int | dict | MoreSpecifics):
        raise invalid(f"{value!r} is not a prefix length",
                      "write a length such as 28, or one per family: {ipv4: 28, ipv6: 64}")
    if isinstance(value, int) and not 1 <= value <= 128:
        raise invalid(f"/{value} is not a prefix length",
                      "use 1 to 32 for IPv4 prefixes, 1 to 128 for IPv6 ones")
    return value


# A length (checked above), or a mapping of lengths per family: a tagged union, so that a
# bad mapping is reported as such, not also as "not a whole number".
MoreSpecificsSpec = Annotated[
    Annotated[int, Tag("length")] | Annotated[MoreSpecifics, Tag("families")],
    Discriminator(lambda v: "length" if isinstance(v, int) else "families"),
    BeforeValidator(_more_specifics),
]


class Node(Section):
    asn: Asn
    address: IPv4Address | None = None
    address6: IPv6Address | None = None
    public_key: PublicKey | None = None
    announce: list[Announce] = Field(default_factory=list)
    ssh: str | None = None
    # Peers also accept more-specifics of this node's prefixes, up to this length (left
    # out: exactly the announced prefixes): one length for every prefix, or one per
    # family. validate.py checks each against the prefixes of its family.
    more_specifics: MoreSpecificsSpec | None = None
    # How many prefixes a peer accepts from this node before it closes the session
    # (left out: the number announced plus a margin).
    max_prefixes: int | None = Field(None, ge=1, le=1_000_000, strict=True)
    # Send Internet traffic through a hub that offers an exit (hubs.*.exit).
    exit: bool = Field(False, strict=True)
    # The BGP daemon this node runs: FRRouting (default) or BIRD 2.
    daemon: Literal["frr", "bird"] = "frr"
    # Announce prefixes shorter than /8 (IPv4) or /16 (IPv6): refused unless set.
    allow_short: bool = Field(False, strict=True)

    def more_specifics_of(self, version: int) -> int | None:
        """The more_specifics length that applies to this node's prefixes of one family."""
        ms = self.more_specifics
        if isinstance(ms, MoreSpecifics):
            return ms.ipv4 if version == 4 else ms.ipv6
        return ms

    def longest(self, prefix: IPv4Network | IPv6Network) -> int | None:
        """The longest more-specific of `prefix` (one this node announces) that peers
        accept; None: exactly `prefix`."""
        n = self.more_specifics_of(prefix.version)
        return n if n is not None and n > prefix.prefixlen else None


class LabCarrier(Section):
    udp_timeout: int = Field(30, ge=5, le=3600, strict=True)


class LabPlacement(Section):
    carrier: NodeName = "cgnat"
    home_nat: bool = False


class Lab(Section):
    """Where each client sits in `wgbgp lab`; ignored on real machines."""

    carriers: dict[NodeName, LabCarrier] = Field(default_factory=dict)
    nodes: dict[NodeName, LabPlacement] = Field(default_factory=dict)


class SshDefaults(Section):
    """How wgbgp reaches every machine's `ssh:` target, unless the command line says
    otherwise (--identity, --known-hosts, --ssh-netns). Left out: OpenSSH's defaults."""

    identity: str | None = None  # the private key to log in with
    known_hosts: str | None = None  # the file that holds the machines' host keys
    netns: str | None = None  # connect from inside this network namespace (a path)


class Topology(Section):
    network: Network
    hubs: dict[HubName, Hub]
    nodes: dict[NodeName, Node]
    # Pairs of node names; left out, every pair of clients peers.
    peerings: list[tuple[NodeName, NodeName]] | None = None
    lab: Lab | None = None
    ssh: SshDefaults | None = None
    # Not in the file: host numbers recorded for its machines before (the lock file
    # beside it), by family and name; addressing.with_recorded sets it.
    _recorded: dict[int, dict[str, int]] = PrivateAttr(default_factory=dict)

    def machine(self, name: str) -> Hub | Node:
        """The hub or node called `name` (validation keeps hub and node names apart);
        KeyError when there is neither."""
        return self.hubs[name] if name in self.hubs else self.nodes[name]

    @property
    def machines(self) -> dict[str, Hub | Node]:
        """Every hub and node by name, hubs first, in the file's order."""
        return {**self.hubs, **self.nodes}

    def located(self) -> Iterator[tuple[str, str, Hub | Node]]:
        """(section, name, machine) for every hub, then every node: the section ("hubs" or
        "nodes") and the name begin the machine's location in the file."""
        for name, hub in self.hubs.items():
            yield "hubs", name, hub
        for name, node in self.nodes.items():
            yield "nodes", name, node
