"""Configuration mistakes one machine shows on its own, wgbgp-made or hand-made. Pure.

No topology is needed: each judgement reads the machine's WireGuard interfaces, its
addresses and its BGP daemon, and names the interface, peer or neighbour to fix. These
are the classic mistakes of the hand recipe (wg0.conf with the hub's /32 as AllowedIPs,
no keepalive, FRR with an inbound route-map only):

- a BGP neighbour on a WireGuard network that no peer's AllowedIPs cover: WireGuard drops
  every packet to it (ENOKEY), so not even a handshake is tried;
- no PersistentKeepalive to a peer we dial from a private address (behind NAT);
- no outbound policy: FRR (RFC 8212) sends an eBGP neighbour nothing;
- eBGP with TTL 1 to a neighbour that is not itself a WireGuard peer (so the hub
  forwards, and drops the TTL-1 packets);
- a `network` statement with no route for it: FRR announces nothing for it.
"""

from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network, ip_address, ip_network

from ..frr import BgpNeighbor
from ..status import MachineStatus
from ..wireguard import WgInterface, WgPeer
from .findings import Check, Code

Network = IPv4Network | IPv6Network
# Source addresses that mean "behind NAT": RFC 1918, CG-NAT (RFC 6598), IPv6 ULA.
NAT_SPACE = tuple(ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",
                                          "100.64.0.0/10", "fc00::/7"))
KEEPALIVE = 25


def _nets(allowed: tuple[str, ...]) -> list[Network]:
    out = []
    for a in allowed:
        try:
            out.append(ip_network(a, strict=False))
        except ValueError:
            continue
    return out


def covering(status: MachineStatus, address: str) -> list[tuple[WgInterface, WgPeer, Network]]:
    """Every (interface, peer, AllowedIPs entry) that carries `address`."""
    ip = ip_address(address)
    return [(i, p, n) for i in status.interfaces for p in i.peers
            for n in _nets(p.allowed_ips) if n.version == ip.version and ip in n]


def wg_network(status: MachineStatus, address: str) -> tuple[WgInterface, Network] | None:
    """The WireGuard interface whose own network (from its `Address =`) holds `address`."""
    ip = ip_address(address)
    for i in status.interfaces:
        for a in status.addresses_on(i.name):
            if a.network.version == ip.version and ip in a.network and a.network.prefixlen \
                    < a.network.max_prefixlen:
                return i, a.network
    return None


def direct(status: MachineStatus, address: str) -> bool:
    """Whether `address` is itself a WireGuard peer of this machine: one peer's AllowedIPs
    hold it as their only host address (as a client's do on a hub)."""
    for _, p, n in covering(status, address):
        hosts = [m for m in _nets(p.allowed_ips) if m.prefixlen == m.max_prefixlen]
        if n.prefixlen == n.max_prefixlen and len(hosts) == 1:
            return True
    return False


def _ebgp(status: MachineStatus, n: BgpNeighbor) -> bool:
    asn = status.bgp.asn if status.bgp else None
    return n.remote_as is not None and asn is not None and n.remote_as != asn


def judge_local(m: str, status: MachineStatus) -> list[Check]:
    """The mistakes `m` shows on its own, in layer order (see module doc)."""
    checks = [c for i in status.interfaces if status.links_up.get(i.name) is False
              for c in [interface_down(m, i)]]
    bird = status.bgp_daemon == "bird"
    neighbors = status.bgp.neighbors if status.bgp else ()
    for n in neighbors:
        outside = neighbor_outside(m, status, n)
        if outside:
            checks.append(outside)
    checks += keepalive_behind_nat(m, status)
    for n in neighbors:
        if not n.established and _ebgp(status, n) and n.multihop == 1 \
                and not direct(status, n.address) and (
                    covering(status, n.address) or wg_network(status, n.address)):
            checks.append(ttl_one(m, status, n, bird))
    for n in neighbors:
        if n.outbound_discarded and not n.established:
            checks.append(outbound_missing(m, status, n))
    checks += network_without_route(m, status, bird)
    return checks


def interface_down(m: str, i: WgInterface) -> Check:
    """WG_INTERFACE_DOWN for a live interface (no plan needed)."""
    return Check(Code.WG_INTERFACE_DOWN, m, f"interface {i.name}", "fail",
                 f"{i.name} is down on {m}: it carries nothing to its "
                 f"{len(i.peers)} peer{'' if len(i.peers) == 1 else 's'}",
                 (f"ip link: {i.name} is not UP (`wg show {i.name}` still lists its peers)",),
                 f"on {m}: `wg-quick down {i.name} && wg-quick up {i.name}` (a bare `ip link "
                 f"set {i.name} up` leaves out the routes wg-quick installs for AllowedIPs), "
                 f"or `wgbgp apply` if wgbgp made it")


def neighbor_outside(m: str, status: MachineStatus, n: BgpNeighbor) -> Check | None:
    """NEIGHBOR_OUTSIDE_ALLOWEDIPS: `n` is on a WireGuard network, no peer carries it."""
    if covering(status, n.address):
        return None
    found = wg_network(status, n.address)
    if found is None:
        return None
    iface, net = found
    ev = [f"{iface.name} peer {p.public_key}: AllowedIPs {', '.join(p.allowed_ips) or '(none)'}"
          for p in iface.peers] or [f"{iface.name} has no peers"]
    ev.append(f"BGP neighbour {n.address}: {n.state}")
    if len(iface.peers) == 1:
        p = iface.peers[0]
        # The overlay network, and whatever the peer carried that it does not hold.
        keep = [a for a in p.allowed_ips
                if not any(n.version == net.version and n.subnet_of(net)  # type: ignore[arg-type]
                           for n in _nets((a,)))]
        wider = ",".join([str(net), *keep])
        fix = (f"on {m}: the only peer of {iface.name} (the hub, {p.public_key}) forwards to "
               f"{n.address}, so it must carry it: in /etc/wireguard/{iface.name}.conf, "
               f"`AllowedIPs = {wider.replace(',', ', ')}` for that peer, plus "
               f"the prefixes {n.address} announces (or they are dropped the same way); "
               f"`wg set {iface.name} peer {p.public_key} allowed-ips {wider}` applies it now")
    else:
        fix = (f"on {m}: add {n.address}/{net.max_prefixlen} (and the prefixes it announces) "
               f"to the AllowedIPs of the {iface.name} peer that leads to it, in "
               f"/etc/wireguard/{iface.name}.conf and with `wg set {iface.name} peer KEY "
               f"allowed-ips ...`")
    return Check(Code.NEIGHBOR_OUTSIDE_ALLOWEDIPS, m, f"neighbour {n.address}", "fail",
                 f"BGP neighbour {n.address} is on {iface.name}'s network {net}, but no "
                 f"peer's AllowedIPs cover it: WireGuard drops every packet to it (no "
                 f"handshake is even tried; ping says \"Required key not available\")",
                 tuple(ev), fix)


def keepalive_behind_nat(m: str, status: MachineStatus) -> list[Check]:
    """WG_NO_KEEPALIVE for each peer we dial from a private address without keepalive.

    Without the route lookup (`sources`), a lone peer we dial is suspected all the same."""
    out = []
    for i in status.interfaces:
        for p in i.peers:
            if p.keepalive is not None or not p.endpoint:
                continue
            host = p.endpoint.rsplit(":", 1)[0].strip("[]")
            src = status.sources.get(host)
            if src is not None:
                try:
                    natted = any(ip_address(src) in net for net in NAT_SPACE
                                 if net.version == ip_address(src).version)
                except ValueError:
                    natted = False
                if not natted:
                    continue
                why = (f"{m} reaches {p.endpoint} from {src}, a private address: behind "
                       f"NAT, whose mapping expires when idle (often after 30 s)")
            elif status.sources or len(i.peers) != 1:
                continue
            else:
                why = "the only peer, dialled: behind NAT the mapping expires when idle"
            out.append(Check(
                Code.WG_NO_KEEPALIVE, m, f"{i.name} peer {p.public_key}", "warn",
                f"no PersistentKeepalive to {i.name} peer {p.public_key} ({p.endpoint}); "
                f"{why}, and the peer can no longer reach {m}",
                (f"{i.name} peer {p.public_key}: persistent keepalive off",),
                f"on {m}: `PersistentKeepalive = {KEEPALIVE}` in that [Peer] of "
                f"/etc/wireguard/{i.name}.conf; `wg set {i.name} peer {p.public_key} "
                f"persistent-keepalive {KEEPALIVE}` applies it now"))
    return out


def ttl_one(m: str, status: MachineStatus, n: BgpNeighbor, bird: bool) -> Check:
    """BGP_TTL: eBGP TTL 1 to a neighbour that is not itself a WireGuard peer."""
    return Check(
        Code.BGP_TTL, m, f"session with {n.address}", "fail",
        f"{m} sends BGP to {n.address} with TTL 1 (no multihop), but {n.address} is not "
        f"one of its WireGuard peers: the hub between them forwards, and drops TTL-1 "
        f"packets", (f"neighbor {n.address}: {'multihop' if bird else 'ebgp-multihop'} not "
                     f"set, state {n.state}",),
        (f"on {m}: `multihop 2;` in its BGP protocol for {n.address}" if bird else
         f"on {m}: `neighbor {n.address} ebgp-multihop 2` under `router bgp "
         f"{status.bgp.asn if status.bgp else ''}`")
        + " (TTL 1 is right only if the neighbour is the hub itself)")


def outbound_missing(m: str, status: MachineStatus, n: BgpNeighbor) -> Check:
    """POLICY_MISSING: FRR discards every update to `n` for want of an outbound policy."""
    asn = status.bgp.asn if status.bgp else ""
    return Check(
        Code.POLICY_MISSING, m, f"session with {n.address}", "fail",
        f"{m} has no outbound policy for {n.address}: FRR (RFC 8212) sends it nothing, "
        f"so it never learns what {m} announces",
        (f"FRR: neighbor {n.address}: outbound updates discarded due to missing policy",
         f"inbound policy: {', '.join(n.filters_in) or 'none'}; outbound: none"),
        f"on {m}: under `router bgp {asn}`, `address-family ipv4 unicast`: `neighbor "
        f"{n.address} route-map OUT out` with a `route-map OUT permit 10` that matches what "
        f"you announce (e.g. `match ip address prefix-list OWN`), or `neighbor {n.address} "
        f"prefix-list OWN out`")


def network_without_route(m: str, status: MachineStatus, bird: bool) -> list[Check]:
    """PREFIX_NOT_ORIGINATED for each prefix FRR is told to announce with no route for it:
    a local path in the BGP table that is not valid (network import-check)."""
    if status.bgp is None or bird:
        return []
    valid = {p.prefix for p in status.bgp.paths if p.peer is None and p.valid}
    dead = dict.fromkeys(p.prefix for p in status.bgp.paths
                         if p.peer is None and not p.valid and p.prefix not in valid)
    return [Check(
        Code.PREFIX_NOT_ORIGINATED, m, f"prefix {prefix}", "fail",
        f"FRR on {m} has `network {prefix}` but no route for {prefix}: it announces nothing "
        f"for it", (f"BGP table: {prefix} local, not valid (no matching route in the RIB)",),
        f"on {m}: give {prefix} a route: `ip route {prefix} blackhole` in frr.conf (staticd), "
        f"or an address of it on an interface (`ip addr add ... dev lo`); or remove "
        f"`network {prefix}`") for prefix in dead]
