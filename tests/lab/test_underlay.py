"""The lab's emulated Internet, CG-NAT and machines, with real namespaces and daemons."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from wgbgp.lab.build import Lab, build_lab, open_lab
from wgbgp.lab.spec import CarrierSpec, ClientSpec, HubSpec, LabSpec, LabSpecError, classic_spec
from wgbgp.lab.state import LAB_ROOT, LabExists, is_running, list_labs, teardown
from wgbgp.lab.underlay import host_batch, plan_underlay

pytestmark = pytest.mark.lab

HUB = "203.0.113.10"
PY = sys.executable  # never the system python3: it cannot import wgbgp on a fresh machine


def three_client_spec(name: str, udp_timeout: int = 30) -> LabSpec:
    """Two carriers; `home` sits behind a home router behind carrier `isp1` (double NAT)."""
    return LabSpec(
        name=name,
        hubs=(HubSpec("vps", IPv4Address(HUB), 51820),),
        clients=(ClientSpec("alice", "isp1"), ClientSpec("home", "isp1", home_nat=True),
                 ClientSpec("carol", "isp2")),
        carriers=(CarrierSpec("isp1", udp_timeout), CarrierSpec("isp2")),
    )


def udp_exchange(lab: Lab, udp_tool: Path, server: str, clients: list[str],
                 port: int = 9000) -> dict[str, str]:
    """Each client sends one datagram to the server machine; returns client -> source the
    server saw (ip:port), after checking each client got the echo back."""
    srv = lab.machine(server).spawn(
        [PY, str(udp_tool), "serve", str(port), str(len(clients)), "5"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert srv.stdout.readline().strip() == "ready"
        dst = str(lab.plan.public_ip(server))
        for c in clients:
            out = lab.machine(c).executor().run(
                [PY, str(udp_tool), "send", dst, str(port), c, "3"]).stdout.strip()
            assert out == f"echo {c}", f"{c}: {out}"
        seen = {}
        for _ in clients:
            src, name = srv.stdout.readline().split()
            seen[name] = src
        return seen
    finally:
        srv.kill()
        srv.wait()


# --- pure: the address plan ---------------------------------------------------------


def test_plan_names_and_addresses_are_lab_scoped():
    plan = plan_underlay(three_client_spec("p1"))
    # Infrastructure names start with `_`, which no machine name does.
    assert "wgbgp-p1-_inet" in plan.namespaces and "wgbgp-p1-_home-home" in plan.namespaces
    assert all(ns.startswith("wgbgp-p1-") for ns in plan.namespaces)
    assert plan.public_ip("alice") == plan.public_ip("home") != plan.public_ip("carol")
    assert plan.public_ip("vps") == IPv4Address(HUB)
    for client in ("alice", "home", "carol"):
        assert plan.address[client] not in plan_underlay(classic_spec()).mgmt_ip.values()
    # Subscriber space is CG-NAT space but never 100.100.0.0/16 (announced in examples).
    assert not str(plan.address["alice"]).startswith("100.100.")
    for line in host_batch(plan).splitlines():
        if line.startswith("link add"):
            words = line.split()
            assert len(words[2]) <= 15 and len(words[words.index("name") + 1]) <= 15


def test_spec_rejects_clashes():
    with pytest.raises(LabSpecError, match="not declared"):
        LabSpec("x", clients=(ClientSpec("a", "nope"),))
    # Every valid machine name works, also the infrastructure's own words.
    named = LabSpec("x", hubs=(HubSpec("inet", IPv4Address(HUB)),),
                    clients=(ClientSpec("carrier-c", "c", home_nat=True),
                             ClientSpec("home-carrier-c", "c")), carriers=(CarrierSpec("c"),))
    assert len(set(plan_underlay(named).namespaces)) == 7
    with pytest.raises(LabSpecError, match="lab name"):
        LabSpec("Bad Name")
    with pytest.raises(LabSpecError, match="lab's own"):
        plan_underlay(LabSpec("x", hubs=(HubSpec("h", IPv4Address("100.64.0.9")),)))
    spec = three_client_spec("roundtrip")
    assert LabSpec.from_dict(spec.to_dict()) == spec


# --- the classic underlay -----------------------------------------------------------


def test_client_reaches_hub_and_hub_sees_one_carrier_address(classic: Lab, udp_tool: Path):
    for client in ("laptop", "friend"):
        classic.machine(client).executor().run(["ping", "-c1", "-W2", HUB])
    seen = udp_exchange(classic, udp_tool, "vps", ["laptop", "friend"])
    carrier = str(classic.plan.carrier_ip["cgnat"])
    # Both subscribers share the carrier's one public address (different ports).
    assert {s.split(":")[0] for s in seen.values()} == {carrier}
    assert seen["laptop"] != seen["friend"]


def test_direct_inbound_to_client_fails(classic: Lab, udp_tool: Path):
    inet = classic.netns_executor("inet")
    laptop = str(classic.plan.address["laptop"])
    # Subscriber space is not routed on the Internet...
    assert not inet.run(["ping", "-c1", "-W0.5", laptop], check=False).ok
    # ...and even a neighbour that routes it to the carrier is dropped there (ct state new).
    carrier = str(classic.plan.carrier_ip["cgnat"])
    inet.run(["ip", "route", "add", "100.64.0.0/10", "via", carrier])
    try:
        assert not inet.run(["ping", "-c1", "-W0.5", laptop], check=False).ok
        out = inet.run([PY, str(udp_tool), "send", laptop, "9000", "x", "0.5"]).stdout
        assert out.strip() == "timeout"
    finally:
        inet.run(["ip", "route", "del", "100.64.0.0/10"])
    rules = classic.netns_executor("carrier-cgnat").run(["nft", "-j", "list", "ruleset"]).stdout
    drops = [e["rule"] for e in json.loads(rules)["nftables"]
             if "rule" in e and any("drop" in x for x in e["rule"]["expr"])]
    assert drops and drops[0]["expr"][1]["counter"]["packets"] >= 2
    # Unsolicited UDP to the carrier's public address reaches no client either.
    listener = classic.machine("laptop").spawn(
        [PY, str(udp_tool), "serve", "9001", "1", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert listener.stdout.readline().strip() == "ready"
    out = inet.run([PY, str(udp_tool), "send", carrier, "9001", "x", "0.5"]).stdout
    assert out.strip() == "timeout"
    assert listener.wait(5) != 0  # its recvfrom timed out: nothing arrived


def test_machines_are_private_hosts(classic: Lab):
    vps, laptop = classic.machine("vps").executor(), classic.machine("laptop").executor()
    assert vps.run(["hostname"]).stdout.strip() == "vps"
    # Private /etc/wireguard: a file written in one machine is not in another or the host.
    vps.write_file("/etc/wireguard/probe.txt", "vps\n", 0o600)
    assert laptop.read_file("/etc/wireguard/probe.txt") is None
    assert not Path("/etc/wireguard/probe.txt").exists()
    assert classic.machine("vps").host_path("/etc/wireguard/probe.txt").read_text() == "vps\n"
    # sysctl is per network namespace: forwarding on the hub changes nothing elsewhere.
    host_fwd = Path("/proc/sys/net/ipv4/ip_forward").read_text()
    vps.run(["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"])
    try:
        assert laptop.run(["sysctl", "-n", "net.ipv4.ip_forward"]).stdout.strip() == "0"
        assert Path("/proc/sys/net/ipv4/ip_forward").read_text() == host_fwd
    finally:
        vps.run(["sysctl", "-q", "-w", "net.ipv4.ip_forward=0"])
    # /sys shows the machine's own interfaces; /run is fresh (no host namespaces inside).
    assert set(laptop.run(["ls", "/sys/class/net"]).stdout.split()) == {"lo", "eth0", "mgmt0"}
    assert laptop.run(["ls", "/run"]).stdout.split() == ["bird", "frr", "lock", "wireguard"]
    # Management: machines reach the mgmt namespace but not each other.
    mgmt = classic.netns_executor("mgmt")
    # -w: keep trying for 3 s; the bridge ports of a fresh lab may drop the very first packet.
    mgmt.run(["ping", "-c1", "-w3", str(classic.plan.mgmt_ip["laptop"])])
    assert not vps.run(["ping", "-c1", "-W0.5", str(classic.plan.mgmt_ip["laptop"])],
                       check=False).ok
    # The mgmt network is never a way out to the Internet.
    assert not mgmt.run(["ping", "-c1", "-W0.5", HUB], check=False).ok


def test_second_lab_with_same_name_is_refused(classic: Lab):
    assert is_running(classic.name) and classic.name in list_labs()
    with pytest.raises(LabExists, match="already running"):
        build_lab(classic_spec(classic.name))
    assert is_running(classic.name)  # the refused attempt destroyed nothing
    reopened = open_lab(classic.name)
    assert reopened is not None and reopened.plan == classic.plan


# --- other shapes, lifecycle --------------------------------------------------------


def test_two_carriers_and_double_nat(make_lab, lab_name, udp_tool: Path):
    lab = make_lab(three_client_spec(lab_name("t3c")))
    seen = udp_exchange(lab, udp_tool, "vps", ["alice", "home", "carol"])
    ips = {c: s.split(":")[0] for c, s in seen.items()}
    assert ips["alice"] == ips["home"] == str(lab.plan.carrier_ip["isp1"])
    assert ips["carol"] == str(lab.plan.carrier_ip["isp2"])
    assert str(lab.plan.address["home"]).startswith("192.168.")
    # The carrier sees the home router's subscriber address, never the LAN address.
    carrier = lab.netns_executor("carrier-isp1")
    home_lan = str(lab.plan.address["home"])
    assert not carrier.run(["ping", "-c1", "-W1", home_lan], check=False).ok


def test_udp_mapping_expires(make_lab, lab_name, udp_tool: Path):
    """After `udp_timeout` idle seconds the hub can no longer reach the client."""
    lab = make_lab(three_client_spec(lab_name("tex"), udp_timeout=1))

    def round_trip(client: str, delay: float, port: int) -> list[str]:
        hub = lab.machine("vps").spawn([PY, str(udp_tool), "answer", str(port),
                                        str(delay)], stdout=subprocess.PIPE, text=True)
        assert hub.stdout.readline().strip() == "ready"
        out = lab.machine(client).executor().run(
            [PY, str(udp_tool), "listen", "40000", HUB, str(port), str(delay + 1)]).stdout
        hub.wait(5)
        return out.split()

    # isp2 keeps the default 30 s; isp1 forgets the mapping after 1 s. Both at once.
    with ThreadPoolExecutor(2) as pool:
        kept, lost = pool.map(round_trip, ["carol", "alice"], [2.5, 2.5], [9100, 9101])
    assert kept == ["r1", "r2"]
    assert lost == ["r1"]


def test_teardown_leaves_nothing_and_is_idempotent(make_lab, lab_name):
    spec = three_client_spec(lab_name("ttd"))
    lab = make_lab(spec)
    sleeper = lab.machine("home").spawn(["sleep", "300"])
    pids = {p for m in lab.machines.values() for p in m.pids()}
    assert sleeper.pid in pids
    namespaces, lab_dir = lab.plan.namespaces, LAB_ROOT / spec.name
    report = teardown(spec.name)
    sleeper.wait(5)
    assert sleeper.pid in report.killed
    assert not any(Path("/run/netns", ns).exists() for ns in namespaces)
    assert not lab_dir.exists()
    with open("/proc/self/mountinfo") as fh:
        assert not [line for line in fh if spec.name in line]
    for pid in pids:
        assert not _alive(pid)
    assert not is_running(spec.name) and spec.name not in list_labs()
    again = teardown(spec.name)
    assert not (again.killed or again.namespaces or again.unmounted)


def test_teardown_after_killed_up(make_lab, lab_name):
    """A build that dies half-way leaves a state file from which down removes everything."""
    spec = classic_spec(lab_name("tcr"))
    make_lab.names.append(spec.name)
    code = ("from wgbgp.lab import machine, build\n"
            "from wgbgp.lab.spec import classic_spec\n"
            "def boom(*a, **k): raise SystemExit(3)\n"
            "build.create_machines = boom\n"
            f"build.build_lab(classic_spec({spec.name!r}), keep_on_error=True)\n")
    assert subprocess.run([PY, "-c", code]).returncode == 3
    assert is_running(spec.name)
    with pytest.raises(LabExists, match="already running"):
        build_lab(spec)
    teardown(spec.name)
    assert not is_running(spec.name)
    assert not any(Path("/run/netns").glob(f"wgbgp-{spec.name}-*"))


def test_two_labs_coexist(classic: Lab, make_lab, lab_name):
    other = make_lab(classic_spec(lab_name("tco")))  # same machine names and addresses
    for lab in (classic, other):
        lab.machine("laptop").executor().run(["ping", "-c1", "-W2", HUB])
    teardown(other.name)
    classic.machine("laptop").executor().run(["ping", "-c1", "-W2", HUB])


def test_exec_passes_exit_code_and_stdio(classic: Lab, capfd):
    assert classic.machine("friend").exec(["sh", "-c", "hostname; exit 7"]) == 7
    assert capfd.readouterr().out == "friend\n"


# --- real WireGuard and FRR inside machines -----------------------------------------


def _keys(ex) -> tuple[str, str]:
    private = ex.run(["wg", "genkey"]).stdout.strip()
    return private, ex.run(["wg", "pubkey"], input=private + "\n").stdout.strip()


def test_wireguard_through_cgnat_same_interface_name(make_lab, lab_name, wg_tools):
    lab = make_lab(classic_spec(lab_name("twg")))
    exs = {n: lab.machine(n).executor() for n in ("vps", "laptop", "friend")}
    keys = {n: _keys(ex) for n, ex in exs.items()}
    addr = {"vps": "10.0.0.1", "laptop": "10.0.0.10", "friend": "10.0.0.11"}
    hub_peers = "".join(f"\n[Peer]\nPublicKey = {keys[c][1]}\nAllowedIPs = {addr[c]}/32\n"
                        for c in ("laptop", "friend"))
    exs["vps"].write_file("/etc/wireguard/wg-vps.conf", (
        f"[Interface]\nPrivateKey = {keys['vps'][0]}\nAddress = 10.0.0.1/24\n"
        f"ListenPort = 51820\n{hub_peers}"), 0o600)
    for c in ("laptop", "friend"):
        exs[c].write_file("/etc/wireguard/wg-vps.conf", (
            f"[Interface]\nPrivateKey = {keys[c][0]}\nAddress = {addr[c]}/24\n\n"
            f"[Peer]\nPublicKey = {keys['vps'][1]}\nEndpoint = {HUB}:51820\n"
            "AllowedIPs = 10.0.0.0/24\nPersistentKeepalive = 25\n"), 0o600)
    for ex in exs.values():  # the same interface name everywhere: no socket collision
        ex.run(["wg-quick", "up", "wg-vps"], timeout=30)
    for c in ("laptop", "friend"):
        exs[c].run(["ping", "-c1", "-W3", "10.0.0.1"])
        assert exs[c].run(["wg", "show", "wg-vps", "public-key"]).stdout.strip() == keys[c][1]
    dump = exs["vps"].run(["wg", "show", "wg-vps", "dump"]).stdout.splitlines()[1:]
    carrier = str(lab.plan.carrier_ip["cgnat"])
    for line in dump:
        _pub, _psk, endpoint, _allowed, handshake, *_ = line.split("\t")
        assert endpoint.startswith(carrier + ":") and int(handshake) > 0
    for n in exs:
        sock = lab.machine(n).host_path("/run/wireguard/wg-vps.sock")
        assert sock.exists()
    exs["laptop"].run(["wg-quick", "down", "wg-vps"], timeout=30)
    assert exs["friend"].run(["wg", "show", "wg-vps"]).ok  # the others are untouched


def test_frr_per_machine(make_lab, lab_name, frr_tools):
    lab = make_lab(classic_spec(lab_name("tfr")))
    asns = {"vps": 65000, "laptop": 65010}
    for name, asn in asns.items():
        m = lab.machine(name)
        m.host_path("/etc/frr/frr.conf").write_text(
            f"frr defaults traditional\nlog syslog informational\n"
            f"service integrated-vtysh-config\n!\nrouter bgp {asn}\n"
            f" bgp router-id {lab.plan.address[name]}\n!\n")
        m.executor().run(["/usr/lib/frr/frrinit.sh", "start"], timeout=60)
    for name, asn in asns.items():
        ex = lab.machine(name).executor()
        running = ex.run(["vtysh", "-c", "show running-config"]).stdout
        assert f"hostname {name}\n" in running and f"router bgp {asn}\n" in running
    # frr-reload.py applies a changed frr.conf to that machine's instance only.
    laptop = lab.machine("laptop")
    conf = laptop.host_path("/etc/frr/frr.conf")
    conf.write_text(conf.read_text().replace(
        " bgp router-id", " neighbor 10.0.0.1 remote-as 65000\n bgp router-id"))
    laptop.executor().run(["/usr/lib/frr/frr-reload.py", "--reload", "/etc/frr/frr.conf"],
                          timeout=60)
    summary = json.loads(laptop.executor().run(["vtysh", "-c", "show bgp summary json"]).stdout)
    assert "10.0.0.1" in summary["ipv4Unicast"]["peers"]
    vps_summary = lab.machine("vps").executor().run(["vtysh", "-c", "show bgp summary json"])
    assert "10.0.0.1" not in vps_summary.stdout
    lab.machine("vps").executor().run(["/usr/lib/frr/frrinit.sh", "stop"], timeout=60)
    assert not lab.machine("vps").executor().run(["vtysh", "-c", "show version"],
                                                  check=False).ok
    assert laptop.executor().run(["vtysh", "-c", "show version"]).ok


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_bring_up_time_is_small(make_lab, lab_name):
    t0 = time.monotonic()
    lab = make_lab(classic_spec(lab_name("tbt")))
    assert time.monotonic() - t0 < 5, lab.timings
    assert os.path.exists(f"/run/netns/wgbgp-{lab.name}-laptop")
