"""Layer 1, at work: each client's tunnel to its hub (handshake, hub ping, UDP, the NAT
mapping and keepalive), judged from the client or, when it cannot be seen, the hub. Pure.
"""

from __future__ import annotations

from collections.abc import Iterable

from ...compile.plan import Tunnel
from ...model.schema import split_endpoint
from ..wireguard import REJECT_AFTER_TIME, WgPeer
from .context import Context, age
from .findings import Check, Code


def judge_handshakes(ctx: Context, c: str) -> None:
    """Client `c` has a working WireGuard session with each hub, or the reason it has not
    (recorded as the tunnel fault the layers above are skipped for)."""
    for tunnel in ctx.plans[c].tunnels:
        hub = tunnel.hub
        if not ctx.observed(c):
            if c in ctx.machine_fault:
                ctx.tunnel_fault[c] = ctx.machine_fault[c]
            elif ctx.observed(hub):
                judge_from_hub(ctx, c, hub, tunnel)
            continue
        own = ctx.interface_fault(c, tunnel.interface)
        if own:
            ctx.tunnel_fault[c] = own
            ctx.skip(Code.WG_NO_HANDSHAKE, c, f"tunnel to {hub}", own)
            continue
        judge_handshake(ctx, c, hub, tunnel)


def judge_handshake(ctx: Context, c: str, hub: str, tunnel: Tunnel) -> None:
    """One tunnel of an inspected client whose interface is up."""
    subject = f"tunnel to {hub}"
    status = ctx.st[c]
    peer, how = ctx.hub_peer(c, tunnel)
    hub_key = ctx.exp.public_key(hub)
    iface = status.interface(tunnel.interface)
    assert iface is not None
    if peer is None or how != "key":
        ev = [f"peers on {tunnel.interface}: "
              + (", ".join(p.public_key for p in iface.peers) or "none")]
        ctx.tunnel_fault[c] = ctx.add(
            Code.WG_KEY_MISMATCH, c, f"peer {hub}", "fail",
            f"{c} does not have hub {hub}'s public key {hub_key}", ev,
            f"on {c}: set the [Peer] PublicKey for {hub} to {hub_key} "
            f"(wgbgp apply), or fix the hub's public_key in the topology")
        return
    seconds = peer.handshake_age(status.time)
    hub_ping = ctx.probe(c, "hub", hub)
    recent = seconds is not None and seconds <= REJECT_AFTER_TIME
    # A probe's answer is the proof (it may even have made a fresh handshake);
    # without a probe, a recent handshake is the best evidence there is.
    works = hub_ping.ok if hub_ping else recent
    ev = [f"{c}: latest handshake with {hub} {age(seconds)}",
          f"{c}: {peer.tx_bytes} bytes sent to {hub}, {peer.rx_bytes} received",
          f"{c}: endpoint {peer.endpoint or '(none)'}"]
    if hub_ping:
        ev.append(hub_ping.evidence())
    delta = hub_rx_delta(ctx, hub, tunnel, c)
    if delta is not None:
        ev.append(f"{hub}: received {delta} bytes from {c} while {c} probed it")
    if works:
        ctx.ok(Code.WG_NO_HANDSHAKE, c, subject,
               f"{c} has a working tunnel to {hub} (handshake {age(seconds)})", ev)
        judge_keepalive(ctx, c, hub, tunnel, peer, seconds)
        return
    cause = no_handshake_cause(ctx, c, hub, tunnel, peer) or hub_ping_cause(ctx, c, hub, tunnel)
    if cause:
        ctx.tunnel_fault[c] = cause
        ctx.skip(Code.WG_NO_HANDSHAKE, c, subject, cause)
        return
    if peer.keepalive is None and seconds is not None and not recent and hub_ping is None:
        ctx.tunnel_fault[c] = nat_expired(ctx, c, hub, peer, ev)
        return
    if ctx.observed(hub) and (not recent or delta == 0):
        ctx.tunnel_fault[c] = udp_blocked(ctx, c, hub, tunnel, peer, recent, ev)
    elif recent:
        arriving = bool(delta)
        ctx.tunnel_fault[c] = ctx.add(
            Code.HUB_UNREACHABLE, c, subject, "fail",
            (f"{hub} receives {c}'s packets but its tunnel address does not answer"
             if arriving else
             f"{c}'s session with {hub} is {age(seconds)} old, but {hub} does not "
             f"answer through it"),
            ev,
            (f"on {hub}: check the tunnel address is on {tunnel.interface} and no "
             f"firewall drops ICMP from the tunnel (`nft list ruleset`)"
             if arriving else
             f"UDP to {peer.endpoint} may be blocked since the last handshake, or "
             f"{hub} restarted or drops ICMP from the tunnel. Run doctor with {hub} "
             f"reachable to tell these apart"))
    else:
        ctx.tunnel_fault[c] = ctx.add(
            Code.WG_NO_HANDSHAKE, c, subject, "fail",
            f"{c} has no working WireGuard session with {hub}", ev,
            f"check, in order: {hub} is up and wg-quick runs there; {c}'s "
            f"[Peer] Endpoint is {hub}'s public address:port; {hub} has {c}'s "
            f"public key and {c} has {hub}'s; UDP to that port is not blocked. "
            f"Run doctor with {hub} reachable to tell these apart")


def hub_side_cause(ctx: Context, hub: str, client: str, tunnel: Tunnel) -> Check | None:
    """A finding on the hub (or its absence) that keeps `client`'s tunnel down."""
    down = ctx.interface_fault(hub, tunnel.interface)
    if down:
        return down
    for code, subject in ((Code.MACHINE_UNREACHABLE, hub),
                          (Code.WG_KEY_MISMATCH, f"{tunnel.interface} own key"),
                          (Code.WG_KEY_MISMATCH, f"peer {client}"),
                          (Code.WG_ENDPOINT_MISMATCH, f"{tunnel.interface} listen port")):
        seen = ctx.found(code, hub, subject)
        if seen:
            return seen
    return None


def hub_rx_delta(ctx: Context, hub: str, tunnel: Tunnel, c: str) -> int | None:
    """Bytes the hub received from `c` while the probes ran (None: not measured)."""
    if not ctx.observed(hub):
        return None
    after = ctx.obs.wg_after(hub)
    key = ctx.exp.public_key(c)
    before_if = ctx.st[hub].interface(tunnel.interface)
    after_if = next((i for i in after or () if i.name == tunnel.interface), None)
    if not key or before_if is None or after_if is None:
        return None
    b, a = before_if.peer(key), after_if.peer(key)
    return a.rx_bytes - b.rx_bytes if a and b else None


def udp_blocked(ctx: Context, c: str, hub: str, tunnel: Tunnel, peer: WgPeer, recent: bool,
                ev: list[str]) -> Check:
    """Record UDP_BLOCKED: keys and endpoint are right, yet nothing of `c` reaches `hub`."""
    hub_view, _ = ctx.client_peer(hub, tunnel, c)
    hub_age = hub_view.handshake_age(ctx.st[hub].time) if hub_view else None
    iface_h = ctx.st[hub].interface(tunnel.interface)
    port = peer.endpoint.rsplit(":", 1)[-1] if peer.endpoint else "51820"
    return ctx.add(
        Code.UDP_BLOCKED, c, f"tunnel to {hub}", "fail",
        f"{c}'s WireGuard packets do not reach {hub}: keys, endpoint and listen port "
        f"are right, yet " + ("nothing from it arrives" if recent
                              else "there is no handshake"),
        [*ev, f"{hub}: listens on UDP {iface_h.listen_port if iface_h else '?'}, has "
              f"{c}'s key, its latest handshake with {c} {age(hub_age)}"],
        f"let UDP to {peer.endpoint} through: a firewall on {c}'s network, its "
        f"carrier, or {hub}'s provider/firewall (`nft list ruleset`, cloud security "
        f"group) drops it; open UDP port {port} inbound on {hub}")


def hub_ping_cause(ctx: Context, c: str, hub: str, tunnel: Tunnel) -> Check | None:
    """A configuration fact that keeps the hub's tunnel address from answering `c`."""
    for m in (c, hub):
        seen = ctx.found(Code.WG_ADDRESS_MISSING, m, f"interface {tunnel.interface}")
        if seen:
            return seen
    hub_addr = str(ctx.exp.tunnel_address(hub, tunnel.interface))
    own_addr = str(ctx.exp.tunnel_address(c, tunnel.interface))
    for key in ((c, hub), (hub, c)):
        nar = ctx.narrow.get(key)
        if nar and any(n.prefixlen == n.max_prefixlen
                       and str(n.network_address) in (hub_addr, own_addr)
                       for n in ctx.narrow_missing[key]):
            return nar
    return None


def judge_from_hub(ctx: Context, c: str, hub: str, tunnel: Tunnel) -> None:
    """A client we cannot inspect, judged from the hub's side."""
    cause = hub_side_cause(ctx, hub, c, tunnel)
    subject = f"tunnel to {hub}"
    if cause:
        ctx.tunnel_fault[c] = cause
        return
    peer, _ = ctx.client_peer(hub, tunnel, c)
    if peer is None:
        return
    seconds = peer.handshake_age(ctx.st[hub].time)
    ping = ctx.probe(hub, "client", c)
    ev = [f"{hub}: latest handshake with {c} {age(seconds)}",
          f"{hub}: endpoint of {c} as seen: {peer.endpoint or '(none)'}"]
    if ping:
        ev.append(ping.evidence())
    if seconds is None or seconds > REJECT_AFTER_TIME:
        if ping and ping.ok:
            return
        ctx.tunnel_fault[c] = ctx.add(
            Code.WG_NO_HANDSHAKE, c, subject, "fail",
            f"{hub} has no recent handshake with {c} (seen from {hub})", ev,
            f"on {c}: check wg-quick runs, its Endpoint and keys; run doctor there")
    elif ping and not ping.ok:
        ctx.tunnel_fault[c] = ctx.add(
            Code.CLIENT_UNREACHABLE, c, subject, "fail",
            f"{hub} cannot reach {c}'s tunnel address (seen from {hub})", ev,
            f"on {c}: make sure PersistentKeepalive is set (NAT mapping) and the "
            f"tunnel address is configured; run doctor there")


def no_handshake_cause(ctx: Context, c: str, hub: str, tunnel: Tunnel, peer: WgPeer
                       ) -> Check | None:
    """Why `c` has no handshake with `hub`: its own key, a fault on the hub, or the
    endpoint it dials (recorded here as WG_ENDPOINT_MISMATCH)."""
    own_key = ctx.found(Code.WG_KEY_MISMATCH, c, f"{tunnel.interface} own key")
    if own_key:
        return own_key
    if ctx.observed(hub):
        cause = hub_side_cause(ctx, hub, c, tunnel)
        if cause:
            return cause
    want = next((p.endpoint for p in tunnel.peers if p.name == hub), None)
    if (want and not peer.endpoint) or (want and peer.endpoint and not same_endpoint(
            want, peer.endpoint)):
        return ctx.add(
            Code.WG_ENDPOINT_MISMATCH, c, f"peer {hub} endpoint", "fail",
            f"{c} dials {peer.endpoint or 'no endpoint'} for {hub}, the topology says "
            f"{want}", [f"{c}: endpoint {peer.endpoint or '(none)'}",
                        f"topology endpoint {want}"],
            f"on {c}: set `Endpoint = {want}` for {hub} (wgbgp apply)")
    return None


def same_endpoint(want: str, live: str) -> bool:
    """Whether the live endpoint `host:port` is the one the topology names."""
    try:
        want_host, want_port = split_endpoint(want)
        live_host, live_port = split_endpoint(live)
    except ValueError:
        return want == live
    if want_port != live_port:
        return False
    # A name resolves to an address we cannot check here; the port is what we can.
    return want_host == live_host or not want_host.replace(".", "").isdigit()


def nat_expired(ctx: Context, c: str, hub: str, peer: WgPeer, ev: list[str],
                extra: Iterable[str] = ()) -> Check:
    """Record NAT_MAPPING_EXPIRED: `c` sends no keepalive, so `hub` loses its way back."""
    keepalive = next((tp.keepalive for t in ctx.plans[c].tunnels for tp in t.peers
                      if tp.name == hub), None) or 25
    return ctx.add(
        Code.NAT_MAPPING_EXPIRED, c, f"tunnel to {hub}", "fail",
        f"{hub} cannot reach {c} while {c} is idle: {c} sends no keepalive, so its "
        f"NAT mapping expires",
        [*ev, f"{c}: PersistentKeepalive off", *extra],
        f"on {c}: `PersistentKeepalive = {keepalive}` for {hub} (below the carrier's UDP "
        f"timeout, often 30 s); `wg set {ctx.plans[c].tunnels[0].interface} peer "
        f"{peer.public_key} persistent-keepalive {keepalive}` applies it now")


def judge_keepalive(ctx: Context, c: str, hub: str, tunnel: Tunnel, peer: WgPeer,
                    seconds: float | None) -> None:
    """A working tunnel sends the keepalive the topology asks for; without it the hub's
    probe (sent before `c` spoke) or a stale handshake shows the NAT mapping gone."""
    want = next((tp.keepalive for tp in tunnel.peers if tp.name == hub), None)
    subject = f"tunnel to {hub}"
    if not want:
        return
    if peer.keepalive is not None:
        ctx.ok(Code.WG_NO_KEEPALIVE, c, subject, f"{c} sends keepalives every "
                                                 f"{peer.keepalive} s")
        return
    from_hub = ctx.probe(hub, "client", c)
    ev = [f"{c}: PersistentKeepalive off (topology: {want} s)",
          f"{c}: latest handshake with {hub} {age(seconds)}"]
    if from_hub and from_hub.received < from_hub.sent:
        ctx.tunnel_fault[c] = nat_expired(
            ctx, c, hub, peer, [ev[1]], [from_hub.evidence() + f" (before {c} sent anything)"])
        return
    if seconds is not None and seconds > REJECT_AFTER_TIME:
        ctx.tunnel_fault[c] = nat_expired(ctx, c, hub, peer, [ev[1]])
        return
    ctx.add(Code.WG_NO_KEEPALIVE, c, subject, "warn",
            f"{c} sends no keepalive to {hub}: once idle longer than its NAT's UDP "
            f"timeout, {hub} can no longer reach it",
            [*ev, *([from_hub.evidence()] if from_hub else [])],
            f"on {c}: `PersistentKeepalive = {want}` for {hub} (wgbgp apply)")


def keepalive_suspect(ctx: Context, machines: Iterable[str], symptom: str) -> Check | None:
    """A client without keepalive explains an otherwise unexplained failure between
    it and others: its NAT mapping comes and goes. Upgrade its warning to the cause."""
    for m in machines:
        warning = ctx.withdraw_warning(Code.WG_NO_KEEPALIVE, m)
        if warning is None:
            continue
        hub = warning.subject.removeprefix("tunnel to ")
        tunnel = next(t for t in ctx.plans[m].tunnels if t.hub == hub)
        peer, _ = ctx.hub_peer(m, tunnel)
        assert peer is not None
        check = nat_expired(ctx, m, hub, peer, list(warning.evidence), [symptom])
        ctx.tunnel_fault[m] = check
        return check
    return None
