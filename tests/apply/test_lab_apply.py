"""Apply end to end on lab machines (wgbgp.lab: netns + private mount namespaces, CG-NAT
underlay) with real wireguard-go and FRR. Root only.

One lab per module: hub `vps` and clients `laptop`, `friend`, `third`; each test first
applies the topology it needs (which is a no-op when it is already in place).
"""

from __future__ import annotations

import json
import time
import uuid
from ipaddress import IPv4Address

import pytest

import wgbgp.render.files as render_files
from labwait import stays, wait_until
from wgbgp.apply import apply_machine, down_machine, plan_machine, remote_keygen
from wgbgp.apply.daemons import Daemons
from wgbgp.apply.parallel import apply_many
from wgbgp.compile import compile_topology
from wgbgp.lab.build import build_lab
from wgbgp.lab.spec import CarrierSpec, ClientSpec, HubSpec, LabSpec
from wgbgp.model import parse

pytestmark = pytest.mark.lab("wireguard", "frr")


HUB_IP = "203.0.113.10"
CLIENTS = {"laptop": (65010, "10.0.0.10"), "friend": (65020, "10.0.0.2"),
           "third": (65030, "10.0.0.3")}
BASE_ANNOUNCE = {"laptop": ["100.100.100.1/32"], "friend": ["100.100.100.2/32"],
                 "third": ["100.100.100.3/32"]}


class Session:
    """An established BGP session. FRR derives the epoch from the uptime, so it may move
    by a second between two reads; the connection counters are exact."""

    def __init__(self, epoch: int, established: int, dropped: int) -> None:
        self.epoch, self.established, self.dropped = epoch, established, dropped

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Session) and abs(self.epoch - other.epoch) <= 1
                and (self.established, self.dropped) == (other.established, other.dropped))

    def __repr__(self) -> str:
        return f"Session(since={self.epoch}, established={self.established}, " \
               f"dropped={self.dropped})"


class Net:
    def __init__(self, lab) -> None:
        self.lab = lab
        self.x = {n: m.executor() for n, m in lab.machines.items()}
        self.pub = {n: remote_keygen(x, n).public_key for n, x in self.x.items()}

    def topology(self, clients=("laptop", "friend"), announce=None, peerings=None) -> str:
        announce = {**BASE_ANNOUNCE, **(announce or {})}
        lines = ["network: {name: friends, overlay: 10.0.0.0/24}", "hubs:",
                 f"  vps: {{endpoint: '{HUB_IP}:51820', address: 10.0.0.1, "
                 f"public_key: '{self.pub['vps']}'}}", "nodes:"]
        for c in clients:
            asn, addr = CLIENTS[c]
            lines.append(f"  {c}: {{asn: {asn}, address: {addr}, public_key: '{self.pub[c]}', "
                         f"announce: [{', '.join(announce[c])}]}}")
        if peerings:
            lines.append("peerings: [" + ", ".join(f"[{a}, {b}]" for a, b in peerings) + "]")
        return "\n".join(lines) + "\n"

    def files(self, text: str) -> dict[str, list]:
        topology, _ = parse(text, "lab.yaml")
        return {n: render_files.render_machine(p) for n, p in compile_topology(topology).items()}

    def apply(self, text: str, only=None) -> dict:
        files = self.files(text)
        jobs = [(self.x[n], f) for n, f in files.items() if only is None or n in only]
        results = apply_many(jobs)
        for r in results.values():
            assert r.ok, r.summary()
        return results

    def peers(self, machine: str) -> dict:
        out = self.x[machine].run(["vtysh", "-c", "show bgp summary json"]).stdout
        return json.loads(out).get("ipv4Unicast", {}).get("peers", {})

    def wait_established(self, machine: str, addresses, timeout: float = 60) -> dict:
        def up() -> dict:
            peers = self.peers(machine)
            ok = all(peers.get(a, {}).get("state") == "Established" for a in addresses)
            return peers if ok else {}

        return wait_until(f"{machine}: sessions Established", up, timeout,
                          detail=lambda: {a: p.get("state")
                                          for a, p in self.peers(machine).items()})

    def wait_route(self, machine: str, prefix: str, timeout: float = 30) -> str:
        def dump() -> dict:
            return {m: self.x[m].run(["vtysh", "-c", "show bgp ipv4 unicast", "-c",
                                      "show bgp summary"], check=False).stdout
                    for m in self.x if m != "vps"}

        return wait_until(f"{machine} to learn {prefix}",
                          lambda: self.x[machine].run(["ip", "route", "show", prefix])
                          .stdout.strip() and self.x[machine].run(
                              ["ip", "route", "show", prefix]).stdout,
                          timeout, interval=0.3, detail=dump)

    def epoch(self, machine: str, address: str) -> Session:
        """Identifies one established session: equal values mean it was never reset."""
        p = self.peers(machine)[address]
        assert p["state"] == "Established", p
        return Session(int(p["peerUptimeEstablishedEpoch"]), p["connectionsEstablished"],
                       p["connectionsDropped"])


    def snapshot(self, machine: str) -> dict:
        """mtimes of every file wgbgp manages, and the pids of FRR and wireguard-go."""
        x = self.x[machine]
        out = x.run(["sh", "-c", "stat -c '%n %Y.%y' /etc/wireguard/*.conf /etc/frr/frr.conf "
                     "/etc/frr/daemons /etc/sysctl.d/90-wgbgp.conf /etc/wgbgp/nftables.nft "
                     "2>/dev/null"], check=False).stdout
        return {"files": out, "daemons": self.daemons(machine)}

    def daemons(self, machine: str) -> list[tuple[int, str]]:
        """(pid, name) of the long-running processes inside a machine."""
        out = []
        for pid in self.lab.machines[machine].pids():
            try:
                with open(f"/proc/{pid}/comm") as fh:
                    comm = fh.read().strip()
            except OSError:
                continue
            if comm in ("wireguard-go", "watchfrr", "zebra", "bgpd", "staticd", "bfdd"):
                out.append((pid, comm))
        return sorted(out)


@pytest.fixture(scope="module")
def net():
    name = "apt" + uuid.uuid4().hex[:5]
    spec = LabSpec(name, hubs=(HubSpec("vps", IPv4Address(HUB_IP)),),
                   clients=tuple(ClientSpec(c, "cgnat") for c in CLIENTS),
                   carriers=(CarrierSpec("cgnat"),))
    lab = build_lab(spec)
    try:
        yield Net(lab)
    finally:
        lab.down()


def test_classic_comes_up_through_the_hub(net):
    results = net.apply(net.topology())
    assert set(results) == {"vps", "laptop", "friend"}
    net.wait_established("laptop", ["10.0.0.2"])
    net.wait_established("friend", ["10.0.0.10"])
    # The overlay works through the hub, and BGP carries each announced prefix.
    assert net.x["laptop"].run(["ping", "-c", "1", "-W", "3", "10.0.0.2"], check=False).ok
    route = net.wait_route("laptop", "100.100.100.2")
    assert "proto bgp" in route and "wg-vps" in route


def test_second_apply_is_a_noop(net):
    text = net.topology()
    net.apply(text)
    net.wait_established("laptop", ["10.0.0.2"])
    before = {m: net.snapshot(m) for m in net.x}
    epochs = (net.epoch("laptop", "10.0.0.2"), net.epoch("friend", "10.0.0.10"))
    up_before = net.peers("laptop")["10.0.0.2"]["peerUptimeMsec"]
    time.sleep(1.2)  # the condition under test: time passes, so a reset would show
    results = net.apply(text)
    for name, r in results.items():
        assert r.steps == [], f"{name}: {r.summary()}"
        assert not r.changed
    assert {m: net.snapshot(m) for m in net.x} == before   # no file rewritten, same pids
    assert (net.epoch("laptop", "10.0.0.2"), net.epoch("friend", "10.0.0.10")) == epochs
    assert net.peers("laptop")["10.0.0.2"]["peerUptimeMsec"] > up_before  # still counting


def test_reloading_the_unchanged_config_changes_nothing(net):
    text = net.topology()
    net.apply(text)
    for machine in ("laptop", "friend"):
        x = net.x[machine]
        # Through apply's reload path: nothing at all to add or delete.
        frr = x.read_file("/etc/frr/frr.conf")
        assert Daemons(x, systemd=False).frr_test(frr).empty
        # Plain frr-reload.py on the rendered file: only lines FRR takes from the OS differ
        # (see changes.pin_os_lines); no BGP line is re-applied.
        raw = x.run(["/usr/lib/frr/frr-reload.py", "--test", "/etc/frr/frr.conf"]).stdout
        lines = [ln.strip() for ln in raw.splitlines()
                 if ln.strip() and not ln.startswith(("Lines To", "==="))]
        print(f"\n{machine}: raw frr-reload.py --test: {lines}")
        assert set(lines) <= {"ip forwarding", "ipv6 forwarding", "no ip forwarding",
                              "no ipv6 forwarding"} | {ln for ln in lines if "hostname" in ln}


def test_bad_frr_config_keeps_the_previous_one_running(net, monkeypatch):
    text = net.topology()
    net.apply(text)
    net.wait_established("laptop", ["10.0.0.2"])
    x = net.x["laptop"]
    good = x.read_file("/etc/frr/frr.conf")
    epoch = net.epoch("laptop", "10.0.0.2")
    snap = net.snapshot("laptop")
    real_render_frr = render_files.render_frr

    def inject(line: str):
        def render(plan):
            f = real_render_frr(plan)
            if f is None or plan.machine != "laptop":
                return f
            bad = f.text.replace(" neighbor MESH timers connect 5\n",
                                 f" neighbor MESH timers connect 5\n{line}\n")
            bad = bad.replace("  network 100.100.100.1/32\n",
                              "  network 100.100.100.1/32\n  network 100.100.100.99/32\n")
            return type(f)(f.path, bad, f.mode, f.kind)
        monkeypatch.setattr(render_files, "render_frr", render)

    # 1. A line FRR's parser rejects: caught before anything is written.
    inject(" neighbor 10.0.0.2 frobnicate")
    r = apply_machine(x, net.files(text)["laptop"])
    assert not r.ok and r.failed_step == "validate"
    assert "frobnicate" in r.error and r.rolled_back is None
    assert net.snapshot("laptop") == snap

    # 2. Valid syntax that bgpd refuses at reload time: written, reload fails, rolled back.
    inject(" neighbor 10.0.0.2 peer-group NO-SUCH-GROUP")
    r = apply_machine(x, net.files(text)["laptop"])
    assert not r.ok and r.failed_step == "frr", r.summary()
    assert "frr-reload.py failed" in r.error
    assert r.rolled_back is True, r.rollback_errors
    assert x.read_file("/etc/frr/frr.conf") == good
    assert Daemons(x, systemd=False).frr_test(good).empty  # the running config is the previous one
    assert net.epoch("laptop", "10.0.0.2") == epoch  # and the session was never reset
    assert x.read_file("/etc/wgbgp/apply-pending") is None

    monkeypatch.setattr(render_files, "render_frr", real_render_frr)
    r = apply_machine(x, net.files(text)["laptop"])
    assert r.ok and r.steps == []


def test_plan_shows_what_would_change_and_changes_nothing(net):
    net.apply(net.topology())
    x = net.x["laptop"]
    snap = net.snapshot("laptop")
    changed = net.files(net.topology(announce={"laptop": ["100.100.100.1/32",
                                                          "100.100.100.11/32"]}))
    p = plan_machine(x, changed["laptop"])
    text = p.describe()
    assert "+ip prefix-list OWN seq 10 permit 100.100.100.11/32" in text
    assert "would frr:" in text
    assert p.frr_delta is not None and any("100.100.100.11/32" in a for a in p.frr_delta.add)
    assert net.snapshot("laptop") == snap
    hub = plan_machine(net.x["vps"], changed["vps"])
    assert [s.action for s in hub.steps] == ["validate", "write", "wg-sync"]
    assert "PrivateKey" not in hub.describe() or "(hidden)" in hub.describe()


PEERINGS = [("laptop", "friend"), ("laptop", "third")]


def test_adding_a_client_keeps_existing_sessions(net):
    net.apply(net.topology())
    net.wait_established("laptop", ["10.0.0.2"])
    epochs = (net.epoch("laptop", "10.0.0.2"), net.epoch("friend", "10.0.0.10"))
    friend_before = net.snapshot("friend")
    # `third` joins, peering with laptop only: friend's configuration does not change.
    results = net.apply(net.topology(("laptop", "friend", "third"), peerings=PEERINGS))
    assert results["friend"].steps == []
    assert [s.action for s in results["vps"].steps] == ["validate", "write", "wg-sync"]
    assert "frr-reload" in [s.action for s in results["laptop"].steps]
    assert "wg-up" in [s.action for s in results["third"].steps]
    net.wait_established("laptop", ["10.0.0.2", "10.0.0.3"])
    net.wait_established("third", ["10.0.0.10"])
    assert net.snapshot("friend") == friend_before
    assert (net.epoch("laptop", "10.0.0.2"), net.epoch("friend", "10.0.0.10")) == epochs


def test_changing_announce_updates_only_what_must_change(net):
    base = net.topology(("laptop", "friend", "third"), peerings=PEERINGS)
    net.apply(base)
    net.wait_established("laptop", ["10.0.0.2", "10.0.0.3"])
    epochs = {("laptop", "10.0.0.2"): net.epoch("laptop", "10.0.0.2"),
              ("laptop", "10.0.0.3"): net.epoch("laptop", "10.0.0.3"),
              ("third", "10.0.0.10"): net.epoch("third", "10.0.0.10")}
    friend_before = net.snapshot("friend")
    changed = net.topology(("laptop", "friend", "third"), peerings=PEERINGS,
                           announce={"third": ["100.100.100.3/32", "100.100.103.0/24"]})
    results = net.apply(changed)
    assert results["friend"].steps == []                       # not a neighbour of third
    assert [s.action for s in results["vps"].steps] == ["validate", "write", "wg-sync"]
    assert [s.action for s in results["laptop"].steps] == ["validate", "write", "frr-reload"]
    assert "frr-reload" in [s.action for s in results["third"].steps]
    assert net.snapshot("friend") == friend_before
    # The hub now carries the new prefix to third (AllowedIPs + route, as wg-quick would).
    assert "100.100.103.0/24" in net.x["vps"].run(["wg", "show", "wg-vps", "allowed-ips"]).stdout
    assert "wg-vps" in net.x["vps"].run(["ip", "route", "show", "100.100.103.0/24"]).stdout
    assert "proto bgp" in net.wait_route("laptop", "100.100.103.0/24")
    for (m, a), e in epochs.items():
        assert net.epoch(m, a) == e, f"session {m}->{a} was reset"
    # And back: the hub drops the prefix from AllowedIPs and its route.
    results = net.apply(base)
    assert results["friend"].steps == []
    assert "100.100.103.0/24" not in net.x["vps"].run(["wg", "show", "wg-vps",
                                                       "allowed-ips"]).stdout
    assert net.x["vps"].run(["ip", "route", "show", "100.100.103.0/24"]).stdout == ""
    for (m, a), e in epochs.items():
        assert net.epoch(m, a) == e, f"session {m}->{a} was reset"


def test_prefix_announced_before_the_filter_allows_it_still_arrives(net):
    """FRR does not re-request routes when an inbound prefix-list widens; apply asks for
    them (soft inbound clear), so the order in which machines are applied does not matter."""
    base = net.topology(("laptop", "friend", "third"), peerings=PEERINGS)
    net.apply(base)
    net.wait_established("laptop", ["10.0.0.2", "10.0.0.3"])
    session = net.epoch("laptop", "10.0.0.3")
    changed = net.files(net.topology(("laptop", "friend", "third"), peerings=PEERINGS,
                                     announce={"third": ["100.100.100.3/32",
                                                         "100.100.104.0/24"]}))
    for m in ("vps", "third"):  # third announces first; laptop's filter still refuses it
        assert apply_machine(net.x[m], changed[m]).ok
    stays("laptop refusing 100.100.104.0/24 (its filter does not allow it yet)",
          lambda: net.x["laptop"].run(["ip", "route", "show", "100.100.104.0/24"]).stdout
          == "", 3)
    assert apply_machine(net.x["laptop"], changed["laptop"]).ok
    assert "proto bgp" in net.wait_route("laptop", "100.100.104.0/24", timeout=15)
    assert net.epoch("laptop", "10.0.0.3") == session
    net.apply(base)


def test_down_removes_what_apply_installed_and_apply_brings_it_back(net):
    text = net.topology()
    net.apply(text)
    x = net.x["friend"]
    r = down_machine(x)
    assert r.ok, r.summary()
    assert not x.run(["ip", "link", "show", "wg-vps"], check=False).ok
    assert x.read_file("/etc/wireguard/wg-vps.conf") is None
    assert x.read_file("/etc/frr/frr.conf").startswith("# default to using syslog")
    assert x.read_file("/etc/wgbgp/manifest") is None
    assert x.read_file("/etc/wgbgp/keys/friend.key") is not None  # keys stay
    assert not x.run(["sh", "-c", "kill -0 $(cat /run/frr/bgpd.pid)"], check=False).ok
    assert down_machine(x).steps == []
    r = apply_machine(x, net.files(text)["friend"])
    assert r.ok and "frr-start" in [s.action for s in r.steps]
    net.wait_established("friend", ["10.0.0.10"])


def test_down_on_the_hub_restores_forwarding_and_removes_its_table(net):
    text = net.topology()
    net.apply(text)
    x = net.x["vps"]
    assert x.run(["sysctl", "-n", "net.ipv4.ip_forward"]).stdout.strip() == "1"
    r = down_machine(x)
    assert r.ok, r.summary()
    assert [s.action for s in r.steps] == ["wg-down", "nft-delete", "sysctl-restore",
                                           "uninstall"]
    assert not x.run(["nft", "list", "table", "inet", "wgbgp"], check=False).ok
    assert x.run(["sysctl", "-n", "net.ipv4.ip_forward"]).stdout.strip() == "0"
    assert x.read_file("/etc/sysctl.d/90-wgbgp.conf") is None
    assert x.read_file("/etc/wgbgp/nftables.nft") is None
    assert apply_machine(x, net.files(text)["vps"]).ok
    net.wait_established("laptop", ["10.0.0.2"])


def test_frr_that_ran_before_wgbgp_keeps_running_after_down(net):
    x = net.x["third"]
    down_machine(x)  # whatever earlier tests left
    if x.run(["sh", "-c", "kill -0 $(cat /run/frr/bgpd.pid)"], check=False).ok:
        x.run(["/usr/lib/frr/frrinit.sh", "stop"], timeout=120)
    original = x.read_file("/etc/frr/frr.conf")
    x.run(["/usr/lib/frr/frrinit.sh", "start"])  # the user's own FRR, before wgbgp
    files = net.files(net.topology(("laptop", "friend", "third"), peerings=PEERINGS))["third"]
    r = apply_machine(x, files)
    assert r.ok, r.summary()
    assert "frr-reload" in [s.action for s in r.steps]  # not restarted: reloaded
    assert "frr\tpreexisting" in x.read_file("/etc/wgbgp/manifest")
    r = down_machine(x)
    assert r.ok, r.summary()
    assert x.read_file("/etc/frr/frr.conf") == original
    assert x.run(["sh", "-c", "kill -0 $(cat /run/frr/bgpd.pid)"], check=False).ok
    running = x.run(["vtysh", "-c", "show running-config"]).stdout
    assert "router bgp" not in running
