#!/usr/bin/env python3
"""Apply latency on lab machines: unchanged vs changed, per machine and for the network.

    sudo python bench/apply_latency.py            # 7 runs each
    sudo python bench/apply_latency.py -r 15

Builds a throwaway lab (hub `vps`, clients `laptop` and `friend` behind a CG-NAT, real
wireguard-go and FRR), applies the classic topology, then measures:
- unchanged: apply on a machine whose files and live state already match (one probe);
- changed:   laptop's announced prefixes flip between two sets, which changes the hub's
             WireGuard peers (wg syncconf in place) and both clients' frr.conf (validate,
             write, frr-reload.py);
- plan:      plan_machine for the changed case, including frr-reload.py --test;
- network:   apply_many over all three machines in parallel, unchanged and changed.
Prints medians (and min/max) in milliseconds. The lab is torn down afterwards.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from ipaddress import IPv4Address

from wgbgp.apply import apply_machine, plan_machine, remote_keygen
from wgbgp.apply.parallel import apply_many
from wgbgp.compile import compile_topology
from wgbgp.model import parse
from wgbgp.render import render_machine

HUB_IP = "203.0.113.10"


def topology(pub: dict[str, str], laptop_announce: list[str]) -> str:
    return "\n".join([
        "network: {name: friends, overlay: 10.0.0.0/24}",
        "hubs:",
        f"  vps: {{endpoint: '{HUB_IP}:51820', address: 10.0.0.1, public_key: '{pub['vps']}'}}",
        "nodes:",
        f"  laptop: {{asn: 65010, address: 10.0.0.10, public_key: '{pub['laptop']}', "
        f"announce: [{', '.join(laptop_announce)}]}}",
        f"  friend: {{asn: 65020, public_key: '{pub['friend']}', announce: [100.100.100.2/32]}}",
    ]) + "\n"


def files_for(text: str) -> dict[str, list]:
    t, _ = parse(text, "bench.yaml")
    return {n: render_machine(p) for n, p in compile_topology(t).items()}


def ms(samples: list[float]) -> str:
    return (f"{statistics.median(samples) * 1000:8.1f} {min(samples) * 1000:8.1f} "
            f"{max(samples) * 1000:8.1f}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-r", "--runs", type=int, default=7, help="runs per measurement")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("needs root (builds network and mount namespaces)", file=sys.stderr)
        return 2
    from wgbgp.lab.build import build_lab
    from wgbgp.lab.spec import CarrierSpec, ClientSpec, HubSpec, LabSpec

    spec = LabSpec("bench" + uuid.uuid4().hex[:4], hubs=(HubSpec("vps", IPv4Address(HUB_IP)),),
                   clients=(ClientSpec("laptop", "cgnat"), ClientSpec("friend", "cgnat")),
                   carriers=(CarrierSpec("cgnat"),))
    lab = build_lab(spec)
    rows: list[tuple[str, str, list[float]]] = []
    try:
        x = {n: m.executor() for n, m in lab.machines.items()}
        pub = {n: remote_keygen(e, n).public_key for n, e in x.items()}
        variants = [files_for(topology(pub, ["100.100.100.1/32"])),
                    files_for(topology(pub, ["100.100.100.1/32", "100.100.101.0/24"]))]
        t0 = time.perf_counter()
        first = apply_many([(x[n], f) for n, f in variants[0].items()])
        rows.append(("network", "first apply (start everything)", [time.perf_counter() - t0]))
        assert all(r.ok for r in first.values()), [r.summary() for r in first.values()]

        for name in ("vps", "laptop", "friend"):
            samples = []
            for _ in range(args.runs):
                t = time.perf_counter()
                r = apply_machine(x[name], variants[0][name])
                samples.append(time.perf_counter() - t)
                assert r.ok and not r.changed, r.summary()
            rows.append((name, "unchanged apply", samples))

        changed: dict[str, list[float]] = {n: [] for n in x}
        plans: dict[str, list[float]] = {n: [] for n in x}
        steps: dict[str, str] = {}
        for i in range(args.runs):
            v = variants[(i + 1) % 2]
            for name in ("vps", "laptop", "friend"):
                t = time.perf_counter()
                plan_machine(x[name], v[name])
                plans[name].append(time.perf_counter() - t)
                t = time.perf_counter()
                r = apply_machine(x[name], v[name])
                changed[name].append(time.perf_counter() - t)
                assert r.ok and r.changed, r.summary()
                steps[name] = ", ".join(s.action for s in r.steps)
        for name in ("vps", "laptop", "friend"):
            rows.append((name, f"plan, changed ({len(plans[name])} runs)", plans[name]))
            rows.append((name, f"changed apply: {steps[name]}", changed[name]))

        for label, idx in (("unchanged", args.runs % 2), ("changed", (args.runs + 1) % 2)):
            samples = []
            for k in range(args.runs):
                v = variants[idx if label == "unchanged" else (idx + k) % 2]
                t = time.perf_counter()
                res = apply_many([(x[n], f) for n, f in v.items()])
                samples.append(time.perf_counter() - t)
                assert all(r.ok for r in res.values())
            rows.append(("network", f"apply_many, {label} (3 machines in parallel)", samples))
    finally:
        lab.down()

    width = max(len(f"{m:8} {w}") for m, w, _ in rows)
    print(f"{f'apply latency, {args.runs} runs each (ms)':{width}}   median      min      max")
    for machine, what, samples in rows:
        print(f"{f'{machine:8} {what}':{width}} {ms(samples)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
