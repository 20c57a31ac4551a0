"""Scale: mesh vs hub mode bring-up, hub memory per client, failover with and without BFD.

Run as root (labs: namespaces, wireguard-go, FRR):

    python bench/scale_bench.py lab [--clients 10 30 60] [--modes mesh hub] [--runs 1]
        Bring-up and convergence of a lab (real wireguard-go and FRR on every machine)
        per size and mode: sessions, seconds, memory of the hub machine (every process
        in it, by daemon) and of a median client.
    python bench/scale_bench.py failover [--runs 5] [--modes mesh hub] [--bfd on off]
        Two hubs, three clients. A ping (every 0.1 s, between two clients' announced
        addresses) runs while hub-a dies silently (tunnel down, every process SIGKILLed);
        outage = lost packets x 0.1 s, until traffic flows over hub-b. Median of --runs.
    python bench/scale_bench.py routeserver [--clients 1000 5000] [--daemons frr bird]
        [--reconfigure 1000] [--cpu-seconds 30] [--wg 1000 5000 10000]
        The hub alone, as the route server of N simulated clients (bench/bgp_peers.py, no
        WireGuard), FRR and BIRD side by side: RSS, steady-state CPU, time for every
        session back after a restart, BIRD's `birdc configure` with one client more or
        less (sessions reset: none); wireguard-go's cost per idle peer apart
        (bench/route_server_bench.py says what each figure includes).

Prints tables (and --json writes them). Figures from this machine are in the README.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lab_bench import rss_kib
from route_server_bench import add_arguments, bench_routeserver

from wgbgp.compile import session_count
from wgbgp.lab import faults
from wgbgp.lab.build import Lab, open_lab
from wgbgp.lab.runner import up, wait_converged
from wgbgp.lab.selftest import lab_plans
from wgbgp.lab.state import teardown
from wgbgp.model import parse

HERE = Path(__file__).resolve().parent
HUB_ASN = 64600


def topology_text(clients: int, mode: str = "mesh", *, hubs: int = 1,
                  bfd: bool | None = None) -> str:
    """`clients` clients c1..cN announcing one address each; hubs hub (and hub-b ...)."""
    asn = f", asn: {HUB_ASN}" if mode == "hub" else ""
    bfd_text = "" if bfd is None else f", bfd: {str(bfd).lower()}"
    lines = [f"network: {{name: bench, overlay: 10.0.0.0/22, mode: {mode}{bfd_text}}}",
             "hubs:", f"  hub-a: {{endpoint: 203.0.113.10:51820{asn}}}"]
    for i in range(1, hubs):
        lines.append(f"  hub-{chr(97 + i)}: {{endpoint: 203.0.113.{10 + i}:51820, "
                     f"overlay: 10.{i}.4.0/22{asn}}}")
    lines.append("nodes:")
    for i in range(1, clients + 1):
        lines.append(f"  c{i}: {{asn: {4200000000 + i}, "
                     f"announce: [100.{100 + i // 250}.{i % 250}.1/32]}}")
    return "\n".join(lines) + "\n"


def machine_rss(lab: Lab, name: str) -> dict[str, int]:
    """KiB of resident memory per program in a lab machine (all its processes)."""
    out: dict[str, int] = {}
    for pid in lab.machine(name).pids():
        try:
            prog = Path(f"/proc/{pid}/comm").read_text().strip()
        except OSError:
            continue
        out[prog] = out.get(prog, 0) + rss_kib(pid)
    return out


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


# --- lab: bring-up and convergence, mesh vs hub ---------------------------------------

def lab_run(clients: int, mode: str, name: str) -> dict:
    topology, _ = parse(topology_text(clients, mode), "bench")
    t0 = time.monotonic()
    report = up(topology, name=name, timeout=600)
    wall = time.monotonic() - t0
    lab = open_lab(name)
    assert lab is not None
    hub = machine_rss(lab, "hub-a")
    clients_kib = sorted(sum(machine_rss(lab, f"c{i}").values())
                         for i in range(1, clients + 1))
    teardown(name)
    return {"clients": clients, "mode": mode, "sessions": session_count(topology),
            "wall": wall, "apply": report.timings["apply"],
            "converge": report.timings["converge"], "hub_kib": sum(hub.values()),
            "hub_by_program": hub, "client_kib": clients_kib[len(clients_kib) // 2]}


def bench_lab(args: argparse.Namespace) -> list[dict]:
    name = f"scb{os.getpid() % 10000}"
    rows = []
    for n in args.clients:
        for mode in args.modes:
            runs = []
            for _ in range(args.runs):
                try:
                    runs.append(lab_run(n, mode, name))
                finally:
                    teardown(name)
            row = dict(runs[0])
            for k in ("wall", "apply", "converge", "hub_kib", "client_kib"):
                row[k] = median([r[k] for r in runs])
            rows.append(row)
            print(f"  {n} clients {mode}: {row['wall']:.1f} s", file=sys.stderr)
    print(f"{'clients':>7} {'mode':>5} {'sessions':>8} {'up+conv s':>9} {'apply s':>7} "
          f"{'conv s':>6} {'hub MiB':>8} {'client MiB':>10}   hub by program (MiB)")
    for r in rows:
        progs = ", ".join(f"{p} {k / 1024:.1f}" for p, k in sorted(
            r["hub_by_program"].items(), key=lambda kv: -kv[1]))
        print(f"{r['clients']:>7} {r['mode']:>5} {r['sessions']:>8} {r['wall']:>9.1f} "
              f"{r['apply']:>7.1f} {r['converge']:>6.1f} {r['hub_kib'] / 1024:>8.1f} "
              f"{r['client_kib'] / 1024:>10.1f}   {progs}")
    hub_rows = [r for r in rows if r["mode"] == "hub"]
    if len(hub_rows) >= 2:
        a, b = hub_rows[0], hub_rows[-1]
        per = (b["hub_kib"] - a["hub_kib"]) / (b["clients"] - a["clients"])
        print(f"hub mode: {per:.0f} KiB more hub memory per client "
              f"({a['clients']} -> {b['clients']} clients)")
    return rows


# --- failover --------------------------------------------------------------------------

SRC, DST = "100.100.1.1", "100.100.2.1"  # c1 -> c2


def failover_once(lab: Lab, bfd: bool) -> float:
    ping = faults.PingRun(lab, "c1", SRC, DST, interval=0.1)
    time.sleep(2)
    faults.crash(lab, "hub-a")
    deadline = time.monotonic() + (10 if bfd else 60)
    while faults.route_dev(lab, "c1", DST, SRC) != "wg-hub-b":
        if time.monotonic() > deadline:
            break
        time.sleep(0.2)
    time.sleep(3)
    result = ping.stop()
    # Bring hub-a back and wait until traffic is on its plane again, for the next run.
    faults.restart(lab, "hub-a")
    executors = {n: m.executor() for n, m in lab.machines.items()}
    wait_converged(executors, lab_plans(lab), timeout=120)
    deadline = time.monotonic() + 60
    while faults.route_dev(lab, "c1", DST, SRC) != "wg-hub-a":
        if time.monotonic() > deadline:
            raise RuntimeError("traffic did not return to hub-a")
        time.sleep(0.5)
    if bfd:
        # BFD follows a new BGP session up a few seconds later; until then a second death
        # would be noticed by the hold timer. The next run starts from the steady state.
        wait_bfd_up(lab, timeout=60)
    return result.outage


def wait_bfd_up(lab: Lab, timeout: float) -> None:
    """Until every BGP session of every machine has its BFD session up."""
    deadline = time.monotonic() + timeout
    for name, plan in lab_plans(lab).items():
        if plan.bgp is None:
            continue
        want = {str(s.peer_address) for s in plan.bgp.sessions}
        while True:
            res = lab.machine(name).executor().run(["vtysh", "-c", "show bfd peers json"],
                                                   check=False)
            try:
                up_ = {p["peer"] for p in json.loads(res.stdout) if p["status"] == "up"}
            except (ValueError, KeyError, TypeError):
                up_ = set()
            if want <= up_:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name}: BFD down for {sorted(want - up_)}")
            time.sleep(0.5)


def bench_failover(args: argparse.Namespace) -> list[dict]:
    rows = []
    for mode in args.modes:
        for bfd in args.bfd:
            on = bfd == "on"
            name = f"sfo{os.getpid() % 10000}"
            topology, _ = parse(topology_text(3, mode, hubs=2, bfd=on), "bench")
            try:
                up(topology, name=name, timeout=120)
                lab = open_lab(name)
                assert lab is not None
                if on:
                    wait_bfd_up(lab, timeout=60)
                outages = [failover_once(lab, on) for _ in range(args.runs)]
            finally:
                teardown(name)
            rows.append({"mode": mode, "bfd": on, "outages": outages,
                         "median": median(outages)})
            print(f"  {mode} bfd={bfd}: {outages}", file=sys.stderr)
    print(f"{'mode':>5} {'BFD':>4} {'median outage s':>15}   runs (s)")
    for r in rows:
        print(f"{r['mode']:>5} {'on' if r['bfd'] else 'off':>4} {r['median']:>15.1f}   "
              + " ".join(f"{o:.1f}" for o in r["outages"]))
    return rows


COMMANDS: dict[str, Callable[[argparse.Namespace], list[dict]]] = {
    "lab": bench_lab, "failover": bench_failover, "routeserver": bench_routeserver}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=list(COMMANDS))
    ap.add_argument("--clients", type=int, nargs="+")
    ap.add_argument("--modes", nargs="+", default=["mesh", "hub"], choices=["mesh", "hub"])
    ap.add_argument("--bfd", nargs="+", default=["on", "off"], choices=["on", "off"])
    ap.add_argument("--runs", type=int)
    ap.add_argument("--json", type=Path, help="also write the results here")
    add_arguments(ap)
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("the scale benchmark needs root (lab namespaces)", file=sys.stderr)
        return 2
    defaults = {"lab": ([10, 30, 60], 1), "failover": ([3], 5),
                "routeserver": ([1000, 5000], 1)}[args.command]
    args.clients = args.clients or defaults[0]
    args.runs = args.runs or defaults[1]
    rows = COMMANDS[args.command](args)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
