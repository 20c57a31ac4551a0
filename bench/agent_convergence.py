#!/usr/bin/env python3
"""From `apply` to every BGP session Established on the classic lab, with and without the
agent's connect-on-handshake (agent/kick.py).

    sudo python bench/agent_convergence.py            # 5 runs each
    sudo python bench/agent_convergence.py -r 7 --trace

Each run builds a fresh classic lab (hub `vps`, `laptop` and `friend` behind a CG-NAT, real
wireguard-go and FRR) with its machines and keys only (`lab up --bare`'s state), then
applies all three machines at once (apply_many, as `wgbgp apply --all` does) and, for the
`agent` variant, starts the agent in every machine right after (as `wgbgp apply` and
`wgbgp lab up` do). It polls every 50 ms:
- each client's first WireGuard handshake (`wg show all latest-handshakes` non-zero);
- both ends of the laptop-friend session (`show bgp summary json`).
Scenarios (`--scenario`, default all three):
- deploy: all three machines applied at once;
- late:   the clients first; once FRR runs and waits on both (Active/Connect), the hub;
- outage: deploy, then the hub drops WireGuard (nft, UDP 51820) until both ends of the
          session have given up (hold time 30 s), then lets it through again;
- reup:   deploy, then `wg-quick down` and `up` on laptop with FRR running (a reboot, a
          crashed wireguard-go): reported as (up -> first handshake, up -> Established).
          With --old-postup, PostUp only sets the key, as before the keepalive restart.
Reported, in seconds, medians with min and max:
- apply->up:  from the start of apply to both ends Established;
- hs->up:     from the later of the two clients' first handshakes to both ends Established
              (the issue's goal: 1 s or less); for `outage`, from the first handshake
              after the outage.
`--trace` prints every state change of every run.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import statistics
import sys
import time
import uuid

from wgbgp.apply import remote_keygen
from wgbgp.apply.lockfile import write_lock
from wgbgp.apply.parallel import apply_many
from wgbgp.compile import compile_topology
from wgbgp.lab.build import build_lab
from wgbgp.lab.fromtopology import spec_for, to_yaml, with_lab_keys
from wgbgp.lab.runner import agent_starter, give_announced_addresses, lab_topology_path
from wgbgp.lab.state import teardown
from wgbgp.model import parse
from wgbgp.model.examples import classic_text
from wgbgp.render import RenderedFile, render_machine
from wgbgp.transport import Executor

POLL = 0.05
OLD_POSTUP = False  # --old-postup: the wg-quick files as before the keepalive restart


def without_restart(f: RenderedFile) -> RenderedFile:
    """A wg-quick file whose PostUp only sets the key (as rendered before the fix)."""
    if f.kind != "wireguard":
        return f
    text = re.sub(r" && wg set %i peer \S+ persistent-keepalive \d+", "", f.text)
    return dataclasses.replace(f, text=text)
CLIENTS = ("laptop", "friend")


def state(x: Executor) -> str:
    res = x.run(["vtysh", "-c", "show bgp summary json"], check=False)
    try:
        peers = json.loads(res.stdout)["ipv4Unicast"]["peers"]
    except (ValueError, KeyError, TypeError):
        return "down"
    return ",".join(p.get("state", "?") for p in peers.values()) or "none"


def handshaken(x: Executor) -> bool:
    res = x.run(["wg", "show", "all", "latest-handshakes"], check=False)
    return any(line.split()[-1] != "0" for line in res.stdout.splitlines() if line.split())


def handshake_times(x: Executor) -> dict[str, str]:
    res = x.run(["wg", "show", "all", "latest-handshakes"], check=False)
    return {parts[1]: parts[2] for parts in (ln.split() for ln in res.stdout.splitlines())
            if len(parts) == 3}


BLOCK = ("table inet agentbench {\n  chain input {\n"
         "    type filter hook input priority -10; policy accept;\n"
         "    udp dport 51820 drop\n  }\n}\n")


def outage(x: dict[str, Executor], trace: bool, timeout: float = 120) -> float:
    """The hub drops WireGuard until both ends of the session have given up on it (hold
    time 30 s: Active/Connect), then lets it through again: seconds from the first new
    handshake of a client to both ends Established."""
    t0 = time.monotonic()
    x["vps"].run(["nft", "-f", "-"], input=BLOCK)
    try:
        deadline = time.monotonic() + timeout
        while not all(state(x[c]) in ("Active", "Connect") for c in CLIENTS):
            if time.monotonic() > deadline:
                raise RuntimeError("sessions did not fall while the hub dropped WireGuard")
            time.sleep(0.5)
        before = {c: handshake_times(x[c]) for c in CLIENTS}
    finally:
        x["vps"].run(["nft", "delete", "table", "inet", "agentbench"], check=False)
    if trace:
        print(f"  {time.monotonic() - t0:6.2f} sessions down; WireGuard let through again")
    fresh: dict[str, float] = {}
    deadline = time.monotonic() + timeout
    while True:
        now = time.monotonic()
        for c in CLIENTS:
            if c not in fresh and handshake_times(x[c]) != before[c]:
                fresh[c] = now
                if trace:
                    print(f"  {now - t0:6.2f} {c} new handshake")
        states = {c: state(x[c]) for c in CLIENTS}
        if fresh and all(v == "Established" for v in states.values()):
            if trace:
                print(f"  {now - t0:6.2f} Established")
            return now - min(fresh.values())
        if now > deadline:
            raise RuntimeError(f"not Established {timeout} s after the outage: {states}")
        time.sleep(POLL)


def reup(x: dict[str, Executor], trace: bool, timeout: float = 60) -> tuple[float, float]:
    """`wg-quick down` then `up` on laptop (as after a reboot or a crashed wireguard-go,
    with FRR running): seconds from `up` to its first handshake, and to Established."""
    x["laptop"].run(["wg-quick", "down", "wg-vps"], timeout=60)
    t0 = time.monotonic()
    x["laptop"].run(["env", "WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD=1", "wg-quick", "up",
                     "wg-vps"], timeout=60)
    hs = None
    while True:
        now = time.monotonic() - t0
        if hs is None and handshaken(x["laptop"]):
            hs = now
            if trace:
                print(f"  {now:6.2f} laptop handshake after wg-quick up")
        if hs is not None and all(state(x[c]) == "Established" for c in CLIENTS):
            return hs, now
        if now > timeout:
            raise RuntimeError("no handshake or session after wg-quick up")
        time.sleep(POLL)


def one_run(agent: bool, scenario: str, trace: bool, timeout: float = 60
            ) -> tuple[float, float]:
    """(apply -> both ends Established, later first handshake -> both Established); for
    `outage`, the second is from the first handshake after the outage."""
    late = scenario == "late"
    name = "agbench" + uuid.uuid4().hex[:4]
    topo, _ = parse(classic_text(), "classic.yaml")
    spec = spec_for(topo, name)
    lab = build_lab(spec)  # the machines and their keys, as `lab up` makes them
    try:
        x = {n: m.executor() for n, m in lab.machines.items()}
        keys = {n: remote_keygen(e, n).public_key for n, e in x.items()}
        topo = with_lab_keys(topo, spec, keys)
        plans = compile_topology(topo)
        for n, p in plans.items():
            give_announced_addresses(x[n], p)
        path = lab_topology_path(name)
        path.write_text(to_yaml(topo, "# agent_convergence bench\n"))
        write_lock(path, topo, None)
        jobs = [(x[n], [without_restart(f) if OLD_POSTUP else f for f in render_machine(p)])
                for n, p in plans.items()]
        after = agent_starter(path, {}) if agent else None
        t0 = time.monotonic()
        if late:
            # The clients first, until FRR runs and waits (Active/Connect) on both: then
            # the hub, and so the tunnels, come up.
            first = apply_many([j for j in jobs if j[0].name in CLIENTS], enable_at_boot=False,
                               after=after)
            assert all(r.ok for r in first.values()), [r.summary() for r in first.values()]
            waiting = ("Active", "Connect")
            deadline = time.monotonic() + timeout
            while not all(state(x[c]) in waiting for c in CLIENTS):
                if time.monotonic() > deadline:
                    raise RuntimeError("clients' sessions never waited for the tunnel")
                time.sleep(POLL)
            if trace:
                print(f"  {time.monotonic() - t0:6.2f} clients wait: applying the hub")
            jobs = [j for j in jobs if j[0].name not in CLIENTS]
        results = apply_many(jobs, enable_at_boot=False, after=after)
        assert all(r.ok for r in results.values()), [r.summary() for r in results.values()]
        hs: dict[str, float] = {}
        last: dict[str, str] = {}
        while True:
            now = time.monotonic() - t0
            states = {c: state(x[c]) for c in CLIENTS}
            for c in CLIENTS:
                if c not in hs and handshaken(x[c]):
                    hs[c] = now
                    if trace:
                        print(f"  {now:6.2f} {c} first handshake")
                if trace and states[c] != last.get(c):
                    print(f"  {now:6.2f} {c} {states[c]}")
            last = states
            if all(s == "Established" for s in states.values()) and len(hs) == 2:
                if scenario == "outage":
                    return now, outage(x, trace)
                if scenario == "reup":
                    return reup(x, trace)
                return now, now - max(hs.values())
            if now > timeout:
                dumps = {c: x[c].run(["wg", "show", "all", "dump"], check=False).stdout
                         for c in (*CLIENTS, "vps")}
                logs = {c: x[c].run(["cat", "/run/wgbgp/agent.log"], check=False).stdout
                        for c in CLIENTS} if agent else {}
                raise RuntimeError(f"not Established after {timeout} s: {states}; "
                                   f"handshakes seen {hs}; wg: {dumps}; agent logs: {logs}")
            time.sleep(POLL)
    finally:
        teardown(name)


def fmt(samples: list[float]) -> str:
    return f"{statistics.median(samples):6.2f} ({min(samples):.2f}-{max(samples):.2f})"


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("-r", "--runs", type=int, default=5)
    ap.add_argument("--trace", action="store_true")
    ap.add_argument("--only", choices=("agent", "no-agent"))
    ap.add_argument("--old-postup", action="store_true",
                    help="wg-quick files without the keepalive restart in PostUp (A/B)")
    ap.add_argument("--scenario", choices=("deploy", "late", "outage", "reup"),
                    action="append")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("needs root (builds network and mount namespaces)", file=sys.stderr)
        return 2
    global OLD_POSTUP
    OLD_POSTUP = args.old_postup
    rows = {}
    for scenario in args.scenario or ["deploy", "late", "outage"]:
        for v in ("no-agent", "agent"):
            if args.only not in (None, v):
                continue
            samples: list[tuple[float, float]] = []
            lost = 0
            while len(samples) < args.runs:
                if args.trace:
                    print(f"{scenario} {v} run {len(samples) + 1}")
                try:
                    samples.append(one_run(v == "agent", scenario, args.trace))
                except RuntimeError as exc:
                    # Seen only while the host's neighbour table overflowed (another lab
                    # with ~1000 ARP entries: the kernel dropped packets in every lab).
                    lost += 1
                    print(f"{scenario} {v}: run lost ({str(exc)[:200]}...)", file=sys.stderr)
                    if lost > args.runs:
                        raise
            rows[f"{scenario} {v}"] = samples
            print(f"{scenario} {v}: apply->up {fmt([a for a, _ in samples])}, "
                  f"hs->up {fmt([b for _, b in samples])}", flush=True)
            if lost:
                print(f"{scenario} {v}: {lost} run(s) did not converge in 60 s and were run "
                      "again (see stderr)")
    print(f"{'scenario':18} {'apply->up s':>22} {'hs->up s':>22}   (median (min-max), "
          f"{args.runs} runs)")
    for v, samples in rows.items():
        print(f"{v:18} {fmt([a for a, _ in samples]):>22} {fmt([b for _, b in samples]):>22}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
