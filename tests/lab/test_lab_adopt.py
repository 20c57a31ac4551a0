"""`wgbgp adopt` on a lab machine set up by hand with the classic recipe (wg0 with the
hub peer's AllowedIPs = the hub's /32, no keepalive; FRR with an inbound route-map only):
it prints the machine's entry, `--into` merges it, and after `apply` the machine is
wgbgp-managed, its key unchanged, and its peer's session comes up."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from labwait import wait_until
from wgbgp.compile import compile_topology
from wgbgp.lab.runner import require_lab, wait_for_convergence
from wgbgp.model import parse
from wgbgp.model.keys import public_key

pytestmark = pytest.mark.lab

WG0 = """\
[Interface]
Address = 10.0.0.10/24
PrivateKey = {key}

[Peer]
# vps
PublicKey = {hub}
Endpoint = {endpoint}
AllowedIPs = 10.0.0.1/32
"""

FRR_CONF = """\
frr defaults traditional
hostname laptop
!
router bgp 65010
 neighbor 10.0.0.2 remote-as 65020
 neighbor 10.0.0.2 ebgp-multihop 2
 !
 address-family ipv4 unicast
  network 100.100.100.1/32
  neighbor 10.0.0.2 route-map FROM-FRIEND in
 exit-address-family
exit
!
ip prefix-list FRIEND seq 5 permit 100.100.100.2/32
!
route-map FROM-FRIEND permit 10
 match ip address prefix-list FRIEND
exit
!
"""


def wgbgp(*args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "wgbgp", *args], capture_output=True,
                          text=True, timeout=240)
    assert proc.returncode == 0, f"wgbgp {' '.join(args)}\n{proc.stdout}\n{proc.stderr}"
    return proc


def test_adopt_a_hand_made_node(daemons_required, unique_name, tmp_path):
    name = unique_name("zadopt")
    try:
        up = wgbgp("lab", "up", "--bare", "--name", name)
        options = shlex.split(re.search(r"--all(.*)$", up.stdout, re.M).group(1))
        lab = require_lab(name)
        x = {n: m.executor() for n, m in lab.machines.items()}
        lab_file = Path(json.loads(wgbgp("lab", "status", "--name", name, "--json").stdout)
                        ["topology"])
        full = parse(lab_file.read_text())[0]
        # wgbgp runs the hub and the friend; the laptop is set up by hand.
        wgbgp("apply", str(lab_file), "--node", "vps", "--node", "friend", *options)
        laptop = x["laptop"]
        key = laptop.run(["cat", "/etc/wgbgp/keys/laptop.key"]).stdout.strip()
        laptop.run(["rm", "/etc/wgbgp/keys/laptop.key", "/etc/wgbgp/keys/laptop.pub"])
        laptop.write_file("/etc/wireguard/wg0.conf", WG0.format(
            key=key, hub=full.hubs["vps"].public_key, endpoint=full.hubs["vps"].endpoint),
            mode=0o600)
        laptop.write_file("/etc/frr/frr.conf", FRR_CONF, mode=0o640)
        laptop.run(["wg-quick", "up", "wg0"])
        laptop.run(["/usr/lib/frr/frrinit.sh", "start"], timeout=120)
        # Healthy start: the hand-made tunnel reaches the hub (a ping makes the handshake).
        wait_until("the hand-made wg0 to reach the hub", lambda: laptop.run(
            ["ping", "-c", "1", "-W", "1", "10.0.0.1"], check=False).ok, timeout=30)

        adopted = laptop.run([sys.executable, "-m", "wgbgp", "adopt", "--name", "laptop",
                              "--network", "friends"])
        assert key not in adopted.stdout + adopted.stderr  # never printed
        entry = yaml.safe_load(adopted.stdout)
        assert entry["nodes"]["laptop"] == {
            "asn": 65010, "address": "10.0.0.10", "public_key": public_key(key),
            "announce": ["100.100.100.1/32"]}
        assert entry["nodes"]["friend"]["announce"] == ["100.100.100.2/32"]
        assert entry["hubs"]["vps"]["address"] == "10.0.0.1"
        assert "allows only 10.0.0.1/32" in adopted.stderr
        # The key is where wgbgp's configs read it, the same key, 0600.
        assert laptop.run(["cat", "/etc/wgbgp/keys/laptop.key"]).stdout.strip() == key
        assert laptop.run(["stat", "-c", "%a", "/etc/wgbgp/keys/laptop.key"]).stdout.strip() \
            == "600"

        # The owner's topology without the laptop; adopt merges it in, on the laptop.
        doc = yaml.safe_load(lab_file.read_text())
        del doc["nodes"]["laptop"]
        topology = tmp_path / "friends.yaml"
        topology.write_text(yaml.safe_dump(doc, sort_keys=False))
        merged = laptop.run([sys.executable, "-m", "wgbgp", "adopt", "--name", "laptop",
                             "--into", str(topology)])
        assert "is the topology's friend" in merged.stderr and key not in merged.stderr
        after = parse(topology.read_text())[0]
        assert after.nodes["laptop"].public_key == public_key(key)
        assert set(after.nodes) == {"laptop", "friend"} and set(after.hubs) == {"vps"}

        laptop.run(["wg-quick", "down", "wg0"])
        applied = laptop.run([sys.executable, "-m", "wgbgp", "apply", str(topology), "--node",
                              "laptop", "--local"], check=False, timeout=240)
        assert applied.ok, applied.stdout + applied.stderr
        plans = compile_topology(after)
        waited = wait_for_convergence(x, plans, timeout=90)
        assert waited.converged, waited.last.missing
        assert laptop.run(["wg", "show", "wg-vps", "public-key"]).stdout.strip() == \
            public_key(key)
        assert laptop.run(["cat", "/etc/wgbgp/keys/laptop.key"]).stdout.strip() == key
    finally:
        subprocess.run([sys.executable, "-m", "wgbgp", "lab", "down", "--name", name],
                       capture_output=True, timeout=60)
