"""The topology's `ssh:` section fills in the SSH options the command line leaves out."""

from __future__ import annotations

from pathlib import Path

import pytest

from wgbgp.model import TopologyError, parse
from wgbgp.transport import SshOptions, machine_executors, with_topology_defaults

TOPO = """\
network: {name: t, overlay: 10.0.0.0/24}
hubs:
  vps: {endpoint: 203.0.113.10:51820, ssh: root@192.0.2.1}
nodes:
  laptop: {asn: 65010, announce: [100.100.100.1/32], ssh: root@192.0.2.2}
"""
SECTION = "ssh: {identity: /k/id, known_hosts: /k/known, netns: /run/netns/m}\n"


def test_section_fills_what_the_command_line_leaves_out():
    topo, _ = parse(TOPO + SECTION, "t.yaml")
    assert with_topology_defaults(SshOptions(), topo) == SshOptions(
        known_hosts=Path("/k/known"), identity=Path("/k/id"), netns=Path("/run/netns/m"))
    # A flag wins over the topology.
    mine = with_topology_defaults(SshOptions(identity=Path("/mine")), topo)
    assert mine.identity == Path("/mine") and mine.known_hosts == Path("/k/known")


def test_no_section_changes_nothing():
    topo, _ = parse(TOPO, "t.yaml")
    assert topo.ssh is None
    assert with_topology_defaults(SshOptions(), topo) == SshOptions()


def test_executors_use_the_section():
    topo, _ = parse(TOPO + "ssh: {identity: /k/id, known_hosts: /k/known}\n", "t.yaml")
    x = machine_executors(topo, ["vps", "laptop"])
    assert x["vps"].client_keys == ["/k/id"] and x["laptop"].known_hosts == "/k/known"


def test_unknown_key_in_the_section_is_refused():
    with pytest.raises(TopologyError):
        parse(TOPO + "ssh: {identiy: /k/id}\n", "t.yaml")
