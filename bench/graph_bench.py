#!/usr/bin/env python3
"""Graph build and draw time at the sizes the picture must stay readable at.

    python bench/graph_bench.py          # 5 runs each
    python bench/graph_bench.py -r 9

For 30 clients in mesh mode (435 BGP sessions, one hub) and 200 in hub mode (two hubs,
400 tunnels carrying route-server sessions), measures separately:
- build:  Topology -> compiled plans -> Graph (pure Python);
- dot:    Graph -> DOT text, layout included (pure Python);
- svg / png: Graphviz drawing that DOT (`dot -Kneato -n2`, the engine wgbgp uses).
Prints the median (and min/max) in milliseconds. Needs Graphviz (`dot`).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import topogen
from wgbgp.compile import compile_topology
from wgbgp.graph import build_graph, engine_args, to_dot
from wgbgp.model import Topology
from wgbgp.web.draw import run_dot


def mesh30() -> Topology:
    return topogen.load(topogen.doc(30))


def hub200() -> Topology:
    d = topogen.doc(200, mode="hub")
    d["network"]["overlay"] = "10.0.0.0/22"
    d["hubs"]["vps"]["asn"] = 64600
    d["hubs"]["west"] = {"endpoint": "203.0.113.11:51820", "asn": 64600,
                         "overlay": "10.1.0.0/22", "public_key": topogen.pub("west")}
    for i in range(1, 201):
        d["nodes"][f"n{i}"]["announce"] = [f"100.{64 + i // 256}.{i % 256}.0/24"]
    return topogen.load(d)


def timed(fn: Callable[[], object], runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-r", "--runs", type=int, default=5)
    args = ap.parse_args()
    print(f"{'case':<10} {'step':<6} {'median ms':>10} {'min':>8} {'max':>8}")
    for name, make in (("mesh 30", mesh30), ("hub 200", hub200)):
        topo = make()
        graph = build_graph(compile_topology(topo), topo.network.mode)
        text = to_dot(graph)
        steps: list[tuple[str, Callable[[], object]]] = [
            ("build", lambda t=topo: build_graph(compile_topology(t), t.network.mode)),
            ("dot", lambda g=graph: to_dot(g)),
            ("svg", lambda s=text, g=graph: run_dot(s, "svg", engine_args(g))),
            ("png", lambda s=text, g=graph: run_dot(s, "png", engine_args(g))),
        ]
        for step, fn in steps:
            ms = timed(fn, args.runs)
            print(f"{name:<10} {step:<6} {statistics.median(ms):>10.1f} {min(ms):>8.1f} "
                  f"{max(ms):>8.1f}", flush=True)
        print(f"{name:<10} {'edges':<6} {len(graph.edges):>10} (vertices {len(graph.vertices)})")


if __name__ == "__main__":
    main()
