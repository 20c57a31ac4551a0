"""Layer 2, forwarding: the hub forwards between its clients (ip_forward, firewall), a
client routing a network forwards into it, and each peer's tunnel address answers
through the hub. Pure.
"""

from __future__ import annotations

from ...compile.plan import BgpSession
from .context import Context, nets
from .findings import Check, Code
from .handshake import keepalive_suspect


def judge_ip_forward(ctx: Context, m: str) -> None:
    """A hub forwards IP; so does a client that announces a network behind it."""
    status, plan = ctx.st[m], ctx.plans[m]
    if plan.role == "hub":
        if status.ip_forward is False:
            ctx.add(
                Code.HUB_NOT_FORWARDING, m, "ip_forward", "fail",
                f"hub {m} does not forward IP (net.ipv4.ip_forward = 0): clients reach "
                f"the hub but not each other",
                ["sysctl net.ipv4.ip_forward = 0"],
                f"on {m}: `sysctl -w net.ipv4.ip_forward=1`, and persist it in "
                f"/etc/sysctl.d/90-wgbgp.conf (wgbgp apply does both)")
        elif status.ip_forward:
            ctx.ok(Code.HUB_NOT_FORWARDING, m, "ip_forward", f"{m} forwards IP")
    elif plan.ip_forward and status.ip_forward is False:
        ctx.add(Code.FORWARDING_OFF, m, "ip_forward", "fail",
                f"{m} announces a network but does not forward into it",
                ["sysctl net.ipv4.ip_forward = 0",
                 f"announces {nets(ctx.exp.announced(m))}"],
                f"on {m}: `sysctl -w net.ipv4.ip_forward=1` and persist it")


def judge_peer_paths(ctx: Context, c: str) -> None:
    """Each BGP peer's tunnel address answers `c` through the hub."""
    if not ctx.observed(c):
        return
    for s in ctx.exp.sessions(c):
        pair = frozenset((c, s.peer))
        subject = f"path to {s.peer}"
        hub = ctx.hub_for(s)
        if c in ctx.tunnel_fault:
            ctx.path_fault.setdefault(pair, ctx.tunnel_fault[c])
            ctx.skip(Code.PEER_UNREACHABLE, c, subject, ctx.tunnel_fault[c])
            continue
        ping = ctx.probe(c, "peer", s.peer)
        if ping is None or ping.ok:
            if ping:
                ctx.ok(Code.PEER_UNREACHABLE, c, subject,
                       f"{s.peer}'s tunnel address answers {c} through {hub}",
                       [ping.evidence()])
            continue
        cause = path_cause(ctx, c, s, hub) or keepalive_suspect(
            ctx, (c, s.peer), f"{c}: {s.peer}'s tunnel address does not answer: "
                              f"{ping.detail}")
        if cause:
            ctx.path_fault.setdefault(pair, cause)
            ctx.skip(Code.PEER_UNREACHABLE, c, subject, cause)
            continue
        ctx.path_fault[pair] = ctx.add(
            Code.PEER_UNREACHABLE, c, subject, "fail",
            f"{c} reaches hub {hub} but not {s.peer}'s tunnel address {s.peer_address}",
            [ping.evidence(), *ctx.probe_evidence(c, "hub", hub)],
            f"on {hub}: `sysctl net.ipv4.ip_forward` must be 1 and the firewall must "
            f"accept forwarding from {s.interface} to {s.interface}; and {s.peer}'s "
            f"tunnel must be up. Run doctor with {hub} and {s.peer} reachable to tell")


def path_cause(ctx: Context, c: str, s: BgpSession, hub: str) -> Check | None:
    """Why `c` cannot reach `s.peer` through the hub although its own tunnel works.

    A known fault first (the peer's tunnel, ip_forward off, AllowedIPs without a tunnel
    address); else, when both clients reach the hub, the hub's forwarding (recorded here).
    """
    if s.peer in ctx.tunnel_fault:
        return ctx.tunnel_fault[s.peer]
    fwd = ctx.found(Code.HUB_NOT_FORWARDING, hub, "ip_forward")
    if fwd and fwd.verdict == "fail":
        return fwd
    for key in ((c, hub), (hub, s.peer), (hub, c), (s.peer, hub)):
        nar = ctx.narrow.get(key)
        if nar and any(n.prefixlen == 32 and str(n.network_address) in
                       (str(s.peer_address), str(ctx.exp.tunnel_address(c)))
                       for n in ctx.narrow_missing[key]):
            return nar
    peer_ok = ctx.observed(s.peer) and s.peer not in ctx.tunnel_fault
    hub_ok = ctx.observed(hub) and ctx.st[hub].ip_forward
    if peer_ok and hub_ok:
        ev = [f"{hub}: net.ipv4.ip_forward = 1"]
        ev += ctx.probe_evidence(c, "hub", hub) + ctx.probe_evidence(s.peer, "hub", hub)
        ev += ctx.probe_evidence(c, "peer", s.peer)
        return ctx.add(
            Code.HUB_NOT_FORWARDING, hub, f"forwarding {s.interface}", "fail",
            f"hub {hub} has forwarding on, both clients reach it, yet it does not "
            f"forward between them: a firewall drops {s.interface} -> {s.interface}",
            ev,
            f"on {hub}: the forward chain must accept `iifname \"{s.interface}\" oifname "
            f"\"{s.interface}\"` (see `nft list ruleset`, `iptables -S FORWARD`); "
            f"wgbgp's rendered nftables table does")
    if not ctx.observed(hub) and peer_ok:
        back = ctx.probe(s.peer, "peer", c)
        peer_hub = ctx.probe(s.peer, "hub", hub)
        if back and not back.ok and peer_hub and peer_hub.ok:
            return ctx.add(
                Code.HUB_NOT_FORWARDING, hub, f"forwarding {s.interface}", "fail",
                f"{c} and {s.peer} both reach hub {hub} but not each other: {hub} does "
                f"not forward between them (inferred; {hub} itself was not inspected)",
                [*ctx.probe_evidence(c, "hub", hub), peer_hub.evidence(), back.evidence()],
                f"on {hub}: `sysctl -w net.ipv4.ip_forward=1` (persist it), and let "
                f"the firewall forward `iifname \"{s.interface}\" oifname "
                f"\"{s.interface}\"`; its AllowedIPs must hold each client's tunnel "
                f"address")
    return None
