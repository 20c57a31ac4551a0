"""A friend joins a running network: `wgbgp join` on the friend's (lab) machine, `wgbgp
node add` on the owner's side, `wgbgp apply`; the new node gets a session to every peer,
and no other machine's tunnel address moves (in the file or on the machines)."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from wgbgp.compile import compile_topology
from wgbgp.lab.runner import require_lab, wait_for_convergence
from wgbgp.model import allocate, parse

pytestmark = pytest.mark.lab

TOPOLOGY = """\
network: {name: joiners, overlay: 10.0.0.0/24}
hubs:
  vps: {endpoint: 203.0.113.10:51820}
nodes:
  laptop: {asn: 65010, announce: [100.100.100.1/32]}
  alice: {asn: 65011, announce: [100.100.100.3/32]}
  friend: {asn: 65020, announce: [100.100.100.2/32]}
"""


def wgbgp(*args: str, code: int = 0) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "wgbgp", *args], capture_output=True,
                          text=True, timeout=240)
    assert proc.returncode == code, f"wgbgp {' '.join(args)}\n{proc.stdout}\n{proc.stderr}"
    return proc


def tunnel_addresses(lab, names) -> dict[str, list[str]]:
    """The addresses each machine's wg-vps really holds."""
    out = {}
    for name in names:
        res = lab.machines[name].executor().run(["ip", "-j", "address", "show", "wg-vps"])
        out[name] = sorted(a["local"] for i in json.loads(res.stdout) for a in i["addr_info"])
    return out


def test_friend_joins_with_sessions_to_every_peer(daemons_required, unique_name, tmp_path):
    name = unique_name("zjoin")
    source = tmp_path / "source.yaml"
    source.write_text(TOPOLOGY)
    try:
        up = wgbgp("lab", "up", "--bare", str(source), "--name", name)
        options = shlex.split(re.search(r"--all(.*)$", up.stdout, re.M).group(1))
        lab = require_lab(name)
        lab_topo = yaml.safe_load(Path(json.loads(wgbgp(
            "lab", "status", "--name", name, "--json").stdout)["topology"]).read_text())
        friend_ssh = lab_topo["nodes"].pop("friend")["ssh"]
        # The owner's network before the friend joins: the hub and two nodes, applied.
        topology = tmp_path / "friends.yaml"
        topology.write_text("# our network (this comment stays)\n"
                            + yaml.safe_dump(lab_topo, sort_keys=False))
        wgbgp("apply", str(topology), "--all", *options)
        before_plans = compile_topology(parse(topology.read_text())[0])
        executors = {n: m.executor() for n, m in lab.machines.items()}
        waited = wait_for_convergence({n: executors[n] for n in before_plans}, before_plans,
                                      timeout=60)
        assert waited.converged, waited.last.missing
        before = allocate(parse(topology.read_text())[0])
        live_before = tunnel_addresses(lab, ["vps", "laptop", "alice"])

        # On the friend's machine: a fresh key made there, one line printed.
        friend = executors["friend"]
        friend.run(["rm", "-f", "/etc/wgbgp/keys/friend.key", "/etc/wgbgp/keys/friend.pub"])
        joined = friend.run([sys.executable, "-m", "wgbgp", "join", "--name", "friend",
                             "--asn", "65020", "--announce", "100.100.100.2/32",
                             "--ssh", friend_ssh])
        request = joined.stdout.strip()
        private = friend.run(["cat", "/etc/wgbgp/keys/friend.key"]).stdout.strip()
        assert request.startswith("wgbgp-join1.") and private not in joined.stdout + joined.stderr

        # The owner adds it, then applies everything (the friend could apply their own
        # machine with --local; here the owner reaches it over SSH).
        wgbgp("node", "add", str(topology), request)
        text = topology.read_text()
        assert text.startswith("# our network (this comment stays)\n")
        after_topo = parse(text)[0]
        after = allocate(after_topo)
        assert {m: after[m] for m in before} == before
        wgbgp("apply", str(topology), "--all", *options)
        plans = compile_topology(after_topo)
        assert {s.peer for s in plans["friend"].bgp.sessions} == {"laptop", "alice"}
        waited = wait_for_convergence(executors, plans, timeout=90)
        assert waited.converged, waited.last.missing
        assert tunnel_addresses(lab, ["vps", "laptop", "alice"]) == live_before
        # The friend's tunnel runs on the key made by `join`.
        shown = friend.run(["wg", "show", "wg-vps", "public-key"]).stdout.strip()
        assert shown == after_topo.nodes["friend"].public_key
    finally:
        subprocess.run([sys.executable, "-m", "wgbgp", "lab", "down", "--name", name],
                       capture_output=True, timeout=60)
