"""Any valid topology is a lab (issue 15 point 1): a home LAN announcement in 192.168/16,
machine names the lab's infrastructure could have claimed, and a hub in 198.18.0.0/15."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.lab

TOPOLOGY = """\
network: {name: anyt, overlay: 10.41.0.0/24}
hubs:
  internet: {endpoint: 198.18.7.10:51820}
nodes:
  home-server: {asn: 65311, announce: [192.168.201.0/24]}
  carrier: {asn: 65312, announce: [100.100.41.1/32]}
lab:
  nodes:
    home-server: {home_nat: true}
"""


def wgbgp(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "wgbgp", *args], capture_output=True,
                          text=True, timeout=300)


@pytest.fixture
def lab_name(daemons_required, unique_name):
    name = unique_name("lablifeany")
    yield name
    wgbgp("lab", "down", "--name", name)


def test_names_and_addresses_a_lab_once_refused(lab_name: str, tmp_path: Path) -> None:
    path = tmp_path / "anyt.yaml"
    path.write_text(TOPOLOGY)
    up = wgbgp("lab", "up", str(path), "--name", lab_name, "--timeout", "120")
    assert up.returncode == 0, up.stdout + up.stderr
    report = json.loads(wgbgp("lab", "test", "--name", lab_name, "--json").stdout)
    failed = [a for a in report["assertions"] if not a["ok"]]
    assert report["ok"], failed
    # The home LAN announcement answers from the other client, sourced from its own.
    ping = wgbgp("lab", "exec", "--name", lab_name, "carrier", "--", "ping", "-c1", "-W3",
                 "-I", "100.100.41.1", "192.168.201.1")
    assert ping.returncode == 0, ping.stdout + ping.stderr
    # The hub sits at its own address in 198.18.0.0/15, under its own name.
    addr = wgbgp("lab", "exec", "--name", lab_name, "internet", "--", "ip", "-o", "-4",
                 "addr", "show", "eth0")
    assert "198.18.7.10" in addr.stdout
    # The lab chose its home LANs elsewhere than the announced 192.168.201.0/24.
    own = wgbgp("lab", "exec", "--name", lab_name, "home-server", "--", "ip", "-o", "-4",
                "addr", "show", "eth0").stdout
    assert "192.168.201." not in own and "inet " in own
