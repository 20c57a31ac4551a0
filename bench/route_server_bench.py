"""The hub alone as the route server of N simulated clients: FRR and BIRD side by side.

Run through scale_bench.py (as root):

    python bench/scale_bench.py routeserver [--clients 1000 5000] [--daemons frr bird]
        [--reconfigure 1000] [--cpu-seconds 30] [--wg 1000 5000 10000]

For each daemon and size, a fresh lab hub: wgbgp renders its hub-mode config for N
clients and applies it (`wgbgp apply`'s code), then N minimal BGP speakers
(bench/bgp_peers.py, one process, on a veth: no WireGuard) connect, each announcing one
/32. Measured, once every session is Established and the hub has installed all N routes:
- hub RSS: every process of the daemon in the hub machine (FRR: watchfrr, zebra, bgpd,
  staticd, ...; BIRD: bird). No WireGuard in it;
- steady-state CPU: the daemon's user+system time over --cpu-seconds, in % of one core
  (keepalives every 10 s, hold 30 s);
- restart: the daemon stopped and started again; seconds until every session is
  Established again and all N routes are installed (the simulated clients retry 2 s
  after losing a session);
- BIRD, at the --reconfigure sizes: one client added to the config and applied (`birdc
  configure`), then removed again: how long each apply takes and how many other sessions
  changed their Established-since time (the goal: none).
WireGuard's per-peer cost is measured apart: one wireguard-go process holding --wg idle
peers (kernel WireGuard, on a real VPS, costs far less).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from ipaddress import IPv4Address, IPv4Interface
from pathlib import Path

from lab_bench import rss_kib

from wgbgp.apply.parallel import apply_many
from wgbgp.compile import compile_topology
from wgbgp.lab.build import Lab, build_lab
from wgbgp.lab.spec import CarrierSpec, ClientSpec, HubSpec, LabSpec
from wgbgp.lab.state import teardown
from wgbgp.model import parse
from wgbgp.model.keys import generate_private_key, public_key
from wgbgp.observe.bird import parse_protocols
from wgbgp.render import render_bird, render_frr

HERE = Path(__file__).resolve().parent
HUB_ASN = 64600
DAEMON_PROGRAMS = {"frr": ("watchfrr", "zebra", "bgpd", "staticd", "bfdd", "mgmtd"),
                   "bird": ("bird",)}


def topology_text(clients: int, daemon: str, bfd_ms: int | None = None) -> str:
    """A hub-mode network of `clients` clients c1..cN, one /32 each; hub `hub-a`; BFD
    every `bfd_ms` (x 3) or none."""
    daemon_text = ", daemon: bird" if daemon == "bird" else ""
    bfd = f"{{interval: {bfd_ms}, multiplier: 3, enabled: true}}" if bfd_ms else "false"
    lines = [f"network: {{name: bench, overlay: 10.0.0.0/18, mode: hub, bfd: {bfd}}}",
             "hubs:",
             f"  hub-a: {{endpoint: 203.0.113.10:51820, asn: {HUB_ASN}{daemon_text}}}",
             "nodes:"]
    lines += [f"  c{i}: {{asn: {4200000000 + i}, "
              f"announce: [100.{100 + i // 250}.{i % 250}.1/32]}}" for i in range(1, clients + 1)]
    return "\n".join(lines) + "\n"


def hub_file(clients: int, daemon: str, bfd_ms: int | None = None):
    """The hub's rendered BGP config (and its plan) for `clients` clients."""
    topology, _ = parse(topology_text(clients, daemon, bfd_ms), "bench")
    plan = compile_topology(topology)["hub-a"]
    rendered = render_bird(plan) if daemon == "bird" else render_frr(plan)
    assert rendered is not None
    return plan, rendered


def daemon_pids(lab: Lab, daemon: str) -> list[int]:
    out = []
    for pid in lab.machine("hub-a").pids():
        try:
            if Path(f"/proc/{pid}/comm").read_text().strip() in DAEMON_PROGRAMS[daemon]:
                out.append(pid)
        except OSError:
            continue
    return out


def cpu_ticks(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total


class Hub:
    """One lab hub with a veth to a `peers` machine holding every client address."""

    def __init__(self, name: str, plan, passive: bool = True) -> None:
        self.name = name
        self.passive = passive
        spec = LabSpec(name=name, hubs=(HubSpec("hub-a", IPv4Address("203.0.113.10")),),
                       clients=(ClientSpec("peers", "cgnat"),), carriers=(CarrierSpec("cgnat"),))
        self.lab = build_lab(spec)
        hub, peers = self.lab.machine("hub-a"), self.lab.machine("peers")
        subprocess.run(["ip", "link", "add", "rs0", "netns", hub.netns, "type", "veth",
                        "peer", "name", "rs1", "netns", peers.netns], check=True)
        self.ip: IPv4Interface = plan.tunnels[0].address
        self.x, self.px = hub.executor(), peers.executor()
        self.x.run(["ip", "addr", "add", str(self.ip), "dev", "rs0"])
        self.x.run(["ip", "link", "set", "rs0", "up"])
        self.clients = [(s.peer_address, s.peer_asn, s.accept[0]) for s in plan.bgp.sessions]
        batch = "".join(f"address add {a}/{self.ip.network.prefixlen} dev rs1\n"
                        for a, _, _ in self.clients)
        self.px.run(["ip", "-batch", "-"], input=batch)
        self.px.run(["ip", "link", "set", "rs1", "up"])
        # Permanent neighbour entries, both ways: the kernel's ARP table is shared by every
        # namespace on the host, and 1,024 learnt entries (gc_thresh3) fill it for everyone
        # (other labs stop resolving). Permanent entries are exempt from that limit.
        mac = {}
        for x, dev in ((self.x, "rs0"), (self.px, "rs1")):
            mac[dev] = json.loads(x.run(["ip", "-j", "link", "show", dev]).stdout)[0]["address"]
        self.x.run(["ip", "-batch", "-"], input="".join(
            f"neigh replace {a} lladdr {mac['rs1']} dev rs0 nud permanent\n"
            for a, _, _ in self.clients))
        self.px.run(["ip", "neigh", "replace", str(self.ip.ip), "lladdr", mac["rs0"], "dev",
                     "rs1", "nud", "permanent"])
        self.procs: list[subprocess.Popen] = []

    def apply(self, rendered) -> tuple[float, list[str]]:
        t0 = time.monotonic()
        (result,) = apply_many([(self.x, [rendered])], enable_at_boot=False).values()
        assert result.ok, result.summary()
        return time.monotonic() - t0, [s.action for s in result.steps]

    def start_peers(self) -> None:
        spec = Path(tempfile.mkdtemp(prefix="wgbgp-rs-")) / "peers.json"
        spec.write_text(json.dumps([{"address": str(a), "asn": asn, "prefix": str(p)}
                                    for a, asn, p in self.clients]))
        self.procs.append(self.lab.machine("peers").spawn(
            [sys.executable, str(HERE / "bgp_peers.py"), str(self.ip.ip), str(spec),
             *(["--passive"] if self.passive else [])],
            stdout=subprocess.DEVNULL))

    def state(self, daemon: str) -> tuple[int, int, int]:
        """(sessions Established, BGP routes in the hub's kernel, routes sent in all)."""
        proto = "bird" if daemon == "bird" else "bgp"
        routes = len(self.x.run(["ip", "-4", "route", "show", "proto", proto]).stdout
                     .splitlines())
        if daemon == "bird":
            out = self.x.run(["birdc", "show", "protocols", "all"], check=False,
                             timeout=120).stdout
            protocols = [p for p in parse_protocols(out) if p.proto == "BGP"]
            up = sum(1 for p in protocols if p.fields.get("BGP state") == "Established")
            sent = sum(int(m.group(1)) for p in protocols for c in p.channels.values()
                       if (m := re.search(r"(\d+) exported", c.get("Routes", ""))))
        else:
            summary = json.loads(self.x.run(["vtysh", "-c", "show bgp summary json"],
                                            timeout=120).stdout or "{}")
            peers = summary.get("ipv4Unicast", {}).get("peers", {})
            up = sum(1 for p in peers.values() if p.get("state") == "Established")
            sent = sum(p.get("pfxSnt", 0) for p in peers.values())
        return up, routes, sent

    def wait_all(self, daemon: str, n: int, timeout: float, *, sent: bool = False
                 ) -> tuple[float, tuple[int, int, int]]:
        """Seconds until n sessions are Established and n routes installed (polled 1/s);
        with `sent`, also every client sent the other n-1 routes."""
        t0 = time.monotonic()
        while True:
            st = self.state(daemon)
            if (st[0] >= n and st[1] >= n and (not sent or st[2] >= n * (n - 1))) \
                    or time.monotonic() - t0 > timeout:
                return time.monotonic() - t0, st
            time.sleep(1)

    def since(self) -> dict[str, str]:
        """Every BGP protocol's state and since-time."""
        out = self.x.run(["birdc", "show", "protocols"], timeout=120).stdout
        return {p.name: f"{p.info.split()[0] if p.info else p.state} {p.since}"
                for p in parse_protocols(out) if p.proto == "BGP"}

    def stop_start(self, daemon: str) -> float:
        """Stop the daemon and start it again; seconds the stop and start took."""
        t0 = time.monotonic()
        if daemon == "bird":
            self.x.run(["birdc", "down"], check=False)
            while self.x.run(["birdc", "show", "status"], check=False).ok:
                time.sleep(0.2)
            self.x.run(["bird", "-c", "/etc/bird/bird.conf", "-P", "/run/bird/bird.pid"])
        else:
            self.x.run(["/usr/lib/frr/frrinit.sh", "restart"], timeout=600)
        return time.monotonic() - t0

    def close(self) -> None:
        for p in self.procs:
            p.kill()
        teardown(self.name)


def one(daemon: str, n: int, args: argparse.Namespace, name: str) -> dict:
    plan, rendered = hub_file(n, daemon)
    hub = Hub(name, plan, passive=not args.active)
    row: dict = {"daemon": daemon, "clients": n, "config_bytes": len(rendered.text),
                 "clients_connect": "active" if args.active else "passive"}
    try:
        row["load_s"], _ = hub.apply(rendered)
        hub.start_peers()
        row["converge_s"], st = hub.wait_all(daemon, n, args.timeout)
        row["established"], row["routes"], _ = st
        # The steady state: every client has been sent every other client's route.
        row["exchange_s"], st = hub.wait_all(daemon, n, args.timeout, sent=True)
        row["exchange_s"] += row["converge_s"]
        row["sent"] = st[2]
        time.sleep(5)
        pids = daemon_pids(hub.lab, daemon)
        row["rss_kib"] = sum(rss_kib(p) for p in pids)
        before, t0 = cpu_ticks(pids), time.monotonic()
        time.sleep(args.cpu_seconds)
        hz = 100  # USER_HZ on Linux
        row["cpu_pct"] = 100 * (cpu_ticks(pids) - before) / hz / (time.monotonic() - t0)
        print(f"  {daemon} {n} so far: {row}", file=sys.stderr, flush=True)
        if daemon == "bird" and n in args.reconfigure:
            row.update(reconfigure(hub, n))
        row["restart_stop_start_s"] = hub.stop_start(daemon)
        row["restart_back_s"], st = hub.wait_all(daemon, n, args.timeout)
        row["restart_established"], row["restart_routes"], _ = st
        print(f"  {daemon} {n} so far: {row}", file=sys.stderr, flush=True)
        if args.restart_exchange:
            more, st = hub.wait_all(daemon, n, args.timeout, sent=True)
            row["restart_exchange_s"] = row["restart_back_s"] + more
        else:
            row["restart_exchange_s"] = float("nan")
    finally:
        hub.close()
    print(f"  {daemon} {n}: {row}", file=sys.stderr)
    return row


def moved(before: str, after: str | None) -> bool:
    """A session's "STATE HH:MM:SS.mmm" changed: another state, or a since-time more than
    0.5 s off (BIRD shows monotonic times through the current real-time offset, so they
    jitter by a millisecond between calls; a reset session takes seconds to return)."""
    if after is None or before.split()[0] != after.split()[0]:
        return True

    def seconds(text: str) -> float:
        h, m, s = text.split()[-1].split(":")
        return int(h) * 3600 + int(m) * 60 + float(s)
    return abs(seconds(before) - seconds(after)) > 0.5


def reconfigure(hub: Hub, n: int, rounds: int = 3) -> dict:
    """One client added to the running BIRD hub, then removed, `rounds` times: apply's
    time (median) and every other session whose since-time changed (a reset), by name."""
    _, more = hub_file(n + 1, "bird")
    _, same = hub_file(n, "bird")
    adds, dels, resets = [], [], []
    for _ in range(rounds):
        before = hub.since()
        add_s, add_steps = hub.apply(more)
        after_add = hub.since()
        del_s, del_steps = hub.apply(same)
        after_del = hub.since()
        assert add_steps[-1] == del_steps[-1] == "bird-reload", (add_steps, del_steps)
        assert len(after_add) == len(before) + 1 and len(after_del) == len(before)
        adds.append(add_s)
        dels.append(del_s)
        resets += [(k, v, after_add.get(k), after_del.get(k)) for k, v in before.items()
                   if moved(v, after_add.get(k)) or moved(v, after_del.get(k))]
    return {"add_s": statistics.median(adds), "del_s": statistics.median(dels),
            "rounds": rounds, "resets": resets}


def wireguard_go_peers(name: str, counts: list[int]) -> list[tuple[int, int]]:
    """RSS of one wireguard-go process holding N idle peers (a hub's tunnel where there
    is no kernel module)."""
    plan, _ = hub_file(1, "bird")
    hub = Hub(name, plan)
    x = hub.x
    try:
        keys = [public_key(generate_private_key()) for _ in range(max(counts))]
        x.run(["sh", "-c", "WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD=1 wireguard-go wgbench"])
        x.run(["wg", "set", "wgbench", "listen-port", "51999", "private-key", "/dev/stdin"],
              input=generate_private_key() + "\n")
        x.run(["ip", "link", "set", "wgbench", "up"])
        time.sleep(1)
        pid = next(p for p in hub.lab.machine("hub-a").pids()
                   if Path(f"/proc/{p}/cmdline").read_bytes().split(b"\0")[:2]
                   == [b"wireguard-go", b"wgbench"])
        out, have = [(0, rss_kib(pid))], 0
        for n in sorted(counts):
            conf = "".join(f"[Peer]\nPublicKey = {k}\nAllowedIPs = 10.{64 + i // 62500}."
                           f"{i // 250 % 250}.{i % 250}/32\n"
                           for i, k in enumerate(keys[have:n], start=have))
            x.run(["wg", "addconf", "wgbench", "/dev/stdin"], input=conf, timeout=300)
            have = n
            time.sleep(2)
            out.append((n, rss_kib(pid)))
        return out
    finally:
        hub.close()


def bench_routeserver(args: argparse.Namespace) -> list[dict]:
    name = f"birdhubrs{os.getpid() % 10000}"
    rows = [one(d, n, args, name) for n in args.clients for d in args.daemons]
    wg = wireguard_go_peers(name, args.wg) if args.wg else []
    print("route server, N simulated clients on a veth (no WireGuard), one /32 each:")
    print(f"{'daemon':>6} {'clients':>7} {'config KB':>9} {'load s':>6} {'up s':>6} "
          f"{'all sent s':>10} {'RSS MiB':>8} {'CPU %':>6} {'restart: up s':>13} "
          f"{'all sent s':>10}")
    for r in rows:
        print(f"{r['daemon']:>6} {r['clients']:>7} {r['config_bytes'] / 1000:>9.0f} "
              f"{r['load_s']:>6.1f} {r['converge_s']:>6.1f} {r['exchange_s']:>10.1f} "
              f"{r['rss_kib'] / 1024:>8.1f} {r['cpu_pct']:>6.2f} "
              f"{r['restart_back_s']:>13.1f} {r['restart_exchange_s']:>10.1f}"
              + ("" if r["established"] == r["clients"] else
                 f"  (only {r['established']} Established)"))
    for d in args.daemons:
        sized = sorted((r for r in rows if r["daemon"] == d), key=lambda r: r["clients"])
        if len(sized) >= 2:
            a, b = sized[0], sized[-1]
            print(f"{d}: {(b['rss_kib'] - a['rss_kib']) / (b['clients'] - a['clients']):.1f} "
                  f"KiB more per client ({a['clients']} -> {b['clients']})")
    for r in rows:
        if "add_s" in r:
            print(f"bird {r['clients']}: one client added in {r['add_s']:.1f} s, removed in "
                  f"{r['del_s']:.1f} s (medians of {r['rounds']}); other sessions whose "
                  f"since-time changed: {r['resets'] or 'none'}")
    if wg:
        print(f"{'peers':>7} {'wireguard-go MiB':>16}")
        for n, kib in wg:
            print(f"{n:>7} {kib / 1024:>16.1f}")
        per = (wg[-1][1] - wg[0][1]) / max(1, wg[-1][0] - wg[0][0])
        print(f"wireguard-go: {per:.1f} KiB per idle peer")
    return [*rows, {"wireguard_go": wg}]


def add_arguments(ap: argparse.ArgumentParser) -> None:
    """The routeserver command's options (scale_bench.py's parser)."""
    ap.add_argument("--daemons", nargs="+", default=["frr", "bird"], choices=["frr", "bird"])
    ap.add_argument("--reconfigure", type=int, nargs="*", default=[1000])
    ap.add_argument("--cpu-seconds", type=float, default=30)
    ap.add_argument("--timeout", type=float, default=900)
    ap.add_argument("--wg", type=int, nargs="*", default=[])
    ap.add_argument("--no-restart-exchange", dest="restart_exchange", action="store_false",
                    help="after a restart, wait for sessions and installed routes only, not "
                         "for every route to be sent again (N^2 updates: long at 5,000)")
    ap.add_argument("--active", action="store_true", help="simulated clients connect to the "
                    "hub (default: they listen and the hub connects, as to real clients)")
