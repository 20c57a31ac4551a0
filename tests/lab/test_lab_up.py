"""End to end: `wgbgp lab up/test/status/down` with real namespaces, wireguard-go and FRR."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.lab

THREE_CLIENTS = """\
network: {name: three, overlay: 10.20.0.0/24}
hubs:
  hub: {endpoint: 203.0.113.20:51820}
nodes:
  alice: {asn: 65101, announce: [100.100.1.0/24]}
  bob: {asn: 65102, announce: [100.100.2.1/32]}
  carol: {asn: 65103, announce: [100.100.3.0/28]}
lab:
  carriers: {telco-a: {udp_timeout: 30}, telco-b: {udp_timeout: 20}}
  nodes:
    alice: {carrier: telco-a}
    bob: {carrier: telco-b}
    carol: {carrier: telco-b, home_nat: true}
"""


def wgbgp(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "wgbgp", *args], capture_output=True,
                          text=True, timeout=180)
    if check and proc.returncode != 0:
        raise AssertionError(f"wgbgp {' '.join(args)} -> {proc.returncode}\n"
                             f"{proc.stdout}\n{proc.stderr}")
    return proc


def lab_leftovers(name: str) -> list[str]:
    ns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    left = [line.split()[0] for line in ns.splitlines() if line.startswith(f"wgbgp-{name}-")]
    if Path(f"/run/wgbgp/{name}").exists():
        left.append(f"/run/wgbgp/{name}")
    return left


@pytest.fixture
def lab_name(daemons_required, unique_name):
    name = unique_name("e2e")
    yield name
    wgbgp("lab", "down", "--name", name, check=False)


def test_classic_example_end_to_end(lab_name: str) -> None:
    up = wgbgp("lab", "up", "--name", lab_name)
    assert "1 BGP session Established, 2 routes learned and installed" in up.stdout
    report = json.loads(wgbgp("lab", "test", "--name", lab_name, "--json").stdout)
    assert report["ok"], report
    names = [a["name"] for a in report["assertions"]]
    assert any("crosses the hub" in n for n in names)
    assert any("cannot be reached from the Internet" in n for n in names)
    status = json.loads(wgbgp("lab", "status", "--name", lab_name, "--json").stdout)
    assert status["topology"].endswith(f"/{lab_name}/topology.yaml")
    laptop = status["machines"]["laptop"]
    assert [n["state"] for n in laptop["bgp"]["neighbors"]] == ["Established"]
    hub_peers = status["machines"]["vps"]["tunnels"][0]["peers"]
    # Both clients sit behind one carrier: the hub sees one public address for both.
    assert len({p["endpoint"].rsplit(":", 1)[0] for p in hub_peers}) == 1
    # Plain vtysh inside a node reaches that node's own FRR.
    summary = json.loads(wgbgp("lab", "exec", "--name", lab_name, "laptop", "--",
                               "vtysh", "-c", "show bgp summary json").stdout)
    assert summary["ipv4Unicast"]["as"] == 65010
    # A second lab of the same name is refused, clearly.
    again = wgbgp("lab", "up", "--name", lab_name, check=False)
    assert again.returncode != 0 and "already running" in again.stderr
    wgbgp("lab", "down", "--name", lab_name)
    assert lab_leftovers(lab_name) == []
    # Down twice is fine.
    wgbgp("lab", "down", "--name", lab_name)


def test_two_carriers_and_double_nat(lab_name: str, tmp_path: Path) -> None:
    topo = tmp_path / "three.yaml"
    topo.write_text(THREE_CLIENTS)
    wgbgp("lab", "up", str(topo), "--name", lab_name)
    report = json.loads(wgbgp("lab", "test", "--name", lab_name, "--json").stdout)
    assert report["ok"], report
    # The hub sees bob and carol (same carrier) at one public address, alice at another.
    endpoints = wgbgp("lab", "exec", "--name", lab_name, "hub", "--",
                      "wg", "show", "wg-hub", "endpoints").stdout
    ips = sorted(line.split()[1].rsplit(":", 1)[0] for line in endpoints.splitlines())
    assert len(ips) == 3 and len(set(ips)) == 2, endpoints


def test_second_lab_beside_the_first(lab_name: str) -> None:
    other = lab_name + "b"
    try:
        wgbgp("lab", "up", "--name", lab_name)
        wgbgp("lab", "up", "--name", other)
        for name in (lab_name, other):
            assert json.loads(wgbgp("lab", "test", "--name", name, "--json").stdout)["ok"]
    finally:
        wgbgp("lab", "down", "--name", other, check=False)
    assert lab_leftovers(other) == []
