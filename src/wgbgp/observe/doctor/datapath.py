"""Layer 5, the data path: full-size packets with DF set cross each path (MTU), and each
machine's announced address reaches its peers' announced addresses. Pure.
"""

from __future__ import annotations

from ipaddress import ip_address

from ...compile.plan import BgpSession
from .context import Context, Network
from .findings import Code
from .handshake import keepalive_suspect


def judge_mtu_to_hub(ctx: Context, c: str) -> None:
    """Full-size packets reach `c`'s hub, where its tunnel works."""
    if not ctx.observed(c) or c in ctx.tunnel_fault:
        return
    for tunnel in ctx.plans[c].tunnels:
        judge_mtu(ctx, c, tunnel.hub, f"path to {tunnel.hub}", "hub")


def judge_data(ctx: Context, c: str) -> None:
    """For each of `c`'s peers: full-size packets where the path works, and announced
    address to announced address."""
    if not ctx.observed(c):
        return
    for s in ctx.exp.sessions(c):
        pair = frozenset((c, s.peer))
        if pair not in ctx.path_fault and c not in ctx.tunnel_fault:
            judge_mtu(ctx, c, s.peer, f"path to {s.peer}", "peer")
        judge_announced(ctx, c, s)


def judge_mtu(ctx: Context, c: str, target: str, subject: str, small_purpose: str) -> None:
    """Where `c`'s small ping (`small_purpose`) reaches `target`, its full-size DF ping
    does too; else MTU_BLACKHOLE, with the largest size that passed when searched. A peer
    path is skipped when either end's path to the hub already drops them."""
    big = ctx.probe(c, "mtu", target)
    small = ctx.probe(c, small_purpose, target)
    if big is None or small is None or not small.ok:
        return
    if big.ok:
        ctx.ok(Code.MTU_BLACKHOLE, c, subject,
               f"{big.spec.packet_size}-byte packets with DF reach {target}",
               [big.evidence()])
        return
    if small_purpose == "peer":
        hub = next((t.hub for t in ctx.plans[c].tunnels), "")
        for m in (c, target):
            cause = ctx.found(Code.MTU_BLACKHOLE, m, f"path to {hub}")
            if cause and cause.verdict == "fail":
                ctx.skip(Code.MTU_BLACKHOLE, c, subject, cause)
                return
    largest = ctx.largest_ok(c, target)
    ev = [small.evidence(), big.evidence()]
    if largest:
        ev.append(f"{c}: largest packet with DF that reaches {target}: {largest} bytes")
        suggestion = largest // 8 * 8
        fix = (f"lower the tunnel MTU to {suggestion} or less: `mtu: {suggestion}` under "
               f"network in the topology, then re-apply every machine; or find and fix "
               f"the hop that drops large packets without sending ICMP \"fragmentation "
               f"needed\"")
    else:
        fix = ("lower the tunnel MTU (network.mtu in the topology, e.g. 1280) and "
               "re-apply; or find the hop that drops large packets silently")
    check = ctx.add(
        Code.MTU_BLACKHOLE, c, subject, "fail",
        f"small packets reach {target} but full-size ones ({big.spec.packet_size} bytes, "
        f"DF) vanish without an ICMP error: large transfers will stall", ev, fix)
    if small_purpose == "hub":
        ctx.mtu_fault[c] = check


def judge_announced(ctx: Context, c: str, s: BgpSession) -> None:
    """`c`'s announced address reaches `s.peer`'s, or the lower finding that explains why
    not: the path, the session, a route, AllowedIPs, or a NAT mapping."""
    ping = ctx.probe(c, "announced", s.peer)
    if ping is None:
        return
    subject = f"{ping.spec.source} to {ping.spec.target}"
    if ping.ok:
        ctx.ok(Code.ANNOUNCED_UNREACHABLE, c, subject,
               f"{c}'s announced address reaches {s.peer}'s", [ping.evidence()])
        return
    pair = frozenset((c, s.peer))
    cause = (ctx.path_fault.get(pair) or ctx.session_fault.get(pair)
             or ctx.data_fault.get(pair))
    target_prefix = next((p for p in s.accept if inside(ping.spec.target, p)), None)
    source_prefix = next((p for p in ctx.exp.announced(c)
                          if inside(ping.spec.source, p)), None)
    if cause is None and target_prefix is not None:
        cause = ctx.route_fault.get((c, str(target_prefix)))
    if cause is None and source_prefix is not None:
        cause = ctx.route_fault.get((s.peer, str(source_prefix)))
    if cause is None:
        for key in ctx.narrow:
            if key[0] in (c, s.peer) or key[1] in (c, s.peer):
                missing = ctx.narrow_missing[key]
                if any(p in missing for p in (target_prefix, source_prefix) if p):
                    cause = ctx.narrow[key]
                    break
    if cause is None:
        cause = keepalive_suspect(ctx, (c, s.peer), ping.evidence())
    if cause is not None:
        ctx.skip(Code.ANNOUNCED_UNREACHABLE, c, subject, cause)
        return
    ctx.data_fault[pair] = ctx.add(
        Code.ANNOUNCED_UNREACHABLE, c, subject, "fail",
        f"{c}'s announced address {ping.spec.source} does not reach {s.peer}'s "
        f"{ping.spec.target}, although the tunnel addresses reach each other",
        [ping.evidence()],
        f"check the hub's AllowedIPs for {c} and {s.peer} include their announced "
        f"prefixes (WireGuard drops packets from other sources), that {s.peer} has a "
        f"route back to {source_prefix or ping.spec.source}, and reverse-path filters")


def inside(address: str | None, prefix: Network) -> bool:
    """Whether `address` (text, as a probe names it) lies in `prefix`; False when it is not
    an address. A containment test: never walks the prefix's addresses."""
    if not address:
        return False
    try:
        return ip_address(address) in prefix
    except ValueError:
        return False
