"""Is the lab's network whole again? Sessions, announced addresses, and kept sessions.

Used by the life-event tests and `bench/recovery_bench.py`: a fault is recovered when every
configured session is Established, every expected prefix installed, and every announced
address answers a ping from every other client (sourced from its own announced address).
A session is *kept* across a fault when it stayed up the whole time: its connection count
did not move and it is still Established.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from ..compile import Plan
from ..observe import bird
from ..observe.frr import BgpNeighbor, FrrJsonError, parse_neighbors
from ..transport import Executor
from .runner import convergence
from .selftest import reachability

SessionKey = tuple[str, str]  # (machine, neighbour address)


@dataclass(frozen=True)
class Session:
    state: str
    up_for: float | None       # seconds Established, None when not
    connections: int | None    # times it became Established (FRR), None if unknown


def _neighbours(x: Executor, plan: Plan) -> tuple[BgpNeighbor, ...]:
    try:
        if plan.bgp is not None and plan.bgp.daemon == "bird":
            res = x.run(["birdc", "show", "protocols", "all"], check=False, timeout=10)
            now = x.run(["birdc", "show", "status"], check=False, timeout=10).stdout
            return bird.neighbors(bird.parse_protocols(res.stdout), bird.parse_server_time(now))
        res = x.run(["vtysh", "-c", "show bgp summary json"], check=False, timeout=10)
        return parse_neighbors(res.stdout)[2]
    except (FrrJsonError, bird.BirdOutputError):
        return ()


def sessions(executors: Mapping[str, Executor], plans: Mapping[str, Plan]
             ) -> dict[SessionKey, Session]:
    """Every configured session as its machine sees it now."""
    speakers = {n: p for n, p in plans.items() if p.bgp is not None}
    with ThreadPoolExecutor(max_workers=8) as pool:
        seen = dict(zip(speakers, pool.map(lambda n: _neighbours(executors[n], speakers[n]),
                                           speakers), strict=True))
    out = {}
    for name, plan in speakers.items():
        by_addr = {n.address: n for n in seen[name]}
        for s in plan.bgp.sessions if plan.bgp else ():
            n = by_addr.get(str(s.peer_address))
            out[(name, str(s.peer_address))] = (
                Session(n.state, n.established_for, n.connections_established) if n
                else Session("absent", None, None))
    return out


def kept(before: Mapping[SessionKey, Session], after: Mapping[SessionKey, Session],
         keys: list[SessionKey], elapsed: float) -> list[str]:
    """Of `keys`, the sessions that did NOT stay up from `before` to `after` (empty: all
    kept). BIRD reports no connection count: its uptime must have grown by `elapsed`."""
    dropped = []
    for key in keys:
        a, b = before.get(key), after.get(key)
        if a is None or b is None or b.state != "Established" or b.up_for is None:
            dropped.append(f"{key[0]} -> {key[1]}: {b.state if b else 'absent'}")
        elif a.connections is not None and b.connections != a.connections:
            dropped.append(f"{key[0]} -> {key[1]}: re-established "
                           f"({a.connections} -> {b.connections} connections)")
        elif a.up_for is not None and b.up_for + 2 < a.up_for + elapsed:
            dropped.append(f"{key[0]} -> {key[1]}: up {b.up_for:.0f} s, "
                           f"was {a.up_for:.0f} s {elapsed:.0f} s ago")
    return dropped


def untouched(plans: Mapping[str, Plan], machines: set[str]) -> list[SessionKey]:
    """Sessions between two machines neither of which is in `machines` (the faulted ones):
    those must survive the fault. Through a hub in `machines`, none is."""
    if any(plans[m].role == "hub" for m in machines if m in plans):
        return []
    return [(n, str(s.peer_address)) for n, p in plans.items() if p.bgp and n not in machines
            for s in p.bgp.sessions if s.peer not in machines]


@dataclass(frozen=True)
class Health:
    ok: bool
    missing: list[str]


def health(executors: Mapping[str, Executor], plans: dict[str, Plan]) -> Health:
    """Every session Established, every prefix installed, every announced address answers."""
    c = convergence(executors, plans)
    if not c.done:
        return Health(False, c.missing)
    reach, _ = reachability(executors, plans)
    return Health(reach.ok, [] if reach.ok else [reach.detail])


def wait_healthy(executors: Mapping[str, Executor], plans: dict[str, Plan], *,
                 timeout: float, interval: float = 0.2,
                 clock: Callable[[], float] = time.monotonic) -> float | None:
    """Seconds from now until `health` holds (the start of the first look that saw it),
    or None after `timeout`."""
    start = clock()
    while True:
        look = clock()
        if health(executors, plans).ok:
            return look - start
        if clock() - start > timeout:
            return None
        time.sleep(interval)
