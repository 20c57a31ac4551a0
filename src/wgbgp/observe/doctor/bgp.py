"""Layer 3, BGP: the daemon runs with the topology's AS, each session's neighbour is
configured (address, AS, TTL), TCP 179 answers, and the session is Established. Pure.

Sessions are judged per pair of machines, from whichever ends were inspected, so a fault
seen from both ends is reported once, on the end that has it.
"""

from __future__ import annotations

from ...compile.plan import BgpSession
from ..frr import BgpNeighbor
from .context import Context
from .daemon import bird_proto
from .findings import Check, Code, Verdict
from .handshake import keepalive_suspect


def judge_daemon(ctx: Context, m: str) -> None:
    """`m`'s BGP daemon is installed, runs, has a BGP configuration, in the right AS."""
    status = ctx.st[m]
    plan = ctx.plans[m]
    assert plan.bgp is not None
    d = ctx.daemon(m)
    err = status.errors.get("bgp", "")
    if status.bgp is None:
        if "command not found" in err:
            msg, fix = ((f"BIRD is not installed on {m}",
                         f"on {m}: `apt install bird2`, then `wgbgp apply` (it starts "
                         f"BIRD with the rendered /etc/bird/bird.conf)") if d.bird else
                        (f"FRR is not installed on {m}",
                         f"on {m}: `apt install frr`, enable bgpd in /etc/frr/daemons, "
                         f"then start FRR"))
        else:
            msg, fix = (f"{'BIRD' if d.bird else 'bgpd'} is not running on {m}",
                        d.start_fix(m))
        ctx.machine_fault[m + "/bgp"] = ctx.add(
            Code.BGP_DAEMON_DOWN, m, d.process, "fail", msg, [f"{d.cli()}: {err}"], fix)
        return
    if status.bgp.asn is None:
        ctx.machine_fault[m + "/bgp"] = ctx.add(
            Code.BGP_NOT_CONFIGURED, m, d.process, "fail",
            (f"BIRD runs on {m} but has no BGP protocol (AS {plan.bgp.asn})" if d.bird
             else f"FRR runs on {m} but has no `router bgp {plan.bgp.asn}`"),
            [err or f"{d.cli()}: no BGP {'protocol' if d.bird else 'instance'}"],
            (f"install the rendered /etc/bird/bird.conf on {m} (`wgbgp apply`) and "
             f"`birdc configure`" if d.bird else
             f"install the rendered /etc/frr/frr.conf on {m} (`wgbgp apply`) and "
             f"reload FRR"))
        return
    ctx.ok(Code.BGP_DAEMON_DOWN, m, d.process,
           f"{d.process} runs on {m} (AS {status.bgp.asn})")
    if status.bgp.asn != plan.bgp.asn:
        ctx.machine_fault[m + "/bgp"] = ctx.add(
            Code.ASN_MISMATCH, m, "local AS", "fail",
            f"{m} runs BGP as AS {status.bgp.asn}, the topology says AS {plan.bgp.asn}",
            [f"local AS {status.bgp.asn}" if d.bird else f"router bgp {status.bgp.asn}"],
            f"on {m}: re-apply the rendered {d.conf} ("
            + (f"`local ... as {plan.bgp.asn};`" if d.bird else f"`router bgp {plan.bgp.asn}`")
            + f"), or change {m}'s asn in the topology and re-apply every neighbour")


def judge_session_pair(ctx: Context, a: str, b: str) -> None:
    """The session between `a` and `b`, from each end that was inspected: skipped for a
    broken path or daemon; else the neighbour's configuration, then its state."""
    pair = frozenset((a, b))
    sides = [(x, y, s) for x, y in ((a, b), (b, a)) if ctx.observed(x)
             for s in ctx.exp.sessions(x) if s.peer == y]
    if not sides:
        return
    cause = ctx.path_fault.get(pair) or next(
        (ctx.tunnel_fault[x] for x in (a, b) if x in ctx.tunnel_fault), None)
    if cause:
        ctx.session_fault[pair] = cause
        for x, y, _ in sides:
            ctx.skip(Code.BGP_SESSION_DOWN, x, f"session with {y}", cause)
        return
    for x, _, _ in sides:
        daemon = ctx.machine_fault.get(x + "/bgp")
        if daemon:
            ctx.session_fault[pair] = daemon
    neighbors = {x: ctx.neighbor(x, str(s.peer_address)) for x, _, s in sides}
    # Configuration facts first: they are the root cause when the session is down.
    for x, y, s in sides:
        if x + "/bgp" in ctx.machine_fault:
            continue
        n = neighbors[x]
        if n is None:
            ctx.session_fault.setdefault(pair, neighbor_missing(ctx, x, s))
            continue
        fault = judge_neighbor(ctx, x, y, s, n)
        if fault is not None:
            ctx.session_fault.setdefault(pair, fault)
    root = ctx.session_fault.get(pair)
    for x, y, s in sides:
        subject = f"session with {y}"
        n = neighbors[x]
        if n is not None and n.established:
            ctx.ok(Code.BGP_SESSION_DOWN, x, subject,
                   f"{x}'s session with {y} is Established "
                   f"({int(n.established_for or 0)} s)")
            continue
        if root is not None:
            if root.machine != x or root.subject != subject:
                ctx.skip(Code.BGP_SESSION_DOWN, x, subject, root)
            continue
        root = session_down(ctx, x, y, s, n)
        ctx.session_fault[pair] = root


def judge_neighbor(ctx: Context, x: str, y: str, s: BgpSession, n: BgpNeighbor
                   ) -> Check | None:
    """`x`'s neighbour for `y` expects the topology's AS and allows the TTL the path
    through the hub needs; returns the finding that keeps the session down, if any."""
    d = ctx.daemon(x)
    if n.remote_as is not None and n.remote_as != s.peer_asn:
        return ctx.add(
            Code.ASN_MISMATCH, x, f"session with {y}", "fail",
            f"{x} expects {y} ({s.peer_address}) to be AS {n.remote_as}, the "
            f"topology says AS {s.peer_asn}",
            [f"{x}: neighbor {s.peer_address} "
             f"{'as' if d.bird else 'remote-as'} {n.remote_as}",
             *([f"{x}: last notification: {n.last_notification}"]
               if n.last_notification else [])],
            f"on {x}: {d.neighbor_line(s.peer_address, s.peer_asn)} "
            f"(re-apply the rendered {d.conf})")
    if n.multihop is not None and s.multihop and n.multihop < s.multihop:
        verdict: Verdict = "warn" if n.established else "fail"
        check = ctx.add(
            Code.BGP_TTL, x, f"session with {y}", verdict,
            f"{x} sends BGP to {y} with TTL {n.multihop}, but the path crosses hub "
            f"{ctx.hub_for(s)}, which needs TTL {s.multihop}: the hub drops the "
            f"packets", [f"{x}: neighbor {s.peer_address} "
                         f"{'multihop' if d.bird else 'ebgp-multihop'} "
                         f"{'not set' if n.multihop == 1 else n.multihop}",
                         f"{x}: state {n.state}"],
            f"on {x}: `multihop {s.multihop};` in its BGP protocol for {y} (the "
            f"rendered bird.conf sets it in template mesh)" if d.bird else
            f"on {x}: `neighbor {s.peer_address} ebgp-multihop {s.multihop}` "
            f"(the rendered frr.conf sets it on peer-group MESH)")
        if verdict == "fail":
            return check
    return None


def neighbor_missing(ctx: Context, x: str, s: BgpSession) -> Check:
    """Record BGP_NEIGHBOR_MISSING: `x` has no neighbour at `s`'s peer address."""
    bgp = ctx.st[x].bgp
    configured = [f"{n.address} ({n.name}, AS {n.remote_as})"
                  for n in (bgp.neighbors if bgp else ())]
    alike = [n for n in (bgp.neighbors if bgp else ())
             if n.description == s.peer or n.remote_as == s.peer_asn]
    msg = f"{x} has no BGP neighbour {s.peer_address} ({s.peer})"
    if alike:
        msg += f"; it has {alike[0].address} instead"
    return ctx.add(
        Code.BGP_NEIGHBOR_MISSING, x, f"session with {s.peer}", "fail", msg,
        [f"{x}: configured neighbours: {', '.join(configured) or 'none'}"],
        f"on {x}: {ctx.daemon(x).neighbor_line(s.peer_address, s.peer_asn)} (the "
        f"rendered {ctx.daemon(x).conf} has it); {s.peer}'s tunnel address is "
        f"{s.peer_address}")


def session_down(ctx: Context, x: str, y: str, s: BgpSession, n: BgpNeighbor | None
                 ) -> Check:
    """Record why `x`'s session with `y` is down, as precisely as the evidence allows:
    a Bad Peer AS, a shutdown, nothing on TCP 179, a blocked port, a NAT mapping that
    comes and goes, or (last) the session state itself."""
    subject = f"session with {y}"
    ev = []
    if n is not None:
        ev.append(f"{x}: {s.peer_address} state {n.state}")
        if n.last_reset:
            ev.append(f"{x}: last reset: {n.last_reset}")
        if n.last_notification:
            ev.append(f"{x}: last notification: {n.last_notification}")
    note = (n.last_notification or "") if n else ""
    if "bad peer as" in note.lower():
        own = ctx.plans[x].bgp
        return ctx.add(
            Code.ASN_MISMATCH, x, subject, "fail",
            f"{x} and {y} disagree about AS numbers: the OPEN was rejected with Bad "
            f"Peer AS", ev,
            f"{x} is AS {own.asn if own else '?'} and "
            f"expects {y} as AS {s.peer_asn}; on {y}, check "
            + ("`local ... as` and `neighbor ... as`" if ctx.daemon(y).bird
               else "`router bgp` and `neighbor ... remote-as`")
            + f" match the topology (re-apply its {ctx.daemon(y).conf})")
    if n is not None and n.admin_down:
        return ctx.add(Code.BGP_SESSION_DOWN, x, subject, "fail",
                       f"{x}'s session with {y} is administratively shut down", ev,
                       f'on {x}: `birdc enable "{bird_proto(y)}*"`'
                       if ctx.daemon(x).bird else
                       f"on {x}: `no neighbor {s.peer_address} shutdown`")
    tcp = ctx.probe(x, "bgp", y)
    if tcp is not None:
        ev.append(tcp.evidence())
        if tcp.refused:
            dy = ctx.daemon(y)
            return ctx.add(
                Code.BGP_DAEMON_DOWN, y, dy.process, "fail",
                f"nothing listens on TCP 179 at {y} ({s.peer_address}): "
                f"{'BIRD' if dy.bird else 'bgpd'} is not running there (seen from {x})",
                ev, dy.start_fix(y))
        if not tcp.ok:
            return ctx.add(
                Code.BGP_TCP_BLOCKED, x, subject, "fail",
                f"{y}'s tunnel address answers ping but not TCP 179", ev,
                f"on {y} (and {ctx.hub_for(s)}): allow TCP port 179 between the tunnel "
                f"addresses in the firewall")
    if y in ctx.plans and ctx.observed(y):
        m = ctx.neighbor(y, str(ctx.exp.tunnel_address(x)))
        if m is not None:
            ev.append(f"{y}: {m.address} state {m.state}")
    suspect = keepalive_suspect(ctx, (x, y), f"{x}: session with {y} is "
                                             f"{n.state if n else 'missing'}")
    if suspect:
        return suspect
    dx, dy = ctx.daemon(x), ctx.daemon(y)
    hops = (f"multihop {s.multihop} and the neighbour's AS on both ends" if s.multihop
            else "the neighbour's AS on both ends")
    return ctx.add(
        Code.BGP_SESSION_DOWN, x, subject, "fail",
        f"{x}'s session with {y} is {n.state if n else 'missing'}", ev,
        f"on {x}: {dx.show_session(y, s.peer_address)}; on {y}: "
        f"{dy.show_session(x, s.local_address or ctx.exp.tunnel_address(x))}: they say "
        f"why; check {hops}")
