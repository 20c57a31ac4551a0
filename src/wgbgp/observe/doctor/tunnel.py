"""Layer 1, as configured: each machine's WireGuard interface (up, key, address, MTU), its
peers' AllowedIPs, and the hub's view of its clients' keys and its listen port. Pure.

These are facts of one machine's configuration, judged on every machine we see whatever
else is wrong: they are what the symptoms in higher layers are blamed on.
"""

from __future__ import annotations

from ...compile.plan import Tunnel, TunnelPeer
from ...model.schema import split_endpoint
from ...words import plural
from ..expect import covers
from ..wireguard import WgInterface
from .context import Context
from .findings import Code


def judge_interfaces(ctx: Context, m: str) -> None:
    """Each of `m`'s tunnels: the interface is up with the topology's key, tunnel address
    and MTU, and each peer's AllowedIPs cover what it must carry."""
    status, plan = ctx.st[m], ctx.plans[m]
    errors = status.errors
    for tunnel in plan.tunnels:
        iface = status.interface(tunnel.interface)
        subject = f"interface {tunnel.interface}"
        if iface is None:
            present = ", ".join(i.name for i in status.interfaces) or "none"
            ev = [f"WireGuard interfaces on {m}: {present}"]
            if "wg" in errors:
                ev.append(f"`wg show all dump`: {errors['wg']}")
            ctx.add(Code.WG_INTERFACE_MISSING, m, subject, "fail",
                    f"{tunnel.interface} is not up on {m}", ev,
                    f"on {m}: `wg-quick up {tunnel.interface}` (or `wgbgp apply`); "
                    f"`journalctl`/stderr of wg-quick tells why it fails")
            continue
        alias = ctx.aliases.names.get(m, {}).get(tunnel.interface)
        if alias:
            ctx.ok(Code.WG_INTERFACE_MISSING, m, subject,
                   f"{m}'s tunnel to {tunnel.hub} is {alias[0]} here (the topology's "
                   f"{tunnel.interface}), recognised by {alias[1]}")
        if status.links_up.get(tunnel.interface) is False:
            judge_down(ctx, m, tunnel)
        want = ctx.exp.public_key(m)
        if want and iface.public_key and iface.public_key != want:
            ctx.add(Code.WG_KEY_MISMATCH, m, f"{tunnel.interface} own key", "fail",
                    f"{m}'s {tunnel.interface} runs with a different key than the "
                    f"topology says", [f"live public key {iface.public_key}",
                                       f"topology public key {want}"],
                    f"either put {iface.public_key} into the topology as {m}'s "
                    f"public_key (and re-apply the peers), or load the private key "
                    f"matching {want} on {m}")
        addrs = status.addresses_on(tunnel.interface)
        lacking = [a for a in tunnel.addresses if a not in addrs]
        if "addresses" not in errors and lacking:
            ctx.add(Code.WG_ADDRESS_MISSING, m, subject, "fail",
                    f"{tunnel.interface} on {m} lacks its tunnel address "
                    f"{', '.join(map(str, lacking))}",
                    [f"addresses on {tunnel.interface}: "
                     f"{', '.join(map(str, addrs)) or 'none'}"],
                    f"on {m}: `ip addr add {lacking[0]} dev {tunnel.interface}` "
                    f"(wg-quick sets it from `Address =`)")
        mtu = status.mtus.get(tunnel.interface)
        if mtu is not None and mtu != tunnel.mtu:
            ctx.add(Code.MTU_MISMATCH, m, subject, "warn",
                    f"{tunnel.interface} on {m} has MTU {mtu}, the topology says "
                    f"{tunnel.mtu}", [f"live MTU {mtu}"],
                    f"set `MTU = {tunnel.mtu}` (or change network.mtu) and re-apply")
        for tp in tunnel.peers:
            judge_allowed_ips(ctx, m, tunnel, tp, iface)


def judge_down(ctx: Context, m: str, tunnel: Tunnel) -> None:
    """WG_INTERFACE_DOWN: the interface exists but is administratively down."""
    name = tunnel.interface
    peers = plural(len(tunnel.peers), "peer")
    ctx.add(Code.WG_INTERFACE_DOWN, m, f"interface {name}", "fail",
            f"{name} is down on {m}: it carries nothing to its {peers}",
            [f"ip link: {name} is not UP (its peers are still configured: `wg show {name}`)"],
            f"on {m}: `wgbgp apply` (brings {name} up and puts back the routes through it), "
            f"or `wg-quick down {name} && wg-quick up {name}`; a bare `ip link set {name} "
            f"up` leaves out the routes wg-quick installed for the peers' AllowedIPs")


def judge_allowed_ips(ctx: Context, m: str, tunnel: Tunnel, tp: TunnelPeer,
                      iface: WgInterface) -> None:
    """`m`'s live AllowedIPs for peer `tp` cover every address that peer must carry.

    A miss of a tunnel address breaks the tunnel (layer 1); a miss of an announced prefix
    only its data (layer 5). The misses are kept for the layers above to blame.
    """
    if ctx.plans[m].role == "hub":
        live, _ = ctx.client_peer(m, tunnel, tp.name)
    else:
        live, _ = ctx.hub_peer(m, tunnel)
    if live is None:
        return
    required = ctx.exp.required_allowed_ips(m, tunnel, tp)
    missing = [(n, why) for n, why in required if not covers(live.allowed_ips, n)]
    subject = f"peer {tp.name} AllowedIPs"
    if not missing:
        ctx.ok(Code.ALLOWEDIPS_NARROW, m, subject,
               f"{m}'s AllowedIPs for {tp.name} cover what it must carry")
        return
    tunnel_level = [n for n, why in missing if "tunnel address" in why]
    ctx.narrow_missing[(m, tp.name)] = [n for n, _ in missing]
    ctx.narrow[(m, tp.name)] = ctx.add(
        Code.ALLOWEDIPS_NARROW, m, subject, "fail",
        f"on {m}, peer {tp.name}'s AllowedIPs miss "
        + "; ".join(f"{n} ({why})" for n, why in missing),
        [f"live AllowedIPs: {', '.join(live.allowed_ips) or '(none)'}",
         f"topology AllowedIPs: {', '.join(map(str, tp.allowed_ips))}"],
        f"on {m}: `wg set {tunnel.interface} peer {live.public_key} allowed-ips "
        f"{','.join(map(str, tp.allowed_ips))}` and the same in "
        f"/etc/wireguard/{tunnel.interface}.conf (wgbgp apply does both); WireGuard "
        f"drops packets to or from addresses outside a peer's AllowedIPs"
        + (f". 0.0.0.0/0 needs `Table = off` under [Interface] (wgbgp renders it), or "
           f"wg-quick routes everything through the tunnel; else list what the peer must "
           f"carry: {', '.join([*live.allowed_ips, *(str(n) for n, _ in missing)])}"
           if any(str(a) in ("0.0.0.0/0", "::/0") for a in tp.allowed_ips) else ""),
        layer=1 if tunnel_level else 5)


def judge_hub_peers(ctx: Context, hub: str) -> None:
    """The hub has each client's public key, and listens on the port clients dial."""
    tunnel = ctx.hub_tunnel(hub)
    if tunnel is None:
        return
    iface = ctx.st[hub].interface(tunnel.interface)
    if iface is None:
        return
    for tp in tunnel.peers:
        live, how = ctx.client_peer(hub, tunnel, tp.name)
        if live is None or how != "key":
            ev = [f"peers on {hub}'s {tunnel.interface}: "
                  + (", ".join(f"{p.public_key} ({','.join(p.allowed_ips)})"
                               for p in iface.peers) or "none")]
            if live is not None:
                ev.insert(0, f"the peer carrying {tp.name}'s addresses has key "
                             f"{live.public_key}")
            ctx.add(Code.WG_KEY_MISMATCH, hub, f"peer {tp.name}", "fail",
                    f"{hub} does not have {tp.name}'s public key {tp.public_key}",
                    ev,
                    f"on {hub}: set peer {tp.name}'s key to {tp.public_key} in "
                    f"/etc/wireguard/{tunnel.interface}.conf and reload (wgbgp apply), "
                    f"or fix {tp.name}'s public_key in the topology if it changed")
    port = iface.listen_port
    hub_endpoint = next((p.endpoint for t in (ctx.plans[c].tunnels for c in ctx.exp.clients)
                         for tt in t for p in tt.peers if p.name == hub and p.endpoint),
                        None)
    if port and hub_endpoint:
        try:
            want_port = split_endpoint(hub_endpoint)[1]
        except ValueError:
            want_port = None
        if want_port and port != want_port:
            ctx.add(Code.WG_ENDPOINT_MISMATCH, hub, f"{tunnel.interface} listen port",
                    "fail", f"{hub} listens on UDP {port}, clients dial {hub_endpoint}",
                    [f"listen port {port}", f"topology endpoint {hub_endpoint}"],
                    f"on {hub}: `ListenPort = {want_port}` (wgbgp apply), or change the "
                    f"hub endpoint's port in the topology")
