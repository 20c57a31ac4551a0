"""Layer 4, routes: each machine originates what it announces, its Established sessions
have import and export policy (RFC 8212), and each expected prefix is received from its
neighbour and installed in the kernel. Pure.
"""

from __future__ import annotations

from ...compile.plan import BgpSession
from ..frr import BgpNeighbor
from .context import Context, Network, prefixes
from .daemon import afi, ip_keyword
from .findings import Code


def judge_origination_and_policy(ctx: Context, c: str) -> None:
    """`c` originates each prefix it announces, and filters each Established session."""
    bgp = ctx.st[c].bgp if ctx.observed(c) else None
    plan_bgp = ctx.plans[c].bgp
    if bgp is None or plan_bgp is None:
        return
    for prefix in plan_bgp.originate:
        local = [p for p in bgp.paths_for(str(prefix)) if p.peer is None and p.valid]
        if not local and (c + "/bgp") not in ctx.machine_fault:
            ctx.route_fault[(c, str(prefix))] = ctx.add(
                Code.PREFIX_NOT_ORIGINATED, c, f"prefix {prefix}", "fail",
                f"{c} does not originate {prefix} into BGP",
                [f"{c}: {prefix} is not in its BGP table as a local route"],
                f"on {c}: `route {prefix} blackhole;` in a static protocol, accepted by "
                f"the export filter (the rendered bird.conf has both)"
                if ctx.daemon(c).bird else
                f"on {c}: `network {prefix}` under address-family {afi(prefix)} unicast "
                f"and a route for it (the rendered frr.conf adds a blackhole route)")
    for s in ctx.exp.sessions(c):
        pair = frozenset((c, s.peer))
        n = bgp.neighbor(str(s.peer_address))
        if pair in ctx.session_fault or n is None or not n.established:
            continue
        judge_policy(ctx, c, s, n)


def judge_routes(ctx: Context, c: str) -> None:
    """Each prefix `c` accepts from a peer was received and installed (skipped when the
    session, a policy or the peer's origination explains its absence)."""
    bgp = ctx.st[c].bgp if ctx.observed(c) else None
    if bgp is None:
        return
    for s in ctx.exp.sessions(c):
        pair = frozenset((c, s.peer))
        n = bgp.neighbor(str(s.peer_address))
        for prefix in s.accept:
            subject = f"prefix {prefix} from {s.peer}"
            if pair in ctx.session_fault:
                ctx.route_fault[(c, str(prefix))] = ctx.session_fault[pair]
                ctx.skip(Code.PREFIX_NOT_RECEIVED, c, subject, ctx.session_fault[pair])
                continue
            if n is None or not n.established:
                continue
            paths = [p for p in bgp.paths_for(str(prefix))
                     if p.peer == str(s.peer_address) and p.valid]
            route = bgp.route(str(prefix))
            if not paths:
                cause = (ctx.policy_fault.get((c, s.peer, "in"))
                         or ctx.policy_fault.get((s.peer, c, "out"))
                         or ctx.route_fault.get((s.peer, str(prefix))))
                if cause:
                    ctx.route_fault[(c, str(prefix))] = cause
                    ctx.skip(Code.PREFIX_NOT_RECEIVED, c, subject, cause)
                    continue
                ctx.route_fault[(c, str(prefix))] = ctx.add(
                    Code.PREFIX_NOT_RECEIVED, c, subject, "fail",
                    f"{c} has not received {prefix} from {s.peer}",
                    [f"{c}: {prefixes(n.prefixes_received)} received from "
                     f"{s.peer_address}"],
                    not_received_fix(ctx, c, s, prefix))
            elif route is None or not route.installed:
                ctx.route_fault[(c, str(prefix))] = ctx.add(
                    Code.PREFIX_NOT_INSTALLED, c, subject, "fail",
                    f"{c} received {prefix} from {s.peer} but did not install it",
                    [f"{c}: "
                     + ("kernel route (proto bird): " if ctx.daemon(c).bird
                        else "zebra route: ")
                     + (f"selected={route.selected} installed={route.installed}"
                        if route else "absent")],
                    f"on {c}: another route for {prefix} may win (`ip route get "
                    f"{prefix.network_address}`, `birdc show route {prefix} all`); remove "
                    f"it, or check that BIRD's kernel protocol exports BGP routes"
                    if ctx.daemon(c).bird else
                    f"on {c}: another route for {prefix} may win (`ip route get "
                    f"{prefix.network_address}`, `show {ip_keyword(prefix)} route {prefix}`); "
                    f"remove it, or check zebra runs")
            else:
                ctx.ok(Code.PREFIX_NOT_RECEIVED, c, subject,
                       f"{c} learned {prefix} from {s.peer} and installed it",
                       [f"{c}: {prefix} via {', '.join(route.nexthops)}"])


def judge_policy(ctx: Context, c: str, s: BgpSession, n: BgpNeighbor) -> None:
    """`c`'s Established session `s` has an import and an export policy. Without one the
    daemon (RFC 8212) exchanges nothing that way: a failure while nothing passes, a
    warning while routes pass unfiltered."""
    subject = f"session with {s.peer}"
    missing = []
    if n.policy_in is False:
        missing.append(("in", n.prefixes_received, "import"))
    if n.policy_out is False:
        missing.append(("out", n.prefixes_sent, "export"))
    if not missing:
        if n.policy_in is not None:
            ctx.ok(Code.POLICY_MISSING, c, subject,
                   f"{c} filters {s.peer} both ways ({', '.join(n.filters_in)} in; "
                   f"{', '.join(n.filters_out)} out)")
        return
    blocked = any(not count for _, count, _ in missing)
    words = " and ".join(w for _, _, w in missing)
    check = ctx.add(
        Code.POLICY_MISSING, c, subject, "fail" if blocked else "warn",
        f"{c} has no {words} policy for {s.peer}: "
        + (f"{ctx.daemon(c).name} (RFC 8212) then exchanges no routes in that "
           f"direction" if blocked else "routes pass unfiltered"),
        [f"{c}: {s.peer_address} Established, {prefixes(n.prefixes_received)} received, "
         f"{n.prefixes_sent} sent",
         f"{c}: inbound policy: {', '.join(n.filters_in) or 'none'}; outbound: "
         f"{', '.join(n.filters_out) or 'none'}"],
        policy_fix(ctx, c, s, [d for d, _, _ in missing]))
    for d, _, _ in missing:
        ctx.policy_fault[(c, s.peer, d)] = check


def not_received_fix(ctx: Context, c: str, s: BgpSession, prefix: Network) -> str:
    """What both ends must have for `c` to receive `prefix` from `s.peer`."""
    v6 = prefix.version == 6
    if ctx.daemon(s.peer).bird:
        there = (f"it must originate {prefix} (a static `route {prefix} blackhole;`) and "
                 f"export it (filter export_own{prefix.version})")
    else:
        there = (f"it must originate {prefix} (`network {prefix}`) and export it "
                 f"(`neighbor ... prefix-list {'OWN6' if v6 else 'OWN'} out`)")
    here = (f"the import filter of its BGP protocol for {s.peer} must accept it"
            if ctx.daemon(c).bird else
            f"the import prefix-list {'FROM6-' if v6 else 'FROM-'}{s.peer} must permit it")
    return f"on {s.peer}: {there}; on {c}, {here}"


def policy_fix(ctx: Context, c: str, s: BgpSession, directions: list[str]) -> str:
    """The policy lines `c` lacks for session `s`, in its daemon's words."""
    v6 = s.peer_address.version == 6
    if ctx.daemon(c).bird:
        return (f"on {c}: in the {s.afi} channel of its BGP protocol for {s.peer}: "
                + "; ".join("`import filter ...;`" if d == "in" else "`export filter "
                            f"export_own{s.peer_address.version};`" for d in directions)
                + " (the rendered bird.conf has both)")
    lists = {"in": ("FROM6-" if v6 else "FROM-") + s.peer, "out": "OWN6" if v6 else "OWN"}
    return (f"on {c}: under `address-family {s.afi} unicast`: "
            + "; ".join(f"`neighbor {s.peer_address} prefix-list {lists[d]} {d}`"
                        for d in directions)
            + " (the rendered frr.conf has both)")
