#!/usr/bin/env python3
"""Render benchmark for a hub-mode hub: its route server's config at 1,000 and 5,000
clients, FRR and BIRD.

    python bench/hub_render_bench.py                  # 1000 5000, 3 runs
    python bench/hub_render_bench.py 1000 5000 10000 -r 5

The topology text (one /32 per client) is parsed and compiled once per size; then the
hub's Plan is rendered --runs times (render_frr or render_bird: the template and its
filters, nothing else). Printed: median render wall time and CPU time, config size.
Also, once per size, load (parse + validate) and compile of the whole network, for
scale: compile builds every client's Plan too, and each client imports every other
client's prefix (n^2 entries in all).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from route_server_bench import topology_text

from wgbgp.compile import compile_topology
from wgbgp.model import parse
from wgbgp.render import render_bird, render_frr


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("clients", type=int, nargs="*", default=[1000, 5000])
    ap.add_argument("-r", "--runs", type=int, default=3)
    args = ap.parse_args()
    print(f"{'daemon':>6} {'clients':>7} {'load s':>6} {'compile s':>9} {'render s':>8} "
          f"{'render cpu s':>12} {'config KB':>9} {'bytes/client':>12}")
    for n in args.clients:
        for daemon, render in (("frr", render_frr), ("bird", render_bird)):
            t0 = time.perf_counter()
            topology, _ = parse(topology_text(n, daemon), "bench.yaml")
            t1 = time.perf_counter()
            plan = compile_topology(topology)["hub-a"]
            t2 = time.perf_counter()
            walls, cpus, size = [], [], 0
            for _ in range(args.runs):
                c, w = time.process_time(), time.perf_counter()
                rendered = render(plan)
                walls.append(time.perf_counter() - w)
                cpus.append(time.process_time() - c)
                assert rendered is not None
                size = len(rendered.text)
            print(f"{daemon:>6} {n:>7} {t1 - t0:>6.2f} {t2 - t1:>9.2f} "
                  f"{statistics.median(walls):>8.3f} {statistics.median(cpus):>12.3f} "
                  f"{size / 1000:>9.0f} {size / n:>12.0f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
