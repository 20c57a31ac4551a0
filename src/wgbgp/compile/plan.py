"""The Plan: everything one machine needs, derived from the topology. Plain data."""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from typing import Literal

KEY_DIR = "/etc/wgbgp/keys"


@dataclass(frozen=True)
class TunnelPeer:
    """A [Peer] of a WireGuard interface."""

    name: str
    public_key: str | None
    allowed_ips: tuple[IPv4Network | str, ...]
    endpoint: str | None = None
    keepalive: int | None = None


@dataclass(frozen=True)
class Tunnel:
    """One WireGuard interface: a machine has one per hub it belongs to."""

    interface: str
    hub: str
    address: IPv4Interface
    mtu: int
    peers: tuple[TunnelPeer, ...]
    listen_port: int | None = None
    # Clients: wg-quick must not install routes for AllowedIPs (0.0.0.0/0); BGP routes.
    table_off: bool = False


@dataclass(frozen=True)
class BgpSession:
    """One eBGP neighbour, with the prefixes it may send us."""

    peer: str
    peer_address: IPv4Address
    peer_asn: int
    interface: str
    multihop: int | None
    accept: tuple[IPv4Network, ...]


@dataclass(frozen=True)
class BgpSpeaker:
    """A machine's BGP daemon: who it is, what it originates, whom it talks to."""

    asn: int
    router_id: IPv4Address
    originate: tuple[IPv4Network, ...]
    sessions: tuple[BgpSession, ...]


@dataclass(frozen=True)
class Plan:
    """All one machine runs: tunnels, BGP, forwarding. Input to every renderer."""

    machine: str
    network: str
    role: Literal["hub", "client"]
    tunnels: tuple[Tunnel, ...]
    bgp: BgpSpeaker | None
    ip_forward: bool

    @property
    def key_file(self) -> str:
        """Where this machine's private key lives, on the machine itself."""
        return f"{KEY_DIR}/{self.machine}.key"
