"""Recovery after a laptop's life events (issue 14): from the fault's end to every session
Established and every announced address reachable, median of N runs.

Run as root from the repository, with src on the Python path: bench/recovery_bench.py
[--runs 5] [--sleep 60].
One lab (hub vps; laptop and friend behind carrier cgnat, carol behind isp2, a spare
carrier mobile) serves every run. Each run starts healthy (checked), injects the event
with wgbgp.lab.life, then lets the recoverer work: the machine's agent when one runs
there, else `wgbgp apply` on the faulted machine right at the fault's end (the printed
table says which; --recoverer none: nothing but the machine's own daemons). The
sessions that do not touch the faulted machine must keep their uptime: the "kept" column
counts runs where every one of them did.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from wgbgp.lab import faults, life
from wgbgp.lab.build import Lab, open_lab
from wgbgp.lab.health import kept, sessions, untouched, wait_healthy
from wgbgp.lab.runner import up
from wgbgp.lab.selftest import lab_plans
from wgbgp.lab.state import teardown
from wgbgp.model import parse

TOPOLOGY = """\
network: {name: life, overlay: 10.30.0.0/24}
hubs:
  vps: {endpoint: 203.0.113.30:51820}
nodes:
  laptop: {asn: 65201, announce: [100.100.21.1/32]}
  friend: {asn: 65202, announce: [100.100.22.1/32]}
  carol: {asn: 65203, announce: [100.100.23.0/28]}
lab:
  carriers: {cgnat: {udp_timeout: 30}, isp2: {udp_timeout: 30}, mobile: {udp_timeout: 30}}
  nodes:
    laptop: {carrier: cgnat}
    friend: {carrier: cgnat}
    carol: {carrier: isp2}
"""
TIMEOUT = 60


def events(lab: Lab, sleep_s: float) -> dict[str, tuple[set[str], Callable[[int], object]]]:
    """Event name -> (machines it faults, inject(run index))."""
    return {
        "roam": ({"laptop"}, lambda i: life.roam(lab, "laptop", ("mobile", "cgnat")[i % 2])),
        "nat-reset": ({"laptop", "friend"}, lambda i: life.nat_reset(lab, "cgnat")),
        "flap": ({"vps"}, lambda i: life.flap(lab, "vps", "wg-vps")),
        "kill": ({"laptop"}, lambda i: life.kill_daemon(lab, "laptop", "bgpd")),
        f"sleep {sleep_s:g} s": ({"laptop"}, lambda i: life.sleep(lab, "laptop", sleep_s)),
        "reboot": ({"laptop"}, lambda i: life.reboot(lab, "laptop")),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--sleep", type=float, default=60, help="seconds the laptop sleeps")
    ap.add_argument("--only", nargs="*", help="events to run (default: all)")
    ap.add_argument("--json", type=Path, help="also write the rows here")
    ap.add_argument("--recoverer", choices=("apply", "none"), default="apply",
                    help="without an agent: apply at the fault's end, or nothing (what "
                    "the machine does alone: watchfrr, WireGuard, keepalives)")
    args = ap.parse_args()
    name = "lablifebench"
    teardown(name)
    topology, _ = parse(TOPOLOGY, "recovery_bench.yaml")
    up(topology, name=name)
    rows = []
    try:
        lab = open_lab(name)
        assert lab is not None
        plans = lab_plans(lab)
        xs = {n: m.executor() for n, m in lab.machines.items()}
        for event, (machines, inject) in events(lab, args.sleep).items():
            if args.only and event.split()[0] not in args.only:
                continue
            times: list[float] = []
            kept_runs, recoverers = 0, set()
            for i in range(args.runs):
                if wait_healthy(xs, plans, timeout=TIMEOUT) is None:
                    raise SystemExit(f"{event} run {i}: the lab is not healthy before it")
                keys = untouched(plans, machines)
                before, t0 = sessions(xs, plans), time.monotonic()
                inject(i)
                end = time.monotonic()
                if args.recoverer == "apply":
                    done = faults.recover(lab, sorted(machines))
                    recoverers |= {"agent" if v == "agent" else "apply"
                                   for v in done.values()}
                else:
                    recoverers |= {"agent" if faults.agent_running(lab, m) else "none"
                                   for m in machines}
                looking = time.monotonic()
                healed = wait_healthy(xs, plans, timeout=TIMEOUT)
                # From the fault's end to the start of the first look that saw it whole.
                took = None if healed is None else looking - end + healed
                dropped = kept(before, sessions(xs, plans), keys, time.monotonic() - t0)
                kept_runs += not dropped
                times.append(float("inf") if took is None else took)
                print(f"  {event} run {i + 1}: {took if took is None else round(took, 2)} s, "
                      f"kept {len(keys) - len(dropped)}/{len(keys)} {dropped or ''}",
                      file=sys.stderr)
            rows.append({"event": event, "median_s": round(statistics.median(times), 2),
                         "min_s": round(min(times), 2), "max_s": round(max(times), 2),
                         "runs": args.runs, "kept_runs": kept_runs,
                         "recoverer": "+".join(sorted(recoverers))})
    finally:
        teardown(name)
    print(f"{'event':<14} {'median s':>8} {'min':>6} {'max':>6} {'kept':>6}  recoverer")
    for r in rows:
        print(f"{r['event']:<14} {r['median_s']:>8} {r['min_s']:>6} {r['max_s']:>6} "
              f"{r['kept_runs']}/{r['runs']:<4}  {r['recoverer']}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
