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
from .findings import Code, Report
from .live import diagnose_live


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
