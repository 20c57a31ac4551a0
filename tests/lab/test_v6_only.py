"""End to end: an IPv6-only overlay in the classic shape (examples/ipv6.yaml): hub `vps`,
FRR clients `laptop` and `friend`, no IPv4 in the tunnels at all. The lab's underlay
(the emulated Internet and CG-NAT) stays IPv4: the hub's IPv6 endpoint is mapped to a lab
address, as any endpoint name is."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.lab("wireguard", "frr")
# A copy: commands record an address lock beside the topology (not in the repository).
EXAMPLE = Path(shutil.copy(Path(__file__).resolve().parents[2] / "examples" / "ipv6.yaml",
                           tempfile.mkdtemp(prefix="wgbgp-v6-")))


def wgbgp(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "wgbgp", *args], capture_output=True,
                          text=True, timeout=180)
    if check and proc.returncode != 0:
        raise AssertionError(f"wgbgp {' '.join(args)} -> {proc.returncode}\n"
                             f"{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture
def lab_name():
    name = f"v6o{os.getpid() % 100000}"
    yield name
    wgbgp("lab", "down", "--name", name, check=False)


def test_ipv6_only_overlay_end_to_end(lab_name: str) -> None:
    up = wgbgp("lab", "up", str(EXAMPLE), "--name", lab_name)
    assert "1 BGP session Established, 2 routes learned and installed" in up.stdout, up.stdout
    report = json.loads(wgbgp("lab", "test", "--name", lab_name, "--json").stdout)
    assert report["ok"], report
    # ping -6 between announced addresses, sourced from the node's own prefix.
    ping = wgbgp("lab", "exec", "--name", lab_name, "laptop", "--", "ping", "-6", "-c", "1",
                 "-W", "2", "-I", "2001:db8:1::1", "2001:db8:2::1", check=False)
    assert ping.returncode == 0, ping.stdout + ping.stderr
    status = json.loads(wgbgp("lab", "status", "--name", lab_name, "--json").stdout)
    laptop = status["machines"]["laptop"]
    (neighbor,) = laptop["bgp"]["neighbors"]
    assert neighbor["state"] == "Established" and ":" in neighbor["address"]
    assert laptop["bgp"]["router_id"] == "0.0.0.2"  # low 32 bits of fdXX::2
    # No IPv4 on the tunnel, IPv6 only.
    addrs = laptop["tunnels"][0]["addresses"]
    assert addrs and all(":" in a for a in addrs), addrs
    wgbgp("lab", "down", "--name", lab_name)
