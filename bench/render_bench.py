#!/usr/bin/env python3
"""Render benchmark: parse + compile + render generated mesh topologies.

    python bench/render_bench.py            # 10, 100, 300 clients
    python bench/render_bench.py 50 500 -r 3
    python bench/render_bench.py --profile 300

A mesh of N clients has N(N-1)/2 BGP sessions (300 clients: 44,850), each rendered on
both ends. Every run starts from the topology file's text: load and validate, compile
every machine's Plan, render every file of every machine. Cost should grow about
linearly with the number of sessions: look at the s/1k sess column. "median s" is wall
time; "cpu s" is this process's CPU time, which other load on the machine disturbs less.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from wgbgp.compile import compile_topology
from wgbgp.model import parse
from wgbgp.model.keys import generate_private_key, public_key
from wgbgp.render import render_machine


def mesh_topology(clients: int) -> str:
    """A valid topology text: one hub, `clients` nodes, each announcing a /32 and a /24."""
    lines = [
        "network:",
        "  name: bench",
        "  overlay: 10.0.0.0/16",
        "hubs:",
        "  hub:",
        "    endpoint: 198.51.100.1:51820",
        f"    public_key: {public_key(generate_private_key())}",
        "nodes:",
    ]
    for i in range(clients):
        lines += [
            f"  node{i}:",
            f"    asn: {4200000000 + i}",
            f"    public_key: {public_key(generate_private_key())}",
            f"    announce: [100.{64 + i // 256}.{i % 256}.1/32, "
            f"172.{16 + i // 256}.{i % 256}.0/24]",
        ]
    return "\n".join(lines) + "\n"


def run_once(text: str) -> tuple[dict[str, float], int, int]:
    """Seconds per stage, number of files, bytes rendered."""
    c0, t0 = time.process_time(), time.perf_counter()
    topology, _ = parse(text, "bench.yaml")
    t1 = time.perf_counter()
    plans = compile_topology(topology)
    t2 = time.perf_counter()
    files = [f for plan in plans.values() for f in render_machine(plan)]
    t3, c3 = time.perf_counter(), time.process_time()
    stages = {"load": t1 - t0, "compile": t2 - t1, "render": t3 - t2, "total": t3 - t0,
              "cpu": c3 - c0}
    return stages, len(files), sum(len(f.text) for f in files)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("clients", nargs="*", type=int, default=[10, 100, 300])
    ap.add_argument("-r", "--runs", type=int, default=5, help="runs per size (median)")
    ap.add_argument("--profile", action="store_true",
                    help="profile one run of the largest size with cProfile")
    args = ap.parse_args()

    if args.profile:
        import cProfile
        import pstats

        text = mesh_topology(max(args.clients))
        with cProfile.Profile() as prof:
            run_once(text)
        pstats.Stats(prof).sort_stats("cumulative").print_stats(30)
        return 0

    run_once(mesh_topology(3))  # warm up: imports, template compilation
    print(f"{'clients':>7} {'sessions':>9} {'files':>6} {'MB':>6} {'load s':>7} "
          f"{'compile s':>9} {'render s':>8} {'median s':>8} {'s/1k sess':>9} {'cpu s':>6}")
    for n in args.clients:
        text = mesh_topology(n)
        runs = [run_once(text) for _ in range(args.runs)]
        median = {k: statistics.median(r[0][k] for r in runs) for k in runs[0][0]}
        sessions = n * (n - 1) // 2
        _, files, size = runs[0]
        per_k = median["total"] / sessions * 1000 if sessions else float("nan")
        print(f"{n:>7} {sessions:>9} {files:>6} {size / 1e6:>6.1f} {median['load']:>7.3f} "
              f"{median['compile']:>9.3f} {median['render']:>8.3f} {median['total']:>8.3f} "
              f"{per_k:>9.4f} {median['cpu']:>6.3f}")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
