"""The order of judgement: each layer over every machine before the layer above. Pure.

Each layer only judges what the layers below left working, and blames the rest on the
faults they recorded, so the first failing finding is the root cause.
"""

from __future__ import annotations

from collections.abc import Mapping

from ...compile.plan import Plan
from ..gather import Observation
from . import bgp, datapath, forwarding, handshake, routes, tunnel
from .context import Context
from .findings import CODES, Code, Report
from .live import diagnose_live
from .local import judge_local


def diagnose(observation: Observation, plans: Mapping[str, Plan] | None = None) -> Report:
    """Judge an observation against the plans (the topology). Pure.

    Without plans, only what each machine shows on its own is judged (`diagnose_live`).
    """
    plans = dict(plans or {})
    if not plans:
        return diagnose_live(observation)
    ctx = Context(observation, plans)
    judge_all(ctx)
    machines = tuple(m for m in plans if m in observation.statuses)
    unobserved = tuple(m for m in plans if m not in observation.statuses)
    return Report(ctx.checks, machines, unobserved)


def judge_all(ctx: Context) -> None:
    """Every layer, bottom-up, into `ctx`."""
    for m in ctx.plans:
        if m in ctx.st:
            judge_machine(ctx, m)
    for m in ctx.exp.hubs:
        if ctx.observed(m):
            tunnel.judge_hub_peers(ctx, m)
    for c in ctx.exp.clients:
        handshake.judge_handshakes(ctx, c)
    for c in ctx.exp.clients:
        forwarding.judge_peer_paths(ctx, c)
    done: set[frozenset[str]] = set()
    for c in ctx.exp.clients:
        for s in ctx.exp.sessions(c):
            pair = frozenset((c, s.peer))
            if pair not in done:
                done.add(pair)
                bgp.judge_session_pair(ctx, c, s.peer)
    for c in ctx.exp.clients:
        routes.judge_origination_and_policy(ctx, c)
    for c in ctx.exp.clients:
        routes.judge_routes(ctx, c)
    for c in ctx.exp.clients:
        datapath.judge_mtu_to_hub(ctx, c)
    for c in ctx.exp.clients:
        datapath.judge_data(ctx, c)
    for c in ctx.exp.clients:
        if ctx.observed(c):
            judge_config_facts(ctx, c)


def judge_config_facts(ctx: Context, c: str) -> None:
    """Mistakes in `c`'s configuration that a broken lower layer kept from being judged
    (its sessions skipped because the tunnel drops their packets, say): each must be
    fixed as well, so each is reported, not skipped. The keepalive and TTL the topology
    asks for; then what `c` shows on its own (local), where the topology's judges have
    not already said it."""
    for t in ctx.plans[c].tunnels:
        peer, _ = ctx.hub_peer(c, t)
        want = next((tp.keepalive for tp in t.peers if tp.name == t.hub), None)
        said = any(ch.machine == c and ch.code in (Code.WG_NO_KEEPALIVE,
                                                   Code.NAT_MAPPING_EXPIRED)
                   for ch in ctx.checks)
        if peer is not None and want and peer.keepalive is None and not said:
            ctx.add(Code.WG_NO_KEEPALIVE, c, f"tunnel to {t.hub}", "warn",
                    f"{c} sends no keepalive to {t.hub}: once idle longer than its NAT's "
                    f"UDP timeout, {t.hub} can no longer reach it",
                    [f"{c}: PersistentKeepalive off (topology: {want} s)"],
                    f"on {c}: `PersistentKeepalive = {want}` for {t.hub} in "
                    f"/etc/wireguard/{t.interface}.conf (wgbgp apply)")
    names = {str(s.peer_address): s.peer for s in ctx.exp.sessions(c)}
    for s in ctx.exp.sessions(c):
        n = ctx.neighbor(c, str(s.peer_address))
        if n is not None and not n.established:
            bgp.judge_neighbor(ctx, c, s.peer, s, n)
    codes = {ch.code for ch in ctx.checks if ch.machine == c and ch.problem}
    for ch in judge_local(c, ctx.st[c]):
        if ch.code == Code.NEIGHBOR_OUTSIDE_ALLOWEDIPS and Code.ALLOWEDIPS_NARROW in codes:
            continue
        if (ch.code == Code.POLICY_MISSING and ch.code not in codes) or \
                ch.code in (Code.NEIGHBOR_OUTSIDE_ALLOWEDIPS, Code.PREFIX_NOT_ORIGINATED):
            address = ch.subject.split(" ")[-1]
            subject = (f"session with {names[address]}" if address in names
                       else ch.subject)
            ctx.add(CODES[ch.code], c, subject, ch.verdict, ch.message, ch.evidence, ch.fix)


def judge_machine(ctx: Context, m: str) -> None:
    """The facts of one machine's configuration, judged whatever else is wrong: could it
    be inspected, its WireGuard interfaces, IP forwarding, its BGP daemon."""
    errors = ctx.st[m].errors
    # Every command failing at once means the machine itself could not be reached.
    if "wg" in errors and "addresses" in errors and "ip_forward" in errors:
        ctx.machine_fault[m] = ctx.add(
            Code.MACHINE_UNREACHABLE, m, m, "fail",
            f"{m} could not be inspected", [f"{k}: {v}" for k, v in errors.items()],
            f"check that {m} is up and reachable (SSH, or the lab node exists)")
        return
    tunnel.judge_interfaces(ctx, m)
    forwarding.judge_ip_forward(ctx, m)
    if ctx.plans[m].bgp is not None:
        bgp.judge_daemon(ctx, m)
