"""Lab bring-up and convergence time, and memory per machine, for 2, 10 and 30 clients.

Run as root: `python bench/lab_bench.py [--runs 3] [--clients 2 10 30]`. Each run builds a
fresh lab (mesh: every pair of clients peers), waits until every session is Established
and every prefix installed, measures, and tears it down. Prints medians.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

from wgbgp.lab.build import open_lab
from wgbgp.lab.runner import up
from wgbgp.lab.state import teardown
from wgbgp.model import parse


def mesh_topology(clients: int) -> str:
    lines = ["network: {name: bench, overlay: 10.0.0.0/22}",
             "hubs:", "  hub: {endpoint: 203.0.113.10:51820}", "nodes:"]
    for i in range(1, clients + 1):
        lines.append(f"  c{i}: {{asn: {65000 + i}, announce: [100.100.{i}.1/32]}}")
    return "\n".join(lines) + "\n"


def rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def one_run(clients: int, name: str) -> dict[str, float]:
    topology, _ = parse(mesh_topology(clients), "bench")
    t0 = time.monotonic()
    report = up(topology, name=name, timeout=180)
    wall = time.monotonic() - t0
    lab = open_lab(name)
    per_machine = {n: sum(rss_kib(p) for p in m.pids()) for n, m in lab.machines.items()}
    clients_rss = [v for n, v in per_machine.items() if n != "hub"]
    teardown(name)
    return {
        "wall": wall, "hosts": report.timings["hosts"], "apply": report.timings["apply"],
        "converge": report.timings["converge"],
        "client_mib": statistics.median(clients_rss) / 1024,
        "hub_mib": per_machine["hub"] / 1024,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--clients", type=int, nargs="+", default=[2, 10, 30])
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("the lab benchmark needs root", file=sys.stderr)
        return 2
    name = f"bench{os.getpid() % 10000}"
    rows = []
    for n in args.clients:
        runs = []
        for _ in range(args.runs):
            try:
                runs.append(one_run(n, name))
            finally:
                teardown(name)
        med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        rows.append((n, n * (n - 1) // 2, med))
        print(f"  {n} clients done", file=sys.stderr)
    print(f"{'clients':>7} {'sessions':>8} {'bring-up s':>10} {'hosts s':>8} {'apply s':>8} "
          f"{'converge s':>10} {'MiB/client':>10} {'hub MiB':>8}   (median of {args.runs})")
    for n, s, m in rows:
        print(f"{n:>7} {s:>8} {m['wall']:>10.2f} {m['hosts']:>8.2f} {m['apply']:>8.2f} "
              f"{m['converge']:>10.2f} {m['client_mib']:>10.1f} {m['hub_mib']:>8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
