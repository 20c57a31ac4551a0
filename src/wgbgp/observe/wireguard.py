"""WireGuard state from `wg show all dump`. Pure: text in, typed objects out.

`wg show all dump` prints one tab-separated line per interface, then one per peer of it.
Every line starts with the interface name.

Interface line (5 fields):
    interface  private-key  public-key  listen-port  fwmark
    - fwmark is `off` or a number (hex with 0x, or decimal).
Peer line (9 fields):
    interface  public-key  preshared-key  endpoint  allowed-ips  latest-handshake
    transfer-rx  transfer-tx  persistent-keepalive
    - preshared-key: `(none)` or the base64 key (a secret, like the private key);
    - endpoint: `(none)` or `ip:port` / `[ipv6]:port`. For a peer that has sent us an
      authenticated packet this is where the packet came from, i.e. the NAT mapping as
      seen from here, not necessarily what was configured;
    - allowed-ips: comma-separated prefixes, or `(none)`;
    - latest-handshake: unix seconds, 0 = never;
    - transfer-rx / transfer-tx: bytes received from / sent to the peer;
    - persistent-keepalive: `off` or seconds.

Secrets (private and preshared keys) are dropped while parsing, and `redact_dump`
removes them from raw text before it is stored anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

REDACTED = "(redacted)"
# WireGuard refuses to use a session key older than this (REJECT_AFTER_TIME): a
# handshake older than this means the tunnel carries nothing until a new one succeeds.
REJECT_AFTER_TIME = 180


class DumpError(ValueError):
    """Text that is not `wg show all dump` output."""


@dataclass(frozen=True)
class WgPeer:
    """One peer of a WireGuard interface, as the kernel (or wireguard-go) sees it."""

    public_key: str
    endpoint: str | None
    allowed_ips: tuple[str, ...]
    latest_handshake: int  # unix seconds; 0 = never
    rx_bytes: int
    tx_bytes: int
    keepalive: int | None  # seconds; None = off
    has_preshared_key: bool = False

    def handshake_age(self, now: float) -> float | None:
        """Seconds since the latest handshake; None when there never was one."""
        if not self.latest_handshake:
            return None
        return max(0.0, now - self.latest_handshake)

    def to_json(self, now: float) -> dict[str, Any]:
        age = self.handshake_age(now)
        return {
            "public_key": self.public_key,
            "endpoint": self.endpoint,
            "allowed_ips": list(self.allowed_ips),
            "latest_handshake": self.latest_handshake or None,
            "handshake_age": round(age, 1) if age is not None else None,
            "rx_bytes": self.rx_bytes,
            "tx_bytes": self.tx_bytes,
            "keepalive": self.keepalive,
            "preshared_key": self.has_preshared_key,
        }


@dataclass(frozen=True)
class WgInterface:
    """A WireGuard interface: its identity and its peers."""

    name: str
    public_key: str | None
    listen_port: int | None
    fwmark: int | None
    peers: tuple[WgPeer, ...] = ()

    def peer(self, public_key: str) -> WgPeer | None:
        return next((p for p in self.peers if p.public_key == public_key), None)

    def to_json(self, now: float) -> dict[str, Any]:
        return {
            "name": self.name,
            "public_key": self.public_key,
            "listen_port": self.listen_port,
            "fwmark": self.fwmark,
            "peers": [p.to_json(now) for p in self.peers],
        }


def _none(field: str) -> str | None:
    return None if field in ("(none)", "") else field


def _int(field: str, what: str, lineno: int) -> int:
    try:
        return int(field, 0) if field.startswith("0x") else int(field)
    except ValueError:
        raise DumpError(f"line {lineno}: {what} {field!r} is not a number") from None


def parse_dump(text: str) -> tuple[WgInterface, ...]:
    """Parse `wg show all dump` output into interfaces, in the order printed."""
    order: list[str] = []
    heads: dict[str, tuple[str | None, int | None, int | None]] = {}
    peers: dict[str, list[WgPeer]] = {}
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        f = line.split("\t")
        if len(f) == 5:
            name, _private, public, port, fwmark = f
            if name not in heads:
                order.append(name)
            heads[name] = (
                _none(public),
                _int(port, "listen port", lineno) if _none(port) and port != "0" else None,
                None if fwmark in ("off", "0") else _int(fwmark, "fwmark", lineno),
            )
            peers.setdefault(name, [])
        elif len(f) == 9:
            name, public, psk, endpoint, allowed, handshake, rx, tx, keepalive = f
            if name not in heads:
                raise DumpError(f"line {lineno}: peer of {name!r} before its interface line")
            peers[name].append(WgPeer(
                public_key=public,
                endpoint=_none(endpoint),
                allowed_ips=tuple(a for a in allowed.split(",") if _none(a)),
                latest_handshake=_int(handshake, "latest handshake", lineno),
                rx_bytes=_int(rx, "rx bytes", lineno),
                tx_bytes=_int(tx, "tx bytes", lineno),
                keepalive=None if keepalive in ("off", "0") else _int(keepalive, "keepalive",
                                                                       lineno),
                has_preshared_key=_none(psk) is not None,
            ))
        else:
            raise DumpError(
                f"line {lineno}: expected 5 (interface) or 9 (peer) tab-separated fields, "
                f"got {len(f)}")
    return tuple(WgInterface(n, *heads[n], peers=tuple(peers[n])) for n in order)


def redact_dump(text: str) -> str:
    """The dump without private and preshared keys (safe to store, print or log)."""
    lines = []
    for line in text.splitlines():
        f = line.split("\t")
        if len(f) == 5:
            f[1] = REDACTED
        elif len(f) == 9 and f[2] != "(none)":
            f[2] = REDACTED
        lines.append("\t".join(f))
    return "\n".join(lines) + ("\n" if text.endswith("\n") else "")
