#!/usr/bin/env python3
"""Render benchmark: parse + compile + render generated mesh and hub-mode topologies.

    python bench/render_bench.py            # mesh: 10, 100, 300 clients
    python bench/render_bench.py 50 500 -r 3
    python bench/render_bench.py --profile 300
    python bench/render_bench.py --hub 1000 2000         # hub mode, the CLI (below)
    python bench/render_bench.py --hub 2000 --profile    # where one full render goes

Hub mode (`--hub N...`) times the commands as a user runs them, each a fresh
`python -m wgbgp` process (imports included) on a generated topology with N clients in a
temporary directory (its address lock already written, as after a first `check`):
`check`, a full `render --out DIR`, `render --node` of one client and of the hub (to
/dev/null); median wall time of --runs, and the peak RSS of the process (the largest
over the runs). A hub-mode client imports every other client's prefixes, so a full
render's output grows with N^2 (2,000 clients: about 460 MB of files).

A mesh of N clients has N(N-1)/2 BGP sessions (300 clients: 44,850), each rendered on
both ends. Every run starts from the topology file's text: load and validate, compile
every machine's Plan, render every file of every machine. Cost should grow about
linearly with the number of sessions: look at the s/1k sess column. "median s" is wall
time; "cpu s" is this process's CPU time, which other load on the machine disturbs less.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

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


def hub_topology(clients: int) -> str:
    """A valid hub-mode topology text: one hub (the route server), `clients` nodes each
    announcing a /32 and a /24."""
    lines = [
        "network:",
        "  name: bench",
        "  overlay: 10.0.0.0/16",
        "  mode: hub",
        "hubs:",
        "  hub:",
        "    endpoint: 198.51.100.1:51820",
        "    asn: 64512",
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


# Runs wgbgp's CLI and, at exit, reports the process's peak RSS (VmHWM: that of this
# process image only; ru_maxrss would also count the benchmark's own memory, which the
# child had before exec).
_PEAK_SHIM = """
import atexit, os, runpy, sys
def _peak():
    with open("/proc/self/status") as fh:
        kib = next(line.split()[1] for line in fh if line.startswith("VmHWM:"))
    os.write(int(os.environ.pop("WGBGP_BENCH_PEAK_FD")), kib.encode())
atexit.register(_peak)
sys.argv = ["wgbgp", *sys.argv[1:]]
runpy.run_module("wgbgp", run_name="__main__", alter_sys=True)
"""


def run_cli(args: list[str], cwd: Path) -> tuple[float, float, int]:
    """Run `python -m wgbgp ARGS` in cwd: (wall seconds, CPU seconds, peak RSS in KiB).
    Exit 0 or die."""
    read, write = os.pipe()
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", _PEAK_SHIM, *args], cwd=cwd,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            pass_fds=(write,),
                            env={**os.environ, "WGBGP_BENCH_PEAK_FD": str(write)})
    os.close(write)
    assert proc.stderr is not None
    errors = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    with os.fdopen(read) as fh:
        peak = fh.read()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        sys.exit(f"wgbgp {' '.join(args)} failed ({proc.returncode}): {errors.decode()}")
    return wall, usage.ru_utime + usage.ru_stime, int(peak)


HUB_COMMANDS = {
    "check": ["check", "topology.yaml"],
    "render": ["render", "topology.yaml", "--out", "out"],
    "node client": ["render", "topology.yaml", "--node", "node1"],
    "node hub": ["render", "topology.yaml", "--node", "hub"],
}


def hub_bench(sizes: list[int], runs: int, only: str = "") -> None:
    """Two hub-mode tables: in this process (load + check, compile, render of every
    machine, as for the mesh), then the CLI: per command, median wall and CPU seconds and
    the peak RSS."""
    if only != "cli":
        in_process(sizes, runs)
    if only != "process":
        cli(sizes, runs)


def in_process(sizes: list[int], runs: int) -> None:
    """The in-process table for hub mode."""
    run_once(hub_topology(3))  # warm up: imports, template compilation
    print("in process (median s):")
    print(f"{'clients':>7} {'files':>6} {'MB':>6} {'load s':>7} {'compile s':>9} "
          f"{'render s':>8} {'total s':>8} {'cpu s':>6}")
    for n in sizes:
        text = hub_topology(n)
        results = [run_once(text) for _ in range(runs)]
        median = {k: statistics.median(r[0][k] for r in results) for k in results[0][0]}
        _, files, size = results[0]
        print(f"{n:>7} {files:>6} {size / 1e6:>6.1f} {median['load']:>7.3f} "
              f"{median['compile']:>9.3f} {median['render']:>8.3f} {median['total']:>8.3f} "
              f"{median['cpu']:>6.3f}")
        sys.stdout.flush()


def cli(sizes: list[int], runs: int) -> None:
    """The CLI table for hub mode."""
    print("CLI, one `python -m wgbgp` process per run (median wall s, median CPU s, peak MB):")
    print(f"{'clients':>7} " + " ".join(f"{c:>23}" for c in HUB_COMMANDS))
    for n in sizes:
        with tempfile.TemporaryDirectory(prefix="wgbgp-render-bench-") as tmp:
            cwd = Path(tmp)
            (cwd / "topology.yaml").write_text(hub_topology(n), encoding="utf-8")
            run_cli(HUB_COMMANDS["check"], cwd)  # writes the address lock
            row = f"{n:>7} "
            for args in HUB_COMMANDS.values():
                walls, cpus, peaks = [], [], []
                for _ in range(runs):
                    wall, cpu, peak = run_cli(args, cwd)
                    walls.append(wall)
                    cpus.append(cpu)
                    peaks.append(peak)
                    shutil.rmtree(cwd / "out", ignore_errors=True)
                cell = (f"{statistics.median(walls):.2f} / {statistics.median(cpus):.2f} / "
                        f"{max(peaks) / 1024:.0f}")
                row += f"{cell:>23} "
            print(row.rstrip())
            sys.stdout.flush()


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
    ap.add_argument("--hub", nargs="+", type=int, metavar="N",
                    help="hub-mode sizes: time the CLI (check, render, render --node)")
    ap.add_argument("--only", choices=("process", "cli"), default="",
                    help="hub mode: only the in-process or only the CLI table")
    ap.add_argument("--profile", action="store_true",
                    help="profile one run of the largest size with cProfile")
    args = ap.parse_args()

    if args.hub and not args.profile:
        hub_bench(args.hub, args.runs, args.only)
        return 0
    if args.profile:
        import cProfile
        import pstats

        text = hub_topology(max(args.hub)) if args.hub else mesh_topology(max(args.clients))
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
