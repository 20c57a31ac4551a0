"""Live-state drift: where a machine's running state differs from the config its files
already hold. Pure: a function of the rendered files and the probed facts.

A files-only comparison misses these: `ip link set wg-vps down` then `up` keeps every
file, but the routes wg-quick installed for the peers' AllowedIPs are gone. Each drift
names the step that repairs it (steps.plan_steps adds that step), so apply can report
"repaired: ..." once the step has run, and `plan` shows what it would repair.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network, ip_network
from typing import Any

from .probe import LiveInterface, MachineState

Network = IPv4Network | IPv6Network

# FRR daemons the probe reports; watchfrr, zebra and bgpd always run with FRR.
FRR_PROBED = ("watchfrr", "zebra", "bgpd", "staticd", "bfdd")
FRR_ALWAYS = ("watchfrr", "zebra", "bgpd")


@dataclass(frozen=True)
class Drift:
    """One difference between the config and the live state.

    `text` is written with `{be}` for the verb, so it reads in the present for `plan`
    ("route ... dev wg-vps is missing") and in the past once repaired ("... was missing").
    """

    kind: str     # interface link address mtu peer route nftables sysctl daemon
    subject: str  # the interface, sysctl key, daemon...
    text: str
    step: str     # name of the step that repairs it

    @property
    def present(self) -> str:
        return self.text.format(be="is", bep="are")

    @property
    def past(self) -> str:
        return self.text.format(be="was", bep="were")

    def line(self) -> str:
        return f"repaired: {self.past}"

    def to_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "subject": self.subject, "drift": self.present,
                "step": self.step}


@dataclass(frozen=True)
class WgPeer:
    public_key: str
    label: str                      # the `# name` comment wgbgp renders after [Peer]
    allowed_ips: frozenset[str]
    endpoint: str | None
    keepalive: int
    preshared: bool


@dataclass(frozen=True)
class WgConfig:
    listen_port: int | None
    peers: dict[str, WgPeer]


def _networks(value: str) -> set[str]:
    out = set()
    for part in value.split(","):
        part = part.strip()
        if part:
            try:
                out.add(str(ip_network(part, strict=False)))
            except ValueError:
                out.add(part)
    return out


def parse_wg_config(text: str) -> WgConfig:
    """The WireGuard settings of a wg-quick file or of `wg showconf` output. Pure.

    wg-quick's own keys (Address, MTU, Table, PostUp...) are ignored; a peer's label is the
    first comment line after its [Peer] header.
    """
    listen: int | None = None
    peers: dict[str, WgPeer] = {}
    cur: dict[str, Any] | None = None

    def close() -> None:
        if cur is not None and cur.get("key"):
            peers[cur["key"]] = WgPeer(cur["key"], cur.get("label", ""),
                                       frozenset(cur.get("ips", set())), cur.get("endpoint"),
                                       cur.get("keepalive", 0), cur.get("psk", False))

    section = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if stripped.startswith("#"):
            if cur is not None and "label" not in cur and not cur.get("key"):
                cur["label"] = stripped.lstrip("#").strip()
            continue
        line = stripped.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("["):
            section = line.lower()
            close()
            cur = {} if section == "[peer]" else None
            continue
        if "=" not in line:
            continue
        key, value = (s.strip() for s in line.split("=", 1))
        key = key.lower()
        if section == "[interface]" and key == "listenport":
            listen = int(value) if value.isdigit() else None
        elif cur is not None:
            if key == "publickey":
                cur["key"] = value
            elif key == "allowedips":
                cur.setdefault("ips", set()).update(_networks(value))
            elif key == "endpoint":
                cur["endpoint"] = value
            elif key == "persistentkeepalive":
                cur["keepalive"] = int(value) if value.isdigit() else 0
            elif key == "presharedkey":
                cur["psk"] = bool(value)
    close()
    return WgConfig(listen, peers)


def _literal_endpoint(endpoint: str | None) -> bool:
    """An IP:port endpoint (a DNS name resolves to an address `wg` shows instead)."""
    if not endpoint or ":" not in endpoint:
        return False
    host = endpoint.rsplit(":", 1)[0].strip("[]")
    try:
        ip_network(host)
    except ValueError:
        return False
    return True


def _short(key: str) -> str:
    return key[:8] + "…"


def peer_drift(iface: str, want_text: str, live_text: str, step: str) -> list[Drift]:
    """The peers of a running interface against its config."""
    want, live = parse_wg_config(want_text), parse_wg_config(live_text)
    out: list[Drift] = []

    def add(text: str) -> None:
        out.append(Drift("peer", iface, text, step))

    if want.listen_port is not None and live.listen_port != want.listen_port:
        add(f"{iface} listen port {{be}} {live.listen_port}, not {want.listen_port}")
    for key, p in want.peers.items():
        name = f"{iface} peer {p.label + ' ' if p.label else ''}({_short(key)})"
        q = live.peers.get(key)
        if q is None:
            add(f"{name} {{be}} missing")
            continue
        if q.allowed_ips != p.allowed_ips:
            add(f"{name} AllowedIPs {{bep}} {', '.join(sorted(q.allowed_ips)) or 'none'}, not "
                f"{', '.join(sorted(p.allowed_ips))}")
        if q.keepalive != p.keepalive:
            add(f"{name} keepalive {{be}} {q.keepalive or 'off'}, not {p.keepalive or 'off'}")
        if _literal_endpoint(p.endpoint) and q.endpoint != p.endpoint:
            add(f"{name} endpoint {{be}} {q.endpoint or 'unset'}, not {p.endpoint}")
        if q.preshared != p.preshared:
            add(f"{name} preshared key {{be}} " + ("set" if q.preshared else "missing"))
    for key in sorted(set(live.peers) - set(want.peers)):
        add(f"{iface} peer ({_short(key)}) {{be}} not in the config")
    return out


def _route_network(dst: str) -> Network | None:
    try:
        return ip_network(dst, strict=False)
    except ValueError:
        return None


def route_drift(iface: str, want_text: str, routes: tuple[str, ...], step: str) -> list[Drift]:
    """With Table = auto, wg-quick routes each peer's AllowedIPs (except /0) via the
    interface unless a route via it already covers the prefix: the same test here."""
    live = [n for n in (_route_network(d) for d in routes) if n is not None]
    out = []
    wanted: set[Network] = set()
    for p in parse_wg_config(want_text).peers.values():
        for a in p.allowed_ips:
            try:
                wanted.add(ip_network(a, strict=False))
            except ValueError:
                continue
    for net in sorted(wanted, key=lambda n: (n.version, n)):
        if net.prefixlen == 0:
            continue
        covered = any(n.version == net.version and net.subnet_of(n)  # type: ignore[arg-type]
                      for n in live)
        if not covered:
            out.append(Drift("route", iface, f"route {net} dev {iface} {{be}} missing", step))
    return out


def link_drift(iface: str, live: LiveInterface, step: str) -> list[Drift]:
    if live.exists and live.up is False:
        return [Drift("link", iface, f"{iface} {{be}} down", step)]
    return []


def address_drift(iface: str, ops: list[tuple[str, str]], step: str) -> list[Drift]:
    """Drift items for the `ip` operations steps.address_ops computed."""
    out = []
    for op, arg in ops:
        if op == "addr-add":
            out.append(Drift("address", iface, f"address {arg} on {iface} {{be}} missing", step))
        elif op == "addr-del":
            out.append(Drift("address", iface,
                             f"address {arg} on {iface} {{be}} not in the config", step))
        elif op == "mtu":
            out.append(Drift("mtu", iface, f"{iface} MTU {{be}} not {arg}", step))
    return out


def sysctl_drift(settings: tuple[tuple[str, str], ...], state: MachineState,
                 step: str) -> list[Drift]:
    """Each setting whose live value differs (keys the probe did not read are skipped)."""
    out = []
    for key, value in settings:
        live = state.sysctls.get(key)
        if live is not None and live != " ".join(value.split()):
            out.append(Drift("sysctl", key, f"{key} {{be}} {live}, not {value}", step))
    return out


def frr_missing(state: MachineState, daemons_text: str | None) -> list[str]:
    """FRR daemons that should run (watchfrr, zebra, bgpd and those /etc/frr/daemons
    enables) and do not. Only meaningful while FRR runs at all."""
    enabled = set(FRR_ALWAYS)
    for raw in (daemons_text or "").splitlines():
        key, _, value = raw.strip().partition("=")
        if key in FRR_PROBED and value.strip().strip('"') == "yes":
            enabled.add(key)
    return [d for d in FRR_PROBED if d in enabled and d not in state.daemons]
