"""The Plan: everything one machine needs, derived from the topology. Plain data."""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import (
    IPv4Address,
    IPv4Interface,
    IPv4Network,
    IPv6Address,
    IPv6Interface,
    IPv6Network,
)
from typing import Literal

Prefix = IPv4Network | IPv6Network

KEY_DIR = "/etc/wgbgp/keys"


@dataclass(frozen=True)
class SecretRef:
    """A secret the renderer needs, by where it is read (never the secret itself).

    `kind` is "file" (a path on the machine running wgbgp, relative ones from the topology
    file's directory) or "env" (a variable of wgbgp's environment); `what` says what it is
    for, in messages.
    """

    kind: Literal["file", "env"]
    name: str
    what: str = field(default="", compare=False)

    def __str__(self) -> str:
        return f"{'file ' if self.kind == 'file' else '$'}{self.name}"


@dataclass(frozen=True)
class TunnelPeer:
    """A [Peer] of a WireGuard interface."""

    name: str
    public_key: str | None
    allowed_ips: tuple[Prefix | str, ...]
    endpoint: str | None = None
    keepalive: int | None = None
    preshared_key: SecretRef | None = None


@dataclass(frozen=True)
class Tunnel:
    """One WireGuard interface: a machine has one per hub it belongs to."""

    interface: str
    hub: str
    address: IPv4Interface | None  # None in an IPv6-only overlay
    mtu: int
    peers: tuple[TunnelPeer, ...]
    listen_port: int | None = None
    # Clients: wg-quick must not install routes for AllowedIPs (0.0.0.0/0); BGP routes.
    table_off: bool = False
    address6: IPv6Interface | None = None  # with an IPv6 overlay

    @property
    def addresses(self) -> tuple[IPv4Interface | IPv6Interface, ...]:
        """The tunnel's own addresses, IPv4 first."""
        return tuple(a for a in (self.address, self.address6) if a is not None)


@dataclass(frozen=True)
class BgpSession:
    """One eBGP neighbour, with the prefixes it may send us.

    Sessions are per address family: an IPv4 session between IPv4 tunnel addresses
    carries IPv4 unicast, an IPv6 session between IPv6 tunnel addresses carries IPv6
    unicast. So every next hop is a tunnel address of its own family, on both daemons.
    """

    peer: str
    peer_address: IPv4Address | IPv6Address
    peer_asn: int
    interface: str
    multihop: int | None
    accept: tuple[Prefix, ...]
    # Per `accept` entry: the longest more-specific also accepted (None: exactly it).
    accept_le: tuple[int | None, ...] = ()
    # Accepted prefixes past which we close the session (None: no limit).
    max_prefixes: int | None = None
    password: SecretRef | None = None  # TCP-MD5
    # Our own end of the session (same family as peer_address).
    local_address: IPv4Address | IPv6Address | None = None
    # Sessions accepting the same set share one import prefix-list, named FROM-<this>
    # (FROM6- for IPv6); left empty, the list is the peer's own: FROM-<peer>.
    accept_list: str = ""
    # Several hubs: local-pref set on what this session imports, so that traffic uses
    # the plane of the preferred hub. None with one hub.
    local_pref: int | None = None
    bfd: bool = False
    # The hub side of a hub-mode session: pass routes on with next hop and AS path kept.
    route_server_client: bool = False
    # The neighbour's BGP daemon (mesh sessions): FRR and BIRD differ on the wire in one
    # way that matters, the TTL of multihop BFD packets (see frr.conf's BFD profiles).
    peer_daemon: Literal["frr", "bird"] = "frr"

    def import_filter(self) -> tuple[tuple[Prefix, int | None], ...]:
        """(prefix, longest accepted length or None) for each prefix we accept."""
        les = self.accept_le or (None,) * len(self.accept)
        return tuple(zip(self.accept, les, strict=True))

    @property
    def afi(self) -> Literal["ipv4", "ipv6"]:
        return "ipv4" if self.peer_address.version == 4 else "ipv6"

    @property
    def import_list(self) -> str:
        """The name of the import prefix-list (FROM-x, or FROM6-x for IPv6)."""
        base = "FROM-" if self.peer_address.version == 4 else "FROM6-"
        return base + (self.accept_list or self.peer)


@dataclass(frozen=True)
class BfdTimers:
    """One BFD profile for every session of a speaker: detection in interval x multiplier."""

    interval_ms: int
    multiplier: int


@dataclass(frozen=True)
class BgpSpeaker:
    """A machine's BGP daemon: who it is, what it originates, whom it talks to."""

    asn: int
    router_id: IPv4Address
    originate: tuple[Prefix, ...]
    sessions: tuple[BgpSession, ...]
    # Never accepted from any neighbour, nor any more-specific of them: our tunnels'
    # overlay and our own prefixes (the default route is never accepted either).
    reject: tuple[Prefix, ...] = ()
    # Per `originate` entry: the longest more-specific of it we may export (None: exactly
    # it), from more_specifics for that prefix's family.
    originate_le: tuple[int | None, ...] = ()
    daemon: Literal["frr", "bird"] = "frr"
    bfd: BfdTimers | None = None
    # A hub in hub mode: a route server for its clients (RFC 7947).
    route_server: bool = False
    # The peer-group every session belongs to (IPv6 sessions: the same name plus "6"),
    # and the TTL they need (None: directly connected): MESH (client to client through a
    # hub, TTL 2), HUBS (client to its route servers) or CLIENTS (a route server to its
    # clients).
    group: str = "MESH"
    multihop: int | None = 2

    def originate_of(self, version: int) -> tuple[Prefix, ...]:
        return tuple(p for p in self.originate if p.version == version)

    def export_filter(self, version: int) -> tuple[tuple[Prefix, int | None], ...]:
        """(prefix, longest exported length or None) for each own prefix of a family."""
        les = self.originate_le or (None,) * len(self.originate)
        return tuple((p, le) for p, le in zip(self.originate, les, strict=True)
                     if p.version == version)


@dataclass(frozen=True)
class Plan:
    """All one machine runs: tunnels, BGP, forwarding. Input to every renderer."""

    machine: str
    network: str
    role: Literal["hub", "client"]
    tunnels: tuple[Tunnel, ...]
    bgp: BgpSpeaker | None
    ip_forward: bool
    # Hubs: tunnel sources whose traffic may leave for the Internet (masqueraded).
    exit_sources: tuple[Prefix, ...] = ()

    @property
    def key_file(self) -> str:
        """Where this machine's private key lives, on the machine itself."""
        return f"{KEY_DIR}/{self.machine}.key"
