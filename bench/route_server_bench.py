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

    def __init__(self, name: str, plan) -> None:
        self.name = name
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
            [sys.executable, str(HERE / "bgp_peers.py"), str(self.ip.ip), str(spec)],
            stdout=subprocess.DEVNULL))

    def state(self, daemon: str) -> tuple[int, int]:
        """(sessions Established, BGP routes in the hub's kernel)."""
        proto = "bird" if daemon == "bird" else "bgp"
        routes = self.x.run(["sh", "-c", f"ip -4 route show proto {proto} | wc -l"]).stdout
        if daemon == "bird":
            out = self.x.run(["birdc", "show", "protocols"], check=False, timeout=120).stdout
            up = sum(1 for line in out.splitlines() if line.rstrip().endswith("Established"))
        else:
            summary = json.loads(self.x.run(["vtysh", "-c", "show bgp summary json"],
                                            timeout=120).stdout or "{}")
            peers = summary.get("ipv4Unicast", {}).get("peers", {})
            up = sum(1 for p in peers.values() if p.get("state") == "Established")
        return up, int(routes.strip() or 0)

    def wait_all(self, daemon: str, n: int, timeout: float) -> tuple[float, tuple[int, int]]:
        """Seconds until n sessions are Established and n routes installed (polled 1/s)."""
        t0 = time.monotonic()
        while True:
            st = self.state(daemon)
            if (st[0] >= n and st[1] >= n) or time.monotonic() - t0 > timeout:
                return time.monotonic() - t0, st
            time.sleep(1)

    def since(self) -> dict[str, str]:
        out = self.x.run(["birdc", "show", "protocols"], timeout=120).stdout
        return {p.name: p.since for p in parse_protocols(out) if p.proto == "BGP"}

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
    hub = Hub(name, plan)
    row: dict = {"daemon": daemon, "clients": n, "config_bytes": len(rendered.text)}
    try:
        row["load_s"], _ = hub.apply(rendered)
        hub.start_peers()
        row["converge_s"], st = hub.wait_all(daemon, n, args.timeout)
        row["established"], row["routes"] = st
        time.sleep(10)  # past the initial exchange: the steady state
        pids = daemon_pids(hub.lab, daemon)
        row["rss_kib"] = sum(rss_kib(p) for p in pids)
        before, t0 = cpu_ticks(pids), time.monotonic()
        time.sleep(args.cpu_seconds)
        hz = 100  # USER_HZ on Linux
        row["cpu_pct"] = 100 * (cpu_ticks(pids) - before) / hz / (time.monotonic() - t0)
        if daemon == "bird" and n in args.reconfigure:
            row.update(reconfigure(hub, n))
        row["restart_stop_start_s"] = hub.stop_start(daemon)
        row["restart_back_s"], st = hub.wait_all(daemon, n, args.timeout)
        row["restart_established"], row["restart_routes"] = st
    finally:
        hub.close()
    print(f"  {daemon} {n}: {row}", file=sys.stderr)
    return row


def reconfigure(hub: Hub, n: int) -> dict:
    """One client added to the running BIRD hub, then removed: apply's time and how many
    other sessions changed their since-time (reset)."""
    before = hub.since()
    _, more = hub_file(n + 1, "bird")
    add_s, add_steps = hub.apply(more)
    after_add = hub.since()
    _, same = hub_file(n, "bird")
    del_s, del_steps = hub.apply(same)
    after_del = hub.since()
    assert add_steps[-1] == del_steps[-1] == "bird-reload", (add_steps, del_steps)
    return {"add_s": add_s, "add_new": len(set(after_add) - set(before)),
            "add_reset": sum(1 for k, v in before.items() if after_add.get(k) != v),
            "del_s": del_s, "del_gone": len(set(after_add) - set(after_del)),
            "del_reset": sum(1 for k, v in before.items() if after_del.get(k) != v)}


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
          f"{'RSS MiB':>8} {'CPU %':>6} {'restart: back s':>15}")
    for r in rows:
        print(f"{r['daemon']:>6} {r['clients']:>7} {r['config_bytes'] / 1000:>9.0f} "
              f"{r['load_s']:>6.1f} {r['converge_s']:>6.1f} {r['rss_kib'] / 1024:>8.1f} "
              f"{r['cpu_pct']:>6.2f} "
              f"{r['restart_back_s']:>15.1f}"
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
            print(f"bird {r['clients']}: one client added in {r['add_s']:.1f} s "
                  f"({r['add_reset']} other sessions reset), removed in {r['del_s']:.1f} s "
                  f"({r['del_reset']} reset)")
    if wg:
        print(f"{'peers':>7} {'wireguard-go MiB':>16}")
        for n, kib in wg:
            print(f"{n:>7} {kib / 1024:>16.1f}")
        per = (wg[-1][1] - wg[0][1]) / max(1, wg[-1][0] - wg[0][0])
        print(f"wireguard-go: {per:.1f} KiB per idle peer")
    return rows + [{"wireguard_go": wg}]


# BIRD as N clients at once, for BFD (bgp_peers.py speaks no BFD): one BGP protocol per
# client address, each with BFD, exporting nothing.
SIMULATOR = """router id 192.0.2.1;
protocol device {{ scan time 10; }}
protocol bfd {{ interface "rs1" {{ interval {ms} ms; multiplier 3; }}; }}
template bgp sim {{ direct; hold time 30; keepalive time 10; bfd on; ipv4 {{ import none;
  export none; }}; }}
"""


def bench_bfd(args: argparse.Namespace) -> list[dict]:
    """BIRD hub CPU with N BFD sessions up (every --bfd-ms, x 3), against the same hub
    with BFD off; the clients are one BIRD process (its CPU is reported apart)."""
    rows = []
    for n in args.clients:
        for ms in [None, *args.bfd_ms]:
            name = f"birdhubbfd{os.getpid() % 10000}"
            plan, rendered = hub_file(n, "bird", ms)
            hub = Hub(name, plan)
            try:
                hub.apply(rendered)
                conf = SIMULATOR.format(ms=ms or 300).replace("bfd on;", "bfd on;" if ms else "")
                conf += "".join(f"protocol bgp c{i} from sim {{ local {a} as {asn}; "
                                f"neighbor {hub.ip.ip} as {HUB_ASN}; }}\n"
                                for i, (a, asn, _) in enumerate(hub.clients, 1))
                sim = Path(tempfile.mkdtemp(prefix="wgbgp-bfd-"))
                (sim / "sim.conf").write_text(conf)
                hub.px.run(["bird", "-c", str(sim / "sim.conf"), "-s", str(sim / "ctl"),
                            "-P", str(sim / "pid")])
                t0 = time.monotonic()
                while True:
                    up, _ = hub.state("bird")
                    bfd_up = hub.x.run(["sh", "-c", "birdc show bfd sessions | grep -c ' Up '"],
                                       check=False).stdout.strip() if ms else "0"
                    if (up >= n and (not ms or int(bfd_up or 0) >= n)) or \
                            time.monotonic() - t0 > args.timeout:
                        break
                    time.sleep(1)
                time.sleep(10)
                pids = daemon_pids(hub.lab, "bird")
                sim_pid = int((sim / "pid").read_text())
                before, sim_before, t1 = cpu_ticks(pids), cpu_ticks([sim_pid]), time.monotonic()
                time.sleep(args.cpu_seconds)
                wall = time.monotonic() - t1
                row = {"clients": n, "bfd_ms": ms, "established": up, "bfd_up": int(bfd_up or 0),
                       "hub_cpu_pct": (cpu_ticks(pids) - before) / wall,
                       "sim_cpu_pct": (cpu_ticks([sim_pid]) - sim_before) / wall}
                rows.append(row)
                print(f"  {row}", file=sys.stderr)
            finally:
                hub.close()
    print("BIRD hub CPU (% of one core; USER_HZ 100) with N sessions, BFD x 3:")
    print(f"{'clients':>7} {'BFD':>8} {'Established':>11} {'BFD up':>6} {'hub CPU %':>9} "
          f"{'clients CPU %':>13}")
    for r in rows:
        bfd = f"{r['bfd_ms']} ms" if r["bfd_ms"] else "off"
        print(f"{r['clients']:>7} {bfd:>8} {r['established']:>11} {r['bfd_up']:>6} "
              f"{r['hub_cpu_pct']:>9.1f} {r['sim_cpu_pct']:>13.1f}")
    return rows


def add_arguments(ap: argparse.ArgumentParser) -> None:
    """The routeserver command's options (scale_bench.py's parser)."""
    ap.add_argument("--daemons", nargs="+", default=["frr", "bird"], choices=["frr", "bird"])
    ap.add_argument("--reconfigure", type=int, nargs="*", default=[1000])
    ap.add_argument("--cpu-seconds", type=float, default=30)
    ap.add_argument("--timeout", type=float, default=900)
    ap.add_argument("--wg", type=int, nargs="*", default=[])
    ap.add_argument("--bfd-ms", type=int, nargs="*", default=[300, 100])
