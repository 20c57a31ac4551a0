#!/usr/bin/env python3
"""Wall time of `wgbgp doctor` with no arguments, run inside lab machines as a user would.

    sudo python bench/doctor_anywhere_bench.py          # 5 runs each
    sudo python bench/doctor_anywhere_bench.py -r 9

Builds a classic lab (hub `vps`, clients `laptop` and `friend` behind a CG-NAT, real
wireguard-go and FRR), then times `wgbgp doctor` (a new process each time, through
`wgbgp lab exec`, so interpreter start-up is included) on:
- vps and laptop as wgbgp configured them: judged against the intent apply left there,
  probes included;
- friend set up by hand from the classic recipe (lab.handmade): no intent, local facts;
- friend with the topology file passed.
Each also in-process (`inproc`): read the intent, gather (snapshot and probes, through
the machine's executor) and diagnose, without the interpreter's start-up and `lab exec`:
on a loaded machine start-up is most of the CLI's time.
Prints median, min and max in seconds. The lab is torn down afterwards.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from wgbgp.compile import compile_topology
from wgbgp.lab.build import open_lab
from wgbgp.lab.handmade import hand_configure
from wgbgp.lab.runner import lab_topology_path
from wgbgp.model import parse
from wgbgp.observe.doctor import diagnose
from wgbgp.observe.gather import gather
from wgbgp.observe.intent import read_intent
from wgbgp.transport import Executor


def wgbgp(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "wgbgp", *args], capture_output=True,
                          text=True, timeout=300)


def timed(name: str, machine: str, args: list[str], runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        t0 = time.monotonic()
        proc = wgbgp("lab", "exec", "--name", name, machine, "--", sys.executable, "-m",
                     "wgbgp", "doctor", *args)
        out.append(time.monotonic() - t0)
        if proc.returncode not in (0, 1):
            raise SystemExit(f"doctor on {machine} failed: {proc.stderr}")
    return out


def inproc(x: Executor, machine: str, plans: dict | None, intent: bool, runs: int
           ) -> list[float]:
    """What `wgbgp doctor` does after start-up, timed `runs` times."""
    out = []
    for _ in range(runs):
        t0 = time.monotonic()
        use = plans
        if intent:
            found = read_intent(x)
            assert found is not None, f"no intent on {machine}"
            use = found.plans
        diagnose(gather({machine: x}, use), use)
        out.append(time.monotonic() - t0)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-r", "--runs", type=int, default=5)
    runs = ap.parse_args().runs
    if os.geteuid() != 0:
        raise SystemExit("run as root (lab namespaces)")
    name = f"anysetupb{os.getpid() % 10000}"
    try:
        up = wgbgp("lab", "up", "--name", name)
        if up.returncode:
            raise SystemExit(up.stderr)
        topology = Path(tempfile.mkdtemp()) / "topology.yaml"
        topology.write_text(lab_topology_path(name).read_text())
        plans = compile_topology(parse(topology.read_text(), str(topology))[0])
        lab = open_lab(name)
        assert lab is not None
        ex = {m: lab.machine(m).executor() for m in ("vps", "laptop", "friend")}
        rows = [("vps, wgbgp-made, intent", timed(name, "vps", [], runs)),
                ("  inproc", inproc(ex["vps"], "vps", None, True, runs)),
                ("laptop, wgbgp-made, intent", timed(name, "laptop", [], runs)),
                ("  inproc", inproc(ex["laptop"], "laptop", None, True, runs))]
        hand_configure(ex["friend"], plans, "friend")
        time.sleep(2)  # bgpd reads the hand-made frr.conf (only the timing waits on it)
        rows += [("friend, hand-made, no topology", timed(name, "friend", [], runs)),
                 ("  inproc", inproc(ex["friend"], "localhost", None, False, runs)),
                 ("friend, hand-made, topology", timed(name, "friend", [str(topology)],
                                                       runs)),
                 ("  inproc", inproc(ex["friend"], "friend", plans, False, runs))]
        print(f"wgbgp doctor wall time, {runs} runs each (seconds)")
        print(f"{'machine':34} {'median':>7} {'min':>7} {'max':>7}")
        for label, times in rows:
            print(f"{label:34} {statistics.median(times):7.2f} {min(times):7.2f} "
                  f"{max(times):7.2f}")
    finally:
        wgbgp("lab", "down", "--name", name)


if __name__ == "__main__":
    main()
