"""apply converges live state (issue 14, point 1), end to end on one lab: real wireguard-go
and FRR; hub `vps`, clients `laptop` and `friend`. Each test starts healthy and leaves the
lab healthy (re-apply in `finally`)."""

from __future__ import annotations

import os
import sys
import tempfile
import time
import uuid
from ipaddress import IPv4Address

import pytest
from test_lab_apply import CLIENTS, HUB_IP, Net

from wgbgp.apply import apply_machine, plan_machine
from wgbgp.lab.build import build_lab
from wgbgp.lab.spec import CarrierSpec, ClientSpec, HubSpec, LabSpec

pytestmark = pytest.mark.lab("wireguard", "frr")


ANNOUNCED = {"laptop": "100.100.100.1", "friend": "100.100.100.2"}


@pytest.fixture(scope="module")
def net():
    name = "dr" + uuid.uuid4().hex[:5]
    spec = LabSpec(name, hubs=(HubSpec("vps", IPv4Address(HUB_IP)),),
                   clients=tuple(ClientSpec(c, "cgnat") for c in CLIENTS if c != "third"),
                   carriers=(CarrierSpec("cgnat"),))
    lab = build_lab(spec)
    try:
        n = Net(lab)
        n.text = n.topology()
        for c, addr in ANNOUNCED.items():  # as `wgbgp lab up` does: the address to ping
            n.x[c].run(["ip", "address", "replace", f"{addr}/32", "dev", "lo"])
        n.apply(n.text)
        yield n
    finally:
        lab.down()


def reach(net: Net, a: str, b: str) -> bool:
    """One ping between the clients' announced addresses (through the hub)."""
    return net.x[a].run(["ping", "-n", "-q", "-c", "1", "-W", "1", "-I", ANNOUNCED[a],
                         ANNOUNCED[b]], check=False, timeout=10).ok


def wait_reach(net: Net, timeout: float = 60) -> float:
    t0 = time.monotonic()
    while not (reach(net, "laptop", "friend") and reach(net, "friend", "laptop")):
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"clients' announced addresses unreachable after {timeout} s")
        time.sleep(0.2)
    return time.monotonic() - t0


def healthy(net: Net) -> None:
    net.wait_established("laptop", ["10.0.0.2"])
    net.wait_established("friend", ["10.0.0.10"])
    net.wait_route("laptop", ANNOUNCED["friend"])
    net.wait_route("friend", ANNOUNCED["laptop"])
    wait_reach(net)


def hub_files(net: Net) -> list:
    return net.files(net.text)["vps"]


def test_flapped_hub_interface_is_repaired(net):
    healthy(net)
    vps = net.x["vps"]
    try:
        vps.run(["ip", "link", "set", "wg-vps", "down"])
        vps.run(["ip", "link", "set", "wg-vps", "up"])
        routes = vps.run(["ip", "route", "show", "dev", "wg-vps"]).stdout
        assert ANNOUNCED["friend"] not in routes and ANNOUNCED["laptop"] not in routes, routes
        assert not reach(net, "laptop", "friend")
        plan = plan_machine(vps, hub_files(net))
        text = plan.describe()
        assert "drift: route 100.100.100.2/32 dev wg-vps is missing" in text, text
        r = apply_machine(vps, hub_files(net))
        assert r.ok, r.summary()
        assert [s.action for s in r.steps] == ["wg-sync"], r.summary()
        assert "repaired: route 100.100.100.2/32 dev wg-vps was missing" in r.repaired
        assert "repaired: route 100.100.100.1/32 dev wg-vps was missing" in r.repaired
        print(r.summary())
        print(f"reachable again {wait_reach(net):.2f} s after apply")
    finally:
        net.apply(net.text)
    healthy(net)


def wgbgp_on(net: Net, machine: str, *args: str):
    """`wgbgp ARGS` run inside a lab machine, as a user on that machine would."""
    env = [f"PYTHONPATH={os.environ['PYTHONPATH']}"] if os.environ.get("PYTHONPATH") else []
    return net.x[machine].run(["env", *env, sys.executable, "-m", "wgbgp", *args],
                              check=False, timeout=120)


def test_cli_plan_shows_the_flap_and_apply_repairs_it(net):
    healthy(net)
    vps = net.x["vps"]
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", dir="/tmp", delete=False) as fh:
        fh.write(net.text)
    try:
        vps.run(["ip", "link", "set", "wg-vps", "down"])
        vps.run(["ip", "link", "set", "wg-vps", "up"])
        plan = wgbgp_on(net, "vps", "plan", fh.name, "--node", "vps", "--local")
        assert plan.ok, plan.stderr
        assert "drift: route 100.100.100.2/32 dev wg-vps is missing" in plan.stdout, plan.stdout
        applied = wgbgp_on(net, "vps", "apply", fh.name, "--node", "vps", "--local")
        assert applied.ok, applied.stdout + applied.stderr
        assert "repaired: route 100.100.100.2/32 dev wg-vps was missing" in applied.stdout
        assert "repaired: route 100.100.100.1/32 dev wg-vps was missing" in applied.stdout
        wait_reach(net)
        again = wgbgp_on(net, "vps", "apply", fh.name, "--node", "vps", "--local")
        assert again.ok and "no changes" in again.stdout and "repaired" not in again.stdout, \
            again.stdout
    finally:
        os.unlink(fh.name)
        net.apply(net.text)
    healthy(net)


def test_link_left_down_is_brought_up(net):
    healthy(net)
    vps = net.x["vps"]
    try:
        vps.run(["ip", "link", "set", "wg-vps", "down"])
        r = apply_machine(vps, hub_files(net))
        assert r.ok, r.summary()
        assert r.repaired[0] == "repaired: wg-vps was down", r.summary()
        assert "repaired: route 100.100.100.2/32 dev wg-vps was missing" in r.repaired
        wait_reach(net)
    finally:
        net.apply(net.text)
    healthy(net)


def test_removed_peer_is_put_back(net):
    healthy(net)
    vps = net.x["vps"]
    try:
        vps.run(["wg", "set", "wg-vps", "peer", net.pub["friend"], "remove"])
        r = apply_machine(vps, hub_files(net))
        assert r.ok, r.summary()
        assert any(line.startswith("repaired: wg-vps peer friend (") and
                   line.endswith(") was missing") for line in r.repaired), r.summary()
        wait_reach(net)
    finally:
        net.apply(net.text)
    healthy(net)


def test_sysctl_and_nft_drift_on_the_hub_are_repaired(net):
    healthy(net)
    vps = net.x["vps"]
    try:
        vps.run(["sysctl", "-q", "-w", "net.ipv4.ip_forward=0"])
        vps.run(["nft", "delete", "table", "inet", "wgbgp"])
        assert not reach(net, "laptop", "friend")
        r = apply_machine(vps, hub_files(net))
        assert r.ok, r.summary()
        assert {"repaired: net.ipv4.ip_forward was 0, not 1",
                "repaired: table inet wgbgp was not loaded"} <= set(r.repaired), r.summary()
        assert sorted(s.action for s in r.steps) == ["nftables", "sysctl"]
        assert vps.run(["sysctl", "-n", "net.ipv4.ip_forward"]).stdout.strip() == "1"
        wait_reach(net)
    finally:
        net.apply(net.text)
    healthy(net)


def test_stopped_frr_is_started(net):
    healthy(net)
    laptop = net.x["laptop"]
    try:
        laptop.run(["/usr/lib/frr/frrinit.sh", "stop"], timeout=120)
        r = apply_machine(laptop, net.files(net.text)["laptop"])
        assert r.ok, r.summary()
        assert r.repaired == ["repaired: FRR was not running"], r.summary()
        net.wait_established("laptop", ["10.0.0.2"])
        wait_reach(net)
    finally:
        net.apply(net.text)
    healthy(net)


def test_apply_after_repairs_repairs_nothing_and_resets_no_session(net):
    healthy(net)
    epochs = (net.epoch("laptop", "10.0.0.2"), net.epoch("friend", "10.0.0.10"))
    up_before = net.peers("laptop")["10.0.0.2"]["peerUptimeMsec"]
    before = {m: net.snapshot(m) for m in net.x}
    time.sleep(1.2)  # the condition under test: time passes, so a reset would show
    results = net.apply(net.text)
    for name, r in results.items():
        assert r.steps == [] and r.repaired == [], f"{name}: {r.summary()}"
        assert r.plan is not None and r.plan.drift == ()
    assert {m: net.snapshot(m) for m in net.x} == before
    assert (net.epoch("laptop", "10.0.0.2"), net.epoch("friend", "10.0.0.10")) == epochs
    assert net.peers("laptop")["10.0.0.2"]["peerUptimeMsec"] > up_before
