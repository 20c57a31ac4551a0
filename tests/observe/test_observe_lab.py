"""Doctor, status and exporter on a real lab: the classic example behind a real CG-NAT.

The issue's proof: inject each classic fault into a healthy lab, run doctor exactly as on
real machines (every machine's executor, probes included), assert it names that fault by
its code and reports no other failure, remove the fault, and assert healthy again.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from labwait import stays, wait_until
from wgbgp.apply import apply_machine
from wgbgp.apply.probe import PENDING
from wgbgp.compile import Plan, compile_topology
from wgbgp.lab.build import Lab, open_lab
from wgbgp.lab.runner import up
from wgbgp.lab.state import teardown
from wgbgp.model import parse
from wgbgp.model.examples import classic_text
from wgbgp.model.keys import generate_private_key, public_key
from wgbgp.observe.doctor import Report, diagnose
from wgbgp.observe.expect import Expected
from wgbgp.observe.gather import gather
from wgbgp.observe.status import collect
from wgbgp.render import render_machine
from wgbgp.transport import Executor

pytestmark = pytest.mark.lab("wireguard", "frr", "bash", "timeout")



@dataclass
class ClassicLab:
    lab: Lab
    plans: dict[str, Plan]
    topology_path: str

    @property
    def executors(self) -> dict[str, Executor]:
        return {n: m.executor() for n, m in self.lab.machines.items()}

    def x(self, machine: str) -> Executor:
        return self.lab.machines[machine].executor()

    def net(self, short: str) -> Executor:
        return self.lab.netns_executor(short)

    def key(self, machine: str) -> str:
        k = Expected(self.plans).public_key(machine)
        assert k
        return k

    def address(self, machine: str) -> str:
        return str(Expected(self.plans).tunnel_address(machine))

    def vtysh(self, machine: str, *lines: str) -> str:
        argv = ["vtysh"]
        for line in lines:
            argv += ["-c", line]
        return self.x(machine).run(argv).stdout

    def configure(self, machine: str, *lines: str) -> None:
        asn = self.plans[machine].bgp.asn  # type: ignore[union-attr]
        self.vtysh(machine, "configure terminal", f"router bgp {asn}", *lines)

    def doctor(self) -> Report:
        return diagnose(gather(self.executors, self.plans), self.plans)

    def neighbor(self, machine: str, peer: str) -> dict:
        data = json.loads(self.vtysh(machine, "show bgp summary json"))
        return data["ipv4Unicast"]["peers"][self.address(peer)]


@pytest.fixture(scope="module")
def classic() -> Iterator[ClassicLab]:
    name = f"obs{os.getpid() % 100000}"
    topo, _ = parse(classic_text(), "classic.yaml")
    report = up(topo, name=name, timeout=90)
    try:
        lab = open_lab(name)
        assert lab is not None
        text = report.topology_path.read_text()
        plans = compile_topology(parse(text, str(report.topology_path))[0])
        yield ClassicLab(lab, plans, str(report.topology_path))
    finally:
        teardown(name)


def summary(report: Report) -> str:
    return "; ".join(f"{c.verdict} {c.code}@{c.machine}: {c.message}" for c in report.findings)


def assert_names(report: Report, code: str, machine: str) -> None:
    assert report.findings, "doctor found nothing"
    first = report.findings[0]
    assert (first.code, first.machine) == (code, machine), summary(report)
    fails = {c.ref for c in report.checks if c.verdict == "fail"}
    assert fails == {f"{code}@{machine}"}, summary(report)


def sessions_up(lab: ClassicLab) -> bool:
    """Every BGP session Established, read from vtysh alone (nothing on the wire)."""
    for m, plan in lab.plans.items():
        if plan.bgp is None:
            continue
        peers = json.loads(lab.vtysh(m, "show bgp summary json"))["ipv4Unicast"]["peers"]
        if any(p["state"] != "Established" for p in peers.values()):
            return False
    return True


def healthy_again(lab: ClassicLab, timeout: float = 90) -> None:
    """Sessions up (vtysh only), then doctor says healthy. Not doctor in a loop while a
    session is down: its TCP 179 probe, from the neighbour's own tunnel address, is a
    passive open to FRR (OPEN sent, connection closed), and every such reset left the next
    connect attempt "Waiting for NHT", so polling doctor kept the session down."""
    last: list[Report] = []
    deadline = time.monotonic() + timeout
    wait_until("every BGP session Established", lambda: sessions_up(lab), timeout, interval=1,
               detail=lambda: summary(lab.doctor()))

    def ok() -> bool:
        last[:] = [lab.doctor()]
        return last[0].healthy and not last[0].findings

    try:
        wait_until("a healthy network", ok, max(deadline - time.monotonic(), 10), interval=1)
    except AssertionError:
        raise AssertionError("not healthy again: " + summary(last[0])) from None


def repair(lab: ClassicLab, machines) -> None:
    """The product's own repair: `wgbgp apply` of the rendered files on each machine, as
    after an apply that stopped midway (PENDING), so it re-applies the live state too
    (sysctl, firewall, WireGuard peers, FRR's running config) even where files match."""
    for m in machines:
        lab.x(m).run(["sh", "-c", f'mkdir -p "$(dirname {PENDING})" && : > {PENDING}'])
        result = apply_machine(lab.x(m), render_machine(lab.plans[m]), enable_at_boot=False)
        assert result.ok, result.summary()


def restore(lab: ClassicLab, remove, machines, timeout: float = 30) -> None:
    """Undo a fault so that the next test starts from a proven-healthy network, even when
    this test failed: the fault's own removal; if that does not heal it, apply on the
    machines the fault touched; then proof of health."""
    try:
        remove()
        healthy_again(lab, timeout)
    except Exception as exc:  # noqa: BLE001 - whatever failed, the repair below follows
        print(f"removing the fault did not heal the network ({exc}); applying on "
              f"{', '.join(machines)}")
        repair(lab, machines)
        healthy_again(lab)


def test_healthy_lab_status_matches_topology(classic: ClassicLab) -> None:
    healthy_again(classic)
    for name, plan in classic.plans.items():
        status = collect(classic.x(name), plan)
        (iface,) = status.interfaces
        assert iface.name == plan.tunnels[0].interface
        assert len(iface.peers) == len(plan.tunnels[0].peers)
        for p in iface.peers:
            assert p.handshake_age(status.time) is not None
        if plan.bgp is None:
            assert status.bgp is None and not status.bgp_asked
            continue
        assert status.bgp is not None and status.bgp.asn == plan.bgp.asn
        for s in plan.bgp.sessions:
            n = status.bgp.neighbor(str(s.peer_address))
            assert n is not None and n.established and n.prefixes_received == len(s.accept)
        assert {r.prefix for r in status.bgp.routes if r.installed} == {
            str(p) for s in plan.bgp.sessions for p in s.accept}


@pytest.fixture
def topology_file(classic: ClassicLab, tmp_path: Path) -> str:
    """The lab's topology where machines can read it (their /run is their own)."""
    path = tmp_path / "topology.yaml"
    path.write_text(Path(classic.topology_path).read_text())
    return str(path)


def machine_cli(lab: ClassicLab, machine: str, *args: str) -> subprocess.CompletedProcess:
    """`wgbgp ARGS` run inside a lab machine, as its owner would run it there."""
    prefix = lab.lab.machines[machine].prefix()
    return subprocess.run([*prefix, sys.executable, "-m", "wgbgp", *args],
                          capture_output=True, text=True, timeout=120)


def test_cli_status_and_doctor_inside_a_machine(classic: ClassicLab, topology_file: str
                                                ) -> None:
    res = machine_cli(classic, "laptop", "status", topology_file, "--json")
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    assert data["machine"] == "laptop" and "recognised by" in res.stderr
    (n,) = data["bgp"]["neighbors"]
    assert (n["name"], n["state"]) == ("friend", "Established")
    assert data["tunnels"][0]["peers"][0]["name"] == "vps"
    res = machine_cli(classic, "laptop", "doctor", topology_file, "--json")
    report = json.loads(res.stdout)
    assert res.returncode == 0 and report["healthy"], res.stdout
    assert report["unobserved"] == ["vps", "friend"]
    res = machine_cli(classic, "vps", "doctor", topology_file)
    assert res.returncode == 0, res.stdout


def test_exporter_scraped_over_http(classic: ClassicLab, topology_file: str) -> None:
    prefix = classic.lab.machines["laptop"].prefix()
    proc = subprocess.Popen([*prefix, sys.executable, "-m", "wgbgp", "exporter",
                             topology_file, "--listen", "127.0.0.1:9586"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        fetch = ("import urllib.request,time\n"
                 "for _ in range(50):\n"
                 "    try:\n"
                 "        print(urllib.request.urlopen('http://127.0.0.1:9586/metrics')"
                 ".read().decode()); break\n"
                 "    except OSError: time.sleep(0.2)\n")
        text = classic.x("laptop").run([sys.executable, "-c", fetch]).stdout
    finally:
        proc.terminate()
        proc.wait(10)
    assert 'wgbgp_up{machine="laptop"} 1.0' in text
    assert 'wgbgp_bgp_session_up{machine="laptop",name="friend"' in text
    line = next(ln for ln in text.splitlines()
                if ln.startswith("wgbgp_bgp_prefixes_received{"))
    assert line.endswith(" 1.0")
    age = next(ln for ln in text.splitlines()
               if ln.startswith("wgbgp_wireguard_handshake_age_seconds{"))
    assert 'name="vps"' in age and float(age.split()[-1]) < 180


# -- the ten faults -----------------------------------------------------------------------

def fault_hub_not_forwarding(lab: ClassicLab):
    hub = lab.x("vps")
    return (lambda: hub.run(["sysctl", "-qw", "net.ipv4.ip_forward=0"]),
            lambda: hub.run(["sysctl", "-qw", "net.ipv4.ip_forward=1"]),
            ("HUB_NOT_FORWARDING", "vps"))


def fault_no_multihop(lab: ClassicLab):
    def inject():
        lab.configure("laptop", "no neighbor MESH ebgp-multihop")
        lab.vtysh("laptop", "clear bgp *")
        wait_until("the session to drop",
                   lambda: lab.neighbor("laptop", "friend")["state"] != "Established")

    def remove():
        lab.configure("laptop", "neighbor MESH ebgp-multihop 2")
        lab.vtysh("laptop", "clear bgp *")

    return inject, remove, ("BGP_TTL", "laptop")


def fault_hub_allowedips(lab: ClassicLab):
    hub, k = lab.x("vps"), lab.key("laptop")
    full = ",".join(str(n) for n in next(p for p in lab.plans["vps"].tunnels[0].peers
                                         if p.name == "laptop").allowed_ips)
    return (lambda: hub.run(["wg", "set", "wg-vps", "peer", k, "allowed-ips",
                             f"{lab.address('laptop')}/32"]),
            lambda: hub.run(["wg", "set", "wg-vps", "peer", k, "allowed-ips", full]),
            ("ALLOWEDIPS_NARROW", "vps"))


def fault_udp_blocked(lab: ClassicLab):
    carrier = lab.net("carrier-cgnat")
    laptop = lab.lab.plan.address["laptop"]
    return (lambda: carrier.run(["nft", f"add table inet fault; add chain inet fault fw "
                                 f"{{ type filter hook forward priority -10; }}; "
                                 f"add rule inet fault fw ip saddr {laptop} udp dport 51820 "
                                 f"drop"]),
            lambda: carrier.run(["nft", "delete", "table", "inet", "fault"]),
            ("UDP_BLOCKED", "laptop"))


def fault_wrong_key(lab: ClassicLab):
    hub, k = lab.x("vps"), lab.key("laptop")
    wrong = public_key(generate_private_key())
    allowed = ",".join(str(n) for n in next(p for p in lab.plans["vps"].tunnels[0].peers
                                            if p.name == "laptop").allowed_ips)

    def inject():
        hub.run(["wg", "set", "wg-vps", "peer", k, "remove"])
        hub.run(["wg", "set", "wg-vps", "peer", wrong, "allowed-ips", allowed])

    def remove():
        hub.run(["wg", "set", "wg-vps", "peer", wrong, "remove"])
        hub.run(["wg", "set", "wg-vps", "peer", k, "allowed-ips", allowed])

    return inject, remove, ("WG_KEY_MISMATCH", "vps")


def fault_asn_mismatch(lab: ClassicLab):
    friend = lab.address("friend")
    return (lambda: lab.configure("laptop", f"neighbor {friend} remote-as 65099"),
            lambda: lab.configure("laptop", f"neighbor {friend} remote-as 65020"),
            ("ASN_MISMATCH", "laptop"))


POLICY_LINE = re.compile(r"^neighbor \S+ (prefix-list|route-map|filter-list|distribute-list) "
                         r"\S+ (in|out)$")


def policy_lines(lab: ClassicLab, machine: str) -> list[str]:
    """The running config's per-neighbour policy lines (whatever the template renders)."""
    lines, in_af = [], False
    for line in lab.vtysh(machine, "show running-config").splitlines():
        t = line.strip()
        in_af = (in_af or t == "address-family ipv4 unicast") and t != "exit-address-family"
        if in_af and POLICY_LINE.match(t):
            lines.append(t)
    return lines


def fault_policy_missing(lab: ClassicLab):
    af = "address-family ipv4 unicast"
    lines = policy_lines(lab, "laptop")
    assert lines, "the rendered frr.conf applies no policy at all"

    def inject():
        lab.configure("laptop", af, *(f"no {line}" for line in lines))
        lab.vtysh("laptop", "clear bgp * soft")
        wait_until("nothing exchanged",
                   lambda: not lab.neighbor("laptop", "friend").get("pfxSnt"))

    def remove():
        lab.configure("laptop", af, *lines)
        lab.vtysh("laptop", "clear bgp * soft")

    return inject, remove, ("POLICY_MISSING", "laptop")


def fault_mtu_blackhole(lab: ClassicLab):
    carrier = lab.net("carrier-cgnat")
    laptop = lab.lab.plan.address["laptop"]
    rules = (f"add table inet fault; add chain inet fault fw "
             f"{{ type filter hook forward priority -10; }}; "
             f"add rule inet fault fw ip saddr {laptop} meta length > 1400 drop; "
             f"add rule inet fault fw ip daddr {laptop} meta length > 1400 drop")
    return (lambda: carrier.run(["nft", rules]),
            lambda: carrier.run(["nft", "delete", "table", "inet", "fault"]),
            ("MTU_BLACKHOLE", "laptop"))


def fault_frr_down(lab: ClassicLab):
    laptop = lab.x("laptop")
    return (lambda: laptop.run(["/usr/lib/frr/frrinit.sh", "stop"]),
            lambda: laptop.run(["/usr/lib/frr/frrinit.sh", "start"]),
            ("BGP_DAEMON_DOWN", "laptop"))


FAULTS = {
    "hub_not_forwarding": fault_hub_not_forwarding,
    "no_multihop": fault_no_multihop,
    "hub_allowedips": fault_hub_allowedips,
    "udp_blocked": fault_udp_blocked,
    "wrong_key": fault_wrong_key,
    "asn_mismatch": fault_asn_mismatch,
    "policy_missing": fault_policy_missing,
    "mtu_blackhole": fault_mtu_blackhole,
    "frr_down": fault_frr_down,
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_fault_named_then_healthy(classic: ClassicLab, fault: str) -> None:
    inject, remove, (code, machine) = FAULTS[fault](classic)
    healthy_again(classic)
    t0 = time.monotonic()
    try:
        inject()
        assert_names(classic.doctor(), code, machine)
    finally:
        t1 = time.monotonic()
        # The machines a fault may touch: the one it is named on, the hub, the laptop.
        restore(classic, remove, sorted({machine, "vps", "laptop"} & set(classic.plans)))
        print(f"{fault}: injected and named in {t1 - t0:.1f} s, healthy again "
              f"{time.monotonic() - t1:.1f} s after its removal")


def established(lab: ClassicLab, a: str, b: str) -> bool:
    return (lab.neighbor(a, b)["state"] == "Established"
            and lab.neighbor(b, a)["state"] == "Established")


def test_apply_heals_a_session_stuck_after_a_bad_config(classic: ClassicLab) -> None:
    """The issue's stuck session, healed by `wgbgp apply`: the laptop runs an frr.conf
    without ebgp-multihop (as a hand edit or an old render would leave it), so its packets
    (TTL 1) die at the hub while the friend's reach it, and the friend sits in OpenSent on
    a half-dead connection. Apply of the right files must bring the session back within
    10 s."""
    healthy_again(classic)
    laptop = classic.x("laptop")
    good = render_machine(classic.plans["laptop"])
    assert any("ebgp-multihop" in f.text for f in good if f.kind == "frr")
    bad = [replace(f, text=re.sub(r"(?m)^ neighbor \S+ ebgp-multihop .*\n", "", f.text))
           if f.kind == "frr" else f for f in good]
    try:
        result = apply_machine(laptop, bad, enable_at_boot=False)
        assert result.ok, result.summary()
        wait_until("the laptop's session to drop",
                   lambda: not established(classic, "laptop", "friend"))
        # The fault stays a while, as it would for a user: failed attempts pile up.
        stays("the session down while the config is wrong",
              lambda: not established(classic, "laptop", "friend"), 20, interval=1)
        stuck = classic.neighbor("friend", "laptop")["state"]
        t0 = time.monotonic()
        result = apply_machine(laptop, good, enable_at_boot=False)
        applied = time.monotonic() - t0
        assert result.ok, result.summary()
        wait_until("the session Established again",
                   lambda: established(classic, "laptop", "friend"), 10, interval=0.2,
                   detail=lambda: (classic.neighbor("laptop", "friend")["state"],
                                   classic.neighbor("friend", "laptop")["state"]))
        print(f"friend was {stuck}; apply took {applied:.1f} s; session Established "
              f"{time.monotonic() - t0:.1f} s after apply started")
    finally:
        restore(classic, lambda: apply_machine(laptop, good, enable_at_boot=False),
                ["laptop"])


def test_nat_mapping_expired(classic: ClassicLab) -> None:
    """No keepalive and a carrier that forgets UDP mappings after 3 s: the hub's probe,
    sent before the client speaks, finds the mapping gone. The moment matters (BGP
    keepalives reopen the mapping every 10 s), so doctor gets a few tries."""
    laptop, carrier = classic.x("laptop"), classic.net("carrier-cgnat")
    hub_key = classic.key("vps")
    timeouts = ("net.netfilter.nf_conntrack_udp_timeout",
                "net.netfilter.nf_conntrack_udp_timeout_stream")
    healthy_again(classic)
    laptop.run(["wg", "set", "wg-vps", "peer", hub_key, "persistent-keepalive", "0"])
    carrier.run(["sysctl", "-qw", *(f"{t}=3" for t in timeouts)])
    reports = []
    try:
        time.sleep(5)  # the condition under test: the carrier's 3 s mapping timeout passes
        for _ in range(10):
            report = classic.doctor()
            reports.append(report)
            fails = {c.ref for c in report.checks if c.verdict == "fail"}
            if fails:
                assert_names(report, "NAT_MAPPING_EXPIRED", "laptop")
                break
            assert report.codes == ["WG_NO_KEEPALIVE"], summary(report)
            # Longer than the carrier's 3 s timeout: doctor's own client probes at the end
            # of a try reopened the mapping, and a fast machine would try again too soon.
            time.sleep(4)
        else:
            raise AssertionError("never caught the expired mapping: "
                                 + " | ".join(summary(r) for r in reports))
    finally:
        laptop.run(["wg", "set", "wg-vps", "peer", hub_key, "persistent-keepalive", "25"])
        carrier.run(["sysctl", "-qw", *(f"{t}=30" for t in timeouts)])
    healthy_again(classic)
