"""The Plan: everything one machine needs, derived from the topology. Plain data."""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from typing import Literal

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
    allowed_ips: tuple[IPv4Network | str, ...]
    endpoint: str | None = None
    keepalive: int | None = None
    preshared_key: SecretRef | None = None


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
    # Per `accept` entry: the longest more-specific also accepted (None: exactly it).
    accept_le: tuple[int | None, ...] = ()
    # Accepted prefixes past which we close the session (None: no limit).
    max_prefixes: int | None = None
    password: SecretRef | None = None  # TCP-MD5

    def import_filter(self) -> tuple[tuple[IPv4Network, int | None], ...]:
        """(prefix, longest accepted length or None) for each prefix we accept."""
        les = self.accept_le or (None,) * len(self.accept)
        return tuple(zip(self.accept, les, strict=True))


@dataclass(frozen=True)
class BgpSpeaker:
    """A machine's BGP daemon: who it is, what it originates, whom it talks to."""

    asn: int
    router_id: IPv4Address
    originate: tuple[IPv4Network, ...]
    sessions: tuple[BgpSession, ...]
    # Never accepted from any neighbour, nor any more-specific of them: our tunnels'
    # overlay and our own prefixes (the default route is never accepted either).
    reject: tuple[IPv4Network, ...] = ()
    # The longest more-specific of our own prefixes we may export (None: exactly them).
    originate_le: int | None = None


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
    exit_sources: tuple[IPv4Network, ...] = ()

    @property
    def key_file(self) -> str:
        """Where this machine's private key lives, on the machine itself."""
        return f"{KEY_DIR}/{self.machine}.key"
